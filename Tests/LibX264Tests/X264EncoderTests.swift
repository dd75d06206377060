import LibX264
import Testing

@Suite("LibX264: the recording path's encoder, without libavcodec")
struct X264EncoderTests {
    static let width = 64, height = 48

    func settings(_ layout: X264InputLayout = .i420, globalHeader: Bool = true, preset: String = "ultrafast",
                  tune: String? = "zerolatency", width: Int = width) -> X264Settings {
        X264Settings(input: layout, width: width, height: X264EncoderTests.height, framesPerSecond: 30, timescale: 90_000,
                     preset: preset, tune: tune, bitrateKbps: 500, vbvMaxKbps: 500, vbvBufferKbits: 1000, crf: nil,
                     keyintFrames: 60, bFrames: 0, globalHeader: globalHeader)
    }

    /// NAL unit types of an Annex B stream, in order (ITU-T H.264 7.4.1).
    func unitTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                types.append(bytes[index + 3] & 0x1F)
                index += 3
            } else {
                index += 1
            }
        }
        return types
    }

    /// Encodes `count` pictures that change from one to the next (a moving bar), in `layout`.
    func encode(_ encoder: X264Encoder, count: Int, idrAt: Set<Int> = []) throws -> [X264Packet] {
        let layout = encoder.settings.input
        let chromaBytes = X264EncoderTests.width * X264EncoderTests.height / 4
        var packets: [X264Packet] = []
        for index in 0..<count {
            var luma = [UInt8](repeating: 90, count: X264EncoderTests.width * X264EncoderTests.height)
            for row in 0..<X264EncoderTests.height { luma[row * X264EncoderTests.width + (index * 3) % X264EncoderTests.width] = 235 }
            let blue = [UInt8](repeating: 100, count: chromaBytes), red = [UInt8](repeating: 150, count: chromaBytes)
            let interleaved = zip(blue, red).flatMap { [$0, $1] }
            let packet: X264Packet? = try luma.withUnsafeBytes { y in
                switch layout {
                case .i420:
                    return try blue.withUnsafeBytes { u in
                        try red.withUnsafeBytes { v in
                            try encoder.encode(planes: [(y.baseAddress!, X264EncoderTests.width), (u.baseAddress!, X264EncoderTests.width / 2),
                                                        (v.baseAddress!, X264EncoderTests.width / 2)],
                                               pts: Int64(index) * 3000, idr: idrAt.contains(index))
                        }
                    }
                case .nv12:
                    return try interleaved.withUnsafeBytes { uv in
                        try encoder.encode(planes: [(y.baseAddress!, X264EncoderTests.width), (uv.baseAddress!, X264EncoderTests.width)],
                                           pts: Int64(index) * 3000, idr: idrAt.contains(index))
                    }
                }
            }
            packets += packet.map { [$0] } ?? []
        }
        while let packet = try encoder.flush() { packets.append(packet) }
        return packets
    }

    @Test("SPS and PPS come out of band; the first picture carries x264's version SEI, as libavcodec put it; every picture comes back with its times", arguments: [X264InputLayout.i420, .nv12])
    func outOfBandHeaders(layout: X264InputLayout) throws {
        let encoder = try X264Encoder(settings(layout))
        #expect(unitTypes(encoder.parameterSets) == [7, 8])
        let packets = try encode(encoder, count: 10)
        #expect(packets.count == 10)
        #expect(packets.map(\.pts) == (0..<10).map { Int64($0) * 3000 })
        #expect(packets.allSatisfy { $0.dts == $0.pts }, "no B-frames, no reordering")
        #expect(unitTypes(packets[0].data) == [6, 5], "the version SEI, then the IDR slice")
        #expect(String(decoding: packets[0].data, as: UTF8.self).contains("x264 - core"))
        #expect(packets.dropFirst().allSatisfy { !unitTypes($0.data).contains(6) && !unitTypes($0.data).contains(7) }, "the SEI once, no in-band SPS")
        #expect(packets.map(\.isKeyframe) == [true] + Array(repeating: false, count: 9))
    }

    @Test("a picture asked to be IDR is one, and a closed GOP starts there; keyint is the backstop")
    func forcedIDR() throws {
        let encoder = try X264Encoder(settings())
        let packets = try encode(encoder, count: 130, idrAt: [7, 40])
        #expect(packets.indices.filter { packets[$0].isKeyframe } == [0, 7, 40, 100], "60 pictures after the last one")
        #expect(packets.filter(\.isKeyframe).allSatisfy { unitTypes($0.data).contains(5) }, "IDR slices, not open-GOP I pictures")
    }

    @Test("without a global header the parameter sets come in-band, before every IDR, as an SoC encoder gives them")
    func inBandHeaders() throws {
        let encoder = try X264Encoder(settings(globalHeader: false))
        #expect(encoder.parameterSets.isEmpty)
        let packets = try encode(encoder, count: 5, idrAt: [3])
        let keyframes = packets.filter(\.isKeyframe)
        #expect(keyframes.count == 2)
        #expect(keyframes.allSatisfy { let types = unitTypes($0.data); return types.contains(7) && types.contains(8) && types.contains(5) })
    }

    @Test("with look-ahead and frame threads (no zerolatency) pictures are held; flush gives every one back, in order")
    func flushGivesHeldPictures() throws {
        let encoder = try X264Encoder(settings(preset: "veryfast", tune: nil))
        let packets = try encode(encoder, count: 5)
        #expect(packets.map(\.pts) == (0..<5).map { Int64($0) * 3000 })
        #expect(encoder.delayedFrames == 0)
    }

    @Test("settings libx264 refuses are errors that name them, not a crash")
    func refusals() {
        #expect { _ = try X264Encoder(settings(preset: "warp-speed")) } throws: { error in
            "\(error)".contains("warp-speed") && "\(error)".contains("preset")
        }
        #expect { _ = try X264Encoder(settings(tune: "cinematic")) } throws: { error in "\(error)".contains("cinematic") }
        #expect { _ = try X264Encoder(settings(width: 63)) } throws: { error in "\(error)".contains("63x48") && "\(error)".contains("even") }
    }
}
