// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVUtil
import CShims
import CSwScale

/// One raw picture. Owns exactly one AVFrame (freed in deinit); the picture bytes live in a
/// reference-counted AVBuffer, usually from a `FramePool`, so a frame the encoder still
/// references is not recycled under it.
// A picture is handed from one thread to the next (capture → pipeline → encoder) and is never
// used by two at once: the hand-over queue transfers it. libavcodec keeps its own reference
// counts on the buffers, which are atomic.
public final class VideoFrame: @unchecked Sendable {
    package let frame: UnsafeMutablePointer<AVFrame>
    public let width: Int
    public let height: Int
    public let pixelFormat: PixelFormat
    /// Capture sequence number (V4L2 buffer sequence, or frame index for synthetic sources).
    public var sequence: UInt64 = 0
    /// Capture time on CLOCK_MONOTONIC, in nanoseconds.
    public var captureNanoseconds: Int64 = 0
    /// Ask the encoder to make this picture an IDR frame.
    public var forceKeyframe = false

    /// Takes ownership of `frame`.
    package init(taking frame: UnsafeMutablePointer<AVFrame>, pixelFormat: PixelFormat) {
        self.frame = frame
        self.width = Int(frame.pointee.width)
        self.height = Int(frame.pointee.height)
        self.pixelFormat = pixelFormat
    }

    /// A frame with its own freshly allocated, zeroed picture buffer (av_frame_get_buffer).
    public convenience init(width: Int, height: Int, pixelFormat: PixelFormat) throws {
        var raw = av_frame_alloc()
        guard let frame = raw else { throw AVError("av_frame_alloc", code: bc_averror(ENOMEM)) }
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        frame.pointee.format = pixelFormat.av.rawValue
        let status = av_frame_get_buffer(frame, 0)
        if status < 0 {
            av_frame_free(&raw)
            throw AVError("av_frame_get_buffer(\(width)x\(height) \(pixelFormat))", code: status)
        }
        self.init(taking: frame, pixelFormat: pixelFormat)
        for plane in 0..<pixelFormat.planeCount {
            withPlane(plane) { bytes, _ in _ = bytes.initializeMemory(as: UInt8.self, repeating: 0) }
        }
    }

    deinit {
        var raw: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&raw)
    }

    /// Rows in plane `index` (chroma planes of 4:2:0 have half as many).
    public func planeHeight(_ index: Int) -> Int {
        switch (pixelFormat, index) {
        case (.yuyv422, _), (_, 0): return height
        default: return (height + 1) / 2
        }
    }

    /// Bytes of plane `index` that carry picture in each row (the rest of the stride is padding).
    public func planeRowBytes(_ index: Int) -> Int {
        switch (pixelFormat, index) {
        case (.yuyv422, _): return width * 2
        case (_, 0): return width
        case (.nv12, _): return ((width + 1) / 2) * 2
        default: return (width + 1) / 2
        }
    }

    public func stride(_ index: Int) -> Int {
        precondition(index < pixelFormat.planeCount)
        return withUnsafeBytes(of: frame.pointee.linesize) { $0.load(fromByteOffset: index * 4, as: Int32.self) }.asInt
    }

    /// Calls `body` with plane `index` (stride × rows bytes) and its stride.
    public func withPlane<R>(_ index: Int, _ body: (UnsafeMutableRawBufferPointer, Int) throws -> R) rethrows -> R {
        precondition(index < pixelFormat.planeCount)
        let base = withUnsafeBytes(of: frame.pointee.data) {
            $0.load(fromByteOffset: index * MemoryLayout<UnsafeMutablePointer<UInt8>?>.stride, as: UnsafeMutablePointer<UInt8>?.self)
        }
        let stride = self.stride(index)
        let bytes = UnsafeMutableRawBufferPointer(start: base, count: stride * planeHeight(index))
        return try body(bytes, stride)
    }

    /// Copies the visible picture, tightly packed plane after plane: the rawvideo file layout.
    public func packedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pixelFormat.frameSize(width: width, height: height))
        for plane in 0..<pixelFormat.planeCount {
            let rowBytes = planeRowBytes(plane)
            withPlane(plane) { bytes, stride in
                for row in 0..<planeHeight(plane) {
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(row * stride)..<(row * stride + rowBytes)]))
                }
            }
        }
        return out
    }

    /// Fills the picture from tightly packed rawvideo bytes (the inverse of `packedBytes`).
    public func fill(fromPacked packed: UnsafeRawBufferPointer) {
        precondition(packed.count >= pixelFormat.frameSize(width: width, height: height))
        var offset = 0
        for plane in 0..<pixelFormat.planeCount {
            let rowBytes = planeRowBytes(plane)
            withPlane(plane) { bytes, stride in
                for row in 0..<planeHeight(plane) {
                    UnsafeMutableRawBufferPointer(rebasing: bytes[(row * stride)..<(row * stride + rowBytes)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: packed[offset..<(offset + rowBytes)]))
                    offset += rowBytes
                }
            }
        }
    }

    /// True when the planes lie back to back with no row padding, so one read() can fill them.
    public var isTightlyPacked: Bool {
        var expected: UnsafeMutableRawPointer? = nil
        for plane in 0..<pixelFormat.planeCount {
            let (start, count) = withPlane(plane) { bytes, _ in (bytes.baseAddress, bytes.count) }
            if stride(plane) != planeRowBytes(plane) { return false }
            if let expected, expected != start { return false }
            expected = start.map { $0 + count }
        }
        return true
    }

    /// The whole picture as one buffer; only valid when `isTightlyPacked`.
    public func withPackedStorage<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        precondition(isTightlyPacked)
        let start = withPlane(0) { bytes, _ in bytes.baseAddress }
        return try body(UnsafeMutableRawBufferPointer(start: start, count: pixelFormat.frameSize(width: width, height: height)))
    }
}

extension Int32 {
    var asInt: Int { Int(self) }
}

/// Recycles picture buffers (av_buffer_pool): a buffer returns to the pool when the last frame
/// referencing it is freed, so steady-state capture allocates nothing.
// av_buffer_pool_get and the release of pooled buffers are thread-safe (libavutil/buffer.h);
// the pool itself is made once and not changed.
public final class FramePool: @unchecked Sendable {
    public let width: Int
    public let height: Int
    public let pixelFormat: PixelFormat
    private let alignment: Int32
    private var pool: OpaquePointer?

    /// `alignment` 1 packs planes and rows tightly (the rawvideo file layout); larger values pad
    /// rows for SIMD.
    public init(width: Int, height: Int, pixelFormat: PixelFormat, alignment: Int = 64) throws {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.alignment = Int32(alignment)
        let size = av_image_get_buffer_size(pixelFormat.av, Int32(width), Int32(height), Int32(alignment))
        try avCheck(size, "av_image_get_buffer_size(\(width)x\(height) \(pixelFormat))")
        guard let pool = av_buffer_pool_init(Int(size), nil) else {
            throw AVError("av_buffer_pool_init", code: bc_averror(ENOMEM))
        }
        self.pool = pool
    }

    deinit {
        // Buffers still referenced by frames stay valid; the pool itself goes when they do.
        av_buffer_pool_uninit(&pool)
    }

    public func makeFrame() throws -> VideoFrame {
        var raw = av_frame_alloc()
        guard let frame = raw else { throw AVError("av_frame_alloc", code: bc_averror(ENOMEM)) }
        guard let buffer = av_buffer_pool_get(pool) else {
            av_frame_free(&raw)
            throw AVError("av_buffer_pool_get", code: bc_averror(ENOMEM))
        }
        frame.pointee.buf.0 = buffer
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        frame.pointee.format = pixelFormat.av.rawValue
        let status = withUnsafeMutablePointer(to: &frame.pointee.data) { data in
            withUnsafeMutablePointer(to: &frame.pointee.linesize) { linesize in
                data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 4) { dataArray in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 4) { linesizeArray in
                        av_image_fill_arrays(dataArray, linesizeArray, buffer.pointee.data, pixelFormat.av,
                                             Int32(width), Int32(height), alignment)
                    }
                }
            }
        }
        if status < 0 {
            av_frame_free(&raw)
            throw AVError("av_image_fill_arrays", code: status)
        }
        return VideoFrame(taking: frame, pixelFormat: pixelFormat)
    }
}
