import Logging
import Glibc
import Platform
import Testing

@Suite("Logging for journald")
struct LogTests {
    @Test("under journald every line carries its syslog priority; on a terminal the program and level lead")
    func formats() {
        let journal = JournaldLogHandler(label: "t", program: "bodycamd", journald: true)
        #expect(journal.format(level: .error, message: "camera lost", metadata: nil) == "<3>camera lost\n")
        #expect(journal.format(level: .warning, message: "low", metadata: nil) == "<4>low\n")
        #expect(journal.format(level: .notice, message: "recording", metadata: nil) == "<5>recording\n")
        #expect(journal.format(level: .info, message: "ready", metadata: nil) == "<6>ready\n")
        #expect(journal.format(level: .debug, message: "edge", metadata: nil) == "<7>edge\n")
        #expect(journal.format(level: .critical, message: "down", metadata: nil) == "<2>down\n")
        var terminal = JournaldLogHandler(label: "t", program: "bodycamd", journald: false)
        terminal[metadataKey: "segment"] = "3"
        #expect(terminal.format(level: .warning, message: "slow", metadata: ["frames": "2"]) == "bodycamd: warning: slow frames=2 segment=3\n")
    }

    @Test("a logger at info writes info and above to its descriptor, one line each, and drops debug")
    func levelFiltersWhatIsWritten() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let handler = JournaldLogHandler(label: "t", program: "p", level: .info, journald: true, output: fds[1])
        let logger = Logger(label: "t", factory: { _ in handler })
        logger.debug("not this")
        logger.info("ready")
        logger.error("camera lost", metadata: ["device": "/dev/video0"])
        close(fds[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fds[0], &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        #expect(String(decoding: bytes, as: UTF8.self) == "<6>ready\n<3>camera lost device=/dev/video0\n")
    }
}
