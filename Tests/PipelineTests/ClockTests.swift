import Testing
import Glibc
import LibAV
import Capture
import Pipeline
import Platform
import TestSupport

@Suite("Wall clock")
struct ClockTests {
    let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)

    /// A recorder on the test pattern whose wall clock is the machine's plus `offset`, recording
    /// from the first picture; `hook` runs with each picture's index before it is processed.
    func recorder(frames: Int, offset: Locked<Int64>, hook: @escaping (UInt64) -> Void = { _ in }) throws -> Recorder {
        _ = quietLibAV
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
        let recorder = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: 60),
                                source: HookedSource(pattern, hook: hook), overlay: nil, store: MemoryStore(),
                                makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        recorder.wallClock = { Clock.wallNanoseconds() + offset.current }
        recorder.startRecording()
        return recorder
    }

    @Test("a step of the wall clock while recording is reported once and cuts the segment at that picture; the next segment starts on the new clock")
    func stepCutsSegment() throws {
        let hours: Int64 = 3 * 3600 * 1_000_000_000
        let offset = Locked<Int64>(-hours)
        let steps = Locked<[Int64]>([])
        let recorder = try recorder(frames: 90, offset: offset) { index in
            if index == 45 { offset.withLock { $0 = 0 } }
        }
        recorder.onEvent = { event in
            if case .clockStepped(let from, let to, _) = event { steps.withLock { $0.append(to.offset - from.offset) } }
        }
        try recorder.run()
        #expect(steps.current.count == 1)
        #expect(abs((steps.current.first ?? 0) - hours) < 1_000_000_000)
        #expect(recorder.segments.map(\.frames) == [45, 45])
        #expect(recorder.segments.map { $0.clock?.cutByStep } == [true, false])
        // The test pattern's timeline runs ahead of real time: 45 frames are 1.5 s of it.
        let apart = recorder.segments[1].descriptor.startWallNanoseconds - recorder.segments[0].descriptor.startWallNanoseconds
        #expect(abs(apart - hours - 1_500_000_000) < 1_000_000_000, "\(apart)")
    }

    @Test("slewing (less than a second) re-anchors without a cut")
    func slewDoesNotCut() throws {
        let offset = Locked<Int64>(0)
        let recorder = try recorder(frames: 90, offset: offset) { index in
            if index == 45 { offset.withLock { $0 = 400_000_000 } }
        }
        let steps = Locked(0)
        recorder.onEvent = { if case .clockStepped = $0 { steps.withLock { $0 += 1 } } }
        try recorder.run()
        #expect(steps.current == 0)
        #expect(recorder.segments.map(\.frames) == [90])
    }

    @Test("a wall clock before this software existed (1970 at first boot) is recorded anyway, reported once and flagged in the segment")
    func implausibleClock() throws {
        let offset = Locked<Int64>(5_000_000_000 - Clock.wallNanoseconds())
        let reports = Locked<[Int64]>([])
        let recorder = try recorder(frames: 60, offset: offset)
        recorder.onEvent = { if case .clockImplausible(let wall) = $0 { reports.withLock { $0.append(wall) } } }
        try recorder.run()
        #expect(reports.current.count == 1 && reports.current[0] < 10_000_000_000)
        #expect(recorder.segments.map(\.frames) == [60])
        #expect(recorder.segments.first?.clock?.plausible == false)
        #expect(recorder.segments.first?.descriptor.baseName.hasSuffix("-19700101T000005Z") == true)
    }
}
