import ControlProtocol
import Foundation
import Glibc
import Platform
import Synchronization
import TestSupport
import Testing
@testable import Daemon

/// The control socket on its own, with a handler the test controls: concurrency, the request
/// deadline, the bound on connections per uid, and which socket file it removes.
@Suite("The control socket against slow, many and vanishing clients")
struct ControlSocketTests {
    /// What the handler saw, in order.
    final class Seen: Sendable {
        let connections = Mutex<[ControlConnection]>([])
        func add(_ connection: ControlConnection) { connections.withLock { $0.append(connection) } }
        var all: [ControlConnection] { connections.withLock { $0 } }
    }

    /// A socket whose handler answers `ok` naming the line, except a line "slow", which waits
    /// until `release` is signalled.
    static func serving(_ path: String, limits: ControlSocket.Limits = .init(), seen: Seen, release: WakeEvent? = nil) throws -> ControlSocket {
        let socket = try ControlSocket(path: path, limits: limits)
        socket.start { connection in
            seen.add(connection)
            if let problem = connection.problem { return .failure("\(problem)") }
            if connection.line == Array("slow".utf8), let release {
                var entry = pollfd(fd: release.fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, 30_000)
            }
            return ControlResponse(ok: true, decision: [String(decoding: connection.line, as: UTF8.self)])
        }
        return socket
    }

    /// Connects and sends `bytes` without reading; the descriptor stays open for the caller.
    static func hold(_ path: String, sending bytes: [UInt8]) throws -> Int32 {
        let fd = try connectUnixSocket(path)
        if !bytes.isEmpty { try bytes.withUnsafeBytes { try sendAll(fd, $0, path: path) } }
        return fd
    }

    /// Reads the one answer line on `fd`, waiting at most `seconds` for it.
    static func answer(_ fd: Int32, within seconds: Int = 10) -> ControlResponse? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let line = readLine(fd, limit: 1 << 16)
        return line.complete ? try? ControlProtocol.decode(ControlResponse.self, from: line.line) : nil
    }

    @Test("a request that takes long (a held button) does not delay any other; both are answered")
    func concurrent() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let seen = Seen(), release = try WakeEvent()
        let socket = try Self.serving(directory.path + "/c.sock", seen: seen, release: release)
        defer { socket.stop() }
        let slow = try Self.hold(socket.path, sending: Array("slow\n".utf8))
        defer { _ = close(slow) }
        #expect(DaemonTests.eventually { seen.all.count == 1 }, "the slow request reached its handler")
        for index in 0..<5 {
            let answer = try ControlClient.exchange(Array("fast \(index)\n".utf8), path: socket.path, timeoutSeconds: 10)
            #expect(String(decoding: answer, as: UTF8.self).contains("fast \(index)"), "answered while the slow one waits")
        }
        release.signal()
        #expect(Self.answer(slow)?.decision == ["slow"])
    }

    @Test("a client trickling its line a byte at a time is cut at the request deadline, not carried out, and told so")
    func trickle() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        var limits = ControlSocket.Limits()
        limits.requestDeadline = 500_000_000
        let seen = Seen()
        let socket = try Self.serving(directory.path + "/t.sock", limits: limits, seen: seen)
        defer { socket.stop() }
        let fd = try Self.hold(socket.path, sending: [])
        defer { _ = close(fd) }
        // A byte, then up to 5 ms for an answer, again and again: a per-read timeout would never
        // fire; the deadline for the whole line does.
        let line = Array(#"{"cmd":"stop","token":""#.utf8) + [UInt8](repeating: UInt8(ascii: "A"), count: 4000)
        var answered = false
        for byte in line {
            guard send(fd, [byte], 1, Int32(MSG_NOSIGNAL)) == 1 else { break }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 5) > 0 { answered = true; break }
        }
        #expect(answered, "the daemon answered before the whole line was trickled")
        let answer = Self.answer(fd)
        #expect(answer?.ok == false && answer?.error == "request not complete within 500 ms", "\(String(describing: answer))")
        let connection = try #require(seen.all.first)
        #expect(connection.problem == .deadline(milliseconds: 500))
        #expect(visibleCommand(connection.line) == "stop", "the journal can still name what was not carried out")
    }

    @Test("a uid holding its bound of connections is refused more at once; others are served; a freed slot is reused")
    func perUIDBound() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        var limits = ControlSocket.Limits()
        limits.connectionsPerUID = 4
        let seen = Seen()
        let socket = try Self.serving(directory.path + "/u.sock", limits: limits, seen: seen)
        defer { socket.stop() }
        var held = try (0..<4).map { _ in try Self.hold(socket.path, sending: Array(#"{"cmd":"#.utf8)) }
        defer { held.forEach { _ = close($0) } }
        #expect(DaemonTests.eventually { socket.openConnections == 4 })
        // Many more from the same uid: each refused at once, none waits for the held ones.
        for _ in 0..<200 {
            let answer = try ControlProtocol.decode(ControlResponse.self, from: ControlClient.exchange(Array("status\n".utf8), path: socket.path))
            #expect(answer.error == "more than 4 connections open from this uid")
        }
        #expect(socket.openConnections == 4)
        _ = close(held.removeLast())
        #expect(DaemonTests.eventually { socket.openConnections == 3 })
        let answer = try ControlClient.exchange(Array("again\n".utf8), path: socket.path)
        #expect(String(decoding: answer, as: UTF8.self).contains("again"))
    }

    @Test("a peer that closed its end is gone; one that only shut down its writing side still waits for its answer")
    func clientGone() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { _ = close(pair[0]) }
        let connection = ControlConnection(peer: Peer(pid: 0, uid: 0, gid: 0), line: [], problem: nil, fd: pair[0])
        #expect(!connection.clientGone)
        shutdown(pair[1], Int32(SHUT_WR))
        #expect(!connection.clientGone)
        _ = close(pair[1])
        #expect(connection.clientGone)
    }

    @Test("a socket another process still serves is not taken over; stop removes only the socket file it bound")
    func socketFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/s.sock"
        let first = try ControlSocket(path: path)
        #expect(throws: ControlSocket.InUse.self) { _ = try ControlSocket(path: path) }
        // Someone else's socket now stands at the path: the first socket's stop leaves it alone.
        #expect(rename(path, directory.path + "/old.sock") == 0)
        let second = try ControlSocket(path: path)
        first.stop()
        #expect(FileManager.default.fileExists(atPath: path), "the other socket is still there")
        second.stop()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("journaled text from a peer is bounded and says it was cut; a command is seen in a line that never completed")
    func boundedText() {
        #expect(bounded("status") == "status")
        let long = String(repeating: "é", count: 40_000)
        let cut = bounded(long)
        #expect(cut.utf8.count < 100 && cut.hasSuffix("…[cut: 80000 bytes]"), "\(cut)")
        #expect(visibleCommand(Array(#"{"token":"x", "cmd" : "duty","#.utf8)) == "duty")
        #expect(visibleCommand(Array(#"{"cmd":"st"#.utf8)) == nil)
        #expect(visibleCommand(Array(#"{"cmd":"a b"}"#.utf8)) == nil)
        #expect(visibleCommand(Array(#"{"cmd":""#.utf8) + [UInt8](repeating: 0x61, count: 100) + [0x22]) == nil)
    }

    @Test("refusals beyond the burst are counted per uid and summarised once the window ends; other uids are not affected")
    func refusalLimiter() {
        let limiter = RefusalLimiter(burst: 3, window: 1_000)
        var journaled = 0
        for index in 0..<10 {
            let decision = limiter.admit(uid: 7, command: "x", reason: "r\(index)", at: Int64(index))
            if decision.journal { journaled += 1 }
            #expect(decision.ended == nil)
        }
        #expect(journaled == 3)
        #expect(limiter.admit(uid: 8, command: "y", reason: "r", at: 20).journal, "another uid has its own burst")
        #expect(limiter.takeEnded(at: 500).isEmpty, "the window has not ended")
        let ended = limiter.admit(uid: 7, command: "z", reason: "late", at: 1_000)
        #expect(ended.journal, "a new window starts with a full record")
        #expect(ended.ended == RefusalLimiter.Summary(uid: 7, suppressed: 7, windowStart: 0, lastCommand: "x", lastReason: "r9"))
        #expect(limiter.takeEnded(at: nil).isEmpty, "nothing was suppressed since")
    }
}
