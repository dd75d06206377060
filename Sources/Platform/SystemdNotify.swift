import Glibc

/// systemd's notify protocol (sd_notify(3)), spoken directly: one datagram per message to the
/// Unix socket named by $NOTIFY_SOCKET ("@…" is the abstract namespace). Without that variable
/// (not started by systemd) every call does nothing.
// The address is written once, in init; afterwards every member is only read (sendto(2) on
// one datagram socket is safe from any thread).
public final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private var length: socklen_t = 0
    /// Half the watchdog interval systemd asked for (WATCHDOG_USEC), if it asked.
    public let watchdogInterval: Int64?

    public init() {
        var path = getenv("NOTIFY_SOCKET").map { String(cString: $0) } ?? ""
        if path.utf8.count >= 108 { path = "" }
        let watchdogPID = getenv("WATCHDOG_PID").flatMap { Int32(String(cString: $0)) }
        if let microseconds = getenv("WATCHDOG_USEC").flatMap({ Int64(String(cString: $0)) }), microseconds > 0,
           watchdogPID == nil || watchdogPID == getpid() {
            watchdogInterval = microseconds * 1_000 / 2
        } else {
            watchdogInterval = nil
        }
        guard !path.isEmpty else {
            fd = -1
            return
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = index == 0 && byte == UInt8(ascii: "@") ? 0 : byte }
        }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    }

    deinit { if fd >= 0 { close(fd) } }

    public var isActive: Bool { fd >= 0 }

    /// Sends "KEY=VALUE\n…"; failures are ignored, as sd_notify's callers do.
    public func send(_ message: String) {
        guard fd >= 0 else { return }
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), target, length) }
            }
        }
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func watchdog() { send("WATCHDOG=1") }
    public func stopping(_ text: String) { send("STOPPING=1\nSTATUS=\(text)") }
}
