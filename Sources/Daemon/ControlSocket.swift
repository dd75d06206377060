import CShims
import ControlProtocol
import Glibc
import Platform
import Synchronization

/// Who is on the other end of a control connection (SO_PEERCRED).
public struct Peer: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// Why a connection brought no request to carry out.
public enum ControlLineProblem: Sendable, Equatable, CustomStringConvertible {
    /// The peer closed (or shut down its side) before the newline.
    case endedEarly
    /// More than `ControlProtocol.maximumRequestBytes` without a newline.
    case tooLong
    /// The line was not complete within the request deadline.
    case deadline(milliseconds: Int)
    /// The peer's uid already has this many connections open.
    case tooManyConnections(limit: Int)

    public var description: String {
        switch self {
        case .endedEarly: return "the client ended before a complete request line"
        case .tooLong: return "request line longer than \(ControlProtocol.maximumRequestBytes) bytes"
        case .deadline(let milliseconds): return "request not complete within \(milliseconds) ms"
        case .tooManyConnections(let limit): return "more than \(limit) connections open from this uid"
        }
    }
}

/// One connection as the socket hands it to the handler: the request line (or what came of it),
/// the peer, and whether the peer is still there to be answered.
public struct ControlConnection: Sendable {
    public let peer: Peer
    /// The request line without its newline; with a `problem`, what arrived of it.
    public let line: [UInt8]
    /// Nil for a complete line.
    public let problem: ControlLineProblem?
    let fd: Int32

    /// True when the peer has closed its end: its request must not be carried out (nobody would
    /// learn the result). A peer that only shut down its writing side is still there.
    public var clientGone: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard retryingInterrupts({ poll(&entry, 1, 0) }) >= 0 else { return true }
        return entry.revents & Int16(POLLHUP | POLLERR) != 0
    }
}

/// The control socket: a Unix stream socket, one JSON request line in, one JSON response line
/// out per connection (docs/CONTROL.md).
///
/// Connections are served concurrently. The "control-socket" thread accepts and reads every
/// connection without blocking; a request must be complete within `Limits.requestDeadline`
/// (the whole line, not each read), and a uid may hold at most `Limits.connectionsPerUID`
/// connections (the rest are answered with a refusal at once). Each complete request is
/// handled on a thread of its own ("control-request"), so a slow command (a simulated hold)
/// or a slow client never delays another. The handler also runs, on the socket thread, for
/// every connection refused before its request was read, so that the refusal is journaled.
// `thread` is written by `start()` and `stop()`, which the socket's service calls in order;
// the connection counts are under `counts`; the rest is immutable after init.
public final class ControlSocket: @unchecked Sendable {
    public struct Limits: Sendable {
        /// From the connection's accept to its newline, nanoseconds.
        public var requestDeadline: Int64 = 2_000_000_000
        /// Connections one uid may have open at once (reading or being handled).
        public var connectionsPerUID = 8
        /// Connections open at once, all uids.
        public var connections = 64
        public init() {}
    }

    public let path: String
    public let limits: Limits
    private let fd: Int32
    /// The socket file this daemon bound (st_dev, st_ino): only that one is removed at stop.
    private let boundFile: (dev_t, ino_t)
    /// Signalled once, at `stop()`: wakes the socket thread and handlers that pause.
    private let stopEvent: WakeEvent
    /// Signalled when a handler thread ends, so the socket thread joins it.
    private let handlerEnded: WakeEvent
    private var thread: WorkerThread?
    private let stopped = AtomicFlag()
    private struct Counts {
        var byUID: [UInt32: Int] = [:]
        var total = 0
        var handlers: [Int: WorkerThread] = [:]
        var finished: [Int] = []
        var nextHandler = 0
    }
    private let counts = Mutex(Counts())

    /// The socket at `path` is in use by a live process (another daemon).
    public struct InUse: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var description: String { "\(path): another process is serving this control socket" }
    }

    /// Binds and listens at `path`, mode `mode` (default 0666: anyone may connect, and the
    /// handler decides each request by the peer's credentials). A socket file a previous run left there is
    /// replaced, but one a live process still answers on is not (`InUse`). Throws `SystemError`
    /// naming the call that failed.
    public init(path: String, mode: mode_t = 0o666, limits: Limits = Limits()) throws {
        self.path = path
        self.limits = limits
        stopEvent = try WakeEvent()
        handlerEnded = try WakeEvent()
        // The descriptor is stored last: every failure before that closes it here, once, and
        // deinit (which runs only after full initialisation) never sees it.
        (fd, boundFile) = try ControlSocket.listener(path: path, mode: mode)
    }

    private static func listener(path: String, mode: mode_t) throws -> (Int32, (dev_t, ino_t)) {
        if path.utf8.count >= 108 { throw SystemError.file(path: path, call: "bind (path longer than 107 bytes)", errno: ENAMETOOLONG) }
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !folder.isEmpty && mkdir(folder, 0o755) < 0 && errno != EEXIST { throw SystemError.file(path: folder, call: "mkdir", errno: errno) }
        if let live = try? connectUnixSocket(path) {
            _ = Glibc.close(live)  // only asked whether anyone answers
            throw InUse(path: path)
        }
        unlink(path)  // a socket left by a previous run that died
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw SystemError.file(path: path, call: "socket", errno: errno) }
        func fail(_ call: String, bound: Bool) -> SystemError {
            let error = SystemError.file(path: path, call: call, errno: errno)
            _ = Glibc.close(fd)  // a socket that never accepted anyone: nothing to lose
            if bound { unlink(path) }
            return error
        }
        // The path's length was checked above, so the address always fits.
        let status = try withUnixSocketAddress(path, call: "bind") { bind(fd, $0, $1) }
        if status < 0 { throw fail("bind", bound: false) }
        var info = stat()
        if lstat(path, &info) < 0 { throw fail("lstat", bound: true) }
        if chmod(path, mode) < 0 { throw fail("chmod", bound: true) }
        if listen(fd, SOMAXCONN) < 0 { throw fail("listen", bound: true) }
        return (fd, (info.st_dev, info.st_ino))
    }

    // A listening socket holds no data: a failed close(2) loses nothing, so it is not reported.
    deinit { _ = Glibc.close(fd) }

    /// Connections open now (reading or being handled).
    public var openConnections: Int { counts.withLock { $0.total } }

    /// Serves connections until `stop()`. `handler` runs once per connection: on a
    /// "control-request" thread for a complete line, on the "control-socket" thread for a
    /// connection refused before its line was read (`problem` set); its answer is sent back,
    /// best effort, and the connection closed.
    public func start(handler: @escaping @Sendable (ControlConnection) -> ControlResponse) {
        thread = WorkerThread(name: "control-socket") { [self] in serve(handler: handler) }
    }

    static let maximumAcceptsPerPass = 32
    /// CLOCK_MONOTONIC ns until which the listener is not polled (out of descriptors); socket
    /// thread only.
    private var acceptPausedUntil: Int64 = 0

    /// A connection being read.
    private struct Reading {
        var fd: Int32
        var peer: Peer
        var bytes: [UInt8] = []
        var deadline: Int64
    }

    private func serve(handler: @escaping @Sendable (ControlConnection) -> ControlResponse) {
        var reading: [Reading] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !stopped.isSet {
            reapHandlers()
            let now = Clock.monotonicNanoseconds()
            let accepting = now >= acceptPausedUntil
            // A negative descriptor is ignored by poll(2): the listener rests while paused.
            var fds = [pollfd(fd: accepting ? fd : -1, events: Int16(POLLIN), revents: 0), pollfd(fd: stopEvent.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: handlerEnded.fd, events: Int16(POLLIN), revents: 0)]
            fds += reading.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let deadlines = reading.map(\.deadline) + (accepting ? [] : [acceptPausedUntil])
            let timeout = deadlines.map { max(0, ($0 - now + 999_999) / 1_000_000) }.min().map { Int32(min($0, 60_000)) } ?? -1
            if retryingInterrupts({ poll(&fds, nfds_t(fds.count), timeout) }) < 0 { break }
            if stopped.isSet { break }
            // Reads first, so that a connection's slot is freed before new ones are counted.
            var still: [Reading] = []
            let after = Clock.monotonicNanoseconds()
            for (index, var connection) in reading.enumerated() {
                let revents = fds[index + 3].revents
                var problem: ControlLineProblem? = nil
                var complete = false
                if revents != 0 {
                    let count = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count > 0 {
                        connection.bytes += chunk[0..<count]
                        if let newline = connection.bytes.firstIndex(of: 0x0A) {
                            connection.bytes.removeSubrange(newline...)
                            complete = true
                        }
                        if !complete && connection.bytes.count > ControlProtocol.maximumRequestBytes {
                            connection.bytes.removeSubrange(ControlProtocol.maximumRequestBytes...)
                            problem = .tooLong
                        }
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        problem = .endedEarly
                    }
                }
                if !complete && problem == nil && after >= connection.deadline {
                    problem = .deadline(milliseconds: Int(limits.requestDeadline / 1_000_000))
                }
                if complete {
                    dispatch(ControlConnection(peer: connection.peer, line: connection.bytes, problem: nil, fd: connection.fd), handler: handler)
                } else if let problem {
                    finish(ControlConnection(peer: connection.peer, line: connection.bytes, problem: problem, fd: connection.fd), handler: handler)
                } else {
                    still.append(connection)
                }
            }
            reading = still
            if fds[0].revents != 0 { reading += acceptAll(handler: handler) }
        }
        for connection in reading { release(fd: connection.fd, uid: connection.peer.uid) }
    }

    /// Accepts every pending connection; those over a limit are refused at once.
    /// At most `maximumAcceptsPerPass` at a time, so that connections being read get their turn;
    /// out of descriptors (EMFILE, ENFILE), it pauses accepting (`acceptPausedUntil`) instead
    /// of polling a listener that stays readable.
    private func acceptAll(handler: @escaping @Sendable (ControlConnection) -> ControlResponse) -> [Reading] {
        var accepted: [Reading] = []
        for _ in 0..<ControlSocket.maximumAcceptsPerPass {
            let client = bc_accept_nonblocking(fd)
            if client < 0 {
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    acceptPausedUntil = Clock.monotonicNanoseconds() + 100_000_000
                }
                break  // EAGAIN: none left (or a peer gone before accept)
            }
            var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
            if bc_peer_credentials(client, &pid, &uid, &gid) < 0 {
                _ = Glibc.close(client)  // no credentials, no access decision: nothing is owed
                continue
            }
            let peer = Peer(pid: pid, uid: uid, gid: gid)
            let admitted = counts.withLock { counts -> Bool in
                guard counts.total < limits.connections, counts.byUID[uid, default: 0] < limits.connectionsPerUID else { return false }
                counts.total += 1
                counts.byUID[uid, default: 0] += 1
                return true
            }
            if admitted {
                accepted.append(Reading(fd: client, peer: peer, deadline: Clock.monotonicNanoseconds() + limits.requestDeadline))
            } else {
                let limit = min(limits.connections, limits.connectionsPerUID)
                let response = handler(ControlConnection(peer: peer, line: [], problem: .tooManyConnections(limit: limit), fd: client))
                ControlSocket.answer(client, response)
                _ = Glibc.close(client)  // answered (best effort): nothing left to send
            }
        }
        return accepted
    }

    /// A connection refused before its request was read: answered on this thread.
    private func finish(_ connection: ControlConnection, handler: (ControlConnection) -> ControlResponse) {
        ControlSocket.answer(connection.fd, handler(connection))
        release(fd: connection.fd, uid: connection.peer.uid)
    }

    /// A complete request: handled on a thread of its own.
    private func dispatch(_ connection: ControlConnection, handler: @escaping @Sendable (ControlConnection) -> ControlResponse) {
        counts.withLock { counts in
            let id = counts.nextHandler
            counts.nextHandler += 1
            counts.handlers[id] = WorkerThread(name: "control-request") { [self] in
                ControlSocket.answer(connection.fd, handler(connection))
                release(fd: connection.fd, uid: connection.peer.uid)
                self.counts.withLock { $0.finished.append(id) }
                handlerEnded.signal()  // the socket thread joins ended handlers
            }
        }
    }

    /// Joins the handler threads that have ended.
    private func reapHandlers() {
        // Reset first: a handler ending after this still wakes the next poll.
        handlerEnded.reset()
        let ended = counts.withLock { counts -> [WorkerThread] in
            defer { counts.finished.removeAll() }
            return counts.finished.compactMap { counts.handlers.removeValue(forKey: $0) }
        }
        for thread in ended { thread.join() }
    }

    private func release(fd client: Int32, uid: UInt32) {
        _ = Glibc.close(client)  // the answer was sent (or the peer is gone): nothing left to lose
        counts.withLock { counts in
            counts.total -= 1
            counts.byUID[uid, default: 1] -= 1
            if counts.byUID[uid] == 0 { counts.byUID[uid] = nil }
        }
    }

    /// Sends the answer within one second, best effort. A client that has gone is its own loss:
    /// MSG_NOSIGNAL, so it never ends the daemon.
    static func answer(_ client: Int32, _ response: ControlResponse) {
        guard let bytes = try? ControlProtocol.encodeLine(response) else { return }
        let deadline = Clock.monotonicNanoseconds() + 1_000_000_000
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count > 0 { sent += count; continue }
            guard count < 0, errno == EAGAIN || errno == EINTR else { return }
            let left = (deadline - Clock.monotonicNanoseconds()) / 1_000_000
            if left <= 0 { return }
            var entry = pollfd(fd: client, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, Int32(left))
        }
    }

    /// Waits until CLOCK_MONOTONIC reaches `deadline` or the socket is stopping (true). For
    /// handlers that pause (a simulated hold), so that a stop never waits for them.
    public func wait(untilMonotonic deadline: Int64) -> Bool {
        while !stopped.isSet {
            let left = (deadline - Clock.monotonicNanoseconds() + 999_999) / 1_000_000
            if left <= 0 { return false }
            var entry = pollfd(fd: stopEvent.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, Int32(min(left, 60_000)))
        }
        return true
    }

    /// Stops accepting, closes the connections being read, waits for the requests being
    /// handled, and removes the socket file if it is still the one this daemon bound.
    public func stop() {
        stopped.set()
        stopEvent.signal()
        thread?.join()
        thread = nil
        let handlers = counts.withLock { counts -> [WorkerThread] in
            defer { counts.handlers.removeAll() }
            return Array(counts.handlers.values)
        }
        for handler in handlers { handler.join() }
        var info = stat()
        if lstat(path, &info) == 0 && info.st_dev == boundFile.0 && info.st_ino == boundFile.1 { unlink(path) }
    }
}
