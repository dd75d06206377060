import Foundation
import LibAV
import Testing

struct DiskFull: Error, Equatable {}

@Suite("libav layer")
struct LibAVTests {
    init() { LibAVLogging.setQuiet(true) }

    func encoder() throws -> EncoderContext {
        try EncoderContext(EncoderSettings(codecName: "libx264", width: 64, height: 64, framesPerSecond: 10, sourceFormat: .yuv420p,
                                           timeBase: Rational(1, 90_000), crf: 30, preset: "ultrafast", gopSize: 10))
    }

    @Test("the muxer hands the sink's own error back, and keeps failing the same way")
    func muxerStickyError() throws {
        let context = try encoder()
        var calls = 0
        #expect(throws: DiskFull.self) {
            let muxer = try FragmentedMP4Muxer(parameters: context.parameters, timeBase: Rational(1, 90_000), metadata: []) { _ in
                calls += 1
                throw DiskFull()
            }
            _ = muxer
        }
        #expect(calls == 1, "no write after the first failure")
    }

    @Test("a muxer failing mid-stream reports the sink's error on every later call")
    func muxerFailsMidStream() throws {
        let context = try encoder()
        var budget = 2_000
        let muxer = try FragmentedMP4Muxer(parameters: context.parameters, timeBase: Rational(1, 90_000), metadata: []) { bytes in
            if bytes.count > budget { throw DiskFull() }
            budget -= bytes.count
        }
        // One IDR slice NAL unit in Annex B form, as the encoder emits it.
        let payload: [UInt8] = [0, 0, 0, 1, 0x65] + [UInt8](repeating: 0x55, count: 4_000)
        try payload.withUnsafeBytes { try muxer.write($0, pts: 0, dts: 0, duration: 9000, isKeyframe: true) }
        #expect(throws: DiskFull.self) { try muxer.flushFragment() }
        #expect(throws: DiskFull.self) { try muxer.finish() }
    }

    @Test("an unknown encoder option is refused by name")
    func unknownOption() {
        #expect {
            _ = try EncoderContext(EncoderSettings(codecName: "libx264", width: 64, height: 64, framesPerSecond: 10, sourceFormat: .yuv420p,
                                                   timeBase: Rational(1, 90_000), gopSize: 10, options: [("no-such-option", "1")]))
        } throws: { error in
            (error as? AVError)?.description.contains("no-such-option") == true
        }
    }

    @Test("garbage, an empty file and a missing file are errors, not crashes")
    func readerRejectsBadInput() throws {
        let directory = NSTemporaryDirectory() + "libav-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        _ = FileManager.default.createFile(atPath: directory + "/garbage.mp4", contents: Data(garbage))
        _ = FileManager.default.createFile(atPath: directory + "/empty.mp4", contents: Data())
        for name in ["garbage.mp4", "empty.mp4", "missing.mp4"] {
            #expect(throws: AVError.self) { _ = try MediaReader(path: directory + "/" + name) }
        }
    }

    @Test("YUYV converts to I420 keeping luma exactly")
    func conversion() throws {
        let source = try VideoFrame(width: 32, height: 16, pixelFormat: .yuyv422)
        source.withPlane(0) { bytes, stride in
            for row in 0..<16 { for column in 0..<32 {
                bytes[row * stride + column * 2] = UInt8(16 + (row * 32 + column) % 200)
                bytes[row * stride + column * 2 + 1] = 128
            } }
        }
        source.captureNanoseconds = 42
        let converter = try PixelConverter(width: 32, height: 16, from: .yuyv422, to: .yuv420p)
        let output = try converter.convert(source)
        #expect(output.pixelFormat == .yuv420p && output.captureNanoseconds == 42)
        let luma: [UInt8] = output.withPlane(0) { bytes, stride in
            (0..<16).flatMap { row in (0..<32).map { column in bytes[row * stride + column] } }
        }
        let expected: [UInt8] = (0..<(16 * 32)).map { UInt8(16 + $0 % 200) }
        #expect(luma == expected)
    }

    @Test("pool frames are recycled once released, and packed layouts match rawvideo")
    func framePool() throws {
        let pool = try FramePool(width: 30, height: 20, pixelFormat: .nv12, alignment: 1)
        let frame = try pool.makeFrame()
        #expect(frame.isTightlyPacked)
        #expect(frame.packedBytes().count == PixelFormat.nv12.frameSize(width: 30, height: 20))
        let padded = try FramePool(width: 30, height: 20, pixelFormat: .nv12, alignment: 64).makeFrame()
        #expect(!padded.isTightlyPacked)
        let bytes = (0..<PixelFormat.nv12.frameSize(width: 30, height: 20)).map { UInt8($0 % 251) }
        bytes.withUnsafeBytes { padded.fill(fromPacked: $0) }
        #expect(padded.packedBytes() == bytes)
    }
}
