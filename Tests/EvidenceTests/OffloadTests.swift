import Synchronization
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

@Suite("Offload and storage")
struct OffloadTests {
    func manifests(_ store: String) throws -> [Manifest] {
        try names(store, suffix: ".manifest").map { try Manifest.read(try readWholeFile(store + "/" + $0), what: $0) }.sorted { $0.sequence < $1.sequence }
    }

    @Test("an acknowledgement from the authority deletes exactly the segments it names; the store still verifies")
    func acknowledged() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let acked = Array(try manifests(store).prefix(2))
        let ack = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: acked, key: pristine.keys.authority)
        let result = try vault.applyOffload(ack.document.bytes, authority: pristine.keys.authority.publicKey)
        #expect(result.deleted == [1, 2] && result.refused.isEmpty)
        #expect(try names(store, suffix: ".bcseg").count == 3)
        #expect(try names(store, suffix: ".manifest").count == 5, "manifests stay")
        let report = try StoreVerifier.verify(store: store, authority: pristine.keys.authority.publicKey)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.offloaded == [1, 2] && report.verifiedSequences == [3, 4, 5])
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil)
        #expect(journal.records.filter { $0.kind == "segment_offloaded" }.count == 2)
        // Without the acknowledgement in the store, the deletions are unproven.
        try FileManager.default.removeItem(atPath: store + "/" + ack.fileName)
        let unproven = try StoreVerifier.verify(store: store, authority: pristine.keys.authority.publicKey)
        #expect(Set(unproven.problems.map(\.code)) == ["offload_unproven", "segment_missing"])
    }

    @Test("forged, foreign and mismatched acknowledgements are refused and journaled; nothing is deleted")
    func refused() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let all = try manifests(store)
        let forged = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: all, key: Ed25519PrivateKey())
        #expect(throws: EvidenceError.badSignature(what: "offload acknowledgement \(forged.ackID)")) {
            try vault.applyOffload(forged.document.bytes, authority: pristine.keys.authority.publicKey)
        }
        let foreign = try OffloadAcknowledgement.issue(deviceID: "BC-OTHER", manifests: all, key: pristine.keys.authority)
        #expect(throws: EvidenceError.self) { try vault.applyOffload(foreign.document.bytes, authority: pristine.keys.authority.publicKey) }
        #expect(throws: EvidenceError.self) { try vault.applyOffload(Array("garbage".utf8), authority: pristine.keys.authority.publicKey) }
        // An entry whose hash does not match what the device holds.
        var body = try #require(try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: [all[0]], key: pristine.keys.authority).document.body.object)
        body["segments"] = .array([.object(["sequence": .integer(1), "ciphertext_sha256": .string(String(repeating: "ab", count: 32))])])
        let mismatched = try SignedDocument.sign(type: OffloadAcknowledgement.type, body: .object(body), with: pristine.keys.authority)
        let result = try vault.applyOffload(mismatched.bytes, authority: pristine.keys.authority.publicKey)
        #expect(result.deleted.isEmpty && result.refused.count == 1)
        #expect(try names(store, suffix: ".bcseg").count == 5)
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: pristine.keys.device.publicKey)
        #expect(journal.records.filter { $0.kind == "offload_refused" }.count == 4)
        #expect(journal.problems.isEmpty)
    }

    @Test("the storage monitor reports each change of level once")
    func storageLevels() throws {
        let space = Mutex<Int64>(10_000)
        let monitor = StorageMonitor(path: "/", reserveBytes: 5_000, floorBytes: 1_000, freeBytes: { _ in space.withLock { $0 } })
        #expect(try monitor.check() == nil)
        space.withLock { $0 = 4_000 }
        #expect(try monitor.check().map { $0.level } == .low)
        #expect(try monitor.check() == nil)
        space.withLock { $0 = 999 }
        #expect(try monitor.check().map { $0.level } == .critical)
        space.withLock { $0 = 6_000 }
        #expect(try monitor.check().map { $0.level } == .ok)
        let real = StorageMonitor(path: NSTemporaryDirectory(), reserveBytes: 2, floorBytes: 1)
        #expect(try real.check() == nil, "any real disk has more than two bytes free")
    }
}
