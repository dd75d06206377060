import Capture
import Platform
import TestSupport
import Wire
import Foundation
import LibAV
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline
import Export

@Suite("Evidence vault")
struct VaultTests {
    @Test("recorded segments are sealed, chained, journaled, verify clean and decrypt to playable MP4")
    func sealVerifyDecrypt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        let vault = try makeVault(directory.path, keys: keys)
        try recordEvidence(into: vault, frames: 100)
        let segments = try names(directory.path, suffix: ".bcseg")
        #expect(segments.count == 4)
        #expect(try names(directory.path, suffix: ".manifest").count == 4)
        #expect(try names(directory.path, suffix: ".mp4").isEmpty, "no plaintext in the store")

        let report = try StoreVerifier.verify(store: directory.path, authority: keys.authority.publicKey)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.verifiedSequences == [1, 2, 3, 4])
        #expect(report.frames == 100)

        var frames = 0
        for (index, name) in segments.enumerated() {
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + name)))
            let layout = try SealedSegmentLayout(bytes, what: name)
            #expect(layout.isSealed && layout.tornTail == 0 && layout.trailingData == 0)
            // Both recipients can open it, each with its own identity.
            let plain = try layout.decrypt(bytes, identity: keys.office, allowUnsealed: false, what: name)
            #expect(try layout.decrypt(bytes, identity: keys.escrow, allowUnsealed: false, what: name) == plain)
            #expect(throws: EvidenceError.self) { try layout.decrypt(bytes, identity: X25519PrivateKey(), allowUnsealed: false, what: name) }
            let mp4 = directory.path + "/plain-\(index).mp4"
            _ = FileManager.default.createFile(atPath: mp4, contents: Data(plain))
            let inspected = try SegmentInspector.inspect(path: mp4)
            #expect(inspected.problems.isEmpty)
            #expect(inspected.decodedFrames == layout.frames)
            frames += inspected.decodedFrames
        }
        #expect(frames == 100)
        let journal = AuditJournal.parse(try readWholeFile(directory.path + "/journal.log"), key: keys.device.publicKey)
        #expect(journal.problems.isEmpty)
        #expect(journal.records.filter { $0.kind == "segment_sealed" }.count == 4)
    }

    @Test("a restarted vault continues the sequence and the chain")
    func restartContinuesChain() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        try recordEvidence(into: try makeVault(directory.path, keys: keys), frames: 45)
        let again = try makeVault(directory.path, keys: keys)
        #expect(again.nextSequence == 3)
        try recordEvidence(into: again, frames: 45)
        let report = try StoreVerifier.verify(store: directory.path, authority: keys.authority.publicKey)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.verifiedSequences == [1, 2, 3, 4])
    }

    @Test("a vault refuses to record with nobody to seal for")
    func noRecipients() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let vault = try EvidenceVault(configuration: .init(directory: directory.path, deviceID: "X", recipients: [], deviceKey: Ed25519PrivateKey(), provisioned: false))
        #expect(throws: EvidenceError.self) {
            _ = try vault.makeSink(for: SegmentDescriptor(sequence: 1, deviceID: "X", officerID: "", startWallNanoseconds: 0))
        }
        #expect(try names(directory.path, suffix: ".partial").isEmpty)
    }
}
