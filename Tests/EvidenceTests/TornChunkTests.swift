import Capture
import Foundation
import Glibc
import LibAV
import LibCrypto
import Pipeline
import Platform
import TestSupport
import Testing
@testable import Evidence
import Export

/// A power cut that left a chunk's header on the disk but its payload as zeros (the page with the
/// header was written back, the next ones were not): recovery, which has no key, must not count
/// that chunk as complete, and export must keep every authentic chunk before it.
@Suite("Torn chunks: recovery and export keep every authentic chunk")
struct TornChunkTests {
    @Test("the open segment's last fragment zero-filled by a cut: recovery ends the segment before it, export keeps the rest; a store recovered without that check still exports its authentic chunks")
    func zeroFilledChunk() throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let keys = Pristine.shared.keys
        // The first segment: its MP4 header, two half-second fragments (it opened with nothing
        // buffered), its last chunk. As the power went: the last chunk never written, the second
        // fragment's header on disk and its payload zeros; no manifest, no journal record yet.
        let name = try names(store, suffix: ".bcseg")[0]
        let base = String(name.dropLast(".bcseg".count))
        var bytes = try readWholeFile(store + "/" + name)
        let sealed = try SealedSegmentLayout(bytes, what: name)
        try #require(sealed.chunks.count == 4 && sealed.chunks.map(\.frames) == [0, 15, 15, 0], "\(sealed.chunks.map(\.frames))")
        let torn = sealed.chunks[2]
        bytes = Array(bytes[..<(torn.offset + SealedSegmentFormat.chunkHeaderSize + torn.sealedLength)])
        for index in (torn.offset + SealedSegmentFormat.chunkHeaderSize)..<bytes.count { bytes[index] = 0 }
        unlink(store + "/" + name)
        unlink(store + "/" + base + ".manifest")
        try writeFileAtomically(store + "/" + name + ".partial", bytes, mode: 0o640, exclusive: true)

        // Without the key, a layout read as verify and older recoveries read it counts the zeros
        // as a complete chunk: export still keeps the authentic ones and reports the torn one.
        let lenient = try SealedSegmentLayout(bytes, what: name)
        #expect(lenient.chunks.count == 3 && lenient.frames == 30)
        let kept = try lenient.decryptAuthenticPrefix(bytes, identity: keys.office, what: name)
        #expect(kept.lostChunks == 1)
        #expect(throws: EvidenceError.self) { try lenient.decrypt(bytes, identity: keys.office, allowUnsealed: true, what: name) }

        // Recovery sees the zero-filled payload and ends the segment before it.
        let vault = try EvidenceVault(configuration: .init(directory: store, deviceID: "BC-EV-1", recipients: [keys.office.publicKey],
                                                           deviceKey: keys.device, provisioned: true))
        #expect(try vault.recover().recovered == [name])
        let manifest = try Manifest.read(try readWholeFile(store + "/" + base + ".manifest"), what: base)
        #expect(manifest.recovered && manifest.chunks == 2 && manifest.frames == 15, "\(manifest.chunks) chunks, \(manifest.frames) frames")
        #expect(manifest.document.body["torn_tail_bytes"]?.integer == Int64(SealedSegmentFormat.chunkHeaderSize + torn.sealedLength))
        let recovered = try SealedSegmentLayout(bytes, what: name, zeroFilledIsTorn: true)
        let part = try recovered.decryptAuthenticPrefix(bytes, identity: keys.office, what: name)
        #expect(part.lostChunks == 0 && part.plaintext == kept.plaintext)
        // What is kept plays: the header and the first half second.
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try writeFileAtomically(directory.path + "/kept.mp4", part.plaintext, mode: 0o640, exclusive: true)
        _ = quietLibAV
        let inspected = try SegmentInspector.inspect(path: directory.path + "/kept.mp4")
        #expect(inspected.decodedFrames == 15, "\(inspected.problems)")
        // (Verification of this store is not the point: the segment made open again here was
        // already chained to the next one, which a real cut's open segment never is.)
    }

    @Test("a zero-filled run cannot be ciphertext, and is found wherever it lies")
    func zeroRuns() {
        var bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) | 1 }
        #expect(!SealedSegmentLayout.holdsZeroRun(bytes, from: 0, count: bytes.count))
        for index in 500..<(500 + SealedSegmentLayout.zeroRun - 1) { bytes[index] = 0 }
        #expect(!SealedSegmentLayout.holdsZeroRun(bytes, from: 0, count: bytes.count), "one short of a run")
        bytes[500 + SealedSegmentLayout.zeroRun - 1] = 0
        #expect(SealedSegmentLayout.holdsZeroRun(bytes, from: 0, count: bytes.count))
        #expect(!SealedSegmentLayout.holdsZeroRun(bytes, from: 0, count: 520), "outside the range looked at")
    }
}

/// A store verified while its device records into it.
@Suite("A live store")
struct LiveStoreTests {
    @Test("while the writer holds the store's lock, the one .partial after the last manifest is the recording in progress, not a problem; without the lock, or before the last manifest, it is a segment without a manifest")
    func recordingInProgress() throws {
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let last = try #require(try names(store, suffix: ".manifest").compactMap { SegmentName.sequence(of: $0) }.max())
        let open = String(format: "seg-%06d-20991231T000000Z.bcseg.partial", last + 1)
        try writeFileAtomically(store + "/" + open, [UInt8](repeating: 1, count: 100), mode: 0o640, exclusive: true)
        do {
            let writer = try ExclusiveLock(path: store)
            let live = try StoreVerifier.verify(store: store, authority: nil)
            #expect(live.isClean && live.recordingInProgress == open, "\(live.problems)")
            // An old leftover beside it is still a problem, and then neither is taken as live.
            let stale = String(format: "seg-%06d-20991231T000000Z.bcseg.partial", last - 1)
            try writeFileAtomically(store + "/" + stale, [1], mode: 0o640, exclusive: true)
            let two = try StoreVerifier.verify(store: store, authority: nil)
            #expect(two.problems.filter { $0.code == "segment_without_manifest" }.count == 2 && two.recordingInProgress == nil)
            unlink(store + "/" + stale)
            _ = writer
        }
        // No writer: a .partial is what a crash left, not yet recovered.
        let idle = try StoreVerifier.verify(store: store, authority: nil)
        #expect(idle.problems.map(\.code) == ["segment_without_manifest"] && idle.recordingInProgress == nil)
    }
}

/// Marks and the manifests they belong in.
@Suite("Marks that come late")
struct LateMarkTests {
    @Test("a mark whose moment falls in a segment already sealed (a starved controls thread) goes into the next manifest with its own time, not lost")
    func lateMark() throws {
        _ = quietLibAV
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        let vault = try makeVault(directory.path + "/store", keys: keys)
        let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 90)
        let made = Locked<Recorder?>(nil)
        let late = Locked<Int64?>(nil)
        let source = HookedSource(pattern) { index in
            guard index == 45, let recorder = made.current else { return }
            // Segment 1 (pictures 0–29) is sealed; a mark pressed inside it arrives only now.
            let deadline = Clock.monotonicNanoseconds() + 30_000_000_000
            while recorder.segments.isEmpty && Clock.monotonicNanoseconds() < deadline {
                _ = recorder.waitForWriteQueue(untilMonotonic: Clock.monotonicNanoseconds() + 10_000_000) { _ in false }
            }
            guard let first = recorder.segments.first else { return }
            let at = first.descriptor.startMonotonicNanoseconds + 100_000_000
            vault.addMark(label: "late", source: "button", at: at, utc: "2026-11-29T12:00:00.000000Z")
            late.withLock { $0 = at }
        }
        let recorder = Recorder(configuration: .init(deviceID: "BC-EV-1", officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 1),
                                source: source, overlay: nil, store: vault,
                                makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        made.withLock { $0 = recorder }
        recorder.startRecording()
        try recorder.run()
        let at = try #require(late.current, "segment 1 was never sealed")
        let manifests = try names(directory.path + "/store", suffix: ".manifest").map {
            try Manifest.read(try readWholeFile(directory.path + "/store/" + $0), what: $0)
        }.sorted { $0.sequence < $1.sequence }
        let marks = manifests.map { $0.document.body["marks"]?.array ?? [] }
        #expect(marks[0].isEmpty, "segment 1 was signed before the mark came")
        #expect(marks[1].count == 1 && marks[1].first?["monotonic_ns"]?.integer == at, "\(marks)")
        #expect(marks.dropFirst(2).allSatisfy { $0.isEmpty })
    }
}
