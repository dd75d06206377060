import CV4L2
import Glibc
import Platform
import V4L2

/// A camera driver simulated at the ioctl seam: it answers the same requests with the same
/// kernel structures as a real V4L2 capture driver, and can be told to misbehave (busy, gone,
/// not a capture device, dropping frames, vanishing mid-stream). For tests of the capture code;
/// the real-device test runs against the kernel's vivid driver.
// The configuration properties (formats, sizes, frame interval, skipped sequences, vanishing)
// are set before streaming starts and only read while it runs; the driver's state (buffers,
// queue, sequence, picture, damaged frames, open descriptors, `calls`) is read and written
// under `lock`. Tests read `calls` after the capture has stopped.
public final class SimulatedV4L2: V4L2System, @unchecked Sendable {
    public var devicePath = "/dev/video-sim"
    /// open() fails with this errno (ENOENT: no such device, EBUSY, EACCES).
    public var openErrno: Int32? = nil
    /// How a buffer is stamped: given its sequence and CLOCK_MONOTONIC now (ns), the timestamp
    /// (ns) and whether its flags say monotonic. Nil: now, monotonic (what a good driver does).
    public var stamp: (@Sendable (UInt32, Int64) -> (Int64, Bool))? = nil
    /// With `openErrno`: only this many opens fail, then the device is there (a camera that
    /// appears after the daemon started).
    public var failingOpens: Int? = nil
    /// VIDIOC_QUERYCAP fails with ENOTTY (a node that is not V4L2).
    public var isV4L2 = true
    public var capabilities = UInt32(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING)
    public var offeredFormats: [UInt32] = [V4L2PixelFormat.yuyv.fourcc]
    public var maxWidth = 1920
    public var maxHeight = 1080
    public var supportsFrameRate = true
    public var maxFramesPerSecond: UInt32 = 60
    /// A lower top rate for some formats (fourcc → fps), as a USB 2.0 camera has for YUYV at
    /// large sizes: what VIDIOC_ENUM_FRAMEINTERVALS lists and VIDIOC_S_PARM grants.
    public var maxFramesPerSecondByFormat: [UInt32: UInt32] = [:]
    /// VIDIOC_ENUM_FRAMESIZES and VIDIOC_ENUM_FRAMEINTERVALS answer (false: EINVAL, as drivers
    /// that enumerate nothing do).
    public var enumeratesModes = true
    /// Sizes listed one by one (VIDIOC_ENUM_FRAMESIZES' discrete type), as UVC cameras list
    /// them; nil: one stepwise range up to the maximum.
    public var discreteSizes: [(width: Int, height: Int)]? = nil
    /// S_FMT, REQBUFS or STREAMON fail with EBUSY (another process streams).
    public var busyOnStream = false
    /// Microseconds between frames.
    public var frameInterval: Int32 = 2_000
    /// Sequence numbers the "hardware" skips (frames lost before they reach a buffer).
    public var skippedSequences: Set<UInt32> = []
    /// false: every buffer's `sequence` is 0, as some USB and loopback drivers leave it (the
    /// pictures still carry the real number in their bytes).
    public var reportsSequence = true
    /// After this many frames the device disappears: poll reports POLLERR, ioctls ENODEV.
    public var vanishAfterFrames: Int? = nil
    /// What an MJPEG camera sends for every frame (a complete JPEG), when MJPG is negotiated.
    /// May be changed while streaming.
    public var mjpegPicture: [UInt8] {
        get { (try? locked { picture }) ?? [] }
        set { _ = try? locked { picture = newValue } }
    }
    private var picture: [UInt8] = []
    /// The next this many MJPEG frames are sent damaged (a JPEG cut to 60 %, as a USB transfer
    /// that lost its end delivers it).
    public var damagedFrames: Int {
        get { (try? locked { damaged }) ?? 0 }
        set { _ = try? locked { damaged = newValue } }
    }
    private var damaged = 0
    /// Every call made, in order: "open", "VIDIOC_S_FMT", "munmap", "close", …
    public private(set) var calls: [String] = []

    public private(set) var format = v4l2_pix_format()
    public private(set) var framesPerSecond: UInt32 = 30
    private var buffers: [UnsafeMutableRawPointer] = []
    private var bufferLength = 0
    private var queued: [Int] = []
    private var streaming = false
    private var gone = false
    private var sequence: UInt32 = 0
    private var delivered = 0
    private var openDescriptors = 0
    private let lock = ConditionLock()

    public init() {}

    private func locked<R>(_ body: () throws(SystemCallError) -> R) throws(SystemCallError) -> R {
        let result = lock.withLock { Result { () throws(SystemCallError) -> R in try body() } }
        return try result.get()
    }

    /// Waits until the driver has handed out `count` frames in all (DQBUF), or `timeout` ns;
    /// whether it did. Tests pace a consumer against the camera with it.
    public func waitUntilDelivered(_ count: Int, timeout: Int64 = 5_000_000_000) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + timeout
        return lock.withLock {
            while delivered < count {
                if !lock.wait(untilMonotonic: deadline) { return delivered >= count }
            }
            return true
        }
    }

    /// Descriptors open right now (0 after a clean close).
    public var openCount: Int { (try? locked { openDescriptors }) ?? -1 }
    /// Simulates plugging the camera back in after `vanishAfterFrames`.
    public func reconnect() {
        _ = try? locked {
            gone = false
            vanishAfterFrames = nil
        }
    }

    public func open(_ path: String) throws(SystemCallError) -> Int32 {
        try locked { () throws(SystemCallError) -> Int32 in
            calls.append("open")
            if let openErrno, failingOpens.map({ $0 > 0 }) ?? true {
                if let left = failingOpens { failingOpens = left - 1 }
                throw SystemCallError("open(\(path))", errno: openErrno)
            }
            if gone { throw SystemCallError("open(\(path))", errno: ENOENT) }
            openDescriptors += 1
            return 1000 + Int32(openDescriptors)
        }
    }

    public func close(_ fd: Int32) throws(SystemCallError) {
        try locked { () throws(SystemCallError) in
            calls.append("close")
            openDescriptors -= 1
            streaming = false
        }
    }

    public func mmap(_ fd: Int32, length: Int, offset: Int) throws(SystemCallError) -> UnsafeMutableRawPointer {
        try locked { () throws(SystemCallError) -> UnsafeMutableRawPointer in
            calls.append("mmap")
            let index = offset / max(1, bufferLength)
            guard index < buffers.count, length == bufferLength else { throw SystemCallError("mmap", errno: EINVAL) }
            return buffers[index]
        }
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(SystemCallError) {
        try locked { () throws(SystemCallError) in calls.append("munmap") }
    }

    public func waitReadable(_ fd: Int32, wakeFD: Int32) throws(SystemCallError) -> Bool {
        var wake = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        if Glibc.poll(&wake, 1, max(1, frameInterval / 1000)) > 0 { return false }
        return try locked { () throws(SystemCallError) -> Bool in
            if let limit = vanishAfterFrames, delivered >= limit { gone = true }
            if gone { throw SystemCallError("poll", errno: ENODEV) }
            return true
        }
    }

    public func ioctl(_ fd: Int32, _ request: V4L2Request, _ argument: UnsafeMutableRawPointer) throws(SystemCallError) {
        try locked { () throws(SystemCallError) in
            calls.append(request.rawValue)
            if gone && request != .streamOff { throw SystemCallError(request.rawValue, errno: ENODEV) }
            try handle(request, argument)
        }
    }

    private func handle(_ request: V4L2Request, _ argument: UnsafeMutableRawPointer) throws(SystemCallError) {
        let fail = { (code: Int32) in SystemCallError(request.rawValue, errno: code) }
        switch request {
        case .querycap:
            guard isV4L2 else { throw fail(ENOTTY) }
            let capability = argument.assumingMemoryBound(to: v4l2_capability.self)
            capability.pointee = v4l2_capability()
            withUnsafeMutableBytes(of: &capability.pointee.driver) { raw in
                for (index, byte) in "simulated".utf8.enumerated() { raw[index] = byte }
            }
            capability.pointee.capabilities = capabilities | UInt32(V4L2_CAP_DEVICE_CAPS)
            capability.pointee.device_caps = capabilities
        case .enumFormat:
            let description = argument.assumingMemoryBound(to: v4l2_fmtdesc.self)
            guard Int(description.pointee.index) < offeredFormats.count else { throw fail(EINVAL) }
            description.pointee.pixelformat = offeredFormats[Int(description.pointee.index)]
        case .setFormat:
            if busyOnStream { throw fail(EBUSY) }
            let requested = argument.assumingMemoryBound(to: v4l2_format.self)
            var pix = requested.pointee.fmt.pix
            // Like real drivers: an unsupported format is replaced, a size clamped, never refused.
            if !offeredFormats.contains(pix.pixelformat) { pix.pixelformat = offeredFormats.first ?? 0 }
            pix.width = min(pix.width, UInt32(maxWidth)) & ~1
            pix.height = min(pix.height, UInt32(maxHeight)) & ~1
            let twoBytes = pix.pixelformat == V4L2PixelFormat.yuyv.fourcc
            let compressed = pix.pixelformat == V4L2PixelFormat.mjpeg.fourcc
            pix.bytesperline = compressed ? 0 : twoBytes ? pix.width * 2 : pix.width
            pix.sizeimage = twoBytes ? pix.width * pix.height * 2 : pix.width * pix.height * 3 / 2
            requested.pointee.fmt.pix = pix
            format = pix
        case .getFormat:
            argument.assumingMemoryBound(to: v4l2_format.self).pointee.fmt.pix = format
        case .getParameters, .setParameters:
            let parameters = argument.assumingMemoryBound(to: v4l2_streamparm.self)
            if request == .setParameters {
                let wanted = parameters.pointee.parm.capture.timeperframe
                let top = maxFramesPerSecondByFormat[format.pixelformat] ?? maxFramesPerSecond
                if wanted.numerator > 0 { framesPerSecond = min(top, wanted.denominator / wanted.numerator) }
            }
            parameters.pointee.parm.capture.capability = supportsFrameRate ? UInt32(V4L2_CAP_TIMEPERFRAME) : 0
            parameters.pointee.parm.capture.timeperframe = v4l2_fract(numerator: 1, denominator: framesPerSecond)
        case .requestBuffers:
            if busyOnStream { throw fail(EBUSY) }
            let request = argument.assumingMemoryBound(to: v4l2_requestbuffers.self)
            for buffer in buffers { buffer.deallocate() }
            bufferLength = Int(format.sizeimage)
            buffers = (0..<Int(request.pointee.count)).map { _ in
                UnsafeMutableRawPointer.allocate(byteCount: bufferLength, alignment: 64)
            }
            queued = []
        case .queryBuffer:
            let buffer = argument.assumingMemoryBound(to: v4l2_buffer.self)
            guard Int(buffer.pointee.index) < buffers.count else { throw fail(EINVAL) }
            buffer.pointee.length = UInt32(bufferLength)
            buffer.pointee.m.offset = buffer.pointee.index * UInt32(bufferLength)
        case .queueBuffer:
            let index = Int(argument.assumingMemoryBound(to: v4l2_buffer.self).pointee.index)
            guard index < buffers.count, !queued.contains(index) else { throw fail(EINVAL) }
            queued.append(index)
        case .dequeueBuffer:
            guard streaming else { throw fail(EINVAL) }
            guard !queued.isEmpty else { throw fail(EAGAIN) }
            while skippedSequences.contains(sequence) { sequence += 1 }
            let index = queued.removeFirst()
            var used = bufferLength
            if format.pixelformat == V4L2PixelFormat.mjpeg.fourcc {
                used = min(picture.count, bufferLength)
                if damaged > 0 {
                    damaged -= 1
                    used = used * 6 / 10
                }
                buffers[index].copyMemory(from: picture, byteCount: used)
            } else {
                // Each picture's bytes carry its sequence number, so a test can tell pictures apart.
                buffers[index].initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: sequence), count: bufferLength)
            }
            let buffer = argument.assumingMemoryBound(to: v4l2_buffer.self)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            buffer.pointee.index = UInt32(index)
            buffer.pointee.bytesused = UInt32(used)
            buffer.pointee.sequence = reportsSequence ? sequence : 0
            let nowNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
            let (stamped, monotonic) = stamp?(sequence, nowNanoseconds) ?? (nowNanoseconds, true)
            buffer.pointee.timestamp = timeval(tv_sec: Int(stamped / 1_000_000_000), tv_usec: Int(stamped % 1_000_000_000 / 1_000))
            buffer.pointee.flags = monotonic ? UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC) : UInt32(V4L2_BUF_FLAG_TIMESTAMP_UNKNOWN)
            sequence += 1
            delivered += 1
            lock.broadcast()
        case .streamOn:
            if busyOnStream { throw fail(EBUSY) }
            streaming = true
        case .streamOff:
            streaming = false
        case .enumFrameSizes:
            // One stepwise range, every even size up to the maximum.
            let size = argument.assumingMemoryBound(to: v4l2_frmsizeenum.self)
            if let discreteSizes {
                guard enumeratesModes, Int(size.pointee.index) < discreteSizes.count else { throw fail(EINVAL) }
                size.pointee.type = V4L2_FRMSIZE_TYPE_DISCRETE.rawValue
                let listed = discreteSizes[Int(size.pointee.index)]
                size.pointee.discrete = v4l2_frmsize_discrete(width: UInt32(listed.width), height: UInt32(listed.height))
                break
            }
            guard enumeratesModes, size.pointee.index == 0, offeredFormats.contains(size.pointee.pixel_format) else { throw fail(EINVAL) }
            size.pointee.type = V4L2_FRMSIZE_TYPE_STEPWISE.rawValue
            size.pointee.stepwise = v4l2_frmsize_stepwise(min_width: 16, max_width: UInt32(maxWidth), step_width: 2,
                                                          min_height: 16, max_height: UInt32(maxHeight), step_height: 2)
        case .enumFrameIntervals:
            // Discrete: the format's top rate, then 15 and 5 fps below it.
            let interval = argument.assumingMemoryBound(to: v4l2_frmivalenum.self)
            let top = maxFramesPerSecondByFormat[interval.pointee.pixel_format] ?? maxFramesPerSecond
            let rates = [top] + [15, 5].filter { $0 < top }
            guard enumeratesModes, offeredFormats.contains(interval.pointee.pixel_format), Int(interval.pointee.index) < rates.count
            else { throw fail(EINVAL) }
            interval.pointee.type = V4L2_FRMIVAL_TYPE_DISCRETE.rawValue
            interval.pointee.discrete = v4l2_fract(numerator: 1, denominator: rates[Int(interval.pointee.index)])
        }
    }
}

/// How a simulated camera stamps its buffers (`camera.simulate_timestamps`): a good driver, or one
/// of the timestamp faults real drivers are reported to have, so the daemon's handling of them
/// can be seen end to end (docs/ARCHITECTURE.md, "Capture time").
public enum SimulatedTimestamps: String, CaseIterable, Sendable {
    /// CLOCK_MONOTONIC at the dequeue, flagged monotonic: what a good driver does.
    case driver
    /// The same time on every buffer (a driver that stamps once, at stream start).
    case frozen
    /// 0 on every buffer (a driver that never fills the field).
    case zero
    /// CLOCK_REALTIME, flagged as of unknown source (a driver on another clock).
    case notMonotonic = "not-monotonic"
    /// One second backwards, once, two seconds into the stream (a driver whose clock is reset).
    case stepBack = "step-back"

    /// `SimulatedV4L2.stamp` for this behaviour at `framesPerSecond`; nil for `driver`.
    public func stamp(framesPerSecond: Int) -> (@Sendable (UInt32, Int64) -> (Int64, Bool))? {
        let stepAt = UInt32(2 * framesPerSecond)
        switch self {
        case .driver: return nil
        case .frozen:
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let start = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
            return { _, _ in (start, true) }
        case .zero: return { _, _ in (0, true) }
        case .notMonotonic:
            return { _, _ in
                var now = timespec()
                clock_gettime(CLOCK_REALTIME, &now)
                return (Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec), false)
            }
        case .stepBack: return { sequence, now in (sequence >= stepAt ? now - 1_000_000_000 : now, true) }
        }
    }
}

extension SimulatedV4L2 {
    /// A simulated camera for the daemon (`camera.source = "simulated-v4l2"`): YUYV, NV12 and
    /// YU12 offered, a buffer every 1/`framesPerSecond` s, stamped as `timestamps` says.
    /// `maxFramesPerSecond`: its top rate, every format (0: the default, 60).
    public convenience init(framesPerSecond: Int, timestamps: SimulatedTimestamps, maxFramesPerSecond: Int = 0) {
        self.init()
        offeredFormats = [V4L2PixelFormat.yuyv.fourcc, V4L2PixelFormat.nv12.fourcc, V4L2PixelFormat.yu12.fourcc]
        if maxFramesPerSecond > 0 { self.maxFramesPerSecond = UInt32(maxFramesPerSecond) }
        frameInterval = Int32(1_000_000 / max(1, min(framesPerSecond, Int(self.maxFramesPerSecond))))
        stamp = timestamps.stamp(framesPerSecond: framesPerSecond)
    }

    /// A driver that leaves `sequence` at 0 while its "hardware" loses every other frame of the
    /// first `frames`, each buffer stamped at its real slot of 30 fps (so one comes every 66.7 ms):
    /// drops that only the timestamps show.
    public static func sequenceAtZeroLosingEveryOtherFrame(frames: UInt32 = 400) -> SimulatedV4L2 {
        let camera = SimulatedV4L2()
        camera.reportsSequence = false
        camera.skippedSequences = Set(stride(from: 1, to: frames, by: 2))
        camera.frameInterval = 66_667
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let start = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - 10_000_000
        camera.stamp = { sequence, _ in (start + Int64(sequence) * 33_333_333, true) }
        return camera
    }
}
