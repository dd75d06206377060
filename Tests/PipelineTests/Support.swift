import Foundation
import LibAV
@testable import Pipeline

/// A fresh folder under the system's temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String
    init(_ label: String = "bodycam-test") throws {
        path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    func files(withSuffix suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(suffix) }.sorted().map { path + "/" + $0 }
    }
}

/// Segments kept in memory, with the byte offsets at which the muxer declared fragment boundaries.
final class MemoryStore: SegmentStore {
    final class Sink: SegmentSink {
        let descriptor: SegmentDescriptor
        var bytes: [UInt8] = []
        var boundaries: [Int] = []
        var finished = false
        init(_ descriptor: SegmentDescriptor) { self.descriptor = descriptor }
        func write(_ chunk: UnsafeRawBufferPointer) throws { bytes += chunk }
        var fragmentFrames: [Int] = []
        func fragmentComplete(frames: Int, duration: Int64) throws {
            boundaries.append(bytes.count)
            fragmentFrames.append(frames)
        }
        func finish() throws -> String {
            finished = true
            return "memory:\(descriptor.sequence)"
        }
    }
    var sinks: [Sink] = []
    var nextSequence: UInt64 { (sinks.last?.descriptor.sequence ?? 0) + 1 }
    func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        let sink = Sink(segment)
        sinks.append(sink)
        return sink
    }
}

/// A store whose sinks fail with ENOSPC once `budget` bytes have been written in all.
final class FillingStore: SegmentStore {
    let inner: PlainFileStore
    var budget: Int
    init(directory: String, budget: Int) throws {
        inner = try PlainFileStore(directory: directory)
        self.budget = budget
    }
    final class Sink: SegmentSink {
        let inner: SegmentSink
        unowned let store: FillingStore
        init(inner: SegmentSink, store: FillingStore) { self.inner = inner; self.store = store }
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            if bytes.count > store.budget { throw PipelineError.file(path: "store", call: "write", errno: ENOSPC) }
            store.budget -= bytes.count
            try inner.write(bytes)
        }
        func fragmentComplete(frames: Int, duration: Int64) throws { try inner.fragmentComplete(frames: frames, duration: duration) }
        func finish() throws -> String { try inner.finish() }
    }
    var nextSequence: UInt64 { inner.nextSequence }
    func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        Sink(inner: try inner.makeSink(for: segment), store: self)
    }
}

/// Wraps a source and calls `hook` with each frame index before handing the frame on.
final class HookedSource: FrameSource {
    let inner: FrameSource
    var hook: (UInt64) -> Void
    init(_ inner: FrameSource, hook: @escaping (UInt64) -> Void) { self.inner = inner; self.hook = hook }
    var format: FrameFormat { inner.format }
    var name: String { "hooked " + inner.name }
    func start() throws { try inner.start() }
    func nextFrame() throws -> CapturedFrame? {
        guard let frame = try inner.nextFrame() else { return nil }
        hook(frame.frame.sequence)
        return frame
    }
    func stop() { inner.stop() }
    func close() throws { try inner.close() }
}

/// Reports a gap (frames dropped before it) at chosen frames, as a camera's sequence numbers
/// would, and calls `hook` with each frame index.
final class GappySource: FrameSource {
    let inner: FrameSource
    let gaps: [UInt64: Int]
    let hook: (UInt64) -> Void
    init(_ inner: FrameSource, gaps: [UInt64: Int], hook: @escaping (UInt64) -> Void) { self.inner = inner; self.gaps = gaps; self.hook = hook }
    var format: FrameFormat { inner.format }
    var name: String { "gappy " + inner.name }
    func start() throws { try inner.start() }
    func nextFrame() throws -> CapturedFrame? {
        guard var captured = try inner.nextFrame() else { return nil }
        captured.droppedBefore = gaps[captured.frame.sequence] ?? 0
        hook(captured.frame.sequence)
        return captured
    }
    func stop() { inner.stop() }
    func close() throws { try inner.close() }
}

func testEncoderSettings(crf: Int = 18) -> VideoEncoderSettings {
    var settings = VideoEncoderSettings()
    settings.bitrateKbps = nil
    settings.crf = crf
    settings.preset = "ultrafast"
    return settings
}

/// libav's own log lines (expected complaints about cut files) would bury the test output.
let quietLibAV: Void = LibAVLogging.setQuiet(true)

/// Runs the whole pipeline over a fast test pattern into `store`.
@discardableResult
func record(format: FrameFormat, frames: Int, preEventSeconds: Int = 0, segmentSeconds: Int, store: SegmentStore,
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
                        store: store, makeEncoder: { try LibAVVideoEncoder(settings: encoder, format: $0) })
    try recorder.run()
    return recorder
}

/// The frame numbers the test pattern burned into each decoded picture of a segment.
func burnedInFrameNumbers(path: String, format: FrameFormat) throws -> [Int?] {
    _ = quietLibAV
    var numbers: [Int?] = []
    let sample = TestPatternSource.label(frameIndex: 0, wallNanoseconds: 0)
    let origin = TestPatternSource.labelOrigin(format: format, length: sample.count)
    _ = try SegmentInspector.inspect(path: path) { frame in
        let text = Painter.readText(from: frame, x: origin.x, y: origin.y, scale: origin.scale, count: 12)
        let string = String(text.map { $0 ?? "~" })
        numbers.append(string.hasPrefix("FRAME ") ? Int(string.dropFirst(6)) : nil)
    }
    return numbers
}
