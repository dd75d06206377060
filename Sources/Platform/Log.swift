import Glibc
import Logging

/// swift-log, written the way journald reads it. Under systemd (JOURNAL_STREAM set) each line
/// carries a syslog priority prefix ("<3>", "<4>", "<6>") so journald files it at the right
/// level; on a terminal it reads "bodycamd: warning: …". Metadata follows the message as
/// key=value pairs. One write(2) per line, so lines from different threads never interleave.
public struct JournaldLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let program: String
    private let journald: Bool
    /// Where lines go: standard error, which systemd connects to the journal.
    private let output: Int32

    public init(label: String, program: String, level: Logger.Level = .info, journald: Bool = getenv("JOURNAL_STREAM") != nil,
                output: Int32 = 2) {
        self.program = program
        self.logLevel = level
        self.journald = journald
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// syslog(3) priorities: what journald files each level as.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    public func format(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?) -> String {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        let fields = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        return journald ? "<\(Self.priority(level))>\(message)\(fields)\n" : "\(program): \(level): \(message)\(fields)\n"
    }

    public func log(event: LogEvent) {
        let text = format(level: event.level, message: event.message, metadata: event.metadata)
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(output, $0.baseAddress, $0.count - 1) }
    }
}

/// The programs' logger. `bootstrap` once at start; `Log.info(…)` and friends log through it.
public enum Log {
    // Written by `bootstrap`, once, first thing in main before any other thread exists; only
    // read afterwards (Logger is a value; its handler is Sendable).
    nonisolated(unsafe) public private(set) static var logger = Logger(label: "bodycam") { JournaldLogHandler(label: $0, program: "bodycam") }

    /// Sends every Logger made from here on, and `Log`'s own, to a JournaldLogHandler.
    /// BODYCAM_LOG_LEVEL (trace … critical) sets the level; info when unset.
    public static func bootstrap(program: String) {
        let level = getenv("BODYCAM_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .info
        LoggingSystem.bootstrap { JournaldLogHandler(label: $0, program: program, level: level) }
        logger = Logger(label: program)
    }

    public static func error(_ message: String) { logger.error("\(message)") }
    public static func warning(_ message: String) { logger.warning("\(message)") }
    public static func notice(_ message: String) { logger.notice("\(message)") }
    public static func info(_ message: String) { logger.info("\(message)") }
    public static func debug(_ message: String) { logger.debug("\(message)") }
}

/// Writes `text` to standard error in one write(2) (no C `stderr` stream, which is shared
/// mutable state): usage messages of the small tools.
public func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    if bytes.last != 0x0A { bytes.append(0x0A) }
    _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}
