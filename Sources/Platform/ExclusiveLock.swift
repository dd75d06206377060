import Glibc

/// An exclusive advisory lock on a folder or file (flock(2), LOCK_EX | LOCK_NB), held while the
/// value lives: one writer per evidence store. The kernel drops it when the process ends in any
/// way, so a crash never leaves a stale lock behind (unlike a pid file).
public final class ExclusiveLock: Sendable {
    /// Another process holds the lock.
    public struct Held: Error, CustomStringConvertible, Equatable, Sendable {
        public var path: String
        public var description: String { "\(path) is locked by another process" }
    }

    public let path: String
    private let fd: Int32

    /// Takes the lock at once or throws `Held` (another holder) or `SystemError` (open, flock).
    public init(path: String) throws {
        self.path = path
        // A store folder may be a link (to a card's mount point): it is followed.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        if retryingInterrupts({ flock(fd, LOCK_EX | LOCK_NB) }) < 0 {
            let code = errno
            _ = Glibc.close(fd)  // read-only and unlocked: nothing to lose
            if code == EWOULDBLOCK { throw Held(path: path) }
            throw SystemError.file(path: path, call: "flock", errno: code)
        }
        self.fd = fd
    }

    /// Whether another process holds the lock on `path` now (a shared lock cannot be had at
    /// once). Takes nothing: the probe's descriptor is closed before it returns. False when
    /// `path` cannot be opened.
    public static func isHeld(path: String) -> Bool {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return false }
        defer { _ = Glibc.close(fd) }
        return retryingInterrupts({ flock(fd, LOCK_SH | LOCK_NB) }) < 0 && errno == EWOULDBLOCK
    }

    // Closing the only descriptor of the open file description releases the lock.
    deinit { _ = Glibc.close(fd) }
}
