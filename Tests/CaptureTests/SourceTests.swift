@testable import Capture
import Platform
import TestSupport
import Foundation
import LibAV
import Testing
import V4L2
import V4L2Simulator

@Suite("Frame sources")
struct SourceTests {
    @Test("the test pattern moves, numbers its frames and keeps real time when asked")
    func testPattern() throws {
        let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 50)
        let source = try TestPatternSource(format: format, pacing: .realTime, frameLimit: 10)
        try source.start()
        let started = Clock.monotonicNanoseconds()
        var frames: [VideoFrame] = []
        while let captured = try source.nextFrame() { frames.append(captured.frame) }
        let elapsed = Clock.monotonicNanoseconds() - started
        try source.close()
        #expect(frames.count == 10)
        #expect(frames.map(\.sequence) == Array(0..<10))
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $1.captureNanoseconds - $0.captureNanoseconds == 20_000_000 })
        #expect(elapsed >= 170_000_000, "nine frame periods of 20 ms at least")
        #expect(frames[0].packedBytes() != frames[9].packedBytes(), "the picture moves")
        let length = TestPatternSource.label(frameIndex: 7, wallNanoseconds: 0).count
        let origin = TestPatternSource.labelOrigin(format: format, length: length)
        let label = Painter.readText(from: frames[7], x: origin.x, y: origin.y, scale: origin.scale, count: 12)
        #expect(String(label.map { $0 ?? "~" }) == "FRAME 000007")
    }

    @Test("stop() ends a paced test pattern")
    func testPatternStops() throws {
        let source = try TestPatternSource(format: FrameFormat(width: 64, height: 64, pixelFormat: .nv12, framesPerSecond: 1))
        try source.start()
        _ = try source.nextFrame()
        source.stop()
        #expect(try source.nextFrame() == nil)
        try source.close()
    }

    @Test("a rawvideo file yields its frames byte for byte", arguments: PixelFormat.allCases)
    func rawFile(pixelFormat: PixelFormat) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let format = FrameFormat(width: 96, height: 54, pixelFormat: pixelFormat, framesPerSecond: 25)
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 5)
        try pattern.start()
        var written: [[UInt8]] = []
        while let captured = try pattern.nextFrame() { written.append(captured.frame.packedBytes()) }
        try pattern.close()
        let path = directory.path + "/in.yuv"
        _ = FileManager.default.createFile(atPath: path, contents: Data(written.joined()))
        let source = try RawFileSource(path: path, format: format)
        try source.start()
        var read: [[UInt8]] = []
        while let captured = try source.nextFrame() { read.append(captured.frame.packedBytes()) }
        try source.close()
        #expect(read == written)
    }

    @Test("a rawvideo file cut mid-frame is an error naming the frame; a missing one names the path")
    func rawFileErrors() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let format = FrameFormat(width: 16, height: 16, pixelFormat: .yuyv422, framesPerSecond: 25)
        let path = directory.path + "/short.yuv"
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 512 + 100))
        let source = try RawFileSource(path: path, format: format)
        try source.start()
        #expect(try source.nextFrame() != nil)
        #expect(throws: RawFrameTruncated(path: path, frameIndex: 1, got: 100, expected: 512)) { try source.nextFrame() }
        try source.close()
        let missing = try RawFileSource(path: directory.path + "/none.yuv", format: format)
        #expect(throws: SystemError.file(path: directory.path + "/none.yuv", call: "open", errno: ENOENT)) { try missing.start() }
    }

    func v4l2Settings() -> V4L2Settings {
        V4L2Settings(devicePath: "/dev/video-sim", width: 64, height: 48, framesPerSecond: 30)
    }

    enum Stamping: String, CaseIterable, CustomStringConvertible {
        case good, zero, constant, backwardsStep, notMonotonic, future, stale
        var description: String { rawValue }
        /// The simulated driver's stamp for a buffer, from its sequence and now.
        func stamp(_ sequence: UInt32, _ now: Int64) -> (Int64, Bool) {
            switch self {
            case .good: return (now, true)
            case .zero: return (0, true)
            case .constant: return (1_000_000_000, true)
            case .backwardsStep: return (sequence >= 5 ? now - 1_000_000_000 : now, true)
            case .notMonotonic: return (now, false)
            case .future: return (now + 3_000_000_000, true)
            case .stale: return (now - 10_000_000_000, true)
            }
        }
    }

    @Test("capture times the driver gets wrong are replaced by the dequeue time: increasing, near now, and said once", arguments: Stamping.allCases)
    func untrustedTimestamps(stamping: Stamping) throws {
        let camera = SimulatedV4L2()
        camera.stamp = { stamping.stamp($0, $1) }
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        var times: [Int64] = [], notes: [String] = []
        while times.count < 12, let captured = try source.nextFrame() {
            times.append(captured.frame.captureNanoseconds)
            if let note = captured.timestampNote { notes.append(note) }
            #expect(abs(Clock.monotonicNanoseconds() - captured.frame.captureNanoseconds) < 1_500_000_000, "\(stamping): near now")
        }
        try source.close()
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "\(stamping): strictly increasing")
        if stamping == .good {
            #expect(notes.isEmpty)
        } else {
            #expect(notes.count == 1 && notes[0].hasSuffix("the dequeue time is used instead"), "\(stamping): \(notes)")
        }
    }

    @Test("a V4L2 camera delivers copied pictures and reports frames it skipped")
    func v4l2Drops() throws {
        let camera = SimulatedV4L2()
        camera.skippedSequences = [3, 4, 10]
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        #expect(source.format == FrameFormat(width: 64, height: 48, pixelFormat: .yuyv422, framesPerSecond: 30))
        var sequences: [UInt64] = []
        var dropped = 0
        while sequences.count < 12, let captured = try source.nextFrame() {
            sequences.append(captured.frame.sequence)
            dropped += captured.droppedBefore
            // The simulated driver fills each buffer with its sequence number.
            let first = captured.frame.withPlane(0) { bytes, _ in bytes[0] }
            #expect(first == UInt8(truncatingIfNeeded: captured.frame.sequence))
        }
        try source.close()
        #expect(Array(sequences.prefix(9)) == [0, 1, 2, 5, 6, 7, 8, 9, 11])
        #expect(dropped == 3)
        #expect(camera.openCount == 0)
    }

    @Test("a consumer slower than the camera: every frame is either delivered or counted as dropped")
    func v4l2SlowConsumerAccounting() throws {
        // The simulated driver delivers as fast as buffers come back, so the hand-over queue
        // overflows; some of the pictures it lets go follow a driver gap themselves.
        let camera = SimulatedV4L2()
        camera.skippedSequences = Set(stride(from: 3, to: 400, by: 5))
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        var delivered: [UInt64] = []
        var dropped = 0
        while delivered.count < 40, let captured = try source.nextFrame() {
            delivered.append(captured.frame.sequence)
            dropped += captured.droppedBefore
            // Slower than the camera: take the next picture only once the driver has handed out
            // five more than this one.
            #expect(camera.waitUntilDelivered(Int(captured.frame.sequence) + 6))
        }
        try source.close()
        let span = Int(delivered.last! - delivered.first!) + 1
        #expect(delivered.count + dropped == span)
        let skippedInSpan = camera.skippedSequences.filter { UInt64($0) > delivered.first! && UInt64($0) < delivered.last! }.count
        #expect(dropped > skippedInSpan, "the queue must have let pictures go for this test to mean anything")
    }

    @Test("a driver that leaves sequence at 0 and loses every other frame: the 29 missing of 30 pictures are estimated from its timestamps, said once")
    func sequenceZeroEstimates() throws {
        // Delivered every 66.7 ms, each stamped at its real 33.3 ms slot.
        let camera = SimulatedV4L2.sequenceAtZeroLosingEveryOtherFrame()
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        var pictures = 0, dropped = 0, estimated = 0
        var notes: [String] = []
        var numbers: [Int] = []  // the real sequence numbers, from the pictures' bytes
        while pictures < 30, let captured = try source.nextFrame() {
            pictures += 1
            let byte = Int(captured.frame.withPlane(0) { bytes, _ in bytes[0] })
            let last = numbers.last ?? byte
            numbers.append(last + (byte - last + 256) % 256)
            dropped += captured.droppedBefore
            if captured.dropsEstimated { estimated += 1 }
            if let note = captured.sequenceNote { notes.append(note) }
            #expect(captured.timestampNote == nil)
        }
        try source.close()
        // Every other frame lost: 29 between 30 pictures (more if the test was too slow and the
        // queue let some go; every one is counted either way).
        #expect(dropped == numbers.last! - numbers.first! + 1 - pictures && dropped >= 29, "\(dropped) for \(numbers)")
        #expect(estimated == 29, "every picture after the first is marked estimated")
        #expect(notes.count == 1 && notes[0].contains("do not advance"), "\(notes)")
    }

    @Test("a driver that leaves sequence at 0, a consumer slower than the camera: what the queue lets go is counted where it happens")
    func sequenceZeroQueueOverflow() throws {
        let camera = SimulatedV4L2()
        camera.reportsSequence = false
        // Stamped on a steady 2 ms grid by sequence: a stall of the test's threads must not read
        // as frames missing from the camera's timeline.
        let start = Clock.monotonicNanoseconds() - 10_000_000
        camera.stamp = { sequence, _ in (start + Int64(sequence) * 2_000_000, true) }
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        // The real number, from the picture's bytes (the simulator fills each buffer with it,
        // truncated to a byte; the gaps here are far below 256).
        var delivered: [Int] = []
        var dropped = 0
        while delivered.count < 40, let captured = try source.nextFrame() {
            let byte = Int(captured.frame.withPlane(0) { bytes, _ in bytes[0] })
            let last = delivered.last ?? byte
            delivered.append(last + (byte - last + 256) % 256)
            dropped += captured.droppedBefore
            #expect(camera.waitUntilDelivered(delivered.last! + 6))
        }
        try source.close()
        let span = delivered.last! - delivered.first! + 1
        #expect(dropped > 0, "the queue must have let pictures go for this test to mean anything")
        #expect(delivered.count + dropped == span)
    }

    @Test("a camera that delivers half its configured rate (low light) is seen over a window of capture time; back at its rate, that is seen too")
    func deliveredRate() throws {
        let camera = SimulatedV4L2()
        camera.frameInterval = 66_667  // 15 fps, though 30 were asked and granted
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        source.rateWindow = 1_000_000_000
        try source.start()
        var changes: [DeliveryChange] = []
        var pictures = 0
        while changes.isEmpty && pictures < 60, let captured = try source.nextFrame() {
            pictures += 1
            if let change = captured.delivery { changes.append(change) }
        }
        try source.close()
        guard case .below(let reason)? = changes.first else { Issue.record("no change after \(pictures) pictures"); return }
        #expect(reason.contains("less than the configured 30 fps"), "\(reason)")
        #expect(pictures <= 20, "one window of at most 15 pictures (fewer when the test is slowed): \(pictures)")
        // The verdict and its way back, on capture times alone.
        var monitor = RateMonitor(configured: 30, window: 1_000_000_000)
        var seen: [DeliveryChange] = []
        for index in 0...45 { if let change = monitor.note(time: Int64(index) * 66_666_667, frames: 1) { seen.append(change) } }
        let base = Int64(45) * 66_666_667
        for index in 1...62 { if let change = monitor.note(time: base + Int64(index) * 33_333_333, frames: 1) { seen.append(change) } }
        #expect(seen.count == 2 && seen.last == .met, "\(seen)")
        // Frames produced and counted as dropped are delivered by the camera: not below.
        var dropping = RateMonitor(configured: 30, window: 1_000_000_000)
        #expect((0...45).compactMap { dropping.note(time: Int64($0) * 66_666_667, frames: 2) }.isEmpty)
    }

    @Test("NV12 and YU12 buffers are copied plane by plane", arguments: [(V4L2PixelFormat.nv12, PixelFormat.nv12), (.yu12, .yuv420p)])
    func v4l2PlanarFormats(v4l2: V4L2PixelFormat, expected: PixelFormat) throws {
        let camera = SimulatedV4L2()
        camera.offeredFormats = [v4l2.fourcc]
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        let captured = try #require(try source.nextFrame())
        try source.close()
        #expect(captured.frame.pixelFormat == expected)
        let value = UInt8(truncatingIfNeeded: captured.frame.sequence)
        #expect(captured.frame.packedBytes().allSatisfy { $0 == value })
    }

    @Test("a camera lost mid-stream surfaces as FrameSourceLost naming the device, and the source reopens when it is back")
    func v4l2LostAndReopened() throws {
        let camera = SimulatedV4L2()
        camera.vanishAfterFrames = 5
        let source = try V4L2FrameSource(settings: v4l2Settings(), system: camera)
        try source.start()
        var count = 0
        do {
            while try source.nextFrame() != nil { count += 1 }
            Issue.record("the loss must surface")
        } catch let error as FrameSourceLost {
            #expect(error.reason.contains("/dev/video"), "\(error.reason)")
        }
        #expect(count == 5)
        try? source.close()
        camera.reconnect()
        try source.start()
        #expect(try source.nextFrame() != nil)
        try source.close()
        #expect(camera.openCount == 0)
    }

    @Test("an MJPEG camera's pictures are decoded to I420; one that does not decode counts as dropped")
    func mjpegDecoded() throws {
        // A JPEG of a test-pattern picture, made with libavcodec's own MJPEG encoder.
        let format = FrameFormat(width: 64, height: 48, pixelFormat: .yuv420p, framesPerSecond: 30)
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 1)
        try pattern.start()
        let original = try #require(try pattern.nextFrame()).frame
        try pattern.close()
        let jpeg = try EncoderContext(EncoderSettings(codecName: "mjpeg", width: 64, height: 48, framesPerSecond: 30, sourceFormat: .yuv420p,
                                                      timeBase: Rational(1, 30), gopSize: 1, options: [("color_range", "jpeg")]))
        try jpeg.send(original)
        try jpeg.send(nil)
        guard case .value(let packet) = try jpeg.receive() else { Issue.record("no JPEG"); return }

        let camera = SimulatedV4L2()
        camera.offeredFormats = [V4L2PixelFormat.mjpeg.fourcc]
        camera.mjpegPicture = packet.bytes
        var settings = v4l2Settings()
        settings.preferredFormats = [.mjpeg]
        let source = try V4L2FrameSource(settings: settings, system: camera)
        try source.start()
        #expect(source.format.pixelFormat == .yuv420p)
        let decoded = try #require(try source.nextFrame())
        // The JPEG is full range (as cameras send it); the pipeline's I420 is limited range.
        let luma = 64 * 48
        let expected = original.packedBytes().prefix(luma).map { 16 + Int($0) * 219 / 255 }
        let got = decoded.frame.packedBytes().prefix(luma).map(Int.init)
        let meanError = Double(zip(expected, got).reduce(0) { $0 + abs($1.0 - $1.1) }) / Double(luma)
        #expect(meanError < 2.5, "mean luma error \(meanError)")
        camera.damagedFrames = 3  // three damaged JPEGs in a row, then good ones again
        var dropped = 0
        for _ in 0..<100 where dropped < 3 {
            dropped += try #require(try source.nextFrame()).droppedBefore
        }
        #expect(dropped >= 3, "the three that do not decode are counted as dropped")
        try source.close()
    }
}
