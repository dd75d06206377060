import LibAV
import Capture
import Platform
import TestSupport
import Testing
@testable import Pipeline

@Suite("Encoder and segmentMuxer")
struct EncoderTests {
    let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)

    func frames(_ count: Int, spacing: Int64 = 33_333_333) throws -> [VideoFrame] {
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: count)
        try pattern.start()
        var result: [VideoFrame] = []
        while let captured = try pattern.nextFrame() {
            captured.frame.captureNanoseconds = 5_000_000_000 + Int64(result.count) * spacing
            result.append(captured.frame)
        }
        try pattern.close()
        return result
    }

    func encodeAll(_ encoder: any VideoEncoder, _ frames: [VideoFrame], forceAt: Set<Int> = []) throws -> [EncodedPacket] {
        var packets: [EncodedPacket] = []
        for (index, frame) in frames.enumerated() {
            if forceAt.contains(index) { encoder.requestKeyframe() }
            packets += try encoder.encode(frame)
        }
        return packets + (try encoder.flush())
    }

    /// The recording path's libx264 (called directly) and libavcodec's wrapper of it, which
    /// `LibAVVideoEncoder` also drives for the SoC's encoder: both keep the same stream shape.
    enum Implementation: String, CaseIterable, CustomTestStringConvertible {
        case direct, libavcodec
        var testDescription: String { rawValue }
        func make(_ format: FrameFormat) throws -> any VideoEncoder {
            self == .direct ? try X264VideoEncoder(settings: testEncoderSettings(), format: format)
                : try LibAVVideoEncoder(settings: testEncoderSettings(), format: format)
        }
    }

    @Test("GOP is one second, closed, without B-frames; timestamps come from capture time", arguments: Implementation.allCases)
    func gopAndTimestamps(implementation: Implementation) throws {
        let encoder = try implementation.make(format)
        let packets = try encodeAll(encoder, try frames(95))
        #expect(packets.count == 95)
        #expect(packets.indices.filter { packets[$0].isKeyframe } == [0, 30, 60, 90])
        #expect(packets.allSatisfy { $0.pts == $0.dts }, "no reordering")
        #expect(packets.map(\.pts) == (0..<95).map { Int64($0) * 3000 })
        #expect(packets.allSatisfy { $0.duration == 3000 })
    }

    @Test("keyframes follow capture time, not frame counts: a camera at half its rate still gives one-second GOPs, and a hole in capture starts a new one", arguments: Implementation.allCases)
    func keyframesByTime(implementation: Implementation) throws {
        let slow = try implementation.make(format)
        let half = try encodeAll(slow, try frames(62, spacing: 66_666_667))
        #expect(half.indices.filter { half[$0].isKeyframe } == [0, 15, 30, 45, 60])
        let gappy = try implementation.make(format)
        let input = try frames(40)
        for frame in input[10...] { frame.captureNanoseconds += 2_500_000_000 }
        let packets = try encodeAll(gappy, input)
        #expect(packets.indices.filter { packets[$0].isKeyframe } == [0, 10], "the first picture after 2.5 s of nothing")
        let fast = try implementation.make(format)
        let double = try encodeAll(fast, try frames(125, spacing: 16_666_667))
        // A camera at twice its rate: a keyframe about every 60 pictures (one second), not 30;
        // no GOP longer than a second, none shorter than a second less one nominal frame.
        let keys = double.filter(\.isKeyframe).map(\.pts)
        #expect(keys.count == 3, "\(keys)")
        #expect(zip(keys, keys.dropFirst()).allSatisfy { (87_000...90_000).contains($1 - $0) }, "\(keys)")
    }

    @Test("a late frame keeps its real capture time in the stream")
    func captureTimeGaps() throws {
        let encoder = try makeVideoEncoder(settings: testEncoderSettings(), format: format)
        let input = try frames(3)
        input[2].captureNanoseconds += 100_000_000
        let packets = try encodeAll(encoder, input)
        #expect(packets.map(\.pts) == [0, 3000, 6000 + 9000])
    }

    @Test("a requested keyframe comes on the next picture, and the one-second cadence restarts from it", arguments: Implementation.allCases)
    func forcedKeyframe(implementation: Implementation) throws {
        let encoder = try implementation.make(format)
        let packets = try encodeAll(encoder, try frames(70), forceAt: [7, 31])
        #expect(packets.indices.filter { packets[$0].isKeyframe } == [0, 7, 31, 61])
    }

    @Test("an encoder this libavcodec lacks is a clear error")
    func unknownEncoder() {
        var settings = testEncoderSettings()
        settings.codec = "h264_nonexistent"
        #expect { _ = try makeVideoEncoder(settings: settings, format: format) } throws: { error in
            (error as? AVError)?.description.contains("no such encoder") == true
        }
    }

    @Test("segments are cut on the first keyframe at or past their length, and every packet lands once")
    func segmentCuts() throws {
        let encoder = try makeVideoEncoder(settings: testEncoderSettings(), format: format)
        // Keyframes at 0, 30, 45 (forced; the cadence restarts there), 75, 105: 1 s segments are
        // cut at 30, 75 (45 is only 0.5 s in) and 105.
        let packets = try encodeAll(encoder, try frames(130), forceAt: [45])
        let store = MemoryStore()
        let segmentMuxer = SegmentMuxer(configuration: .init(segmentSeconds: 1, deviceID: "D", officerID: "O"), store: store,
                                  parameters: encoder.parameters, timeBase: encoder.timeBase, epochMonotonic: 0,
                                  anchor: ClockAnchor(monotonicNanoseconds: 0, wallNanoseconds: 1_795_921_816_000_000_000))
        for packet in packets { try segmentMuxer.write(packet) }
        try segmentMuxer.finish()
        #expect(packets.indices.filter { packets[$0].isKeyframe } == [0, 30, 45, 75, 105])
        #expect(segmentMuxer.completed.map(\.frames) == [30, 45, 30, 25])
        #expect(segmentMuxer.completed.map(\.fragments) == [1, 2, 1, 1])
        #expect(segmentMuxer.completed.map(\.descriptor.sequence) == [1, 2, 3, 4])
        #expect(segmentMuxer.completed[1].descriptor.baseName == "seg-000002-20261129T031017Z")
        #expect(store.sinks.allSatisfy { $0.finished })
        // Each sink: the moov, then one boundary per fragment (the last one after the trailer).
        #expect(store.sinks.map(\.boundaries.count) == [2, 3, 2, 2])
        for sink in store.sinks {
            let boxes = MP4Boxes.topLevel(sink.bytes)
            #expect(boxes.map(\.type).prefix(2) == ["ftyp", "moov"])
            #expect(boxes.allSatisfy { $0.isComplete })
            #expect(sink.boundaries.first == boxes[1].offset + boxes[1].size, "the moov is its own durable unit")
        }
    }

    /// `frames` encoded pictures and a muxer of one-minute segments into memory, for them.
    func minuteMuxer(frames count: Int) throws -> ([EncodedPacket], SegmentMuxer) {
        let encoder = try makeVideoEncoder(settings: testEncoderSettings(), format: format)
        let packets = try encodeAll(encoder, try frames(count))
        let segmentMuxer = SegmentMuxer(configuration: .init(segmentSeconds: 60, deviceID: "D", officerID: "O"), store: MemoryStore(),
                                        parameters: encoder.parameters, timeBase: encoder.timeBase, epochMonotonic: 0, anchor: .now())
        return (packets, segmentMuxer)
    }

    @Test("a packet that is not a keyframe never opens a segment")
    func noOpenWithoutKeyframe() throws {
        let (packets, segmentMuxer) = try minuteMuxer(frames: 35)
        for packet in packets.dropFirst(3) { try segmentMuxer.write(packet) }
        try segmentMuxer.finish()
        #expect(segmentMuxer.skippedPackets == 27)
        #expect(segmentMuxer.completed.map(\.frames) == [5])
    }

    @Test("an empty packet from the encoder holds no picture: it is passed over and the segment goes on")
    func emptyPacket() throws {
        let (packets, segmentMuxer) = try minuteMuxer(frames: 10)
        for (index, packet) in packets.enumerated() {
            if index == 5 {
                var empty = packet
                empty.data = []
                try segmentMuxer.write(empty)
            }
            try segmentMuxer.write(packet)
        }
        try segmentMuxer.finish()
        #expect(segmentMuxer.completed.map(\.frames) == [10])
    }
}

@Suite("Small parts")
struct SmallPartTests {
    @Test("MP4 top-level boxes, including 64-bit sizes and a cut-off last box")
    func boxes() {
        var bytes: [UInt8] = [0, 0, 0, 16] + Array("ftyp".utf8) + [UInt8](repeating: 0, count: 8)
        bytes += [0, 0, 0, 1] + Array("mdat".utf8) + [0, 0, 0, 0, 0, 0, 0, 24] + [UInt8](repeating: 7, count: 8)
        bytes += [0, 0, 1, 0] + Array("moof".utf8) + [1, 2, 3]
        let boxes = MP4Boxes.topLevel(bytes)
        #expect(boxes == [MP4Box(type: "ftyp", offset: 0, size: 16, isComplete: true),
                          MP4Box(type: "mdat", offset: 16, size: 24, isComplete: true),
                          MP4Box(type: "moof", offset: 40, size: 11, isComplete: false)])
        #expect(MP4Boxes.topLevel([0, 0, 0, 3, 0x61, 0x62, 0x63, 0x64]).isEmpty, "a size below 8 is corrupt")
    }

    @Test("a bounded queue drops the oldest under dropOldest and blocks under block")
    func boundedQueue() {
        let dropping = BoundedQueue<Int>(capacity: 3, policy: .dropOldest)
        for value in 1...5 { dropping.push(value) }
        #expect(dropping.takeDropped() == 2)
        #expect(dropping.pop() == 3)
        dropping.close()
        #expect(dropping.pop() == 4 && dropping.pop() == 5 && dropping.pop() == nil)
        #expect(!dropping.push(9))

        let blocking = BoundedQueue<Int>(capacity: 2, policy: .block)
        let producer = WorkerThread(name: "producer") { for value in 0..<100 { blocking.push(value) }; blocking.close() }
        var received: [Int] = []
        while let value = blocking.pop() { received.append(value) }
        producer.join()
        #expect(received == Array(0..<100))
        #expect(blocking.takeDropped() == 0)
    }

    @Test("UTC formatting for captions, metadata and file names")
    func clockFormats() {
        let instant: Int64 = 1_795_921_816_250_000_000
        #expect(Clock.overlayTimestamp(wallNanoseconds: instant) == "2026-11-29 03:10:16 UTC")
        #expect(Clock.iso8601(wallNanoseconds: instant) == "2026-11-29T03:10:16.250000Z")
        #expect(Clock.compactUTC(wallNanoseconds: instant) == "20261129T031016Z")
        let anchor = ClockAnchor(monotonicNanoseconds: 1_000, wallNanoseconds: instant)
        #expect(anchor.wall(atMonotonic: 1_000 + 2_000_000_000) == instant + 2_000_000_000)
    }
}

@Suite("Hardware encoder selection")
struct HardwareEncoderTests {
    @Test("h264_v4l2m2m is selectable: it encodes where the SoC has one, and otherwise fails naming itself")
    func v4l2m2m() throws {
        _ = quietLibAV
        var settings = testEncoderSettings()
        settings.codec = "h264_v4l2m2m"
        settings.bitrateKbps = 2000
        settings.crf = nil
        let format = FrameFormat(width: 320, height: 240, pixelFormat: .nv12, framesPerSecond: 30)
        #expect(EncoderContext.isAvailable("h264_v4l2m2m"), "Debian's libavcodec carries the wrapper")
        do {
            let encoder = try makeVideoEncoder(settings: settings, format: format)
            #expect(encoder.name.hasPrefix("h264_v4l2m2m 2000 kb/s"))
        } catch let error as AVError {
            #expect(error.operation.contains("h264_v4l2m2m"), "\(error)")
        }
    }
}
