import H264
import Foundation
import LibAV
import LibAVFormat
import Capture
import TestSupport
import Testing
@testable import Pipeline

private struct DiskFull: Error, Equatable {}

/// The recording path's own fragmented MP4 writer, read back by libavformat (the reference
/// demuxer), libavcodec, and the live view's box reader.
@Suite("FragmentedMP4Writer: the recording path's MP4")
struct FragmentedMP4WriterTests {
    let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)

    func encoded(_ count: Int, settings: VideoEncoderSettings = testEncoderSettings()) throws -> (any VideoEncoder, [EncodedPacket]) {
        let encoder = try makeVideoEncoder(settings: settings, format: format)
        let pattern = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: count)
        try pattern.start()
        var packets: [EncodedPacket] = []
        var index: Int64 = 0
        while let captured = try pattern.nextFrame() {
            captured.frame.captureNanoseconds = 1_000_000_000 + index * 33_333_333
            index += 1
            packets += try encoder.encode(captured.frame)
        }
        try pattern.close()
        return (encoder, packets + (try encoder.flush()))
    }

    /// Writes `packets` in fragments that end before each index of `cuts`; returns the file.
    func write(_ packets: [EncodedPacket], configuration: [UInt8], cuts: Set<Int>, metadata: [(String, String)] = [],
               in directory: TemporaryDirectory) throws -> (path: String, bytes: [UInt8]) {
        var bytes: [UInt8] = []
        let writer = try FragmentedMP4Writer(track: VideoTrackDescription(width: 160, height: 120, decoderConfiguration: configuration, timescale: 90_000),
                                             creationWallNanoseconds: 1_764_504_000_000_000_000, metadata: metadata) { bytes += $0 }
        for (index, packet) in packets.enumerated() {
            if cuts.contains(index) { try writer.flushFragment() }
            try packet.data.withUnsafeBytes { try writer.write($0, pts: packet.pts, dts: packet.dts, duration: packet.duration, isKeyframe: packet.isKeyframe) }
        }
        try writer.finish()
        let path = directory.path + "/segment.mp4"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    @Test("libavformat reads back every packet with its times, keyframe flag and the tags; libavcodec decodes every picture; the boxes are ftyp, moov, moof+mdat per fragment, mfra")
    func roundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let (encoder, packets) = try encoded(45)
        #expect(packets.count == 45)
        // Fragments of half a second, the second of each GOP opening on a picture that is not a keyframe.
        let tags = [("creation_time", "2025-11-30T12:00:00.000000Z"), ("device_id", "BC-0042"), ("title", "bodycam BC-0042 segment 7")]
        let (path, bytes) = try write(packets, configuration: encoder.parameters.extradata, cuts: [15, 30], metadata: tags, in: directory)

        #expect(MP4Boxes.topLevel(bytes).map(\.type) == ["ftyp", "moov", "moof", "mdat", "moof", "mdat", "moof", "mdat", "mfra"])
        #expect(FragmentedMP4.timescale(initSegment: bytes) == 90_000)
        let moov = try #require(FragmentedMP4.find(bytes, ["moov"]))
        #expect(FragmentedMP4.decoderConfiguration(bytes, in: moov.payload..<moov.end)?.first == 1)
        let fragments = MP4Boxes.topLevel(bytes).filter { $0.type == "moof" }.map { box in
            Array(bytes[box.offset..<(box.offset + box.size)])
        }
        #expect(fragments.map(FragmentedMP4.startsWithSyncSample) == [true, false, true])

        let reader = try MediaReader(path: path)
        #expect(reader.codecName == "h264")
        #expect(reader.width == 160 && reader.height == 120)
        for (key, value) in tags { #expect(reader.metadata[key] == value, "tag \(key)") }
        var read: [DemuxedPacket] = []
        let decoded = try reader.decodeAll(packet: { read.append($0) })
        #expect(decoded == 45)
        #expect(reader.decodeErrors == 0)
        #expect(read.map(\.pts) == packets.map(\.pts))
        #expect(read.map(\.dts) == packets.map(\.dts))
        #expect(read.map(\.isKeyframe) == packets.map(\.isKeyframe))
    }

    @Test("an encoder that gives no parameter sets out of band: an avc3 track whose samples carry them, and every picture still decodes")
    func inBandParameterSets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        var settings = testEncoderSettings()
        settings.globalHeader = false
        let (encoder, packets) = try encoded(31, settings: settings)
        #expect(encoder.parameters.extradata.isEmpty)
        let (path, bytes) = try write(packets, configuration: [], cuts: [30], in: directory)
        #expect(FragmentedMP4.find(bytes, ["moov", "trak", "mdia", "minf", "stbl", "stsd"]) != nil)
        #expect(bytes.count > 0 && String(decoding: bytes, as: UTF8.self).contains("avc3"))
        let reader = try MediaReader(path: path)
        #expect(try reader.decodeAll() == 31)
        #expect(reader.decodeErrors == 0)
    }

    @Test("the avcC record from Annex B parameter sets: profile, level, 4-byte lengths, and the High profile's chroma format")
    func decoderConfigurationRecord() throws {
        let (encoder, _) = try encoded(1)
        let annexB = encoder.parameters.extradata
        let units = H264Units.annexB(annexB).map(Array.init)
        let sps = try #require(units.first { $0[0] & 0x1F == 7 })
        let pps = try #require(units.first { $0[0] & 0x1F == 8 })
        let record = try #require(try AVCDecoderConfiguration.record(from: annexB))
        var expected: [UInt8] = [1, sps[1], sps[2], sps[3], 0xFF, 0xE1, UInt8(sps.count >> 8), UInt8(sps.count & 0xFF)] + sps
        expected += [1, UInt8(pps.count >> 8), UInt8(pps.count & 0xFF)] + pps
        if sps[1] == 100 { expected += [0xFD, 0xF8, 0xF8, 0] }  // x264's High profile: 4:2:0, 8 bits
        #expect(record == expected)
        #expect(try AVCDecoderConfiguration.record(from: record) == record, "an avcC is kept as it is")
        #expect(try AVCDecoderConfiguration.record(from: [0, 0, 0, 1, 0x65, 1, 2]) == nil, "no parameter sets")
        #expect(AVCDecoderConfiguration.lengthPrefixed([0, 0, 0, 1, 0x65, 9, 0, 0, 1, 0x06, 7]) == [0, 0, 0, 2, 0x65, 9, 0, 0, 0, 2, 0x06, 7])
        #expect(AVCDecoderConfiguration.lengthPrefixed([0, 0, 0, 2, 0x65, 9]) == [0, 0, 0, 2, 0x65, 9], "already length-prefixed")
        // A cut-off SPS: no chroma format, never a trap.
        #expect(SequenceParameterSet.chromaFormat([0x67, 100, 0]) == nil)
    }

    @Test("the sink's own error comes back, once, and every later call fails the same way without writing")
    func stickyErrors() throws {
        let (encoder, packets) = try encoded(2)
        var calls = 0
        #expect(throws: DiskFull.self) {
            _ = try FragmentedMP4Writer(track: VideoTrackDescription(width: 160, height: 120, decoderConfiguration: encoder.parameters.extradata, timescale: 90_000),
                                        creationWallNanoseconds: 0, metadata: []) { _ in
                calls += 1
                throw DiskFull()
            }
        }
        #expect(calls == 1)

        var budget = 1_000
        calls = 0
        let writer = try FragmentedMP4Writer(track: VideoTrackDescription(width: 160, height: 120, decoderConfiguration: encoder.parameters.extradata, timescale: 90_000),
                                             creationWallNanoseconds: 0, metadata: []) { bytes in
            calls += 1
            if bytes.count > budget { throw DiskFull() }
            budget -= bytes.count
        }
        let payload: [UInt8] = [0, 0, 0, 1, 0x65] + [UInt8](repeating: 0x55, count: 4_000)
        try payload.withUnsafeBytes { try writer.write($0, pts: 0, dts: 0, duration: 3000, isKeyframe: true) }
        #expect(throws: DiskFull.self) { try writer.flushFragment() }
        #expect(throws: DiskFull.self) { try payload.withUnsafeBytes { try writer.write($0, pts: 3000, dts: 3000, duration: 3000, isKeyframe: false) } }
        #expect(throws: DiskFull.self) { try writer.finish() }
        #expect(calls == 2, "the header, then the fragment that failed; nothing after")
        _ = packets
    }

    @Test("bad input is refused by name: an empty sample, a decode time that does not advance (in a fragment or across two), a presentation time no trun can hold, a size no header can hold")
    func badInput() throws {
        let (encoder, _) = try encoded(1)
        let track = VideoTrackDescription(width: 160, height: 120, decoderConfiguration: encoder.parameters.extradata, timescale: 90_000)
        let writer = try FragmentedMP4Writer(track: track, creationWallNanoseconds: 0, metadata: []) { _ in }
        #expect(throws: MP4WriterError.self) { try [UInt8]().withUnsafeBytes { try writer.write($0, pts: 0, dts: 0, duration: 3000, isKeyframe: true) } }
        let sample: [UInt8] = [0, 0, 0, 1, 0x65, 1]
        try sample.withUnsafeBytes { try writer.write($0, pts: 3000, dts: 3000, duration: 3000, isKeyframe: true) }
        #expect(throws: MP4WriterError.self) { try sample.withUnsafeBytes { try writer.write($0, pts: 3000, dts: 3000, duration: 3000, isKeyframe: false) } }
        try writer.flushFragment()
        // Across fragments too: the next one cannot start before the last ended.
        #expect(throws: MP4WriterError.self) { try sample.withUnsafeBytes { try writer.write($0, pts: 2000, dts: 2000, duration: 3000, isKeyframe: true) } }
        #expect(throws: MP4WriterError.self) { try sample.withUnsafeBytes { try writer.write($0, pts: Int64.max, dts: 6000, duration: 3000, isKeyframe: false) } }
        #expect(throws: MP4WriterError.self) { try sample.withUnsafeBytes { try writer.write($0, pts: Int64.min, dts: 6000, duration: 3000, isKeyframe: false) } }
        try writer.finish()
        var wide = track
        wide.width = 70_000
        #expect(throws: MP4WriterError.self) { _ = try FragmentedMP4Writer(track: wide, creationWallNanoseconds: 0, metadata: []) { _ in } }
    }
}
