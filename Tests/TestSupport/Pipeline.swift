import Foundation
import Synchronization
import LibAV
import Pipeline
import Capture
import Platform
import Export

/// A fresh folder under the system's temporary directory, removed by `cleanup()`.
public struct TemporaryDirectory {
    public let path: String
    public init(_ label: String = "bodycam-test") throws {
        path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    public func files(withSuffix suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(suffix) }.sorted().map { path + "/" + $0 }
    }
}

/// Segments kept in memory, with the byte offsets at which the muxer declared fragment boundaries.
public final class MemoryStore: SegmentStore {
    public final class Sink: SegmentSink {
        public let descriptor: SegmentDescriptor
        public var bytes: [UInt8] = []
        public var boundaries: [Int] = []
        public var finished = false
        public init(_ descriptor: SegmentDescriptor) { self.descriptor = descriptor }
        public func write(_ chunk: UnsafeRawBufferPointer) throws { bytes += chunk }
        public var fragmentFrames: [Int] = []
        public func fragmentComplete(frames: Int, duration: Int64) throws {
            boundaries.append(bytes.count)
            fragmentFrames.append(frames)
        }
        public private(set) var syncs = 0
        public func makeDurable() throws { syncs += 1 }
        public func finish() throws -> String {
            finished = true
            return "memory:\(descriptor.sequence)"
        }
    }
    public var sinks: [Sink] = []
    public init() {}
    public var nextSequence: UInt64 { (sinks.last?.descriptor.sequence ?? 0) + 1 }
    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        let sink = Sink(segment)
        sinks.append(sink)
        return sink
    }
}

/// A store whose sinks fail with ENOSPC once `budget` bytes have been written in all.
public final class FillingStore: SegmentStore {
    public let inner: PlainFileStore
    public var budget: Int
    public init(directory: String, budget: Int) throws {
        inner = try PlainFileStore(directory: directory)
        self.budget = budget
    }
    public final class Sink: SegmentSink {
        public let inner: SegmentSink
        public unowned let store: FillingStore
        public init(inner: SegmentSink, store: FillingStore) { self.inner = inner; self.store = store }
        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            if bytes.count > store.budget { throw SystemError.file(path: "store", call: "write", errno: ENOSPC) }
            store.budget -= bytes.count
            try inner.write(bytes)
        }
        public func fragmentComplete(frames: Int, duration: Int64) throws { try inner.fragmentComplete(frames: frames, duration: duration) }
        public func makeDurable() throws { try inner.makeDurable() }
        public func finish() throws -> String { try inner.finish() }
    }
    public var nextSequence: UInt64 { inner.nextSequence }
    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        Sink(inner: try inner.makeSink(for: segment), store: self)
    }
}

/// Wraps a source and calls `hook` with each frame index before handing the frame on.
public final class HookedSource: FrameSource {
    public let inner: FrameSource
    public var hook: (UInt64) -> Void
    /// Claims to be live whatever the inner source is (a fast pattern standing in for a camera).
    public var live: Bool?
    public init(_ inner: FrameSource, live: Bool? = nil, hook: @escaping (UInt64) -> Void) { self.inner = inner; self.live = live; self.hook = hook }
    public var format: FrameFormat { inner.format }
    public var isLive: Bool { live ?? inner.isLive }
    public var name: String { "hooked " + inner.name }
    public func start() throws { try inner.start() }
    public func nextFrame() throws -> CapturedFrame? {
        guard let frame = try inner.nextFrame() else { return nil }
        hook(frame.frame.sequence)
        return frame
    }
    public func stop() { inner.stop() }
    public func close() throws { try inner.close() }
}

/// Reports a gap (frames dropped before it) at chosen frames, as a camera's sequence numbers
/// would, and calls `hook` with each frame index.
public final class GappySource: FrameSource {
    public let inner: FrameSource
    public let gaps: [UInt64: Int]
    public let hook: (UInt64) -> Void
    public init(_ inner: FrameSource, gaps: [UInt64: Int], hook: @escaping (UInt64) -> Void) { self.inner = inner; self.gaps = gaps; self.hook = hook }
    public var format: FrameFormat { inner.format }
    public var isLive: Bool { inner.isLive }
    public var name: String { "gappy " + inner.name }
    public func start() throws { try inner.start() }
    public func nextFrame() throws -> CapturedFrame? {
        guard var captured = try inner.nextFrame() else { return nil }
        captured.droppedBefore = gaps[captured.frame.sequence] ?? 0
        hook(captured.frame.sequence)
        return captured
    }
    public func stop() { inner.stop() }
    public func close() throws { try inner.close() }
}

public func testEncoderSettings(crf: Int = 18) -> VideoEncoderSettings {
    var settings = VideoEncoderSettings()
    settings.bitrateKbps = nil
    settings.crf = crf
    settings.preset = "ultrafast"
    return settings
}

/// libav's own log lines (expected complaints about cut files) would bury the test output.
public let quietLibAV: Void = LibAVLogging.setQuiet(true)

/// Runs the whole pipeline over a fast test pattern into `store`.
@discardableResult
public func record(format: FrameFormat, frames: Int, preEventSeconds: Int = 0, segmentSeconds: Int, store: SegmentStore,
            encoder: VideoEncoderSettings = testEncoderSettings(), overlay: OverlaySettings? = OverlaySettings(),
            startAtFrame: UInt64 = 0) throws -> Recorder {
    _ = quietLibAV
    let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
    var recorder: Recorder!
    let source = HookedSource(pattern) { index in
        if index == startAtFrame { recorder.startRecording() }
    }
    recorder = Recorder(configuration: .init(deviceID: "BC-T1", officerID: "OFC-9", preEventSeconds: preEventSeconds,
                                             segmentSeconds: segmentSeconds),
                        source: source, overlay: overlay.map { Overlay(settings: $0, deviceID: "BC-T1", officerID: "OFC-9") },
                        store: store, makeEncoder: { try makeVideoEncoder(settings: encoder, format: $0) })
    try recorder.run()
    return recorder
}

/// The frame numbers the test pattern burned into each decoded picture of a segment.
public func burnedInFrameNumbers(path: String, format: FrameFormat) throws -> [Int?] {
    _ = quietLibAV
    var numbers: [Int?] = []
    _ = try SegmentInspector.inspect(path: path) { frame in
        precondition(frame.width == format.width && frame.height == format.height)
        numbers.append(TestPatternSource.frameNumber(in: frame))
    }
    return numbers
}

/// A value several threads read and write in a test (events reported on the pipeline thread,
/// checked on the test's).
public final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    public init(_ value: Value) { self.value = Mutex(value) }
    public func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
    public var current: Value { value.withLock { $0 } }
}

/// A seeded random number generator (SplitMix64) for tests that pick random moments or sizes:
/// the seed is printed, and `BODYCAM_TEST_SEED` replays a run.
public struct SeededRandom: RandomNumberGenerator {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// From `BODYCAM_TEST_SEED` when set, else from the system's generator; prints it with `label`.
    public static func announced(_ label: String) -> SeededRandom {
        let seed = ProcessInfo.processInfo.environment["BODYCAM_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("\(label): BODYCAM_TEST_SEED=\(seed)")
        return SeededRandom(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How many descriptors this process has open (/proc/self/fd). Other tests run at the same
/// time, so callers compare counts over many repetitions of a failure, not one.
public func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
}

/// A store whose sinks cannot make anything durable: `makeDurable` fails with EIO (a
/// storage device that has gone read-only, a failing card).
public final class UnsyncableStore: SegmentStore {
    public final class Sink: SegmentSink {
        public init() {}
        public func write(_ bytes: UnsafeRawBufferPointer) throws {}
        public func fragmentComplete(frames: Int, duration: Int64) throws {}
        public func makeDurable() throws {
            throw SystemError.file(path: "unsyncable", call: "fdatasync", errno: EIO)
        }
        public func finish() throws -> String { "unsyncable" }
    }
    public private(set) var sinksMade = 0
    public init() {}
    public var nextSequence: UInt64 { UInt64(sinksMade + 1) }
    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        sinksMade += 1
        return Sink()
    }
}

/// A store whose syncs wait at a gate until the test opens it: storage that stalls for as long
/// as the test wants, with no clock in the test. A gate not opened within `timeout` seconds
/// opens itself and says so (`timedOut`), so a pipeline that waits on storage fails its test
/// instead of hanging it.
public final class GatedStore: SegmentStore, @unchecked Sendable {
    /// What waits at the gate: a sink's syncs (`makeDurable`), its final seal (`finish`).
    public enum Step: Sendable { case sync, finish }
    public let inner: PlainFileStore
    public let gating: Set<Step>
    private let lock = ConditionLock()
    private var isOpen = false
    private var waiting = 0
    private var syncCount = 0
    private var synced: Set<UInt64> = []
    private var expired = false
    private let timeout: Int64

    public init(directory: String, gating: Set<Step> = [.sync, .finish], timeout: Int64 = 60) throws {
        inner = try PlainFileStore(directory: directory)
        self.gating = gating
        self.timeout = timeout
    }

    /// Lets every sync through, now and from now on.
    public func open() { lock.withLock { isOpen = true; lock.broadcast() } }
    /// Syncs waiting at the gate now.
    public var blocked: Int { lock.withLock { waiting } }
    /// Syncs that went through.
    public var syncs: Int { lock.withLock { syncCount } }
    public var timedOut: Bool { lock.withLock { expired } }
    /// Segments (by sequence) at least one of whose syncs went through.
    public var syncedSegments: Set<UInt64> { lock.withLock { synced } }

    /// Waits until `condition` holds for (syncs waiting at the gate, segments synced); false
    /// after `seconds`.
    public func wait(seconds: Int64 = 30, until condition: (Int, Set<UInt64>) -> Bool) -> Bool {
        lock.withLock {
            let deadline = Clock.monotonicNanoseconds() + seconds * 1_000_000_000
            while !condition(waiting, synced) {
                if !lock.wait(untilMonotonic: deadline) { return condition(waiting, synced) }
            }
            return true
        }
    }

    func pass(_ step: Step, sequence: UInt64) {
        lock.withLock {
            waiting += 1
            lock.broadcast()
            let deadline = Clock.monotonicNanoseconds() + timeout * 1_000_000_000
            while gating.contains(step) && !isOpen {
                if !lock.wait(untilMonotonic: deadline) {
                    expired = true
                    isOpen = true
                }
            }
            waiting -= 1
            if step == .sync {
                syncCount += 1
                synced.insert(sequence)
            }
            lock.broadcast()
        }
    }

    public final class Sink: SegmentSink {
        let inner: SegmentSink
        let gate: GatedStore
        let sequence: UInt64
        init(inner: SegmentSink, gate: GatedStore, sequence: UInt64) { self.inner = inner; self.gate = gate; self.sequence = sequence }
        public func write(_ bytes: UnsafeRawBufferPointer) throws { try inner.write(bytes) }
        public func fragmentComplete(frames: Int, duration: Int64) throws { try inner.fragmentComplete(frames: frames, duration: duration) }
        public func makeDurable() throws {
            gate.pass(.sync, sequence: sequence)
            try inner.makeDurable()
        }
        public func finish() throws -> String {
            gate.pass(.finish, sequence: sequence)
            return try inner.finish()
        }
        public func noteDropped(frames: Int, estimated: Bool) { inner.noteDropped(frames: frames, estimated: estimated) }
        public func noteClock(_ clock: SegmentClock) { inner.noteClock(clock) }
    }

    public var nextSequence: UInt64 { inner.nextSequence }
    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        Sink(inner: try inner.makeSink(for: segment), gate: self, sequence: segment.sequence)
    }
}
