import LibAV
import Platform

/// A colour as BT.601 limited-range Y'CbCr.
public struct YUVColor: Equatable, Sendable {
    public var y: UInt8, u: UInt8, v: UInt8
    public init(y: UInt8, u: UInt8, v: UInt8) { self.y = y; self.u = u; self.v = v }

    public init(red: Int, green: Int, blue: Int) {
        func clamp(_ value: Int) -> UInt8 { UInt8(max(0, min(255, value))) }
        y = clamp((66 * red + 129 * green + 25 * blue + 128) >> 8 + 16)
        u = clamp((-38 * red - 74 * green + 112 * blue + 128) >> 8 + 128)
        v = clamp((112 * red - 94 * green - 18 * blue + 128) >> 8 + 128)
    }

    public static let black = YUVColor(y: 16, u: 128, v: 128)
    public static let white = YUVColor(y: 235, u: 128, v: 128)
}

/// Draws straight into a picture's luma and chroma planes, in whichever layout it has
/// (I420, NV12, YUYV): no conversion, no allocation.
public enum Painter {
    /// Fills a rectangle, clipped to the picture. Chroma is written for the 2×2 (4:2:0) or 2×1
    /// (4:2:2) blocks the rectangle covers, so use even coordinates for exact edges.
    public static func fill(_ frame: VideoFrame, x: Int, y: Int, width: Int, height: Int, color: YUVColor) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(frame.width, x + width), y1 = min(frame.height, y + height)
        guard x1 > x0, y1 > y0 else { return }
        switch frame.pixelFormat {
        case .yuyv422:
            frame.withPlane(0) { bytes, stride in
                let cx0 = x0 & ~1
                for row in y0..<y1 {
                    let line = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * stride
                    var column = cx0
                    while column < x1 {
                        if column >= x0 { line[column * 2] = color.y }
                        if column + 1 < x1 { line[column * 2 + 2] = color.y }
                        line[column * 2 + 1] = color.u
                        line[column * 2 + 3] = color.v
                        column += 2
                    }
                }
            }
        case .yuv420p, .nv12:
            frame.withPlane(0) { bytes, stride in
                for row in y0..<y1 {
                    (bytes.baseAddress! + row * stride + x0).initializeMemory(as: UInt8.self, repeating: color.y, count: x1 - x0)
                }
            }
            let cx0 = x0 / 2, cx1 = (x1 + 1) / 2, cy0 = y0 / 2, cy1 = (y1 + 1) / 2
            if frame.pixelFormat == .yuv420p {
                for (plane, value) in [(1, color.u), (2, color.v)] {
                    frame.withPlane(plane) { bytes, stride in
                        for row in cy0..<cy1 {
                            (bytes.baseAddress! + row * stride + cx0).initializeMemory(as: UInt8.self, repeating: value, count: cx1 - cx0)
                        }
                    }
                }
            } else {
                frame.withPlane(1) { bytes, stride in
                    for row in cy0..<cy1 {
                        let line = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * stride
                        for column in cx0..<cx1 {
                            line[column * 2] = color.u
                            line[column * 2 + 1] = color.v
                        }
                    }
                }
            }
        }
    }

    /// Sets luma only for a scale×scale block (text strokes over an already neutral box).
    @inline(__always)
    static func lumaBlock(_ line0: UnsafeMutablePointer<UInt8>, stride: Int, x: Int, scale: Int, step: Int, value: UInt8) {
        for dy in 0..<scale {
            let line = line0 + dy * stride
            for dx in 0..<scale { line[(x + dx) * step] = value }
        }
    }

    /// Draws `text` with the built-in font, top-left corner at (x, y), each font pixel a
    /// scale×scale block of luma `value`. Pixels outside the picture are skipped.
    public static func drawText(_ text: String, into frame: VideoFrame, x: Int, y: Int, scale: Int, value: UInt8 = YUVColor.white.y) {
        let step = frame.pixelFormat == .yuyv422 ? 2 : 1
        frame.withPlane(0) { bytes, stride in
            let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var penX = x
            for character in text {
                let rows = BitmapFont.glyph(for: character)
                for (rowIndex, bits) in rows.enumerated() where bits != 0 {
                    let top = y + rowIndex * scale
                    guard top >= 0, top + scale <= frame.height else { continue }
                    for column in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(column)) != 0 {
                        let left = penX + column * scale
                        guard left >= 0, left + scale <= frame.width else { continue }
                        lumaBlock(base + top * stride, stride: stride, x: left, scale: scale, step: step, value: value)
                    }
                }
                penX += BitmapFont.cellWidth * scale
            }
        }
    }

    /// Reads back `count` characters drawn by `drawText` at (x, y) and `scale`, by sampling the
    /// middle of every font pixel against `threshold`. A character whose pixels match no glyph
    /// (damaged by compression, or not text) reads as nil.
    public static func readText(from frame: VideoFrame, x: Int, y: Int, scale: Int, count: Int, threshold: UInt8 = 128) -> [Character?] {
        let step = frame.pixelFormat == .yuyv422 ? 2 : 1
        return frame.withPlane(0) { bytes, stride in
            let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return (0..<count).map { index in
                let left = x + index * BitmapFont.cellWidth * scale
                var rows: [UInt8] = []
                for row in 0..<BitmapFont.glyphHeight {
                    var bits: UInt8 = 0
                    for column in 0..<BitmapFont.glyphWidth {
                        let px = left + column * scale + scale / 2, py = y + row * scale + scale / 2
                        guard px < frame.width, py < frame.height else { return nil }
                        if base[py * stride + px * step] >= threshold { bits |= 0x10 >> UInt8(column) }
                    }
                    rows.append(bits)
                }
                return BitmapFont.character(matching: rows)
            }
        }
    }

    /// Copies the whole picture from `source` (same size and layout).
    public static func copy(_ source: VideoFrame, into destination: VideoFrame) {
        precondition(source.pixelFormat == destination.pixelFormat && source.width == destination.width && source.height == destination.height)
        for plane in 0..<source.pixelFormat.planeCount {
            let rowBytes = source.planeRowBytes(plane)
            source.withPlane(plane) { from, fromStride in
                destination.withPlane(plane) { to, toStride in
                    if fromStride == toStride {
                        to.copyMemory(from: UnsafeRawBufferPointer(from))
                    } else {
                        for row in 0..<source.planeHeight(plane) {
                            (to.baseAddress! + row * toStride).copyMemory(from: from.baseAddress! + row * fromStride, byteCount: rowBytes)
                        }
                    }
                }
            }
        }
    }
}
