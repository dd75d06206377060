import CShims
import ControlProtocol
import Evidence
import Glibc
import Pipeline
import Configuration
import Capture
import Tokens
import Policy
import Controls
import LibAV
import Platform
import Wire

/// Who is on the other end of a control connection (SO_PEERCRED).
public struct Peer: Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// The control socket: a Unix stream socket, one JSON request line in, one JSON response line
/// out per connection. Served on its own thread woken by the listening descriptor or an
/// eventfd (stop). `handler` runs on that thread.
// `thread` is written by `start()` and `stop()`, which the socket's service calls in order;
// the rest is immutable after init.
public final class ControlSocket: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let wake: WakeEvent
    private var thread: WorkerThread?
    private let stopped = AtomicFlag()

    /// Binds and listens at `path` (a previous run's socket there is replaced), mode `mode`.
    /// Throws `SystemError` naming the call that failed.
    public init(path: String, mode: mode_t = 0o660) throws {
        self.path = path
        wake = try WakeEvent()
        // The descriptor is stored last: every failure before that closes it here, once, and
        // deinit (which runs only after full initialisation) never sees it.
        fd = try ControlSocket.listener(path: path, mode: mode)
    }

    private static func listener(path: String, mode: mode_t) throws -> Int32 {
        if path.utf8.count >= 108 { throw SystemError.file(path: path, call: "bind (path longer than 107 bytes)", errno: ENAMETOOLONG) }
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !folder.isEmpty && mkdir(folder, 0o750) < 0 && errno != EEXIST { throw SystemError.file(path: folder, call: "mkdir", errno: errno) }
        unlink(path)  // a socket left by a previous run that died
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemError.file(path: path, call: "socket", errno: errno) }
        func fail(_ call: String) -> SystemError {
            let error = SystemError.file(path: path, call: call, errno: errno)
            _ = Glibc.close(fd)  // a socket that never accepted anyone: nothing to lose
            return error
        }
        // The path's length was checked above, so the address always fits.
        let status = try withUnixSocketAddress(path, call: "bind") { bind(fd, $0, $1) }
        if status < 0 { throw fail("bind") }
        if chmod(path, mode) < 0 {
            let error = fail("chmod")
            unlink(path)
            throw error
        }
        if listen(fd, 8) < 0 {
            let error = fail("listen")
            unlink(path)
            throw error
        }
        return fd
    }

    // A listening socket holds no data: a failed close(2) loses nothing, so it is not reported.
    deinit { _ = Glibc.close(fd) }

    /// Serves connections on the "control-socket" thread; `handler` runs there with the request
    /// line (without its newline) and the peer's credentials.
    public func start(handler: @escaping @Sendable ([UInt8], Peer) -> ControlResponse) {
        let fd = self.fd, wake = self.wake, stopped = self.stopped
        thread = WorkerThread(name: "control-socket") {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
            while !stopped.isSet {
                fds[0].revents = 0
                fds[1].revents = 0
                if retryingInterrupts({ poll(&fds, 2, -1) }) < 0 { return }
                if stopped.isSet { return }
                let client = bc_accept_cloexec(fd)
                if client < 0 { continue }
                ControlSocket.serve(client, handler: handler)
                _ = Glibc.close(client)  // nothing left to send: a failed close loses nothing
            }
        }
    }

    /// Reads one line (at most 64 KiB, 2 s), answers it.
    static func serve(_ client: Int32, handler: ([UInt8], Peer) -> ControlResponse) {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        _ = bc_peer_credentials(client, &pid, &uid, &gid)
        let peer = Peer(pid: pid, uid: uid, gid: gid)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let received = readLine(client, limit: ControlProtocol.maximumRequestBytes)
        // A line cut short (too long, or the peer stopped sending) is not a request: the handler
        // journals it as refused.
        let response = handler(received.complete ? received.line : [], peer)
        // A client that has gone is its own loss: MSG_NOSIGNAL, so it never ends the daemon.
        guard let bytes = try? ControlProtocol.encodeLine(response) else { return }
        _ = try? bytes.withUnsafeBytes { try sendAll(client, $0, path: "control client") }
    }

    public func stop() {
        stopped.set()
        wake.signal()
        thread?.join()
        thread = nil
        unlink(path)
    }
}
