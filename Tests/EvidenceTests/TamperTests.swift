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

/// A clean store made once; every case tampers with its own copy.
enum Tamper: String, CaseIterable, CustomStringConvertible {
    case deleteMiddleSegment, deleteNewestSegmentAndManifest, deleteManifestOnly, swapSegmentNames, replayOldSegment,
         flipPayloadByte, flipHeaderByte, flipManifestByte, flipJournalByte, truncateSegment, truncateJournal,
         appendGarbage, foreignSegment, resignManifest, changeMark
    var description: String { rawValue }
}

@Suite("Tamper matrix: every change is detected and named")
struct TamperTests {
    func file(_ store: String, _ suffix: String, _ index: Int) throws -> String {
        store + "/" + (try names(store, suffix: suffix))[index]
    }

    func flip(_ path: String, at offset: (Int) -> Int) throws {
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset(bytes.count)] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func apply(_ tamper: Tamper, to store: String) throws {
        let fm = FileManager.default
        switch tamper {
        case .deleteMiddleSegment:
            try fm.removeItem(atPath: try file(store, ".bcseg", 2))
        case .deleteNewestSegmentAndManifest:
            try fm.removeItem(atPath: try file(store, ".bcseg", 4))
            try fm.removeItem(atPath: try file(store, ".manifest", 4))
        case .deleteManifestOnly:
            try fm.removeItem(atPath: try file(store, ".manifest", 1))
        case .swapSegmentNames:
            let a = try file(store, ".bcseg", 1), b = try file(store, ".bcseg", 2)
            try fm.moveItem(atPath: a, toPath: a + ".swap")
            try fm.moveItem(atPath: b, toPath: a)
            try fm.moveItem(atPath: a + ".swap", toPath: b)
        case .replayOldSegment:
            // Segment 1 and its manifest again, under the name of a new segment.
            try fm.copyItem(atPath: try file(store, ".bcseg", 0), toPath: store + "/seg-000006-20991231T000000Z.bcseg")
            try fm.copyItem(atPath: try file(store, ".manifest", 0), toPath: store + "/seg-000006-20991231T000000Z.manifest")
        case .flipPayloadByte:
            try flip(try file(store, ".bcseg", 2)) { $0 - 40 }
        case .flipHeaderByte:
            try flip(try file(store, ".bcseg", 2)) { _ in 60 }
        case .flipManifestByte:
            try flip(try file(store, ".manifest", 2)) { _ in 100 }
        case .flipJournalByte:
            try flip(store + "/journal.log") { $0 / 2 }
        case .truncateSegment:
            let path = try file(store, ".bcseg", 3)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(try fm.attributesOfItem(atPath: path)[.size] as! Int) / 2)
            try handle.close()
        case .truncateJournal:
            let path = store + "/journal.log"
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(try fm.attributesOfItem(atPath: path)[.size] as! Int) * 2 / 3)
            try handle.close()
        case .appendGarbage:
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: try file(store, ".bcseg", 1)))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(repeating: 0x5A, count: 100))
            try handle.close()
        case .foreignSegment:
            // A segment and manifest made by another device, with its own key, put in the store.
            let other = try TemporaryDirectory()
            defer { other.cleanup() }
            try recordEvidence(into: try makeVault(other.path, keys: Keys(), deviceID: "BC-OTHER"), frames: 30, deviceID: "BC-OTHER")
            try fm.copyItem(atPath: try file(other.path, ".bcseg", 0), toPath: store + "/seg-000006-20991231T000001Z.bcseg")
            try fm.copyItem(atPath: try file(other.path, ".manifest", 0), toPath: store + "/seg-000006-20991231T000001Z.manifest")
        case .resignManifest:
            let path = try file(store, ".manifest", 2)
            let manifest = try Manifest.read(try readWholeFile(path), what: path)
            let forged = try SignedDocument.sign(type: Manifest.type, body: manifest.document.body, with: Ed25519PrivateKey())
            try Data(forged.bytes).write(to: URL(fileURLWithPath: path))
        case .changeMark:
            let path = try file(store, ".manifest", 2)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try text.replacingOccurrences(of: "\"marks\":[]", with: "\"marks\":[{\"label\":\"planted\",\"utc\":\"2026-01-01T00:00:00.000000Z\"}]")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// The problem codes each change must produce (others may come with them); where a flipped
    /// byte may land in the JSON or in the signature, either name is right.
    func expected(_ tamper: Tamper) -> [Set<String>] {
        switch tamper {
        case .flipManifestByte: return [["manifest_bad_signature"], ["manifest_malformed"]]
        case .flipJournalByte: return [["journal_bad_signature"], ["journal_broken"]]
        default: return [single(tamper)]
        }
    }

    func single(_ tamper: Tamper) -> Set<String> {
        switch tamper {
        case .deleteMiddleSegment: return ["segment_missing"]
        case .deleteNewestSegmentAndManifest: return ["journaled_segment_missing"]
        case .deleteManifestOnly: return ["segment_without_manifest", "sequence_gap", "journaled_segment_missing"]
        case .swapSegmentNames: return ["ciphertext_mismatch", "segment_header_mismatch"]
        case .replayOldSegment: return ["duplicate_sequence", "replayed_segment"]
        case .flipPayloadByte, .flipHeaderByte: return ["ciphertext_mismatch"]
        case .flipManifestByte: return ["manifest_bad_signature"]
        case .flipJournalByte: return ["journal_bad_signature"]
        case .truncateSegment: return ["ciphertext_mismatch"]
        case .truncateJournal: return ["journal_truncated"]
        case .appendGarbage: return ["ciphertext_mismatch"]
        case .foreignSegment: return ["manifest_bad_signature"]
        case .resignManifest, .changeMark: return ["manifest_bad_signature"]
        }
    }

    @Test("the untouched store verifies clean")
    func pristineIsClean() throws {
        let report = try StoreVerifier.verify(store: Pristine.shared.store, authority: Pristine.shared.keys.authority.publicKey)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.verifiedSequences == [1, 2, 3, 4, 5])
    }

    @Test("detected and named", arguments: Tamper.allCases)
    func detected(tamper: Tamper) throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        try apply(tamper, to: store)
        let report = try StoreVerifier.verify(store: store, authority: Pristine.shared.keys.authority.publicKey)
        let codes = Set(report.problems.map(\.code))
        #expect(!report.isClean)
        #expect(expected(tamper).contains { $0.isSubset(of: codes) }, "\(tamper): got \(report.problems.map { "\($0.code): \($0.message)" })")
        // Segments the change did not touch still verify.
        #expect(!report.verifiedSequences.isEmpty || tamper == .flipJournalByte || tamper == .truncateJournal)
    }

    @Test("a wrong authority is reported, and so is a store without a certificate")
    func authority() throws {
        let wrong = try StoreVerifier.verify(store: Pristine.shared.store, authority: Ed25519PrivateKey().publicKey)
        #expect(wrong.problems.map(\.code) == ["certificate_invalid"])
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        try FileManager.default.removeItem(atPath: store + "/device.certificate")
        let report = try StoreVerifier.verify(store: store, authority: Pristine.shared.keys.authority.publicKey)
        #expect(report.problems.map(\.code) == ["unprovisioned"])
        #expect(try StoreVerifier.verify(store: store, authority: nil).isClean, "without an authority, device.pub is used")
    }
}
