import Foundation
import LibAV
import Testing
import LibAVFormat


@Suite("libav layer")
struct LibAVTests {
    init() { LibAVLogging.setQuiet(true) }

    func encoder() throws -> EncoderContext {
        try EncoderContext(EncoderSettings(codecName: "libx264", width: 64, height: 64, framesPerSecond: 10, sourceFormat: .yuv420p,
                                           timeBase: Rational(1, 90_000), crf: 30, preset: "ultrafast", gopSize: 10))
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

/// A JPEG of a busy 320x240 picture (gradients and a pseudo-random texture, so its entropy-coded
/// data is long), made with libavcodec's own MJPEG encoder, as a UVC camera would send it.
func cameraJPEG() throws -> [UInt8] {
    let pool = try FramePool(width: 320, height: 240, pixelFormat: .yuv420p)
    let picture = try pool.makeFrame()
    var seed: UInt32 = 12345
    for plane in 0..<3 {
        picture.withPlane(plane) { bytes, stride in
            let rows = plane == 0 ? 240 : 120, columns = plane == 0 ? 320 : 160
            for row in 0..<rows {
                for column in 0..<columns {
                    seed = seed &* 1_103_515_245 &+ 12345
                    bytes[row * stride + column] = UInt8(truncatingIfNeeded: (row * 3 + column * 2) / 4 + Int(seed >> 27))
                }
            }
        }
    }
    let jpeg = try EncoderContext(EncoderSettings(codecName: "mjpeg", width: 320, height: 240, framesPerSecond: 30, sourceFormat: .yuv420p,
                                                  timeBase: Rational(1, 30), gopSize: 1, options: [("color_range", "jpeg")]))
    try jpeg.send(picture)
    try jpeg.send(nil)
    guard case .value(let packet) = try jpeg.receive() else { throw AVError("no JPEG", code: -1) }
    return packet.bytes
}

@Suite("Damaged MJPEG pictures")
struct DamagedJPEGTests {
    init() { LibAVLogging.setQuiet(true) }

    func decodes(_ bytes: [UInt8]) -> Bool {
        guard let decoder = try? PictureDecoder(codecName: "mjpeg", width: 320, height: 240, output: .yuv420p) else { return false }
        return bytes.withUnsafeBytes { (try? decoder.decode($0)) != nil }
    }

    @Test("a whole JPEG decodes; cut anywhere (9 lengths) it is refused, and so is every changed byte libavcodec can recognise: damage is never concealed")
    func damaged() throws {
        let jpeg = try cameraJPEG()
        #expect(decodes(jpeg))
        #expect(decodes(jpeg + [UInt8](repeating: 0, count: 64)), "zero padding after EOI, as some cameras send")
        let cuts = (1...9).map { jpeg.count * $0 / 10 }
        let cutDecoded = cuts.filter { decodes(Array(jpeg.prefix($0))) }
        #expect(cutDecoded.isEmpty, "cut JPEGs that decoded: \(cutDecoded) of \(jpeg.count) bytes")
        // The entropy-coded data: after the start-of-scan header, up to EOI.
        let sos = try #require((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        let start = sos + 2 + Int(jpeg[sos + 2]) << 8 + Int(jpeg[sos + 3])
        let end = jpeg.count - 2
        var undetected: [Int] = []
        for index in 0..<19 {
            let position = start + (end - start) * (2 * index + 1) / 38
            var damaged = jpeg
            damaged[position] ^= 0x5A
            if decodes(damaged) { undetected.append(position) }
        }
        // JPEG carries no checksum: a changed byte whose bits still parse as valid codes decodes
        // to a wrong picture that nothing can tell from a right one. Every change libavcodec
        // recognises (8 of these 19; it conceals them all by default, copying the last picture
        // into the damaged rows) is refused.
        #expect(19 - undetected.count >= 8, "refused \(19 - undetected.count) of 19 changed bytes; undetected at \(undetected)")
    }
}
