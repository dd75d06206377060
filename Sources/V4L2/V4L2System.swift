import CShims
import CV4L2
import Glibc

/// The ioctl seam: every system call the capture code makes on a camera goes through this
/// protocol. `LinuxV4L2` is the real one (libv4l2); tests put a simulated driver here to drive
/// negotiation and error paths with the kernel's own structures.
public protocol V4L2System: AnyObject {
    /// open(2) the device; returns the descriptor or throws with errno.
    func open(_ path: String) throws(SystemCallError) -> Int32
    func close(_ fd: Int32) throws(SystemCallError)
    /// ioctl(2); `argument` points at the request's kernel structure.
    func ioctl(_ fd: Int32, _ request: V4L2Request, _ argument: UnsafeMutableRawPointer) throws(SystemCallError)
    func mmap(_ fd: Int32, length: Int, offset: Int) throws(SystemCallError) -> UnsafeMutableRawPointer
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(SystemCallError)
    /// Blocks until `fd` has a buffer to dequeue (true) or `wakeFD` was signalled (false).
    /// Throws when the device reports an error or hang-up (unplugged).
    func waitReadable(_ fd: Int32, wakeFD: Int32) throws(SystemCallError) -> Bool
}

/// A failed system call: its name, errno and strerror text.
public struct SystemCallError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Int32
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Runs `body` until it does not fail with EINTR; returns its result, or throws with errno.
@inline(__always)
func retryingInterrupts(_ call: @autoclosure () -> String, _ body: () -> Int32) throws(SystemCallError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        let error = Glibc.errno
        if error != EINTR { throw SystemCallError(call(), errno: error) }
    }
}

/// The V4L2 requests the capture code makes, named as in videodev2.h.
public enum V4L2Request: String, CaseIterable, Sendable {
    case querycap = "VIDIOC_QUERYCAP"
    case enumFormat = "VIDIOC_ENUM_FMT"
    case enumFrameSizes = "VIDIOC_ENUM_FRAMESIZES"
    case enumFrameIntervals = "VIDIOC_ENUM_FRAMEINTERVALS"
    case getFormat = "VIDIOC_G_FMT"
    case setFormat = "VIDIOC_S_FMT"
    case getParameters = "VIDIOC_G_PARM"
    case setParameters = "VIDIOC_S_PARM"
    case requestBuffers = "VIDIOC_REQBUFS"
    case queryBuffer = "VIDIOC_QUERYBUF"
    case queueBuffer = "VIDIOC_QBUF"
    case dequeueBuffer = "VIDIOC_DQBUF"
    case streamOn = "VIDIOC_STREAMON"
    case streamOff = "VIDIOC_STREAMOFF"

    var number: UInt {
        switch self {
        case .querycap: return UInt(BC_VIDIOC_QUERYCAP)
        case .enumFormat: return UInt(BC_VIDIOC_ENUM_FMT)
        case .enumFrameSizes: return UInt(BC_VIDIOC_ENUM_FRAMESIZES)
        case .enumFrameIntervals: return UInt(BC_VIDIOC_ENUM_FRAMEINTERVALS)
        case .getFormat: return UInt(BC_VIDIOC_G_FMT)
        case .setFormat: return UInt(BC_VIDIOC_S_FMT)
        case .getParameters: return UInt(BC_VIDIOC_G_PARM)
        case .setParameters: return UInt(BC_VIDIOC_S_PARM)
        case .requestBuffers: return UInt(BC_VIDIOC_REQBUFS)
        case .queryBuffer: return UInt(BC_VIDIOC_QUERYBUF)
        case .queueBuffer: return UInt(BC_VIDIOC_QBUF)
        case .dequeueBuffer: return UInt(BC_VIDIOC_DQBUF)
        case .streamOn: return UInt(BC_VIDIOC_STREAMON)
        case .streamOff: return UInt(BC_VIDIOC_STREAMOFF)
        }
    }
}

/// The real devices, through libv4l2 (v4l2_open, v4l2_ioctl, v4l2_mmap, v4l2_munmap,
/// v4l2_close), which also converts formats for cameras that only speak vendor ones.
public final class LinuxV4L2: V4L2System {
    public init() {}

    public func open(_ path: String) throws(SystemCallError) -> Int32 {
        // Non-blocking: DQBUF must never sleep in the kernel where the wake eventfd cannot reach it.
        try retryingInterrupts("open(\(path))") { bc_v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC) }
    }

    public func close(_ fd: Int32) throws(SystemCallError) {
        // close(2) is not retried on EINTR: on Linux the descriptor is gone either way.
        if v4l2_close(fd) < 0 { throw SystemCallError("close", errno: Glibc.errno) }
    }

    public func ioctl(_ fd: Int32, _ request: V4L2Request, _ argument: UnsafeMutableRawPointer) throws(SystemCallError) {
        _ = try retryingInterrupts(request.rawValue) { bc_v4l2_ioctl(fd, request.number, argument) }
    }

    public func mmap(_ fd: Int32, length: Int, offset: Int) throws(SystemCallError) -> UnsafeMutableRawPointer {
        guard let address = v4l2_mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, Int64(offset)),
              address != MAP_FAILED else {
            throw SystemCallError("mmap", errno: Glibc.errno)
        }
        return address
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(SystemCallError) {
        if v4l2_munmap(address, length) < 0 { throw SystemCallError("munmap", errno: Glibc.errno) }
    }

    public func waitReadable(_ fd: Int32, wakeFD: Int32) throws(SystemCallError) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        _ = try retryingInterrupts("poll") { Glibc.poll(&fds, 2, -1) }
        if fds[1].revents != 0 { return false }
        if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && fds[0].revents & Int16(POLLIN) == 0 {
            throw SystemCallError("poll(camera)", errno: ENODEV)
        }
        return true
    }
}
