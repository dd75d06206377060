import Glibc

/// Lines on standard error. Under systemd (JOURNAL_STREAM set) each line carries a syslog
/// priority prefix ("<3>", "<4>", "<6>") so journald files it at the right level.
public enum Log {
    public enum Level: Int32 {
        case error = 3, warning = 4, notice = 5, info = 6, debug = 7
        var word: String {
            switch self {
            case .error: return "error"
            case .warning: return "warning"
            case .notice: return "notice"
            case .info: return "info"
            case .debug: return "debug"
            }
        }
    }

    nonisolated(unsafe) public static var program = "bodycam"
    private static let journald = getenv("JOURNAL_STREAM") != nil

    public static func write(_ level: Level, _ message: String) {
        let line = journald ? "<\(level.rawValue)>\(message)\n" : "\(program): \(level.word): \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { Glibc.write(2, $0.baseAddress, $0.count - 1) }
    }

    public static func error(_ message: String) { write(.error, message) }
    public static func warning(_ message: String) { write(.warning, message) }
    public static func notice(_ message: String) { write(.notice, message) }
    public static func info(_ message: String) { write(.info, message) }
}
