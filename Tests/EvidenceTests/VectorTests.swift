import Capture
import LibAV
import Pipeline
import Platform
import TestSupport
import Wire
import Foundation
import LibCrypto
import Testing
import Tokens
@testable import Evidence

/// Every file in docs/vectors, as a second implementation would use them.
@Suite("docs/FORMAT.md test vectors")
struct VectorTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/vectors").path

    static var names: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()) ?? []
    }

    @Test("the vectors are there")
    func present() {
        #expect(Self.names.count >= 60)
        #expect(Set(Self.names.compactMap { try? vector($0)["kind"]?.string }) == ["canonical_json", "signed_document", "segment", "journal", "store", "token"])
    }

    /// Every finding code in docs/FORMAT.md's table has a store vector, and the vectors use no
    /// other; except `segment_unreadable`, a segment that is a link or a device (a vector holds
    /// regular files only; HostileStoreTests has it).
    @Test("every finding code has a store vector")
    func everyCode() throws {
        let covered = Set(try Self.names.map { try vector($0) }.filter { $0["kind"]?.string == "store" }
            .flatMap { $0["problems"]?.array ?? [] }.compactMap { $0["code"]?.string })
        let format = try String(contentsOfFile: Self.folder + "/../FORMAT.md", encoding: .utf8)
        let findings = format.components(separatedBy: "| code | severity | raised when |")
        try #require(findings.count == 2, "FORMAT.md has one findings table")
        let table = findings[1].components(separatedBy: "\n\n")[0]
        let documented = Set(table.split(separator: "\n").filter { $0.hasPrefix("| `") }.flatMap { row in
            row.split(separator: "|")[0].split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        })
        #expect(documented.count >= 35)
        #expect(covered.subtracting(documented).isEmpty, "codes FORMAT.md does not list")
        #expect(documented.subtracting(covered) == ["segment_unreadable"], "codes without a vector")
    }

    func vector(_ name: String) throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name))).dropLast(1).map { $0 })
    }

    func bytes(_ value: JSONValue?) throws -> [UInt8] { try #require(value?.string.flatMap(Base64.decode)) }

    @Test("each vector gives the expected answer", arguments: Self.names)
    func check(name: String) throws {
        let vector = try vector(name)
        let expectError = vector["expect"]?.string == "error"
        switch vector["kind"]?.string {
        case "canonical_json":
            let input = try #require(vector["input"]?.string)
            if expectError {
                #expect(throws: JSONError.self) { try JSONParser.parse(input) }
            } else {
                #expect(try JSONParser.parse(input).canonicalString == vector["canonical"]?.string)
            }
        case "signed_document":
            let key = try Ed25519PublicKey(raw: try bytes(vector["public_key"]))
            let type = try #require(vector["type"]?.string)
            let outcome = Result { try SignedDocument.parse(try bytes(vector["document"]), expectedType: type, what: name) }
            if expectError {
                #expect((try? outcome.get())?.isSigned(by: key) != true)
            } else {
                let document = try outcome.get()
                #expect(document.isSigned(by: key))
                #expect(document.body == vector["body"])
                #expect(key.keyID == vector["key_id"]?.string)
            }
        case "segment":
            let identity = try X25519PrivateKey(raw: SecretBytes(try bytes(vector["identity"])))
            let file = try bytes(vector["file"])
            let allowUnsealed = vector["allow_unsealed"]?.boolean ?? false
            let outcome = Result { try SealedSegmentLayout(file, what: name).decryptChunks(file, identity: identity, allowUnsealed: allowUnsealed, what: name) }
            if expectError {
                #expect(throws: EvidenceError.self, "\(vector["note"]?.string ?? name)") { try outcome.get() }
            } else {
                let expected = try #require(vector["plaintext_chunks"]?.array).map { try bytes($0) }
                #expect(try outcome.get() == expected)
            }
        case "journal":
            let key = try Ed25519PublicKey(raw: try bytes(vector["public_key"]))
            let parsed = AuditJournal.parse(try bytes(vector["journal"]), key: key)
            if expectError {
                #expect(!parsed.problems.isEmpty)
            } else {
                #expect(parsed.problems.isEmpty)
                #expect(Int64(parsed.records.count) == vector["records"]?.integer)
            }
        case "store":
            let directory = try TemporaryDirectory()
            defer { directory.cleanup() }
            for (file, value) in try #require(vector["files"]?.object) {
                #expect(FileManager.default.createFile(atPath: directory.path + "/" + file, contents: Data(try bytes(value))))
            }
            let authority = try vector["authority_key"].map { try Ed25519PublicKey(raw: try bytes($0)) }
            let head = vector["journal_head"].map { JournalHead(records: $0["records"]?.integer ?? 0, sha256: $0["sha256"]?.string ?? "") }
            let report = try StoreVerifier.verify(store: directory.path, authority: authority, journalHead: head)
            func key(_ code: String?, _ severity: String?, _ sequences: [Int64]) -> String {
                "\(code ?? "?") \(severity ?? "?") \(sequences.map(String.init).joined(separator: ","))"
            }
            let expected = try #require(vector["problems"]?.array).map { key($0["code"]?.string, $0["severity"]?.string, $0["sequences"]?.array?.compactMap(\.integer) ?? []) }
            #expect(report.problems.map { key($0.code, $0.severity, $0.sequences) }.sorted() == expected.sorted(), "\(vector["note"]?.string ?? name)")
            #expect(report.verifiedSequences == vector["verified_sequences"]?.array?.compactMap(\.integer))
            #expect(Int64(report.uncleanStops.count) == vector["unclean_stops"]?.integer)
            #expect(report.timeCorrections.map(\.sequence) == (vector["time_corrections"]?.array ?? []).compactMap(\.integer))
            #expect(report.isClean == !expectError)
        case "token":
            let verifier = TokenVerifier(deviceID: try #require(vector["device_id"]?.string),
                                         supervisors: [try Ed25519PublicKey(raw: try bytes(vector["supervisor_key"]))],
                                         usedNonces: Set(try #require(vector["used_nonces"]?.array).compactMap(\.string)))
            let expecting = try #require(vector["expecting"]?.string), now = try #require(vector["now"]?.string)
            let kind = try #require(AuthorizationToken.Kind(rawValue: expecting))
            let outcome = verifier.check(try bytes(vector["document"]), expecting: kind, now: now)
            switch outcome {
            case .success: #expect(!expectError, "\(vector["note"]?.string ?? name)")
            case .failure(let refusal): #expect(expectError && refusal.rawValue == vector["refusal"]?.string, "\(vector["note"]?.string ?? name): \(refusal)")
            }
        default:
            Issue.record("\(name): unknown kind")
        }
    }
}
