import Glibc
import LibAV
import Platform

/// Pictures from a rawvideo file (tightly packed YUYV, NV12 or I420 frames back to back), for
/// benchmarks and tests. Each frame is read straight into a pooled picture buffer.
public final class RawFileSource: FrameSource {
    public let path: String
    public let format: FrameFormat
    public let pacing: Pacing
    public var isLive: Bool { pacing == .realTime }
    public var name: String { "raw-file \(path) \(format.pixelFormat) \(format.width)x\(format.height)@\(format.framesPerSecond)" }

    private let pool: FramePool
    private var fd: Int32 = -1
    private var index: UInt64 = 0
    private var startMonotonic: Int64 = 0
    private let stopped = AtomicFlag()

    public init(path: String, format: FrameFormat, pacing: Pacing = .asFastAsPossible) throws {
        self.path = path
        self.format = format
        self.pacing = pacing
        // Alignment 1: the pool's layout is the file's, so one read() fills a picture.
        self.pool = try FramePool(width: format.width, height: format.height, pixelFormat: format.pixelFormat, alignment: 1)
    }

    deinit { assert(fd < 0, "RawFileSource released without close()") }

    public func start() throws {
        if fd < 0 {
            fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        }
        index = 0
        stopped.clear()
        startMonotonic = Clock.monotonicNanoseconds()
    }

    public func nextFrame() throws -> CapturedFrame? {
        precondition(fd >= 0, "nextFrame() before start()")
        if stopped.isSet { return nil }
        let due = startMonotonic + Int64(index) * 1_000_000_000 / Int64(format.framesPerSecond)
        if pacing == .realTime { Clock.sleep(untilMonotonic: due) }
        let frame = try pool.makeFrame()
        let expected = format.pixelFormat.frameSize(width: format.width, height: format.height)
        let got = try frame.withPackedStorage { storage -> Int in
            try readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: storage[0..<expected]), path: path)
        }
        if got == 0 { return nil }
        if got < expected { throw RawFrameTruncated(path: path, frameIndex: Int(index), got: got, expected: expected) }
        frame.sequence = index
        frame.captureNanoseconds = due
        index += 1
        return CapturedFrame(frame: frame)
    }

    public func stop() { stopped.set() }

    public func close() throws {
        guard fd >= 0 else { return }
        let status = Glibc.close(fd)
        fd = -1
        if status < 0 { throw SystemError.file(path: path, call: "close", errno: errno) }
    }
}

/// A rawvideo file whose last picture is cut short: usually a wrong size or pixel format.
public struct RawFrameTruncated: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var frameIndex: Int
    /// Bytes read, and the bytes one picture needs.
    public var got: Int
    public var expected: Int

    public init(path: String, frameIndex: Int, got: Int, expected: Int) {
        self.path = path
        self.frameIndex = frameIndex
        self.got = got
        self.expected = expected
    }

    public var description: String {
        "\(path): frame \(frameIndex) is cut short: \(got) of \(expected) bytes (wrong size or pixel format?)"
    }
}
