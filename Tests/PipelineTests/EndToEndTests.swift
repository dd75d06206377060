import Foundation
import V4L2
import V4L2Simulator
import LibAV
import Capture
import Platform
import TestSupport
import Testing
@testable import Pipeline
import Export

@Suite("End to end: test pattern → overlay → encoder → pre-event buffer → segments → decode")
struct EndToEndTests {
    let format = FrameFormat(width: 640, height: 480, pixelFormat: .yuyv422, framesPerSecond: 30)

    @Test("segments decode as H.264 of the configured size with exactly fps × seconds frames")
    func segmentsDecodeWithExactFrameCount() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let seconds = 7
        let recorder = try record(format: format, frames: 30 * seconds, segmentSeconds: 2,
                                  store: try PlainFileStore(directory: directory.path))
        let files = try directory.files(withSuffix: ".mp4")
        #expect(files.count == 4)
        #expect(try directory.files(withSuffix: ".partial").isEmpty)
        var total = 0
        for (index, file) in files.enumerated() {
            let report = try SegmentInspector.inspect(path: file)
            #expect(report.problems.isEmpty, "\(file): \(report.problems)")
            #expect(report.codec == "h264")
            #expect(report.width == 640 && report.height == 480)
            #expect(report.startsWithKeyframe)
            #expect(report.boxes.prefix(2) == ["ftyp", "moov"])
            // Fragments of half a second (15 frames): a GOP of a second is two of them.
            #expect(report.framesPerFragment == Array(repeating: 15, count: report.decodedFrames / 15), "\(report.framesPerFragment)")
            #expect(report.decodedFrames == (index < 3 ? 60 : 30))
            #expect(report.metadata["device_id"] == "BC-T1")
            #expect(report.metadata["officer_id"] == "OFC-9")
            #expect(report.metadata["segment_sequence"] == String(index + 1))
            #expect(report.metadata["creation_time"]?.hasPrefix("20") == true)
            total += report.decodedFrames
        }
        #expect(total == 30 * seconds)
        #expect(recorder.segments.map(\.frames) == [60, 60, 60, 30])
    }

    @Test("no picture is lost or duplicated across segment cuts, and the pre-event buffer opens the recording")
    func preEventAndContinuity() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // Recording starts at frame 150 with a 3 s pre-event buffer: it opens on the keyframe of
        // frame 60, the newest GOP start at least 3 s before the press.
        try record(format: format, frames: 300, preEventSeconds: 3, segmentSeconds: 2,
                   store: try PlainFileStore(directory: directory.path), startAtFrame: 150)
        var numbers: [Int?] = []
        for file in try directory.files(withSuffix: ".mp4") {
            numbers += try burnedInFrameNumbers(path: file, format: format)
        }
        #expect(numbers.first == 60)
        #expect(numbers.compactMap { $0 } == Array(60..<300), "every picture once, in order")
    }

    @Test("each segment counts the camera frames missing inside it; a gap before its first picture is not its own",
          arguments: [(start: UInt64(0), preEvent: 0, expected: [3, 1, 4]), (start: 50, preEvent: 1, expected: [3, 1, 4])])
    func droppedFramesPerSegment(start: UInt64, preEvent: Int, expected: [Int]) throws {
        // Gaps (as V4L2 sequence numbers would show them) before frames 10, 30, 45 and 75; GOPs
        // and one-second segments start at frames 0, 30 and 60. Recording from frame 50 with a
        // pre-event buffer (whole GOPs: frames 0–49 here), the gaps before 10 and 45 travel
        // through the buffer with their pictures.
        let gaps: [UInt64: Int] = [10: 3, 30: 2, 45: 1, 75: 4]
        let small = FrameFormat(width: 160, height: 120, pixelFormat: .yuyv422, framesPerSecond: 30)
        let pattern = try TestPatternSource(format: small, pacing: .asFastAsPossible, frameLimit: 90)
        var recorder: Recorder!
        let source = GappySource(pattern, gaps: gaps) { index in if index == start { recorder.startRecording() } }
        recorder = Recorder(configuration: .init(deviceID: "BC-T1", officerID: "OFC-9", preEventSeconds: preEvent, segmentSeconds: 1),
                            source: source, overlay: nil, store: MemoryStore(),
                            makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        try recorder.run()
        #expect(recorder.segments.map(\.framesDropped) == expected)
        #expect(recorder.framesDropped == gaps.values.reduce(0, +))
    }

    @Test("the burned-in caption shows the segment's UTC time, device and officer")
    func overlayReadsBack() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let files = try PlainFileStore(directory: directory.path)
        try record(format: format, frames: 30, segmentSeconds: 10, store: files)
        let file = try #require(try directory.files(withSuffix: ".mp4").first)
        let overlay = Overlay(settings: OverlaySettings(), deviceID: "BC-T1", officerID: "OFC-9")
        var captions: [[String]] = []
        let report = try SegmentInspector.inspect(path: file) { frame in
            let expected = overlay.lines(wallNanoseconds: 0)
            let placement = overlay.layout(width: frame.width, height: frame.height, lines: expected)
            captions.append(expected.indices.map { line in
                String(Painter.readText(from: frame, x: placement.textOrigin.x,
                                        y: placement.textOrigin.y + line * BitmapFont.cellHeight * placement.scale,
                                        scale: placement.scale, count: expected[line].count).map { $0 ?? "~" })
            })
        }
        let first = try #require(captions.first)
        #expect(first[1] == "DEV BC-T1 OFF OFC-9")
        // creation_time "2026-11-29T03:10:16.250000Z" → caption "2026-11-29 03:10:16 UTC"
        let created = try #require(report.metadata["creation_time"])
        let expectedTime = created.prefix(19).replacingOccurrences(of: "T", with: " ") + " UTC"
        #expect(first[0] == expectedTime)
    }

    @Test("a segment cut at an arbitrary byte still opens and yields every complete fragment")
    func truncatedSegmentYieldsCompleteFragments() throws {
        let store = MemoryStore()
        try record(format: format, frames: 150, segmentSeconds: 60, store: store)
        let sink = try #require(store.sinks.first)
        let bytes = sink.bytes
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // Fragment boundaries the muxer declared: the moov, then every half second (a GOP of a
        // second is two fragments).
        let framesPerFragment = Array(sink.fragmentFrames.dropFirst())
        #expect(framesPerFragment.prefix(10) == [15, 15, 15, 15, 15, 15, 15, 15, 15, 15])
        #expect(sink.boundaries.count == framesPerFragment.count + 1)
        var generator = SystemRandomNumberGenerator()
        let firstFragmentEnd = sink.boundaries[1]
        var cuts = (0..<12).map { _ in Int.random(in: firstFragmentEnd..<bytes.count, using: &generator) }
        cuts += [sink.boundaries[2], sink.boundaries[3] + 1, bytes.count - 1]
        // Inside every later moof header and box: the cuts a seekable header scan trips on.
        cuts += MP4Boxes.topLevel(bytes).filter { $0.type == "moof" && $0.offset > firstFragmentEnd }.flatMap { [$0.offset + 4, $0.offset + 10, $0.offset + $0.size - 1] }
        for cut in cuts {
            let path = directory.path + "/cut-\(cut).mp4"
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes[0..<cut]))
            let complete = sink.boundaries.filter { $0 <= cut }.count - 1  // minus the moov
            let report = try SegmentInspector.inspect(path: path)
            #expect(report.decodedFrames >= framesPerFragment.prefix(complete).reduce(0, +),
                    "cut at \(cut): \(report.decodedFrames) frames, \(complete) complete fragments")
        }
    }

    @Test("a full disk stops the pipeline with the store's error, and sealed segments stay intact")
    func fullDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try FillingStore(directory: directory.path, budget: 400_000)
        do {
            try record(format: format, frames: 600, segmentSeconds: 1, store: store)
            Issue.record("the pipeline must report the full disk")
        } catch let error as SystemError {
            #expect(error.description.contains("No space left on device"))
        }
        let sealed = try directory.files(withSuffix: ".mp4")
        #expect(!sealed.isEmpty)
        for file in sealed {
            let report = try SegmentInspector.inspect(path: file)
            #expect(report.problems.isEmpty && report.decodedFrames == 30)
        }
        // The segments in flight stay, never deleted: the one being written, and any the encoder
        // opened while the write queue still held data for it (how many depends on how far the
        // writer thread lagged when the disk filled).
        let partials = try directory.files(withSuffix: ".partial").map { ($0 as NSString).lastPathComponent }
        let newestSealed = sealed.map { ($0 as NSString).lastPathComponent }.max() ?? ""
        #expect(!partials.isEmpty && partials.allSatisfy { $0 > newestSealed }, "\(partials) after \(newestSealed)")
    }

    @Test("frames from NV12 and I420 sources are encoded without conversion", arguments: [PixelFormat.nv12, .yuv420p])
    func planarSourcesSkipConversion(pixelFormat: PixelFormat) throws {
        let encoder = try X264VideoEncoder(settings: testEncoderSettings(), format: FrameFormat(width: 320, height: 240, pixelFormat: pixelFormat, framesPerSecond: 30))
        #expect(!encoder.convertsPixels)
        #expect(encoder.codecPixelFormat == pixelFormat)
        let yuyv = try X264VideoEncoder(settings: testEncoderSettings(), format: FrameFormat(width: 320, height: 240, pixelFormat: .yuyv422, framesPerSecond: 30))
        #expect(yuyv.convertsPixels && yuyv.codecPixelFormat == .yuv420p)
        let store = MemoryStore()
        try record(format: FrameFormat(width: 320, height: 240, pixelFormat: pixelFormat, framesPerSecond: 30),
                   frames: 60, segmentSeconds: 60, store: store)
        #expect(store.sinks.count == 1 && store.sinks[0].finished)
    }
}

@Suite("Recorder")
struct RecorderTests {
    @Test("stopping and starting again closes one segment and opens the next, numbered on")
    func stopAndRestart() throws {
        let run = try Self.record(frames: 200, segmentSeconds: 60) { recorder, index in
            switch index {
            case 0: recorder.startRecording()
            case 50: recorder.stopRecording()
            case 120: recorder.startRecording()
            default: break
            }
        }
        #expect(run.store.sinks.map(\.descriptor.sequence) == [1, 2])
        #expect(run.events.first == "start" && run.events.contains("stop"))
        #expect(run.events.contains("sealed 1 50"))
        // Restart at 120 with no pre-event: it opens on the GOP in progress (keyframe at 90).
        #expect(run.events.last == "sealed 2 110")
    }

    /// A packet stage that asks a stopping recording for two closing packets (as media signing
    /// does) and notes the keyframes it sees.
    final class ClosingStage: PacketStage {
        let keyframes = Locked<[Int64]>([])
        func process(_ packet: inout EncodedPacket) throws { if packet.isKeyframe { keyframes.withLock { $0.append(packet.pts) } } }
        var closingPackets: Int { 2 }
    }

    /// Records `frames` of the test pattern (160x120 NV12, as fast as possible, no pre-event)
    /// through `stage` if any, calling `hook` with the recorder and each frame index; returns the
    /// events (start, stop, sealed N FRAMES) and the store.
    static func record(frames: Int, segmentSeconds: Int, stage: PacketStage? = nil,
                       hook: @escaping (Recorder, UInt64) -> Void) throws -> (events: [String], store: MemoryStore) {
        let format = FrameFormat(width: 160, height: 120, pixelFormat: .nv12, framesPerSecond: 30)
        let store = MemoryStore()
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
        let recorder = Locked<Recorder?>(nil)
        let source = HookedSource(pattern) { index in recorder.current.map { hook($0, index) } }
        let made = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: segmentSeconds), source: source,
                            overlay: nil, store: store, makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        recorder.withLock { $0 = made }
        made.packetStage = stage
        let events = Locked<[String]>([])
        made.onEvent = { event in
            switch event {
            case .recordingStarted: events.withLock { $0.append("start") }
            case .recordingStopped: events.withLock { $0.append("stop") }
            case .segmentSealed(let summary): events.withLock { $0.append("sealed \(summary.descriptor.sequence) \(summary.frames)") }
            default: break
            }
        }
        try made.run()
        return (events.current, store)
    }

    /// `record` through a `ClosingStage`, which it returns too.
    static func recordClosing(frames: Int, segmentSeconds: Int, hook: @escaping (Recorder, UInt64) -> Void) throws -> (events: [String], store: MemoryStore, stage: ClosingStage) {
        let stage = ClosingStage()
        let run = try record(frames: frames, segmentSeconds: segmentSeconds, stage: stage, hook: hook)
        return (run.events, run.store, stage)
    }

    @Test("a stop with a stage that closes (media signing) keeps the keyframe it asks for and the picture after it, in the same segment even at the segment's length")
    func stopKeepsClosingPackets() throws {
        // Stopped at picture 29 of one-second segments: 29 is made a keyframe, where a segment would be cut,
        // but it stays in the first segment, with picture 30 after it.
        let run = try Self.recordClosing(frames: 60, segmentSeconds: 1) { recorder, index in
            if index == 0 { recorder.startRecording() }
            if index == 29 { recorder.stopRecording() }
        }
        #expect(run.events.sorted() == ["sealed 1 31", "start", "stop"], "\(run.events)")
        #expect(run.store.sinks.count == 1)
        #expect(run.stage.keyframes.current.prefix(2) == [0, 29 * 3000], "the stop asked for a keyframe at once: \(run.stage.keyframes.current)")
    }

    @Test("a start while a stop is closing goes on as one recording; a later stop closes it")
    func startWhileClosing() throws {
        let run = try Self.recordClosing(frames: 120, segmentSeconds: 60) { recorder, index in
            switch index {
            case 0: recorder.startRecording()
            case 40: recorder.stopRecording()
            case 41: recorder.startRecording()
            case 70: recorder.stopRecording()
            default: break
            }
        }
        #expect(run.events.sorted() == ["sealed 1 72", "start", "stop"], "\(run.events)")
    }

}

@Suite("Camera loss")
struct CameraLossTests {
    /// A recorder on the simulated camera that starts recording at the first picture and shuts
    /// down after `pictures` of them.
    static func recorder(_ camera: SimulatedV4L2, pictures: Int, store: SegmentStore) throws -> Recorder {
        let v4l2 = try V4L2FrameSource(settings: V4L2Settings(devicePath: "/dev/video-sim", width: 160, height: 120, framesPerSecond: 30),
                                       system: camera)
        let recorder = Locked<Recorder?>(nil)
        let delivered = Locked(0)
        let source = HookedSource(v4l2) { _ in
            let count = delivered.withLock { $0 += 1; return $0 }
            if count == 1 { recorder.current?.startRecording() }
            if count == pictures { recorder.current?.shutdown() }
        }
        let made = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: 60), source: source,
                            overlay: nil, store: store, makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        recorder.withLock { $0 = made }
        return made
    }
    @Test("a camera lost while a signed stop is closing ends the recording there: the camera back does not record")
    func lostWhileClosing() throws {
        _ = quietLibAV
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let camera = SimulatedV4L2()
        camera.frameInterval = 5_000
        camera.vanishAfterFrames = 20
        let v4l2 = try V4L2FrameSource(settings: V4L2Settings(devicePath: "/dev/video-sim", width: 160, height: 120, framesPerSecond: 30),
                                       system: camera)
        let recorder = Locked<Recorder?>(nil)
        let delivered = Locked(0)
        // Stopped at the last picture before the camera goes: the keyframe the stop asks for is written,
        // the picture after it never comes.
        let source = HookedSource(v4l2) { _ in
            let count = delivered.withLock { $0 += 1; return $0 }
            if count == 1 { recorder.current?.startRecording() }
            if count == 20 { recorder.current?.stopRecording() }
            if count == 40 { recorder.current?.shutdown() }
        }
        let made = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: 60), source: source,
                            overlay: nil, store: try PlainFileStore(directory: directory.path),
                            makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        made.packetStage = RecorderTests.ClosingStage()
        made.reopenInterval = 20
        recorder.withLock { $0 = made }
        let events = Locked<[String]>([])
        made.onEvent = { event in
            switch event {
            case .cameraLost: events.withLock { $0.append("lost") }; camera.reconnect()
            case .recordingStopped: events.withLock { $0.append("stop") }
            case .segmentSealed(let summary): events.withLock { $0.append("sealed \(summary.descriptor.sequence) \(summary.frames)") }
            default: break
            }
        }
        try made.run()
        #expect(events.current.sorted() == ["lost", "sealed 1 20", "stop"], "\(events.current)")
        #expect(!made.isRecording)
    }

    @Test("a camera lost while recording: what was recorded is sealed, and recording resumes in the next segment when it is back")
    func lostAndResumed() throws {
        _ = quietLibAV
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let camera = SimulatedV4L2()
        camera.frameInterval = 5_000
        camera.vanishAfterFrames = 20
        let recorder = try Self.recorder(camera, pictures: 60, store: try PlainFileStore(directory: directory.path))
        recorder.reopenInterval = 20
        let events = Locked<[String]>([])
        recorder.onEvent = { event in
            switch event {
            case .cameraLost(let reason):
                events.withLock { $0.append("lost") }
                #expect(reason.contains("/dev/video-sim lost"))
                // Plugged back at once: the recorder finds it at its next reopen attempt.
                camera.reconnect()
            case .cameraRestored: events.withLock { $0.append("restored") }
            case .segmentSealed(let summary): events.withLock { $0.append("sealed \(summary.descriptor.sequence)") }
            default: break
            }
        }
        try recorder.run()
        // Segments are sealed on the writer thread: "sealed 1" may come before or after the
        // camera is back, but only after it was lost.
        let seen = events.current
        #expect(seen.sorted() == ["lost", "restored", "sealed 1", "sealed 2"], "\(seen)")
        #expect(seen.firstIndex(of: "lost")! < seen.firstIndex(of: "sealed 1")!)
        #expect(seen.firstIndex(of: "restored")! < seen.firstIndex(of: "sealed 2")!)
        #expect(recorder.segments.map(\.frames) == [20, 40])
        for file in try directory.files(withSuffix: ".mp4") {
            let report = try SegmentInspector.inspect(path: file)
            #expect(report.problems.isEmpty, "\(file): \(report.problems)")
        }
        #expect(camera.openCount == 0)
    }

    @Test("a camera missing at start is tried again, with backoff, and recorded from as soon as it is there; the heartbeat grows while it waits")
    func missingAtStart() throws {
        _ = quietLibAV
        let camera = SimulatedV4L2()
        camera.frameInterval = 5_000
        camera.openErrno = ENOENT
        camera.failingOpens = 4
        let recorder = try Self.recorder(camera, pictures: 30, store: MemoryStore())
        recorder.reopenInterval = 5
        recorder.maximumReopenInterval = 20
        let events = Locked<[String]>([])
        recorder.onEvent = { event in
            switch event {
            case .cameraLost(let reason):
                events.withLock { $0.append("lost") }
                #expect(reason.contains("camera not available at start"))
            case .cameraRestored: events.withLock { $0.append("restored") }
            case .segmentSealed: events.withLock { $0.append("sealed") }
            default: break
            }
        }
        try recorder.run()
        #expect(events.current == ["lost", "restored", "sealed"])
        #expect(recorder.segments.map(\.frames) == [30])
        #expect(camera.calls.filter { $0 == "open" }.count == 5, "the first try and four more")
        // A beat for each try at the missing camera, and one for each picture.
        #expect(recorder.heartbeat == 4 + 30)
    }

    @Test("a driver that leaves sequence at 0 and loses every other frame: the recorder counts the missing frames, says once why, and the segment says its count is estimated")
    func sequenceZeroThroughRecorder() throws {
        _ = quietLibAV
        let camera = SimulatedV4L2.sequenceAtZeroLosingEveryOtherFrame()
        let recorder = try Self.recorder(camera, pictures: 30, store: MemoryStore())
        let notes = Locked<[String]>([])
        recorder.onEvent = { if case .sequencesUntrusted(let reason) = $0 { notes.withLock { $0.append(reason) } } }
        try recorder.run()
        #expect(notes.current.count == 1, "\(notes.current)")
        #expect(recorder.framesDropped == 29)
        let segment = try #require(recorder.segments.first)
        #expect(recorder.segments.count == 1 && segment.frames == 30)
        #expect(segment.framesDropped == 29 && segment.framesDroppedEstimated)
    }

    @Test("a camera whose timestamps stand still: the recording keeps a real timeline from the dequeue times, and says so once", arguments: [false, true])
    func constantTimestamps(zero: Bool) throws {
        _ = quietLibAV
        let camera = SimulatedV4L2()
        camera.frameInterval = 10_000
        camera.stamp = { _, _ in (zero ? 0 : 5_000_000_000, true) }
        let recorder = try Self.recorder(camera, pictures: 90, store: MemoryStore())
        let notes = Locked<[String]>([])
        recorder.onEvent = { if case .timestampsUntrusted(let reason) = $0 { notes.withLock { $0.append(reason) } } }
        let started = Clock.monotonicNanoseconds()
        try recorder.run()
        let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e9
        #expect(notes.current.count == 1, "\(notes.current)")
        let frames = recorder.segments.reduce(0) { $0 + $1.frames }
        let seconds = Double(recorder.segments.reduce(0) { $0 + $1.duration }) / 90_000
        #expect(frames >= 89)
        // The pictures came about 10 ms apart; the timeline shows that, not a standstill.
        #expect(seconds > 0.5 && seconds <= elapsed + 0.1, "\(seconds) s recorded in \(elapsed) s")
    }

    @Test("an encoder that gives its parameter sets only in-band (as h264_v4l2m2m may): the avcC is made from the first keyframe and every segment plays")
    func inBandParameterSets() throws {
        _ = quietLibAV
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)
        var settings = testEncoderSettings()
        settings.globalHeader = false
        #expect(try makeVideoEncoder(settings: settings, format: format).parameters.extradata.isEmpty, "no parameter sets out of band")
        let source = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 75)
        let recorder = Recorder(configuration: .init(deviceID: "D", preEventSeconds: 0, segmentSeconds: 1), source: source, overlay: nil,
                                store: try PlainFileStore(directory: directory.path),
                                makeEncoder: { try makeVideoEncoder(settings: settings, format: $0) })
        recorder.startRecording()
        try recorder.run()
        let files = try directory.files(withSuffix: ".mp4")
        #expect(files.count == 3)
        var frames = 0
        for file in files {
            let bytes = try readWholeFile(file)
            // The avcC box: its size (4 bytes before the name) holds more than its header, and
            // its version byte is 1 (ISO/IEC 14496-15).
            let name = Array("avcC".utf8)
            let at = try #require((4..<(bytes.count - 5)).first { Array(bytes[$0..<($0 + 4)]) == name }, "\(file) has an avcC")
            let size = Int(bytes[at - 4]) << 24 | Int(bytes[at - 3]) << 16 | Int(bytes[at - 2]) << 8 | Int(bytes[at - 1])
            #expect(size > 8 + 7 && bytes[at + 4] == 1, "\(file): avcC of \(size) bytes")
            let report = try SegmentInspector.inspect(path: file)
            #expect(report.problems.isEmpty, "\(file): \(report.problems)")
            frames += report.decodedFrames
        }
        #expect(frames == 75)
    }

    @Test("fixed-point text for logs")
    func decimals() {
        #expect(formatDecimal(4.93, places: 1) == "4.9")
        #expect(formatDecimal(0.05, places: 2) == "0.05")
        #expect(formatDecimal(-1.25, places: 1) == "-1.3" || formatDecimal(-1.25, places: 1) == "-1.2")
        #expect(formatDecimal(7, places: 0) == "7")
    }
}
