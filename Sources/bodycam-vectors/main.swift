import Evidence
import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire
import Policy
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

func removeFolder(_ path: String) {
    for name in (try? directoryEntries(path)) ?? [] { unlink(path + "/" + name) }
    rmdir(path)
}

func write(_ name: String, _ fields: [String: JSONValue]) throws {
    try writeFileAtomically(folder + "/" + name + ".json", JSONValue.object(fields).canonical + [0x0A], mode: 0o644)
}

let office = try X25519PrivateKey(raw: seed("office"))
let stranger = try X25519PrivateKey(raw: seed("stranger"))
let device = try Ed25519PrivateKey(seed: seed("device"))

// Canonical JSON.
let json = [
    (#"{ "b" : 1, "a" : [true, false, null] }"#, #"{"a":[true,false,null],"b":1}"#),
    (#"{"f":"\u00e9 é","e":"tab\there","E":"\u0001\/"}"#, #"{"E":"\u0001/","e":"tab\there","f":"é é"}"#),
    (#"[-0, 9007199254740993]"#, #"[0,9007199254740993]"#),
    (#""\ud83d\ude00 \u00E9""#, "\"\u{1F600} é\""),
    (String(repeating: "[", count: 32) + String(repeating: "]", count: 32), String(repeating: "[", count: 32) + String(repeating: "]", count: 32)),
]
for (index, (input, canonical)) in json.enumerated() {
    try write("canonical-json-\(index + 1)", ["kind": .string("canonical_json"), "input": .string(input), "canonical": .string(canonical)])
}
for (name, input) in [("float", "[1.5]"), ("exponent", "[1e3]"), ("duplicate-name", #"{"a":1,"\u0061":2}"#), ("non-ascii-name", #"{"é":1}"#),
                      ("lone-surrogate", #""\ud83d""#), ("too-deep", String(repeating: "[", count: 33) + String(repeating: "]", count: 33)),
                      ("trailing-data", "{} {}")] {
    try write("canonical-json-reject-" + name, ["kind": .string("canonical_json"), "input": .string(input), "expect": .string("error")])
}

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
removeFolder(directory)
mkdir(directory, 0o755)
let chunks: [[UInt8]] = [Array("ftyp+moov".utf8), Array("moof+mdat fragment 1".utf8), [UInt8](repeating: 0xAB, count: 1000)]
let vault = try EvidenceVault(configuration: .init(directory: directory, deviceID: "BC-0001", recipients: [office.publicKey],
                                                   deviceKey: device, provisioned: false))
try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields.merging(["device_id": .string("BC-0001")]) { $1 })
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
// Stores: a whole store folder (`files`, name to bytes) and what `bodycamctl verify` must find
// in it. The expected findings are written here by hand, one fault per vector; the generator
// checks that this implementation reaches them before it writes a vector.
let authority = try Ed25519PrivateKey(seed: seed("authority"))
let storeWork = folder + "/.store"
/// 2026-12-01T08:00:00Z, and one second in nanoseconds.
let dayOne: Int64 = 1_796_112_000_000_000_000, second: Int64 = 1_000_000_000


/// What each segment of a store vector holds: stand-ins for the MP4 header and two fragments.
let storeChunks = [Array("ftyp+moov".utf8), Array("moof+mdat 1".utf8), Array("moof+mdat 2".utf8)]

/// Records runs of the writer into a fresh store and returns its files. Each run is a `boot`
/// record, `segments` one-second segments (three chunks each) starting at the given wall and
/// monotonic times, and `shutdown` unless `crash`; a run with another `key` than the device's
/// first journals that key's replacement of the lost one.
struct Run {
    var segments: [(wall: Int64, monotonic: Int64)]
    var crash = false
    /// A crash that leaves a fourth segment's first fragment in a `.partial` (recovered by the next run).
    var partial = false
    var key: Ed25519PrivateKey = device
    var certificate: DeviceCertificate? = nil
}
/// The work folder emptied, then given `files`.
func openWork(_ files: [String: [UInt8]] = [:]) throws {
    removeFolder(storeWork)
    mkdir(storeWork, 0o755)
    for (file, bytes) in files { try writeFileAtomically(storeWork + "/" + file, bytes, mode: 0o644) }
}

/// The work folder's files; the folder is gone after.
func takeWork() throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for name in try directoryEntries(storeWork) { files[name] = try readWholeFile(storeWork + "/" + name) }
    removeFolder(storeWork)
    return files
}

/// `bootID` goes into the segments and the journal's boot records, `journalBootID` (when given)
/// into the boot records instead.
func recordStore(_ runs: [Run], certificateNotAfter: String = "2031-01-01T00:00:00.000000Z", bootID: String = "",
                 journalBootID: String? = nil) throws -> [String: [UInt8]] {
    try openWork()
    let certificate = try DeviceCertificate.issue(deviceID: "BC-0001", deviceKey: device.publicKey, authority: authority,
                                                  notBefore: "2026-01-01T00:00:00.000000Z", notAfter: certificateNotAfter)
    try writeFileAtomically(storeWork + "/device.certificate", certificate.document.bytes, mode: 0o644)
    for run in runs {
        let vault = try EvidenceVault(configuration: .init(directory: storeWork, deviceID: "BC-0001", recipients: [office.publicKey],
                                                           deviceKey: run.key, provisioned: run.key.publicKey == device.publicKey))
        if run.key.publicKey != device.publicKey {
            try vault.journal.append(kind: EvidenceVault.keyReplacedKind, fields: [
                "new_key": b64(run.key.publicKey.raw), "new_key_id": .string(run.key.publicKey.keyID),
                "previous_key_id": .string(device.publicKey.keyID), "next_sequence": .integer(Int64(vault.nextSequence)),
                "reason": .string("the device key was missing at start")])
        }
        try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields.merging([
            "device_id": JSONValue.string("BC-0001"), "boot_id": .string(journalBootID ?? bootID)]) { $1 })
        _ = try vault.recover()
        func segment(_ wall: Int64, _ monotonic: Int64, finish: Bool) throws {
            let sink = try vault.makeSink(for: SegmentDescriptor(sequence: vault.nextSequence, deviceID: "BC-0001", officerID: "O-1",
                                                                  startWallNanoseconds: wall, startMonotonicNanoseconds: monotonic, codec: "h264",
                                                                  width: 1280, height: 720, framesPerSecond: 30, bootID: bootID))
            for (index, chunk) in storeChunks.enumerated() where finish || index < 2 {
                try chunk.withUnsafeBytes { try sink.write($0) }
                try sink.fragmentComplete(frames: index == 0 ? 0 : 15, duration: index == 0 ? 0 : 45_000)
            }
            if finish { _ = try sink.finish() }
        }
        for (wall, monotonic) in run.segments { try segment(wall, monotonic, finish: true) }
        if run.partial, let (wall, monotonic) = run.segments.last { try segment(wall + second, monotonic + second, finish: false) }
        if !run.crash { try vault.journal.append(kind: AuditJournal.finalKind, fields: ["reason": .string("SIGTERM")]) }
    }
    return try takeWork()
}

/// One more run of the writer, ending cleanly, on a copy of the store `files`: its start (which
/// repairs a torn journal line), its boot record, `during`, its shutdown record.
func anotherRun(on files: [String: [UInt8]], during: (EvidenceVault) throws -> Void = { _ in }) throws -> [String: [UInt8]] {
    try openWork(files)
    let vault = try EvidenceVault(configuration: .init(directory: storeWork, deviceID: "BC-0001", recipients: [office.publicKey], deviceKey: device, provisioned: true))
    try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields.merging(["device_id": JSONValue.string("BC-0001"), "boot_id": .string("")]) { $1 })
    try during(vault)
    try vault.journal.append(kind: AuditJournal.finalKind, fields: ["reason": .string("SIGTERM")])
    return try takeWork()
}

/// One expected finding: its code and the segments it names.
typealias Finding = (code: String, sequences: [Int64])

/// Writes a store vector after checking that `StoreVerifier` finds exactly `problems` (as a
/// multiset of code and sequences), verifies exactly `verified`, and reports `uncleanStops`
/// runs ended without `shutdown`.
func storeVector(_ name: String, _ files: [String: [UInt8]], note: String, problems: [Finding], verified: [Int64],
                 uncleanStops: Int = 0, withAuthority: Bool = true, journalHead: JournalHead? = nil) throws {
    try openWork(files)
    let report = try StoreVerifier.verify(store: storeWork, authority: withAuthority ? authority.publicKey : nil, journalHead: journalHead)
    removeFolder(storeWork)
    func key(_ finding: Finding) -> String { finding.code + " " + finding.sequences.map(String.init).joined(separator: ",") }
    let found = report.problems.map { key(($0.code, $0.sequences)) }.sorted(), wanted = problems.map(key).sorted()
    guard found == wanted, report.verifiedSequences == verified, report.uncleanStops.count == uncleanStops else {
        writeStandardError("bodycam-vectors: \(name): verify found \(found), verified \(report.verifiedSequences), \(report.uncleanStops.count) unclean stops; "
                           + "the vector says \(wanted), verified \(verified), \(uncleanStops) unclean stops\n")
        exit(1)
    }
    let expected = problems.sorted { key($0) < key($1) }.map { finding -> JSONValue in
        .object(["code": .string(finding.code), "sequences": .array(finding.sequences.map { .integer($0) }),
                 "severity": .string(VerificationProblem.warnings.contains(finding.code) ? "warning" : "error")])
    }
    var fields: [String: JSONValue] = [
        "kind": .string("store"), "note": .string(note), "expect": .string(report.problems.isEmpty ? "ok" : "error"),
        "files": .object(files.mapValues(b64)), "problems": .array(expected),
        "verified_sequences": .array(verified.map { .integer($0) }), "unclean_stops": .integer(Int64(uncleanStops)),
    ]
    if withAuthority { fields["authority_key"] = b64(authority.publicKey.raw) }
    if let journalHead { fields["journal_head"] = .object(["records": .integer(journalHead.records), "sha256": .string(journalHead.sha256)]) }
    if !report.timeCorrections.isEmpty { fields["time_corrections"] = .array(report.timeCorrections.map { .integer($0.sequence) }) }
    try write("store-" + name, fields)
}

let threeSegments: [(wall: Int64, monotonic: Int64)] = [(dayOne, 10 * second), (dayOne + second, 11 * second), (dayOne + 2 * second, 12 * second)]
let base = try recordStore([Run(segments: threeSegments)])
func named(_ files: [String: [UInt8]], _ suffix: String, _ sequence: Int) -> String {
    files.keys.sorted().filter { $0.hasSuffix(suffix) }[sequence - 1]
}
func segmentName(_ sequence: Int) -> String { named(base, ".bcseg", sequence) }
func manifestName(_ sequence: Int) -> String { named(base, ".manifest", sequence) }
func manifest(_ files: [String: [UInt8]], _ sequence: Int) throws -> Manifest { try Manifest.read(files[named(files, ".manifest", sequence)]!, what: "vector") }
/// The manifest of `sequence` signed anew by `key` with `change` made to its body.
func resigned(_ files: [String: [UInt8]], _ sequence: Int, key: Ed25519PrivateKey = device,
              _ change: (inout [String: JSONValue]) -> Void = { _ in }) throws -> [UInt8] {
    var body = try manifest(files, sequence).document.body.object!
    change(&body)
    return try SignedDocument.sign(type: Manifest.type, body: .object(body), with: key).bytes
}
func journalLines(_ files: [String: [UInt8]]) -> [[UInt8]] { files["journal.log"]!.split(separator: 0x0A).map(Array.init) }
func joinLines(_ lines: [[UInt8]]) -> [UInt8] { Array(lines.joined(separator: [0x0A])) + [0x0A] }
/// The journal written anew by a holder of the device key: the records `keep` takes, chained
/// again, each boot record's account of the run before it made to match, then `edit` applied.
func rewrittenJournal(_ files: [String: [UInt8]], keep: (JournalRecord) -> Bool = { _ in true },
                      edit: (JournalRecord, inout [String: JSONValue]) -> Void = { _, _ in }) throws -> [UInt8] {
    let records = AuditJournal.parse(files["journal.log"]!, key: nil).records
    try openWork()
    let journal = try AuditJournal(path: storeWork + "/journal.log", key: device)
    var last: JournalRecord? = nil
    for record in records where keep(record) {
        var fields = record.fields
        if record.kind == "boot" { fields.merge(AuditJournal.runAccount(after: last)) { $1 } }
        edit(record, &fields)
        last = try journal.append(kind: record.kind, fields: fields)
    }
    let bytes = try readWholeFile(storeWork + "/journal.log")
    removeFolder(storeWork)
    return bytes
}
func with(_ files: [String: [UInt8]], _ change: (inout [String: [UInt8]]) throws -> Void) rethrows -> [String: [UInt8]] {
    var copy = files
    try change(&copy)
    return copy
}

try storeVector("ok", base, note: "three segments recorded in one run that ended cleanly", problems: [], verified: [1, 2, 3])
try storeVector("ok-without-authority", base, note: "the same store verified without the authority's key", problems: [], verified: [1, 2, 3],
                withAuthority: false)
try storeVector("crash", try recordStore([Run(segments: Array(threeSegments.prefix(2)), crash: true), Run(segments: [threeSegments[2]])]),
                note: "the first run ended without a shutdown record (a crash); the second run began with a boot record saying so",
                problems: [], verified: [1, 2, 3], uncleanStops: 1)
try storeVector("final-records-removed", with(base) { $0["journal.log"] = joinLines(journalLines(base).dropLast()) },
                note: "the final shutdown record cut off: a crash and this cut look the same on the device alone",
                problems: [], verified: [1, 2, 3], uncleanStops: 1)
let baseHead = AuditJournal.parse(base["journal.log"]!, key: nil).records.last!
try storeVector("journal-head-held", base, note: "the journal still holds the head the office saw", problems: [], verified: [1, 2, 3],
                journalHead: JournalHead(records: baseHead.sequence, sha256: Hex.encode(baseHead.hash)))
try storeVector("journal-cut-after-head", with(base) { $0["journal.log"] = joinLines(journalLines(base).dropLast()) },
                note: "the final shutdown record cut off after the office saw it: the device alone shows an unclean stop, the head shows the cut",
                problems: [("journal_truncated", [])], verified: [1, 2, 3], uncleanStops: 1,
                journalHead: JournalHead(records: baseHead.sequence, sha256: Hex.encode(baseHead.hash)))
try storeVector("certificate-invalid", with(base) {
    $0["device.certificate"] = try DeviceCertificate.issue(deviceID: "BC-0001", deviceKey: device.publicKey, authority: try Ed25519PrivateKey(seed: seed("other authority")),
                                                          notBefore: "2026-01-01T00:00:00.000000Z", notAfter: "2031-01-01T00:00:00.000000Z").document.bytes
}, note: "the certificate is signed by another authority", problems: [("certificate_invalid", [])], verified: [1, 2, 3])
try storeVector("certificate-expired-at-signing", try recordStore([Run(segments: threeSegments)], certificateNotAfter: "2026-12-01T08:00:01.500000Z"),
                note: "the certificate ended between the first and the second segment's signing (its end_utc)",
                problems: [("certificate_expired_at_signing", [2, 3])], verified: [1])
try storeVector("unprovisioned", with(base) { $0["device.certificate"] = nil },
                note: "no certificate: the device key is not traced to the authority", problems: [("unprovisioned", [])], verified: [1, 2, 3])
try storeVector("device-key-mismatch", with(base) {
    $0["device.certificate"] = try DeviceCertificate.issue(deviceID: "BC-0001", deviceKey: try Ed25519PrivateKey(seed: seed("another device")).publicKey,
                                                          authority: authority, notBefore: "2026-01-01T00:00:00.000000Z",
                                                          notAfter: "2031-01-01T00:00:00.000000Z").document.bytes
}, note: "the certificate is for another key than device.pub", problems: [("device_key_mismatch", [])], verified: [1, 2, 3])
try storeVector("device-key-unreadable", with(base) { $0["device.pub"] = Array("not a key\n".utf8) },
                note: "device.pub cannot be read: the certificate's key is used", problems: [("device_key_unreadable", [])], verified: [1, 2, 3])
try storeVector("device-key-missing", with(base) { $0["device.pub"] = nil },
                note: "device.pub deleted: the certificate's key is used", problems: [("device_key_missing", [])], verified: [1, 2, 3])
try storeVector("no-device-key", with(base) { $0["device.pub"] = nil; $0["device.certificate"] = nil },
                note: "neither device.pub nor a certificate", problems: [("no_device_key", [])], verified: [], withAuthority: false)
try storeVector("manifest-malformed", with(base) { $0[manifestName(2)] = Array("bodycam-manifest/1\n{}\n\n".utf8) },
                note: "manifest 2 is not a manifest: its segment is then one nobody vouches for",
                problems: [("manifest_malformed", []), ("sequence_gap", [2]), ("segment_without_manifest", []), ("journaled_segment_missing", [2])],
                verified: [1, 3])
try storeVector("manifest-time-spelling", with(base) { $0[manifestName(2)] = try resigned(base, 2) { $0["start_utc"] = .string(String(($0["start_utc"]?.string ?? "").dropLast(8)) + "Z") } },
                note: "manifest 2, signed by the device key, writes start_utc without its fraction: not a time",
                problems: [("manifest_malformed", []), ("sequence_gap", [2]), ("segment_without_manifest", []), ("journaled_segment_missing", [2])],
                verified: [1, 3])
try storeVector("manifest-hex-upper-case", with(base) { $0[manifestName(2)] = try resigned(base, 2) { $0["ciphertext_sha256"] = .string(($0["ciphertext_sha256"]?.string ?? "").uppercased()) } },
                note: "manifest 2, signed by the device key, writes its ciphertext hash in upper case",
                problems: [("manifest_malformed", []), ("sequence_gap", [2]), ("segment_without_manifest", []), ("journaled_segment_missing", [2])],
                verified: [1, 3])
try storeVector("manifest-bad-signature", with(base) { $0[manifestName(2)] = try resigned(base, 2, key: try Ed25519PrivateKey(seed: seed("forger"))) },
                note: "manifest 2 signed by another key",
                problems: [("manifest_bad_signature", [2]), ("sequence_gap", [2]), ("segment_without_manifest", []), ("journaled_segment_missing", [2])],
                verified: [1, 3])
try storeVector("foreign-device", with(base) { $0[manifestName(2)] = try resigned(base, 2) { $0["device_id"] = .string("BC-9999") } },
                note: "manifest 2, signed by the device key, names another device",
                problems: [("foreign_device", [2]), ("sequence_gap", [2]), ("segment_without_manifest", []), ("journaled_segment_missing", [2])],
                verified: [1, 3])
try storeVector("replayed-segment", with(base) { $0["seg-000004-20991231T000000Z.manifest"] = base[manifestName(1)] },
                note: "manifest 1 copied in under the name of a fourth segment",
                problems: [("duplicate_sequence", [1]), ("replayed_segment", [1, 1]), ("manifest_renamed", [1])], verified: [2, 3])
try storeVector("segment-and-manifest-deleted", with(base) { $0[segmentName(2)] = nil; $0[manifestName(2)] = nil },
                note: "segment 2 and its manifest deleted", problems: [("sequence_gap", [2]), ("journaled_segment_missing", [2])], verified: [1, 3])
try storeVector("newest-deleted", with(base) { $0[segmentName(3)] = nil; $0[manifestName(3)] = nil },
                note: "the newest segment and its manifest deleted: only the journal knows", problems: [("journaled_segment_missing", [3])], verified: [1, 2])
try storeVector("chain-broken", with(base) { $0[manifestName(3)] = try resigned(base, 3) { $0["previous_manifest_sha256"] = .string(String(repeating: "1", count: 64)) } },
                note: "manifest 3, signed by the device key, names another manifest before it",
                problems: [("chain_broken", [2, 3]), ("journaled_manifest_differs", [3])], verified: [1])
try storeVector("segment-missing", with(base) { $0[segmentName(2)] = nil },
                note: "segment 2's file deleted", problems: [("segment_missing", [2])], verified: [1, 3])
try storeVector("ciphertext-mismatch", with(base) { $0[segmentName(2)]![$0[segmentName(2)]!.count - 20] ^= 1 },
                note: "one bit of segment 2's last chunk changed", problems: [("ciphertext_mismatch", [2])], verified: [1, 3])
try storeVector("segments-swapped", with(base) { ($0[segmentName(1)], $0[segmentName(2)]) = (base[segmentName(2)], base[segmentName(1)]) },
                note: "the files of segments 1 and 2 swapped",
                problems: [("ciphertext_mismatch", [1]), ("ciphertext_mismatch", [2]), ("segment_header_mismatch", [1]), ("segment_header_mismatch", [2])],
                verified: [3])
let baseLayout = try SealedSegmentLayout(base[segmentName(2)]!, what: "vector")
try storeVector("segment-truncated", with(base) { $0[segmentName(2)] = Array(base[segmentName(2)]![..<baseLayout.chunks.last!.offset]) },
                note: "segment 2 cut before its last chunk", problems: [("ciphertext_mismatch", [2]), ("segment_unsealed", [2])], verified: [1, 3])
try storeVector("segment-trailing-data", with(base) { $0[segmentName(2)]! += [0, 1, 2] },
                note: "three bytes after segment 2's last chunk", problems: [("ciphertext_mismatch", [2]), ("segment_trailing_data", [2])], verified: [1, 3])
let extended = base[segmentName(2)]! + [0, 1, 2]
try storeVector("segment-trailing-data-resigned", with(base) {
    $0[segmentName(2)] = extended
    $0[manifestName(2)] = try resigned(base, 2) {
        $0["ciphertext_sha256"] = .string(Hex.encode(try! SHA256.hash(extended)))
        $0["ciphertext_bytes"] = .integer(Int64(extended.count))
    }
}, note: "three bytes after segment 2's last chunk, and its manifest signed anew (by the device key) for the longer file",
   problems: [("segment_trailing_data", [2]), ("journaled_manifest_differs", [2]), ("chain_broken", [2, 3])], verified: [1])
try storeVector("segment-malformed", with(base) { $0[segmentName(2)] = [UInt8](repeating: 0x41, count: 100) },
                note: "segment 2's file replaced by bytes that are not a segment", problems: [("ciphertext_mismatch", [2]), ("segment_malformed", [2])], verified: [1, 3])
try storeVector("segment-without-manifest", with(base) { $0["seg-000004-20261201T080003Z.bcseg.partial"] = Array(base[segmentName(3)]!.prefix(500)) },
                note: "a .partial nobody vouches for, in a store no writer holds", problems: [("segment_without_manifest", [])], verified: [1, 2, 3])
try storeVector("segment-set-aside", with(base) { $0["seg-000004-20261201T080003Z.bcseg.damaged"] = [1, 2, 3] },
                note: "a file recovery set aside", problems: [("segment_set_aside", [])], verified: [1, 2, 3])
try storeVector("manifest-renamed", with(base) { $0["seg-000002-20991231T000000Z.manifest"] = $0.removeValue(forKey: manifestName(2)) },
                note: "manifest 2 renamed", problems: [("manifest_renamed", [2])], verified: [1, 3])
let baseLines = journalLines(base)
try storeVector("journal-record-removed", with(base) { $0["journal.log"] = joinLines(baseLines.enumerated().filter { $0.offset != 2 }.map(\.element)) },
                note: "the journal's second record (segment 1's sealing) deleted: the next record's sequence and its previous hash are wrong, and manifest 1 is in no record",
                problems: [("journal_broken", []), ("journal_broken", []), ("manifest_not_journaled", [1])], verified: [2, 3])
try storeVector("journal-bad-signature", with(base) {
    var line = baseLines.last!
    let space = line.lastIndex(of: 0x20)!
    line.replaceSubrange((space + 1)..., with: Array(Base64.encode([UInt8](repeating: 7, count: 64)).utf8))
    $0["journal.log"] = joinLines(baseLines.dropLast() + [line])
}, note: "the last record's signature replaced (a record after it would also no longer follow it)", problems: [("journal_bad_signature", [])], verified: [1, 2, 3])
let records = AuditJournal.parse(base["journal.log"]!, key: nil).records
let lastSealed = records.last { $0.kind == "segment_sealed" }!
try storeVector("journal-truncated", with(base) { $0["journal.log"] = joinLines(Array(baseLines.prefix(lastSealed.line - 1))) },
                note: "the journal cut before the record of segment 3's sealing", problems: [("journal_truncated", [3])], verified: [1, 2], uncleanStops: 1)
try storeVector("journal-torn", with(base) { $0["journal.log"] = Array(base["journal.log"]!.dropLast(10)) },
                note: "the journal's last record cut short", problems: [("journal_truncated", [])], verified: [1, 2, 3], uncleanStops: 1)
try storeVector("manifest-not-journaled", with(base) {
    let sealedTwo = records.first { $0.kind == "segment_sealed" && $0.fields["sequence"] == .integer(2) }!
    $0["journal.log"] = try rewrittenJournal(base) { $0.sequence != sealedTwo.sequence }
}, note: "the journal written anew (by the device key) without segment 2's record", problems: [("manifest_not_journaled", [2])], verified: [1, 3])
try storeVector("journaled-manifest-differs", with(base) { $0[manifestName(2)] = try resigned(base, 2) { $0["officer_id"] = .string("O-2") } },
                note: "manifest 2 signed anew (by the device key) with another officer",
                problems: [("journaled_manifest_differs", [2]), ("chain_broken", [2, 3])], verified: [1])
try storeVector("journal-missing", with(base) { $0["journal.log"] = nil }, note: "no journal", problems: [("journal_missing", [])], verified: [1, 2, 3])
try storeVector("journal-unknown-version", with(base) { $0["journal.log"] = Array("bodycam-journal/9\n".utf8) + baseLines.dropFirst().flatMap { $0 + [0x0A] } },
                note: "the journal names a version this reader does not know", problems: [("journal_unreadable", [])], verified: [1, 2, 3])
try storeVector("clock-implausible", try recordStore([Run(segments: threeSegments.map { ($0.wall - 50 * 365 * 86_400 * second, $0.monotonic) })]),
                note: "footage stamped in 1976, which the journal cannot correct", problems: [("clock_implausible", [1, 2, 3])], verified: [1, 2, 3])
try storeVector("clock-backwards", try recordStore([Run(segments: [(dayOne, 10 * second), (dayOne - 60 * second, 11 * second)])]),
                note: "segment 2 is stamped a minute before segment 1 began (no boot id, so the monotonic clock cannot explain it)",
                problems: [("clock_backwards", [1, 2])], verified: [1, 2])
let replacement = try Ed25519PrivateKey(seed: seed("replacement device key"))
try storeVector("device-key-replaced", try recordStore([Run(segments: Array(threeSegments.prefix(2))), Run(segments: [threeSegments[2]], key: replacement)]),
                note: "the second run lost the device key and made a new one, which no certificate vouches for",
                problems: [("device_key_replaced", [3])], verified: [1, 2])
try storeVector("device-key-replaced-certified", with(try recordStore([Run(segments: Array(threeSegments.prefix(2))), Run(segments: [threeSegments[2]], key: replacement)])) {
    $0["device.certificate"] = try DeviceCertificate.issue(deviceID: "BC-0001", deviceKey: replacement.publicKey, authority: authority,
                                                          notBefore: "2026-12-01T09:00:00.000000Z", notAfter: "2031-01-01T00:00:00.000000Z").document.bytes
}, note: "the same, after the authority certified the replacement key", problems: [("device_key_replaced_certified", [3])], verified: [1, 2, 3])
let crashed = try recordStore([Run(segments: Array(threeSegments.prefix(2)), crash: true, partial: true), Run(segments: [])])
try storeVector("recovered", crashed,
                note: "the first run crashed while writing segment 3; the next run recovered its first fragment (its manifest says recovered) and ended cleanly",
                problems: [], verified: [1, 2, 3], uncleanStops: 1)
try storeVector("journal-repaired", try anotherRun(on: with(base) { $0["journal.log"] = Array(base["journal.log"]!.dropLast(10)) }), note: "the final record was cut short by a crash; the next start closed the torn line, journaled its repair and went on: not a problem",
   problems: [], verified: [1, 2, 3], uncleanStops: 1)
try storeVector("boot-account-wrong", with(crashed) { files in
    files["journal.log"] = try rewrittenJournal(crashed, edit: { record, fields in
        if record.kind == "boot" && fields["previous_end"] == .string("unclean") { fields["previous_end"] = .string("shutdown") }
    })
}, note: "the journal written anew (by the device key) with the second boot record saying the run before it ended cleanly, which its last record belies",
   problems: [("journal_broken", [])], verified: [1, 2, 3], uncleanStops: 1)
try storeVector("journal-without-version-line", with(base) { $0["journal.log"] = baseLines.dropFirst().flatMap { $0 + [0x0A] } },
                note: "the journal's version line removed: a problem of line 1, whose record is still read", problems: [("journal_broken", [])], verified: [1, 2, 3])
let fiveSegments = (0..<5).map { (wall: dayOne + Int64($0) * second, monotonic: (10 + Int64($0)) * second) }
let five = try recordStore([Run(segments: fiveSegments)])
try storeVector("two-gaps", with(five) { files in
    for sequence in [2, 4] { files[named(five, ".bcseg", sequence)] = nil; files[named(five, ".manifest", sequence)] = nil }
}, note: "segments 2 and 4 deleted with their manifests: a gap each",
   problems: [("sequence_gap", [2]), ("sequence_gap", [4]), ("journaled_segment_missing", [2]), ("journaled_segment_missing", [4])], verified: [1, 3, 5])
try storeVector("chain-first-link", with(base) { $0[manifestName(1)] = try resigned(base, 1) { $0["previous_manifest_sha256"] = .string(String(repeating: "2", count: 64)) } },
                note: "manifest 1, signed by the device key, names a manifest before it",
                problems: [("chain_broken", [1]), ("chain_broken", [1, 2]), ("journaled_manifest_differs", [1])], verified: [3])
// The journal knows the right clock: footage stamped 1970 on the same boot is corrected, not implausible.
let realMonotonic = Clock.monotonicNanoseconds()
try storeVector("clock-corrected", try recordStore([Run(segments: (0..<3).map { (wall: 5 * second + Int64($0) * second, monotonic: realMonotonic + Int64($0) * second) })],
                                                  bootID: "6b1a9b4e-2f1c-4c57-9d1e-0a7f3c2d5e81"),
                note: "segments stamped 1970 on a boot whose journal records carry the real clock: time_corrections lists them, no finding",
                problems: [], verified: [1, 2, 3])
try storeVector("clock-backwards-same-boot", try recordStore([Run(segments: [(dayOne, 10 * second), (dayOne - 60 * second, 11 * second)])],
                                                            bootID: "6b1a9b4e-2f1c-4c57-9d1e-0a7f3c2d5e81", journalBootID: ""),
                note: "segments of one boot (no boot record names it, so nothing corrects them): segment 2 is stamped a minute before segment 1 though the monotonic clock puts it right after",
                problems: [("clock_backwards", [1, 2])], verified: [1, 2])
// Offload: segment 1 acknowledged by the office and deleted on the device.
let offloaded = try anotherRun(on: base) { vault in
    let ack = try OffloadAcknowledgement.issue(deviceID: "BC-0001", manifests: [try manifest(base, 1)], key: authority)
    _ = try vault.applyOffload(ack.document.bytes, authority: authority.publicKey)
}
try storeVector("offloaded", offloaded, note: "segment 1 deleted under the office's acknowledgement, which the store keeps", problems: [], verified: [2, 3])
try storeVector("offload-unproven", with(offloaded) { files in files.keys.filter { $0.hasSuffix(".ack") }.forEach { files[$0] = nil } },
                note: "the acknowledgement of a journaled offload deleted", problems: [("offload_unproven", [1]), ("segment_missing", [1])], verified: [2, 3])
try storeVector("offload-ack-invalid", with(offloaded) { files in files.keys.filter { $0.hasSuffix(".ack") }.forEach { files[$0]![files[$0]!.count - 10] ^= 1 } },
                note: "the kept acknowledgement altered", problems: [("offload_ack_invalid", []), ("offload_unproven", [1]), ("segment_missing", [1])], verified: [2, 3])
try storeVector("offloaded-file-still-there", with(offloaded) { $0[segmentName(1)] = base[segmentName(1)] },
                note: "an offloaded segment's file put back: it is checked like any other, and is still listed as offloaded", problems: [], verified: [1, 2, 3])
// Offload under an office key the authority certified (docs/FORMAT.md, "Key certificate"): the
// acknowledgement carries the certificate. The office key and its times are fixed.
let officeKey = try Ed25519PrivateKey(seed: seed("office acknowledgement key"))
func officeCertificate(purpose: String = KeyCertificate.offloadAcknowledgement, notAfter: String = "2099-12-31T23:59:59.000000Z") throws -> KeyCertificate {
    try KeyCertificate.issue(holder: "office-1", key: officeKey.publicKey, purpose: purpose, authority: authority,
                             notBefore: "2026-01-01T00:00:00.000000Z", notAfter: notAfter)
}
/// Segment 1 deleted on the device under `certificate`'s acknowledgement, kept and journaled as a
/// device does, whether or not the device should have accepted it (what a verifier must judge).
func offloadedByOffice(_ certificate: KeyCertificate) throws -> [String: [UInt8]] {
    try anotherRun(on: base) { vault in
        let ack = try OffloadAcknowledgement.issue(deviceID: "BC-0001", manifests: [try manifest(base, 1)], key: officeKey, certificate: certificate,
                                                   now: ClockParse.nanoseconds(iso8601: "2026-06-01T00:00:00.000000Z")!)
        try writeFileAtomically(storeWork + "/" + ack.fileName, ack.document.bytes, mode: 0o640)
        let manifest = try manifest(base, 1)
        try vault.journal.append(kind: "segment_offloaded", fields: [
            "sequence": .integer(1), "manifest_sha256": .string(Hex.encode(manifest.sha256)),
            "ack_id": .string(ack.ackID), "ack_sha256": .string(Hex.encode(ack.document.sha256)),
        ])
        unlink(storeWork + "/" + manifest.segmentFile)
    }
}
try storeVector("offloaded-office-key", try offloadedByOffice(try officeCertificate()),
                note: "segment 1 deleted under an acknowledgement signed by an office key the authority certified for offload acknowledgements",
                problems: [], verified: [2, 3])
try storeVector("offload-office-key-other-purpose", try offloadedByOffice(try officeCertificate(purpose: "export-report")),
                note: "the office key that signed the acknowledgement is certified for another purpose",
                problems: [("offload_ack_invalid", []), ("offload_unproven", [1]), ("segment_missing", [1])], verified: [2, 3])
try storeVector("offload-office-key-expired", try offloadedByOffice(try officeCertificate(notAfter: "2026-03-01T00:00:00.000000Z")),
                note: "the office key's certificate ended before the acknowledgement was issued",
                problems: [("offload_ack_invalid", []), ("offload_unproven", [1]), ("segment_missing", [1])], verified: [2, 3])
rmdir(storeWork)

// Tokens: what a device with `supervisor_key` trusted answers to `document` at `now`, having
// used `used_nonces` before: accepted, or refused with the reason it journals.
let supervisor = try Ed25519PrivateKey(seed: seed("supervisor"))
let tokenTime: Int64 = dayOne + 3_600 * second
func tokenVector(_ name: String, _ document: [UInt8], expecting kind: AuthorizationToken.Kind, now: Int64 = tokenTime,
                 usedNonces: [String] = [], note: String, refusal: TokenRefusal?) throws {
    let verifier = TokenVerifier(deviceID: "BC-0001", supervisors: [supervisor.publicKey], usedNonces: Set(usedNonces))
    let nowText = Clock.iso8601(wallNanoseconds: now)
    let outcome = verifier.check(document, expecting: kind, now: nowText)
    guard (try? outcome.get()) == nil ? refusal != nil && outcome == .failure(refusal!) : refusal == nil else {
        writeStandardError("bodycam-vectors: token-\(name): got \(outcome), the vector says \(refusal.map(\.rawValue) ?? "accepted")\n")
        exit(1)
    }
    var fields: [String: JSONValue] = ["kind": .string("token"), "document": b64(document), "supervisor_key": b64(supervisor.publicKey.raw),
                                       "device_id": .string("BC-0001"), "now": .string(nowText), "expecting": .string(kind.rawValue),
                                       "used_nonces": .array(usedNonces.map { .string($0) }), "note": .string(note),
                                       "expect": .string(refusal == nil ? "ok" : "error")]
    if let refusal { fields["refusal"] = .string(refusal.rawValue) }
    try write("token-" + name, fields)
}
/// A stop token's bytes, its body changed by `change` before signing.
func stopToken(key: Ed25519PrivateKey = supervisor, deviceID: String = "BC-0001", change: (inout [String: JSONValue]) -> Void = { _ in }) throws -> [UInt8] {
    let issued = try AuthorizationToken.issue(.stop, deviceID: deviceID, issuer: "Supervisor S", key: key, minutes: 10, now: tokenTime - 60 * second)
    var body = issued.document.body.object!
    change(&body)
    return try SignedDocument.sign(type: AuthorizationToken.Kind.stop.rawValue, body: .object(body), with: key).bytes
}
let stop = try AuthorizationToken.parse(try stopToken())
try tokenVector("stop-ok", stop.document.bytes, expecting: .stop, note: "a stop token inside its validity", refusal: nil)
try tokenVector("stop-at-not-after", stop.document.bytes, expecting: .stop, now: ClockParse.nanoseconds(iso8601: stop.notAfter)!,
                note: "at the last microsecond of its validity (both bounds are included)", refusal: nil)
try tokenVector("stop-expired", stop.document.bytes, expecting: .stop, now: ClockParse.nanoseconds(iso8601: stop.notAfter)! + 1_000,
                note: "one microsecond after its validity", refusal: .expired)
try tokenVector("stop-not-yet-valid", stop.document.bytes, expecting: .stop, now: ClockParse.nanoseconds(iso8601: stop.notBefore)! - 1_000,
                note: "one microsecond before its validity", refusal: .notYetValid)
try tokenVector("stop-replayed", stop.document.bytes, expecting: .stop, usedNonces: [stop.nonce], note: "its nonce was used before", refusal: .replayed)
try tokenVector("stop-wrong-device", try stopToken(deviceID: "BC-0002"), expecting: .stop, note: "issued for another device", refusal: .wrongDevice)
try tokenVector("stop-unknown-signer", try stopToken(key: try Ed25519PrivateKey(seed: seed("stranger supervisor"))), expecting: .stop,
                note: "signed by a key the device does not trust", refusal: .unknownSigner)
try tokenVector("stop-as-duty", stop.document.bytes, expecting: .duty, note: "a stop token offered as a duty token", refusal: .wrongKind)
try tokenVector("stop-time-spelling", try stopToken { $0["not_after"] = .string(String(stop.notAfter.dropLast(8)) + "Z") },
                expecting: .stop, note: "not_after written without its fraction", refusal: .malformed)
try tokenVector("stop-nonce-upper-case", try stopToken { $0["nonce"] = .string(stop.nonce.uppercased()) },
                expecting: .stop, note: "the nonce in upper-case hex", refusal: .malformed)
let duty = try AuthorizationToken.issue(.duty, deviceID: "BC-0001", issuer: "Supervisor S", key: supervisor, minutes: 10, action: "start",
                                        officerID: "O-1", dutyID: "D-1", now: tokenTime - 60 * second)
try tokenVector("duty-ok", duty.document.bytes, expecting: .duty, note: "a duty-start token inside its validity", refusal: nil)

// Clean up the work folder: the vectors are self-contained.
for name in ["journal.log", "device.pub"] + (try directoryEntries(directory)) { unlink(directory + "/" + name) }
rmdir(directory)
print("vectors written to \(folder)")
