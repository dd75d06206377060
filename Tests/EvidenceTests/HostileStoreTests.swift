import Foundation
import Glibc
import LibCrypto
import Pipeline
import Platform
import TestSupport
import Testing
import Wire
@testable import Evidence

/// Stores whose contents were made to crash or hang a reader: verification reports each as a
/// finding and goes on; the vault sets impossible files aside and records.
@Suite("Hostile stores: findings, never a crash or a hang")
struct HostileStoreTests {
    static func file(_ store: String, _ suffix: String, _ index: Int) throws -> String {
        store + "/" + (try names(store, suffix: suffix))[index]
    }

    /// The manifest at `index`, its body changed by `change` and signed again with the device's
    /// own key: only range and name checks can catch it.
    static func resign(_ store: String, index: Int, _ change: (inout [String: JSONValue]) -> Void) throws {
        let path = try file(store, ".manifest", index)
        let document = try SignedDocument.parse(try readWholeFile(path), expectedType: Manifest.type, what: path)
        guard case .object(var members) = document.body else { Issue.record("manifest body"); return }
        change(&members)
        let signed = try SignedDocument.sign(type: Manifest.type, body: .object(members), with: Pristine.shared.keys.device)
        try Data(signed.bytes).write(to: URL(fileURLWithPath: path))
    }

    static func verify(_ store: String) throws -> VerificationReport {
        try StoreVerifier.verify(store: store, authority: Pristine.shared.keys.authority.publicKey)
    }

    enum Damage: String, CaseIterable, CustomStringConvertible {
        case journalIsDevZero, segmentIsDevZero, segmentIsFIFO, danglingManifest, directoryNamedLikeSegment,
             sequenceTrillion, sequenceMinimum, sequenceMaximum, segmentFileTraversal, negativeBytes
        var description: String { rawValue }
    }

    func apply(_ damage: Damage, to store: String) throws {
        switch damage {
        case .journalIsDevZero:
            unlink(store + "/journal.log")
            #expect(symlink("/dev/zero", store + "/journal.log") == 0)
        case .segmentIsDevZero:
            let path = try Self.file(store, ".bcseg", 1)
            unlink(path)
            #expect(symlink("/dev/zero", path) == 0)
        case .segmentIsFIFO:
            let path = try Self.file(store, ".bcseg", 1)
            unlink(path)
            #expect(mkfifo(path, 0o600) == 0)
        case .danglingManifest:
            #expect(symlink(store + "/nowhere", store + "/seg-000009-20991231T000000Z.manifest") == 0)
        case .directoryNamedLikeSegment:
            #expect(mkdir(store + "/seg-000009-20991231T000000Z.bcseg", 0o700) == 0)
        case .sequenceTrillion:
            try Self.resign(store, index: 1) { $0["sequence"] = .integer(1_000_000_000_000) }
        case .sequenceMinimum:
            try Self.resign(store, index: 1) { $0["sequence"] = .integer(Int64.min) }
        case .sequenceMaximum:
            try Self.resign(store, index: 1) { $0["sequence"] = .integer(Int64.max) }
        case .segmentFileTraversal:
            try Self.resign(store, index: 1) { $0["segment_file"] = .string("../../outside.bcseg") }
        case .negativeBytes:
            try Self.resign(store, index: 1) { $0["ciphertext_bytes"] = .integer(-1) }
        }
    }

    func expected(_ damage: Damage) -> String {
        switch damage {
        case .journalIsDevZero: return "journal_unreadable"
        case .segmentIsDevZero, .segmentIsFIFO: return "segment_unreadable"
        case .danglingManifest: return "manifest_malformed"
        case .directoryNamedLikeSegment: return "segment_without_manifest"
        case .sequenceTrillion, .sequenceMinimum, .sequenceMaximum, .segmentFileTraversal, .negativeBytes: return "manifest_malformed"
        }
    }

    @Test("verify reports the damage by name and checks everything else", arguments: Damage.allCases)
    func verifyGoesOn(damage: Damage) throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        try apply(damage, to: store)
        let report = try Self.verify(store)
        #expect(report.problems.contains { $0.code == expected(damage) }, "\(damage): \(report.problems.map { "\($0.code): \($0.message)" })")
        // The segments the damage did not touch still verify (the journal's loss breaks none).
        #expect(report.verifiedSequences.contains(1) && report.verifiedSequences.contains(5), "\(damage): \(report.verifiedSequences)")
    }

    @Test("a gap of a trillion sequences is one finding with a bounded list, not a trillion numbers")
    func hugeGap() throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let last = Int64(SegmentName.maximumSequence)
        try Self.resign(store, index: 4) {
            $0["sequence"] = .integer(last)
            $0["segment_file"] = .string("seg-\(last)-20991231T000000Z.bcseg")
        }
        let report = try Self.verify(store)
        let gap = try #require(report.problems.first { $0.code == "sequence_gap" })
        #expect(gap.sequences.count == VerificationProblem.maximumListed && gap.message.contains("(999999999994)"), "\(gap.message)")
    }

    /// A copy of the pristine store's segment `index` made a leftover of a crash: its manifest
    /// removed, the file renamed .partial, its bytes changed by `change`.
    static func partial(_ store: String, index: Int, _ change: (inout [UInt8]) -> Void = { _ in }) throws -> String {
        let segment = try file(store, ".bcseg", index)
        unlink(String(segment.dropLast(".bcseg".count)) + ".manifest")
        var bytes = try readWholeFile(segment)
        change(&bytes)
        unlink(segment)
        try Data(bytes).write(to: URL(fileURLWithPath: segment + ".partial"))
        return segment
    }

    /// A segment file's header replaced (kept canonical, length updated), chunks kept.
    static func replaceHeader(_ bytes: inout [UInt8], _ change: (inout [String: JSONValue]) -> Void) {
        let version = SealedSegmentFormat.versionLine.count
        let length = Int(bytes[version]) << 24 | Int(bytes[version + 1]) << 16 | Int(bytes[version + 2]) << 8 | Int(bytes[version + 3])
        guard case .object(var header)? = try? JSONParser.parse(Array(bytes[(version + 4)..<(version + 4 + length)])) else { return }
        change(&header)
        let json = JSONValue.object(header).canonical
        let count = UInt32(json.count)
        bytes = Array(bytes[0..<version]) + [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
            + json + Array(bytes[(version + 4 + length)...])
    }

    @Test("recovery: impossible leftovers are set aside (renamed, journaled, never deleted); chunk counts that would overflow saturate; recording goes on")
    func recoverySetsAside() throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        // Ticks 0xFFFFFFFF in every chunk header: recovered, with a bounded duration.
        _ = try Self.partial(store, index: 0) { bytes in
            let layout = try! SealedSegmentLayout(bytes, what: "s")
            for chunk in layout.chunks { for offset in 8..<12 { bytes[chunk.offset + offset] = 0xFF } }
        }
        // A header claiming sequence −1, and one starting near the end of time.
        // (Each leftover made leaves one sealed segment fewer: index 0 is the next one.)
        _ = try Self.partial(store, index: 0) { Self.replaceHeader(&$0) { $0["sequence"] = .integer(-1) } }
        _ = try Self.partial(store, index: 0) { Self.replaceHeader(&$0) { $0["start_monotonic_ns"] = .integer(Int64.max - 5) } }
        // A start in the year 9999, beyond what nanoseconds since 1970 hold in Int64.
        _ = try Self.partial(store, index: 0) { Self.replaceHeader(&$0) { $0["created_utc"] = .string("9999-12-31T23:59:59.000000Z") } }
        // A sealed segment that lost its manifest and a leftover .partial of the same name:
        // neither replaces the other.
        let twin = try Self.file(store, ".bcseg", 0)
        try FileManager.default.copyItem(atPath: twin, toPath: twin + ".partial")
        unlink(String(twin.dropLast(".bcseg".count)) + ".manifest")
        // Not files at all.
        #expect(symlink("/dev/zero", store + "/seg-000007-20991231T000000Z.bcseg.partial") == 0)
        #expect(mkdir(store + "/seg-000008-20991231T000000Z.bcseg.partial", 0o700) == 0)

        let keys = Pristine.shared.keys
        let vault = try EvidenceVault(configuration: .init(directory: store, deviceID: "BC-EV-1", recipients: [keys.office.publicKey],
                                                           deviceKey: keys.device, provisioned: true))
        let recovery = try vault.recover()
        #expect(recovery.recovered.count == 2, "the ticks one and the twin")
        #expect(recovery.setAside.count == 6, "\(recovery.setAside) recovered \(recovery.recovered)")
        #expect(FileManager.default.fileExists(atPath: twin), "the sealed twin is kept as it was")
        #expect(recovery.setAside.allSatisfy { $0.hasSuffix(".damaged") })
        for name in recovery.setAside { #expect(FileManager.default.fileExists(atPath: store + "/" + name) || (try? FileManager.default.destinationOfSymbolicLink(atPath: store + "/" + name)) != nil) }
        let recovered = try Manifest.read(try readWholeFile(store + "/" + recovery.recovered[0].dropLast(".bcseg".count) + ".manifest"), what: "m")
        #expect(recovered.durationMicroseconds <= SealedSegmentFormat.maximumNanoseconds / 1_000)
        // A second start finds nothing more to do, and recording goes on after it.
        #expect(try vault.recover() == EvidenceVault.Recovery())
        try recordEvidence(into: vault, frames: 40)
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: keys.device.publicKey)
        #expect(journal.records.filter { $0.kind == "segment_set_aside" }.count == 6)
        #expect(journal.problems.isEmpty)
        let report = try Self.verify(store)
        #expect(report.problems.contains { $0.code == "segment_set_aside" }, "the evidence officer is told")
    }
}
