import Testing
import Glibc
import LibAV
import Capture
import Pipeline
import Platform
import TestSupport
import Export

@Suite("Storage stalls")
struct StorageStallTests {
    let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)

    /// A recorder on the test pattern (as fast as the encoder goes) into `store`, recording from
    /// the first picture; `hook` runs on the pipeline thread with each picture's index.
    func recorder(frames: Int, store: SegmentStore, segmentSeconds: Int = 60, writeQueueSeconds: Int = 10, live: Bool = true,
                  hook: @escaping (Recorder, UInt64) -> Void) throws -> Recorder {
        _ = quietLibAV
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
        let made = Locked<Recorder?>(nil)
        let source = HookedSource(pattern, live: live) { index in
            guard let recorder = made.current else { return }
            if index == 0 { recorder.startRecording() }
            hook(recorder, index)
        }
        let recorder = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: segmentSeconds,
                                                     writeQueueSeconds: writeQueueSeconds),
                                source: source, overlay: nil, store: store,
                                makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        made.withLock { $0 = recorder }
        return recorder
    }

    /// CLOCK_MONOTONIC `seconds` from now: how long a test waits for an event before failing.
    func deadline(seconds: Int64 = 30) -> Int64 { Clock.monotonicNanoseconds() + seconds * 1_000_000_000 }

    @Test("storage that blocks its syncs holds up no picture: all are captured and encoded while it is blocked, then written with one sync for many fragments")
    func blockedStorage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try GatedStore(directory: directory.path)
        let atLastPicture = Locked<(blocked: Int, syncs: Int, encoded: Int)>((0, 0, 0))
        let recorder = try recorder(frames: 300, store: store, writeQueueSeconds: 20) { recorder, index in
            // The writer is stuck at the gate from its first sync on (it may take a moment to
            // get there), and the pipeline still reaches the last picture.
            if index == 299 {
                _ = store.wait { blocked, _ in blocked == 1 }
                atLastPicture.withLock { $0 = (store.blocked, store.syncs, recorder.framesEncoded) }
                store.open()
            }
        }
        try recorder.run()
        #expect(!store.timedOut, "the pipeline waited for storage")
        #expect(atLastPicture.current == (1, 0, 299))
        #expect(recorder.framesShed == 0 && recorder.framesDropped == 0)
        #expect(recorder.segments.map(\.frames) == [300])
        #expect(recorder.segments.map(\.fragments) == [20], "ten seconds in fragments of half a second")
        #expect(recorder.writeQueuePeak.ticks >= 250 * 3_000, "\(recorder.writeQueuePeak)")
        // Twenty fragments sealed behind the stall are made durable together: the blocked sync,
        // at most one when the writer catches up, and the seal; not one a fragment.
        #expect(store.syncs <= 3, "\(store.syncs) syncs")
        let file = try #require(try directory.files(withSuffix: ".mp4").first)
        let report = try SegmentInspector.inspect(path: file)
        #expect(report.problems.isEmpty && report.decodedFrames == 300, "\(report.problems)")
    }

    @Test("a write queue at its bound lets the newest pictures go, says so, and resumes on a keyframe once storage catches up; every picture is recorded or counted")
    func queueAtItsBound() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try GatedStore(directory: directory.path)
        let events = Locked<[String]>([])
        let caughtUp = Locked(true)
        let recorder = try recorder(frames: 150, store: store, writeQueueSeconds: 1) { recorder, index in
            // From here on the writer is stuck at the gate: what follows is queued.
            if index == 30 { _ = store.wait { blocked, _ in blocked == 1 } }
            if index == 100 {
                store.open()
                let drained = recorder.waitForWriteQueue(untilMonotonic: deadline()) { $0.ticks == 0 }
                caughtUp.withLock { $0 = drained }
            }
        }
        recorder.onEvent = { event in
            switch event {
            case .storageBacklogFull(let queued): events.withLock { $0.append("full \(queued.milliseconds >= 1000)") }
            case .storageBacklogCleared(let lost, _): events.withLock { $0.append("cleared \(lost)") }
            default: break
            }
        }
        try recorder.run()
        #expect(caughtUp.current && !store.timedOut)
        let shed = recorder.framesShed
        #expect(shed > 0)
        #expect(events.current == ["full true", "cleared \(shed)"])
        let recorded = recorder.segments.reduce(0) { $0 + $1.frames }
        #expect(recorded + shed == 150)
        #expect(recorder.segments.map(\.framesDropped) == [shed], "the gap is the segment's dropped frames")
        // About a second was queued when the bound was reached; never more than one packet over.
        #expect(recorder.writeQueuePeak.ticks <= 90_000 + 3_000)
        let file = try #require(try directory.files(withSuffix: ".mp4").first)
        let report = try SegmentInspector.inspect(path: file)
        #expect(report.problems.isEmpty && report.decodedFrames == recorded, "\(report.problems)")
    }

    @Test("a source that is not live (a file read as fast as it goes) waits for room at the bound instead: nothing is let go")
    func fileWaitsForRoom() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try GatedStore(directory: directory.path)
        let recorder = try recorder(frames: 150, store: store, writeQueueSeconds: 1, live: false) { _, _ in }
        // Storage comes back only once the pipeline has filled the queue to its bound and waits.
        let opener = WorkerThread(name: "test-opener") {
            _ = store.wait { blocked, _ in blocked == 1 }
            _ = recorder.waitForWriteQueue(untilMonotonic: deadline()) { $0.ticks >= 90_000 }
            store.open()
        }
        defer { opener.join() }
        try recorder.run()
        #expect(!store.timedOut)
        #expect(recorder.framesShed == 0)
        #expect(recorder.segments.map(\.frames) == [150] && recorder.segments.map(\.framesDropped) == [0])
        #expect(recorder.writeQueuePeak.ticks >= 90_000 && recorder.writeQueuePeak.ticks <= 90_000 + 3_000, "\(recorder.writeQueuePeak)")
    }

    @Test("a segment whose seal is slow (its final sync, rename and manifest) holds up none of the next segments' fragments; segments are still sealed in order")
    func slowSealDoesNotHoldFragments() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try GatedStore(directory: directory.path, gating: [.finish])
        let laterSynced = Locked(false)
        let order = Locked<[UInt64]>([])
        let recorder = try recorder(frames: 150, store: store, segmentSeconds: 1) { _, index in
            if index == 149 {
                // Segment 1's seal waits at the gate while segment 4's fragments are made durable.
                let synced = store.wait { blocked, synced in blocked == 1 && synced.contains(4) }
                laterSynced.withLock { $0 = synced }
                store.open()
            }
        }
        recorder.onEvent = { if case .segmentSealed(let summary) = $0 { order.withLock { $0.append(summary.descriptor.sequence) } } }
        try recorder.run()
        #expect(laterSynced.current && !store.timedOut)
        #expect(order.current == [1, 2, 3, 4, 5])
        #expect(recorder.segments.map(\.frames) == [30, 30, 30, 30, 30])
        #expect(recorder.framesShed == 0)
    }
}
