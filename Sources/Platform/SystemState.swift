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
