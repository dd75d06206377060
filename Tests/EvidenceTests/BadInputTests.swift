import Capture
import LibAV
import Platform
import TestSupport
import Wire
import Foundation
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline

@Suite("Bad input gets a clear error, never a crash")
struct BadInputTests {
    @Test("random bytes, empty files and absurd lengths as segments are named, not fatal")
    func segments() throws {
        var generator = SystemRandomNumberGenerator()
        for count in [0, 5, 17, 100, 5000] {
            let garbage = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: EvidenceError.self) { try SealedSegmentLayout(garbage, what: "garbage") }
        }
        var absurd = SealedSegmentFormat.versionLine
        absurd.appendBigEndian(UInt32.max)
        #expect { try SealedSegmentLayout(absurd + [1, 2, 3], what: "absurd") } throws: {
            "\($0)".contains("header length 4294967295 is out of range")
        }
        // A real header followed by a chunk claiming 4 GiB: the walk stops, nothing is trusted.
        let store = Pristine.shared.store
        let name = try names(store, suffix: ".bcseg")[0]
        let real = try SealedSegmentLayout(try readWholeFile(store + "/" + name), what: name)
        var forged = real.headerBytes
        forged.appendBigEndian(UInt32.max)
        forged += [UInt8](repeating: 0, count: 64)
        let layout = try SealedSegmentLayout(forged, what: "forged")
        #expect(layout.chunks.isEmpty && layout.tornTail == 68 && !layout.isSealed)
        #expect(throws: EvidenceError.self) {
            try layout.decrypt(forged, identity: Pristine.shared.keys.office, allowUnsealed: false, what: "forged")
        }
    }

    @Test("a store of junk verifies with named problems")
    func junkStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path
        try KeyFile.write(try Ed25519PrivateKey().publicKey, to: path + "/device.pub")
        _ = FileManager.default.createFile(atPath: path + "/seg-000001-x.manifest", contents: Data("bodycam-manifest/1\n{}\nAAAA\n".utf8))
        _ = FileManager.default.createFile(atPath: path + "/seg-000002-x.manifest", contents: Data())
        _ = FileManager.default.createFile(atPath: path + "/seg-000001-x.bcseg", contents: Data(try randomBytes(300)))
        _ = FileManager.default.createFile(atPath: path + "/journal.log", contents: Data("not a journal\n".utf8))
        let report = try StoreVerifier.verify(store: path, authority: nil)
        let codes = Set(report.problems.map(\.code))
        #expect(codes.isSuperset(of: ["manifest_malformed", "segment_without_manifest", "journal_broken"]), "\(report.problems)")
        #expect(throws: SystemError.self) { try StoreVerifier.verify(store: path + "/none", authority: nil) }
    }

    @Test("key files: missing, wrong type, wrong length")
    func keyFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        #expect { try KeyFile.readIdentity(directory.path + "/none.key") } throws: { "\($0)".contains("none.key") }
        try KeyFile.write(try X25519PrivateKey().publicKey, to: directory.path + "/office.pub")
        #expect { try KeyFile.readVerifyingKey(directory.path + "/office.pub") } throws: {
            "\($0)".contains("holds a bodycam-x25519-public/1 key, expected bodycam-ed25519-public/1")
        }
        _ = FileManager.default.createFile(atPath: directory.path + "/short.pub", contents: Data("bodycam-x25519-public/1 AAAA\n".utf8))
        #expect { try KeyFile.readRecipient(directory.path + "/short.pub") } throws: { "\($0)".contains("not 32 bytes") }
        let secret = try Ed25519PrivateKey()
        try KeyFile.write(secret, to: directory.path + "/device.key")
        let mode = try FileManager.default.attributesOfItem(atPath: directory.path + "/device.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(throws: SystemError.self) { try KeyFile.write(secret, to: directory.path + "/device.key") }
    }

    @Test("signed documents refuse extra lines, other types, non-canonical bodies and bad signatures")
    func signedDocuments() throws {
        let key = try Ed25519PrivateKey()
        let document = try SignedDocument.sign(type: "bodycam-test/1", body: .object(["a": .integer(1)]), with: key)
        let parsed = try SignedDocument.parse(document.bytes, expectedType: "bodycam-test/1", what: "doc")
        #expect(parsed.isSigned(by: key.publicKey))
        #expect(!parsed.isSigned(by: try Ed25519PrivateKey().publicKey))
        #expect(throws: EvidenceError.self) { try SignedDocument.parse(document.bytes + [0x0A], expectedType: "bodycam-test/1", what: "doc") }
        #expect(throws: EvidenceError.self) { try SignedDocument.parse(document.bytes, expectedType: "bodycam-other/1", what: "doc") }
        let spaced = Array("bodycam-test/1\n{\"a\": 1}\n".utf8) + Array(document.bytes.split(separator: 0x0A)[2]) + [0x0A]
        #expect { try SignedDocument.parse(spaced, expectedType: "bodycam-test/1", what: "doc") } throws: { "\($0)".contains("canonical") }
    }

    @Test("the JSON reader is strict")
    func json() throws {
        for bad in ["", "{", "{\"a\":1,\"a\":2}", "1.5", "1e3", "[1,]", "{\"a\":1} x", "\"\u{01}\"", String(repeating: "[", count: 40) + String(repeating: "]", count: 40)] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
        let value = try JSONParser.parse(#"{"b":[true,false,null,-7],"a":"x\"\\\n\u00e9"}"#)
        #expect(value.canonicalString == #"{"a":"x\"\\\né","b":[true,false,null,-7]}"#)
        #expect(try JSONParser.parse(value.canonical) == value)
        // Depth: each object or array is a level; 32 are allowed, 33 are not.
        #expect(try JSONParser.parse(String(repeating: "[", count: 32) + String(repeating: "]", count: 32)).canonical.count == 64)
        #expect(throws: JSONError.self) { try JSONParser.parse(String(repeating: "[", count: 33) + String(repeating: "]", count: 33)) }
        // Surrogates: a pair is one character, a lone one (escaped, or as raw bytes) is refused.
        #expect(try JSONParser.parse(#""\ud83d\ude00""#).canonicalString == "\"\u{1F600}\"")
        for bad in [#""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\u+041""#, #""\u004""#] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0xBD, 0x22]) }
        // Member names: printable ASCII, once each, compared after unescaping.
        #expect(throws: JSONError.self) { try JSONParser.parse(#"{"\u00e9":1}"#) }
        #expect(throws: JSONError.self) { try JSONParser.parse(#"{"a":1,"\u0061":2}"#) }
    }

    @Test("times and hex have one spelling: no other is read as evidence")
    func canonicalSpellings() throws {
        #expect(ClockParse.nanoseconds(iso8601: "2026-11-29T03:10:16.250000Z") == 1_795_921_816_250_000_000)
        for bad in ["2026-11-29T03:10:16Z", "2026-11-29T03:10:16.250000+00:00", "2026-11-29 03:10:16.250000Z", "2026-11-29T03:10:16,250000Z",
                    "2026-11-29T03:10:16.25000Z0", "+026-11-29T03:10:16.250000Z", "2026-02-30T00:00:00.000000Z", "2026-11-29T24:00:00.000000Z",
                    "2026-12-31T23:59:60.000000Z", "2026-11-29t03:10:16.250000z", "2026-1-029T03:10:16.250000Z"] {
            #expect(ClockParse.nanoseconds(iso8601: bad) == nil, "\(bad)")
        }
        // A manifest with an upper-case hash or a time in another spelling is malformed.
        let key = try Ed25519PrivateKey()
        let store = Pristine.shared.store
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".manifest") }.sorted().first)
        let manifest = try Manifest.read(try readWholeFile(store + "/" + name), what: name)
        for (member, value) in [("ciphertext_sha256", JSONValue.string(manifest.ciphertextSHA256.uppercased())),
                                ("start_utc", .string(String(manifest.startUTC.dropLast(8)) + "Z"))] {
            var body = try #require(manifest.document.body.object)
            body[member] = value
            let document = try SignedDocument.sign(type: Manifest.type, body: .object(body), with: key)
            #expect(throws: EvidenceError.self, "\(member)") { try Manifest(document: document) }
        }
        var body = try #require(manifest.document.body.object)
        body["end_utc"] = .string(manifest.endUTC)
        #expect(try Manifest(document: try SignedDocument.sign(type: Manifest.type, body: .object(body), with: key)).endUTC == manifest.endUTC)
    }


    @Test("base64 and hex accept only their canonical spelling")
    func encodings() {
        for length in 0..<10 {
            let bytes = (0..<length).map { UInt8($0 * 37 & 255) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.decode("Zm9vYg==") == Array("foob".utf8))
        #expect(Base64.decode("Zm9vYh==") == nil, "non-zero padding bits")
        #expect(Base64.decode("Zm9v YmFy") == nil)
        #expect(Hex.decode("ABCD") == nil && Hex.decode("abc") == nil)
    }
}
