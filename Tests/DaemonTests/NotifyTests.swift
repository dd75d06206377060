import Capture
import Configuration
import ControlProtocol
import Controls
import Daemon
import Evidence
import LibAV
import LibCrypto
import Platform
import Policy
import TestSupport
import Tokens
import Wire
import Foundation
import Glibc
import Testing
@testable import Pipeline

@Suite("systemd notify protocol")
struct NotifyTests {
    /// A datagram socket standing in for systemd's notify socket.
    final class FakeSystemd {
        let path: String
        let fd: Int32
        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            let fd = self.fd
            let status = try withUnixSocketAddress(path, call: "bind") { bind(fd, $0, $1) }
            #expect(status == 0)
        }
        deinit { close(fd) }
        /// Messages received until `seconds` pass, each with its arrival time.
        func receive(for seconds: Double) -> [(String, Int64)] {
            var messages: [(String, Int64)] = []
            let end = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while Clock.monotonicNanoseconds() < end {
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 1, 50) > 0 else { continue }
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { messages.append((String(decoding: buffer[0..<count], as: UTF8.self), Clock.monotonicNanoseconds())) }
            }
            return messages
        }
    }

    @Test("READY within 2 s of start, watchdog pings while frames flow, STOPPING on SIGTERM")
    func notify() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let systemd = try FakeSystemd(path: directory.path + "/notify.sock")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonTests.daemonPath)
        process.arguments = ["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))]
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = systemd.path
        environment["WATCHDOG_USEC"] = "1000000"
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        let launched = Clock.monotonicNanoseconds()
        try process.run()
        let messages = systemd.receive(for: 3)
        process.terminate()
        let closing = systemd.receive(for: 1.5)
        process.waitUntilExit()
        let ready = try #require(messages.first { $0.0.contains("READY=1") }, "\(messages.map(\.0))")
        let seconds = Double(ready.1 - launched) / 1e9
        #expect(seconds <= 2.0, "ready after \(seconds) s")
        print("STARTUP ready_seconds \(formatDecimal(seconds, places: 3))")
        #expect(messages.filter { $0.0 == "WATCHDOG=1" }.count >= 3, "\(messages.map(\.0))")
        #expect(closing.contains { $0.0.hasPrefix("STOPPING=1") })
    }
}
