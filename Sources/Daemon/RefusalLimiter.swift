import Platform
import Synchronization

/// Bounds how fast one peer can grow the audit journal with refused requests: per uid, the
/// first `burst` refusals of each `window` are journaled one by one, the rest only counted and
/// journaled as one summary when the window ends. Every refusal is still in the journal, as a
/// record or in a count. Thread-safe (the socket thread and the request threads refuse; the
/// housekeeping thread collects ended windows).
final class RefusalLimiter: Sendable {
    /// Refusals that were counted, not journaled one by one.
    struct Summary: Equatable, Sendable {
        var uid: UInt32
        var suppressed: Int
        /// CLOCK_MONOTONIC ns of the window's start.
        var windowStart: Int64
        /// The last refusal's command and reason (bounded).
        var lastCommand: String
        var lastReason: String
    }

    private struct Window {
        var start: Int64
        var journaled = 0
        var suppressed = 0
        var lastCommand = ""
        var lastReason = ""
    }

    let burst: Int
    /// Nanoseconds.
    let window: Int64
    private let windows = Mutex<[UInt32: Window]>([:])

    init(burst: Int = 10, window: Int64 = 60_000_000_000) {
        self.burst = burst
        self.window = window
    }

    /// Counts a refusal for `uid` at `now` (CLOCK_MONOTONIC ns). Returns whether to journal it
    /// in full, and the summary of that uid's previous window when this refusal ended it.
    func admit(uid: UInt32, command: String, reason: String, at now: Int64) -> (journal: Bool, ended: Summary?) {
        windows.withLock { windows in
            var ended: Summary? = nil
            if let current = windows[uid], now - current.start >= window {
                ended = summary(uid, current)
                windows[uid] = nil
            }
            var current = windows[uid] ?? Window(start: now)
            let journal = current.journaled < burst
            if journal { current.journaled += 1 } else { current.suppressed += 1 }
            current.lastCommand = command
            current.lastReason = reason
            windows[uid] = current
            return (journal, ended)
        }
    }

    /// The windows that have ended by `now` (all of them with `now` nil), removed.
    func takeEnded(at now: Int64?) -> [Summary] {
        windows.withLock { windows in
            var ended: [Summary] = []
            for (uid, current) in windows where now.map({ $0 - current.start >= window }) ?? true {
                windows[uid] = nil
                if let summary = summary(uid, current) { ended.append(summary) }
            }
            return ended.sorted { $0.uid < $1.uid }
        }
    }

    private func summary(_ uid: UInt32, _ window: Window) -> Summary? {
        guard window.suppressed > 0 else { return nil }
        return Summary(uid: uid, suppressed: window.suppressed, windowStart: window.start,
                       lastCommand: window.lastCommand, lastReason: window.lastReason)
    }
}

/// A peer's text for the journal: at most `limit` UTF-8 bytes, and when cut it says so and how
/// long it was, so a record never grows with what a peer sends.
func bounded(_ text: String, limit: Int = 64) -> String {
    let bytes = text.utf8.count
    guard bytes > limit else { return text }
    var cut = Substring(text).prefix(limit)
    while cut.utf8.count > limit { cut = cut.dropLast() }
    return "\(cut)…[cut: \(bytes) bytes]"
}

/// The `cmd` of a request line that never completed or was not JSON, if one can be seen: the
/// first `"cmd"`, a colon and a quoted name of at most 32 letters, digits or underscores.
/// Only for the journal; nothing is carried out on it.
func visibleCommand(_ bytes: [UInt8]) -> String? {
    let key = Array("\"cmd\"".utf8)
    guard bytes.count >= key.count,
          let start = (0...(bytes.count - key.count)).first(where: { bytes[$0..<($0 + key.count)].elementsEqual(key) }) else { return nil }
    var index = start + key.count
    func skipSpace() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }
    skipSpace()
    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
    index += 1
    skipSpace()
    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
    index += 1
    var name: [UInt8] = []
    while index < bytes.count, name.count <= 32 {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\"") { return name.isEmpty ? nil : String(decoding: name, as: UTF8.self) }
        guard (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x5F else { return nil }
        name.append(byte)
        index += 1
    }
    return nil
}
