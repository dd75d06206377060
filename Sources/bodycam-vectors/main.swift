import Evidence
import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire
import Tokens

/// Writes the test vectors of docs/FORMAT.md into the folder given (`make vectors`). Each vector
/// is one canonical JSON file: what to feed a reader and what it must answer. Keys are fixed
/// (derived from labels) so the vectors can be checked by hand; the segment files themselves
/// use fresh random data keys, as the format requires, so regenerating changes their bytes.
guard CommandLine.arguments.count == 2 else {
    writeStandardError("usage: bodycam-vectors FOLDER")
    exit(64)
}
let folder = CommandLine.arguments[1]

func seed(_ label: String) throws -> SecretBytes { SecretBytes(try SHA256.hash(Array("bodycam test vector \(label)".utf8))) }
func b64(_ bytes: [UInt8]) -> JSONValue { .string(Base64.encode(bytes)) }

func write(_ name: String, _ fields: [String: JSONValue]) throws {
    try writeFileAtomically(folder + "/" + name + ".json", JSONValue.object(fields).canonical + [0x0A], mode: 0o644)
}

let office = try X25519PrivateKey(raw: seed("office"))
let stranger = try X25519PrivateKey(raw: seed("stranger"))
let device = try Ed25519PrivateKey(seed: seed("device"))

// Canonical JSON.
let json = [
    (#"{ "b" : 1, "a" : [true, false, null] }"#, #"{"a":[true,false,null],"b":1}"#),
    (#"{"é":"\u00e9","e":"tab\there","\u0001":"\/"}"#, #"{"\u0001":"/","e":"tab\there","é":"é"}"#),
    (#"[-0, 9007199254740993]"#, #"[0,9007199254740993]"#),
]
for (index, (input, canonical)) in json.enumerated() {
    try write("canonical-json-\(index + 1)", ["kind": .string("canonical_json"), "input": .string(input), "canonical": .string(canonical)])
}
try write("canonical-json-reject-float", ["kind": .string("canonical_json"), "input": .string("[1.5]"), "expect": .string("error")])

// Signed document.
let body = JSONValue.object(["device_id": .string("BC-0001"), "sequence": .integer(7)])
let signed = try SignedDocument.sign(type: "bodycam-manifest/1", body: body, with: device)
try write("signed-document-ok", ["kind": .string("signed_document"), "public_key": b64(device.publicKey.raw),
                                  "type": .string("bodycam-manifest/1"), "document": b64(signed.bytes), "expect": .string("ok"),
                                  "body": body, "key_id": .string(device.publicKey.keyID)])
var altered = signed.bytes
altered[altered.firstIndex(of: UInt8(ascii: "7"))!] = UInt8(ascii: "8")
try write("signed-document-altered", ["kind": .string("signed_document"), "public_key": b64(device.publicKey.raw),
                                       "type": .string("bodycam-manifest/1"), "document": b64(altered), "expect": .string("error")])

// Sealed segments.
let directory = folder + "/.work"
mkdir(directory, 0o755)
let chunks: [[UInt8]] = [Array("ftyp+moov".utf8), Array("moof+mdat fragment 1".utf8), [UInt8](repeating: 0xAB, count: 1000)]
let vault = try EvidenceVault(configuration: .init(directory: directory, deviceID: "BC-0001", recipients: [office.publicKey],
                                                   deviceKey: device, provisioned: false))
try vault.journal.append(kind: "boot", fields: ["device_id": .string("BC-0001")])
try vault.journal.append(kind: "recording_started", fields: [:])
let sink = try vault.makeSink(for: SegmentDescriptor(sequence: 1, deviceID: "BC-0001", officerID: "O-1",
                                                      startWallNanoseconds: 1_767_225_600_000_000_000, codec: "h264",
                                                      width: 1280, height: 720, framesPerSecond: 30,
                                                      bootID: "6b1a9b4e-2f1c-4c57-9d1e-0a7f3c2d5e81"))
for (index, chunk) in chunks.enumerated() {
    try chunk.withUnsafeBytes { try sink.write($0) }
    try sink.fragmentComplete(frames: index == 0 ? 0 : 30, duration: index == 0 ? 0 : 90_000)
}
let path = try sink.finish()
let sealedBytes = try readWholeFile(path)
try vault.journal.append(kind: "shutdown", fields: ["reason": .string("SIGTERM")])
let layout = try SealedSegmentLayout(sealedBytes, what: "vector")
func segmentVector(_ name: String, _ bytes: [UInt8], identity: X25519PrivateKey, expect: String, note: String, allowUnsealed: Bool = false) throws {
    var fields: [String: JSONValue] = ["kind": .string("segment"), "identity": b64(identity.rawPrivate.bytes), "file": b64(bytes),
                                       "expect": .string(expect), "note": .string(note), "allow_unsealed": .boolean(allowUnsealed)]
    if expect == "ok" { fields["plaintext_chunks"] = .array(chunks.prefix(allowUnsealed ? 2 : 3).map(b64) + (allowUnsealed ? [] : [b64([])])) }
    try write(name, fields)
}
try segmentVector("segment-ok", sealedBytes, identity: office, expect: "ok", note: "three chunks and an empty last chunk")
try segmentVector("segment-wrong-identity", sealedBytes, identity: stranger, expect: "error", note: "not a recipient")
let last = layout.chunks.last!
try segmentVector("segment-truncated", Array(sealedBytes[0..<last.offset]), identity: office, expect: "error", note: "the last chunk is gone")
let third = layout.chunks[2]
try segmentVector("segment-recovered", Array(sealedBytes[0..<third.offset]) + [1, 2, 3], identity: office, expect: "ok",
                  note: "cut by a crash: two complete chunks and a torn tail, read as a recovered segment", allowUnsealed: true)
try segmentVector("segment-trailing-data", sealedBytes + [0], identity: office, expect: "error", note: "a byte after the last chunk")
var reordered = Array(sealedBytes[0..<layout.chunks[1].offset])
reordered += sealedBytes[layout.chunks[2].offset..<layout.chunks[3].offset]
reordered += sealedBytes[layout.chunks[1].offset..<layout.chunks[2].offset]
reordered += sealedBytes[layout.chunks[3].offset...]
try segmentVector("segment-reordered", reordered, identity: office, expect: "error", note: "chunks 1 and 2 swapped")
var headerEdit = sealedBytes
headerEdit[layout.headerBytes.count - 3] ^= 1
try segmentVector("segment-header-edited", headerEdit, identity: office, expect: "error", note: "one bit of the header changed")
var flagEdit = sealedBytes
flagEdit[layout.chunks[2].offset + 12] = 1
try segmentVector("segment-early-last-flag", flagEdit, identity: office, expect: "error", note: "chunk 2 claims to be the last")

// Journal.
let journalBytes = try readWholeFile(directory + "/journal.log")
try write("journal-ok", ["kind": .string("journal"), "public_key": b64(device.publicKey.raw), "journal": b64(journalBytes),
                          "expect": .string("ok"), "records": .integer(Int64(AuditJournal.parse(journalBytes, key: nil).records.count))])
let lines = journalBytes.split(separator: 0x0A).map(Array.init)
try write("journal-record-removed", ["kind": .string("journal"), "public_key": b64(device.publicKey.raw),
                                      "journal": b64(Array(([lines[0]] + lines.dropFirst(2)).joined(separator: [0x0A])) + [0x0A]),
                                      "expect": .string("error")])
// Clean up the work folder: the vectors are self-contained.
for name in ["journal.log", "device.pub"] + (try directoryEntries(directory)) { unlink(directory + "/" + name) }
rmdir(directory)
print("vectors written to \(folder)")
