import Glibc
import Platform

/// The client side of the control socket (`bodycamctl`): one request, one response.
public enum ControlClient {
    /// Sends `request` to the daemon listening at `path` and waits up to `timeoutSeconds` for
    /// its answer. Throws `SystemError` when the socket cannot be reached or gives no answer, and
    /// a decoding error when the answer is not a `ControlResponse`.
    public static func send(_ request: ControlRequest, path: String, timeoutSeconds: Int = 10) throws -> ControlResponse {
        let line = try exchange(ControlProtocol.encodeLine(request), path: path, timeoutSeconds: timeoutSeconds)
        return try ControlProtocol.decode(ControlResponse.self, from: line)
    }

    /// Writes `bytes` (one request line) and returns the first line of the answer, without its
    /// newline. For tests that speak the protocol by hand.
    public static func exchange(_ bytes: [UInt8], path: String, timeoutSeconds: Int = 10) throws -> [UInt8] {
        let fd = try connectUnixSocket(path, call: "connect (is bodycamd running?)")
        defer { _ = Glibc.close(fd) }  // a client socket: nothing was written that close could lose
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        do {
            try bytes.withUnsafeBytes { try sendAll(fd, $0, path: path) }
        } catch let error as SystemError where error.errno == .brokenPipe || error.errno == .connectionReset {
            // The daemon may have refused the connection before reading it (too many open from
            // this uid): its answer says why, so it is read rather than the send's error shown.
            let answer = readLine(fd, limit: 1 << 20)
            guard answer.complete, !answer.line.isEmpty else { throw error }
            return answer.line
        }
        let answer = readLine(fd, limit: 1 << 20)
        guard answer.complete, !answer.line.isEmpty else { throw SystemError.file(path: path, call: "read (no answer)", errno: EPROTO) }
        return answer.line
    }
}

/// send(2) with MSG_NOSIGNAL until every byte is out: a peer that went away is an EPIPE error,
/// never a SIGPIPE that would end the process.
public func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let count = retryingInterrupts { Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if count < 0 { throw SystemError.file(path: path, call: "send", errno: errno) }
        offset += count
    }
}
