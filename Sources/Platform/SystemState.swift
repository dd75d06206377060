import CShims
import Glibc

/// Bytes available to unprivileged users on the file system holding `path` (statvfs(3):
/// f_bavail × f_frsize). Throws `SystemError.file(path, "statvfs", errno)`.
public func freeSpace(_ path: String) throws -> Int64 {
    var status = statvfs()
    if statvfs(path, &status) < 0 { throw SystemError.file(path: path, call: "statvfs", errno: errno) }
    return Int64(status.f_bavail) * Int64(status.f_frsize)
}

/// The kernel's view of the wall clock's synchronisation (adjtimex(2), read-only): whether NTP
/// (or PTP, or an RTC-disciplined source) has it in sync, and its estimated error.
public struct ClockSync: Equatable, Sendable {
    /// False when the kernel flags the clock unsynchronised (STA_UNSYNC, TIME_ERROR).
    public var synchronised: Bool
    /// `esterror`, in microseconds.
    public var estimatedErrorMicroseconds: Int

    public init(synchronised: Bool, estimatedErrorMicroseconds: Int) {
        self.synchronised = synchronised
        self.estimatedErrorMicroseconds = estimatedErrorMicroseconds
    }

    public static func read() -> ClockSync {
        var error = 0
        let synced = bc_clock_sync_state(&error) == 1
        return ClockSync(synchronised: synced, estimatedErrorMicroseconds: error)
    }
}

/// The kernel's id of this boot (/proc/sys/kernel/random/boot_id, a UUID): CLOCK_MONOTONIC
/// times are comparable only between records that carry the same one. "" when unreadable.
public let kernelBootID: String = {
    guard let bytes = try? readWholeFile("/proc/sys/kernel/random/boot_id", limit: 64) else { return "" }
    let text = String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
    return text.utf8.count == 36 && text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || $0 == 0x2D }) ? text : ""
}()

/// Runs a system call until it does not fail with EINTR, and returns its result (on failure,
/// errno is left as the call set it). For the calls swift-system does not wrap (poll, send);
/// swift-system's own calls retry by themselves.
@inline(__always)
public func retryingInterrupts<Result: BinaryInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}

/// Calls `body` with `path` as an AF_UNIX socket address (sockaddr_un) and its length, for
/// bind(2) or connect(2). Throws `SystemError.file(path, call, ENAMETOOLONG)` when the path does
/// not fit (107 bytes).
public func withUnixSocketAddress<Result>(_ path: String, call: String,
                                          _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) throws -> Result {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    guard path.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else {
        throw SystemError.file(path: path, call: call, errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A stream socket (close-on-exec) connected to the Unix socket at `path`; the caller owns it.
/// Throws `SystemError` naming `path` and the call (`call` for connect).
public func connectUnixSocket(_ path: String, call: String = "connect") throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    if fd < 0 { throw SystemError.file(path: path, call: "socket", errno: errno) }
    do {
        let status = try withUnixSocketAddress(path, call: call) { address, length in retryingInterrupts { connect(fd, address, length) } }
        if status < 0 { throw SystemError.file(path: path, call: call, errno: errno) }
        return fd
    } catch {
        _ = Glibc.close(fd)  // never connected: nothing to lose
        throw error
    }
}
