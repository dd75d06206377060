import Capture
import Glibc
import LibAV
import Platform
import LibAVFormat

/// `frames FILE`: every picture of a media file in presentation order, one line each, "SECONDS
/// NUMBER" (the presentation time, and the frame number the test pattern burned in, or "-"):
/// what a decoder shows when, for the export's browser check (scripts/browser-test.sh).
func printFrameLabels(path: String) throws {
    let reader = try MediaReader(path: path)
    var times: [Int64] = []
    var numbers: [Int?] = []
    try reader.decodeAll(packet: { times.append($0.pts) }, frame: { numbers.append(TestPatternSource.frameNumber(in: $0)) })
    let base = reader.timeBase
    // Pictures come out in presentation order: the sorted presentation times, one each.
    for (pts, number) in zip(times.sorted(), numbers) {
        let seconds = Double(pts) * Double(base.numerator) / Double(base.denominator)
        print("\(formatDecimal(seconds, places: 6)) \(number.map(String.init) ?? "-")")
    }
}

/// `label FILE.pgm`: the frame number burned into a picture given as a binary PGM (P5, 8-bit
/// grey: a browser's canvas, as luma), or "-".
func printPictureLabel(path: String) throws {
    let bytes = try readWholeFile(path, limit: 64 << 20)
    // "P5\n<width> <height>\n255\n" then width × height bytes (Netpbm's PGM, as the check writes it).
    var fields: [Int] = []
    var index = 2
    guard bytes.starts(with: Array("P5".utf8)) else { throw SystemError.file(path: path, call: "read a P5 PGM", errno: EINVAL) }
    while fields.count < 3 && index < bytes.count {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A { index += 1 }
        var value = 0
        while index < bytes.count, (0x30...0x39).contains(bytes[index]), value < 1 << 20 { value = value * 10 + Int(bytes[index] - 0x30); index += 1 }
        fields.append(value)
    }
    index += 1
    guard fields.count == 3, fields[2] == 255, fields[0] > 0, fields[1] > 0, bytes.count - index >= fields[0] * fields[1] else {
        throw SystemError.file(path: path, call: "read a P5 PGM", errno: EINVAL)
    }
    let (width, height) = (fields[0], fields[1])
    let frame = try VideoFrame(width: width & ~1, height: height & ~1, pixelFormat: .yuv420p)
    frame.withPlane(0) { plane, stride in
        for row in 0..<frame.height {
            bytes.withUnsafeBytes { source in
                (plane.baseAddress! + row * stride).copyMemory(from: source.baseAddress! + index + row * width, byteCount: frame.width)
            }
        }
    }
    print(TestPatternSource.frameNumber(in: frame).map(String.init) ?? "-")
}
