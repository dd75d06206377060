import Logging
import Pipeline
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

    @Test("the level filters: debug is dropped at info")
    func level() {
        let handler = JournaldLogHandler(label: "t", program: "p", level: .info, journald: true)
        let logger = Logger(label: "t", factory: { _ in handler })
        #expect(logger.logLevel == .info)
        #expect(Logger.Level.debug < logger.logLevel && Logger.Level.notice >= logger.logLevel)
    }
}
