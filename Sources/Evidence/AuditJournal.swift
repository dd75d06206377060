import Glibc
import Synchronization
import LibCrypto
import Pipeline
import Platform
import Wire

/// One journal record (docs/FORMAT.md, "Audit journal").
public struct JournalRecord: Equatable, Sendable {
    public var sequence: Int64
    public var utc: String
    public var monotonicNanoseconds: Int64
    public var kind: String
    public var fields: [String: JSONValue]
    /// SHA-256 of the previous record's line (64 zeros for the first).
    public var previous: String
    /// SHA-256 of this record's line, without its newline.
    public var hash: [UInt8]
    /// 1-based line number in the file.
    public var line: Int

    var body: JSONValue {
        .object(["fields": .object(fields), "kind": .string(kind), "mono_ns": .integer(monotonicNanoseconds),
                 "prev": .string(previous), "seq": .integer(sequence), "utc": .string(utc)])
    }
}

/// The append-only audit journal: one signed record per line, each naming the hash of the one
/// before, each made durable (fdatasync) before `append` returns. An append lands whole or not
/// at all: a failed write or sync is cut back off the file. Thread-safe.
public final class AuditJournal: Sendable {
    /// The file's first line (docs/FORMAT.md, "Audit journal"); with its LF it is also the
    /// domain every record's signature is over.
    public static let versionLine = Array("bodycam-journal/1".utf8)
    public static let domain = versionLine + [0x0A]
    public static let zeroHash = String(repeating: "0", count: 64)
    /// The records a reader at start needs (the daemon: the duty and recording state a crash
    /// left, token nonces, key replacements): those of these kinds, and those whose fields name
    /// one of these members.
    public struct Interest: Sendable {
        public var kinds: Set<String>
        public var members: Set<String>
        public init(kinds: Set<String> = [], members: Set<String> = []) {
            self.kinds = kinds
            self.members = members
        }
        /// Byte patterns that every line of such a record holds (canonical JSON writes a member
        /// name as `"name":` and a kind as `"kind":"KIND"`, and escapes every quote inside a
        /// string): a line without any is not parsed.
        var patterns: [[UInt8]] { (kinds.map { "\"kind\":\"\($0)\"" } + members.map { "\"\($0)\":" }).map { Array($0.utf8) } }
        func wants(_ record: JournalRecord) -> Bool { kinds.contains(record.kind) || record.fields.keys.contains(where: members.contains) }
    }
    /// A line longer than this is not a record (records are bounded well below it); it is
    /// skipped as it is read, never held whole.
    public static let maximumLineBytes = 1 << 20
    public let path: String
    private let key: Ed25519PrivateKey
    private let fd: Int32
    /// The chain's head and the file's length; appends come from several threads.
    private struct State {
        var nextSequence: Int64
        var previous: String
        var appended = 0
        /// Bytes in the file after the last whole record.
        var length: Int64
        /// A failed append could not be cut back: it is, before the next one.
        var cutPending = false
    }
    private let state: Mutex<State>
    /// Records appended since this journal was opened.
    public var appended: Int { state.withLock { $0.appended } }
    /// The chain's head now: the number of records and the last one's hash; nil while empty.
    public var head: JournalHead? {
        state.withLock { $0.nextSequence > 1 ? JournalHead(records: $0.nextSequence - 1, sha256: $0.previous) : nil }
    }
    /// The last record the journal held when it was opened (how the previous run ended).
    public let lastRecordAtOpen: JournalRecord?
    /// What a `boot` record says of the run before it, as this journal was found when opened
    /// (docs/FORMAT.md, "Audit journal"): `previous_records`, the count of records then (the
    /// last one's `seq`, 0 for a new journal); `previous_sha256`, the last one's hash (64 zeros
    /// for none); `previous_end`, `shutdown` when it was the clean end's final record, `unclean`
    /// when the run ended otherwise (a crash, a kill, the watchdog, a power loss), `none`.
    public var previousRunFields: [String: JSONValue] { AuditJournal.runAccount(after: lastRecordAtOpen) }

    /// A `boot` record's account of the run before it, whose last record is `last` (nil: none).
    public static func runAccount(after last: JournalRecord?) -> [String: JSONValue] {
        ["previous_records": .integer(last?.sequence ?? 0),
         "previous_sha256": .string(last.map { Hex.encode($0.hash) } ?? zeroHash),
         "previous_end": .string(last.map { $0.kind == finalKind ? "shutdown" : "unclean" } ?? "none")]
    }
    /// The kind of a clean end's final record.
    public static let finalKind = "shutdown"
    /// Writes bytes to the journal's descriptor (`writeAll`; a test's writer fails like a full disk).
    public typealias Writer = @Sendable (_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws -> Void
    private let writer: Writer

    /// Opens (or creates) the journal, reading it once as a stream (bounded memory whatever its
    /// size, and only the records a start needs parsed): `visit` sees, in order, each record
    /// `interest` wants; `lastRecordAtOpen` is the journal's last record (how the previous run ended).
    /// A last line cut short by a crash is closed with a newline and left as it is; the chain
    /// continues from the last whole record, and the repair itself is journaled.
    public init(path: String, key: Ed25519PrivateKey, interest: Interest = Interest(), visit: (JournalRecord) -> Void = { _ in },
                writer: @escaping Writer = { try writeAll($0, $1, path: $2) }) throws {
        self.path = path
        self.key = key
        self.writer = writer
        var reader = JournalReader(key: nil)
        var torn = false
        if access(path, F_OK) == 0 {
            // Only what a start needs is parsed: the records `interest` wants, and the last
            // record (the chain's head).
            var seen: [JournalRecord] = []
            let patterns = interest.patterns
            torn = try AuditJournal.scan(path: path, into: &reader, select: { line in
                patterns.contains { line.contains(subsequence: $0) }
            }, visit: { if interest.wants($0) { seen.append($0) } })
            if reader.lastWholeLine > 1 && reader.last?.line != reader.lastWholeLine {
                // The last whole line is not a record (damage, an overlong line): the head is
                // further back, so the whole journal is read.
                reader = JournalReader(key: nil)
                seen = []
                torn = try AuditJournal.scan(path: path, into: &reader, visit: { if interest.wants($0) { seen.append($0) } })
            }
            // A journal of a version this software does not know was written by newer software:
            // appending to it would give a file no reader can check, and reading nothing of it
            // would forget used token nonces. Refused, naming the file.
            if let version = reader.unknownVersion {
                throw EvidenceError.malformed(what: path, reason: "the journal is \(version), written by newer software than this; "
                                              + "install that, or move the file aside")
            }
            seen.forEach(visit)
        }
        lastRecordAtOpen = reader.last
        // A new journal is created whole with its version line (never an empty or half-written
        // first line, whatever the power does).
        if access(path, F_OK) != 0 { try writeFileAtomically(path, AuditJournal.domain, mode: 0o640, exclusive: true) }
        // Acquired last: a throw before this point leaves nothing open (deinit does not run).
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        if descriptor < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        var status = stat()
        _ = fstat(descriptor, &status)
        fd = descriptor
        state = Mutex(State(nextSequence: (reader.last?.sequence ?? 0) + 1,
                            previous: reader.last.map { Hex.encode($0.hash) } ?? AuditJournal.zeroHash,
                            length: Int64(status.st_size)))
        if status.st_size == 0 {
            // Left empty by an earlier writer: the version line first.
            try state.withLock { state in try write(AuditJournal.domain, at: &state) }
        }
        if torn {
            try state.withLock { state in
                try write([0x0A], at: &state)
            }
            _ = try append(kind: "journal_repaired", fields: ["torn_line": .integer(Int64(reader.lineCount))])
        }
    }

    // Every record was made durable (fdatasync) when appended: close(2) can lose nothing here.
    deinit { _ = close(fd) }

    /// Appends `bytes` whole or not at all: on a failure the file is cut back to its length
    /// before, so the next record never lands on a torn one.
    private func write(_ bytes: [UInt8], at state: inout State) throws {
        if state.cutPending {
            if ftruncate(fd, off_t(state.length)) < 0 { throw SystemError.file(path: path, call: "ftruncate", errno: errno) }
            state.cutPending = false
        }
        do {
            try bytes.withUnsafeBytes { try writer(fd, $0, path) }
            if fdatasync(fd) < 0 { throw SystemError.file(path: path, call: "fdatasync", errno: errno) }
        } catch {
            if ftruncate(fd, off_t(state.length)) < 0 { state.cutPending = true }
            throw error
        }
        state.length += Int64(bytes.count)
    }

    /// Appends and makes durable one record; returns it. On a failure nothing was appended.
    @discardableResult
    public func append(kind: String, fields: [String: JSONValue]) throws -> JournalRecord {
        try state.withLock { state in
            var record = JournalRecord(sequence: state.nextSequence, utc: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()),
                                       monotonicNanoseconds: Clock.monotonicNanoseconds(), kind: kind, fields: fields,
                                       previous: state.previous, hash: [], line: 0)
            let json = record.body.canonical
            let signature = try key.sign(AuditJournal.domain + json)
            let line = json + Array(" \(Base64.encode(signature))".utf8)
            record.hash = try SHA256.hash(line)
            try write(line + [0x0A], at: &state)
            state.previous = Hex.encode(record.hash)
            state.nextSequence += 1
            state.appended += 1
            return record
        }
    }

    public struct Parsed {
        public var records: [JournalRecord] = []
        /// Problems found, each with the line it concerns and its finding code.
        public var problems: [JournalReader.Problem] = []
        public var lineCount = 0
        /// The file ends inside a record (a crash mid-append, or a cut).
        public var tornTail = false
    }

    /// Reads a journal held in memory. With `key`, every signature is checked; the chain
    /// (sequence and previous hash) is always checked.
    public static func parse(_ bytes: [UInt8], key: Ed25519PublicKey?) -> Parsed {
        var reader = JournalReader(key: key)
        var records: [JournalRecord] = []
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            if index == lines.count - 1 {
                if !line.isEmpty { reader.tornTail(lineNumber: index + 1) }
                break
            }
            if line.count > maximumLineBytes {
                reader.skipLong(lineNumber: index + 1)
            } else if let record = reader.read(line, lineNumber: index + 1) {
                records.append(record)
            }
        }
        return Parsed(records: records, problems: reader.finishedProblems, lineCount: reader.lineCount, tornTail: reader.isTorn)
    }

    /// Reads the journal file at `path` as a stream, in bounded memory: `visit` sees each
    /// readable record in order; `reader` ends up with the chain's head and the problems.
    /// Returns whether the file ends inside a line. Only a regular file is read.
    ///
    /// With `select`, only the lines it picks (and always the last whole line) are read as
    /// records; the others are counted, not parsed or hashed, so `reader` then checks no chain
    /// across them. The daemon's start uses it to find the chain's head and the used token
    /// nonces in a journal of any length quickly.
    @discardableResult
    public static func scan(path: String, into reader: inout JournalReader, select: ((ArraySlice<UInt8>) -> Bool)? = nil,
                            visit: (JournalRecord) -> Void) throws -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        defer { _ = close(fd) }  // read only: a failed close loses nothing
        var status = stat()
        if fstat(fd, &status) < 0 { throw SystemError.file(path: path, call: "fstat", errno: errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw EvidenceError.malformed(what: path, reason: "not a regular file") }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var line: [UInt8] = []
        var lineNumber = 1
        var skipping = false
        // The last whole line when it was not selected: it is read at the end (the chain's head).
        var unreadLine: [UInt8] = []
        var lastUnread: Int? = nil
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in retryingInterrupts { read(fd, buffer.baseAddress, buffer.count) } }
            if count < 0 { throw SystemError.file(path: path, call: "read", errno: errno) }
            if count == 0 { break }
            var start = 0
            while start < count {
                let newline = chunk[start..<count].firstIndex(of: 0x0A)
                let end = newline ?? count
                if !skipping {
                    if line.count + (end - start) > maximumLineBytes {
                        skipping = true
                        line.removeAll()
                    } else {
                        line += chunk[start..<end]
                    }
                }
                guard newline != nil else { break }
                if skipping {
                    reader.skipLong(lineNumber: lineNumber)
                } else if let select, lineNumber > 1, !select(line[...]) {
                    reader.skipUnread(lineNumber: lineNumber)
                    swap(&line, &unreadLine)
                    lastUnread = lineNumber
                } else {
                    if let record = reader.read(line[...], lineNumber: lineNumber) { visit(record) }
                    lastUnread = nil
                }
                reader.lastWholeLine = lineNumber
                line.removeAll(keepingCapacity: true)
                skipping = false
                lineNumber += 1
                start = end + 1
            }
        }
        if let lastUnread, let record = reader.read(unreadLine[...], lineNumber: lastUnread) { visit(record) }
        let torn = !line.isEmpty || skipping
        if torn { reader.tornTail(lineNumber: lineNumber) }
        return torn
    }
}

/// Reads journal lines one at a time (docs/FORMAT.md, "Audit journal"): checks each record's
/// form, signature (with `key`) and place in the chain, keeping only the last record and the
/// problems (at most `maximumProblems`, then a count).
public struct JournalReader {
    /// The key signatures are checked with: the device key, then each replacement a
    /// `device_key_replaced` record announces (signed by the replacement itself).
    public private(set) var key: Ed25519PublicKey?
    /// The replacements of the device key the journal records, in order.
    public private(set) var replacements: [(key: Ed25519PublicKey, record: JournalRecord)] = []
    public static let maximumProblems = 1_000
    /// A record's `seq` is 1 … 2^53 (a record a microsecond for 285 years); any other is not a
    /// record, so nothing computed from it can overflow.
    public static let maximumSequence: Int64 = 1 << 53
    public private(set) var last: JournalRecord?
    public private(set) var lineCount = 0
    /// The number of the last line that ended with a newline (set by `scan`).
    public internal(set) var lastWholeLine = 0
    public private(set) var isTorn = false
    /// Problems beyond `maximumProblems`, counted only.
    public private(set) var moreProblems = 0
    /// A problem with one line, and the finding code it is (docs/FORMAT.md, "Findings"):
    /// `journal_truncated` (the file ends inside a record), `journal_bad_signature`,
    /// `journal_unreadable` (a version this reader does not know), `journal_broken` (the rest).
    public typealias Problem = (line: Int, message: String, code: String)
    private var problems: [Problem] = []
    /// The first line named a journal version this reader does not know: nothing is read.
    public private(set) var unknownVersion: String? = nil
    private var repairedLines: Set<Int64> = []
    private var previous = AuditJournal.zeroHash
    private var expected: Int64 = 1
    /// Lines were left unread before this one: take its place in the chain as given.
    private var resynchronise = false

    public init(key: Ed25519PublicKey?) { self.key = key }

    private mutating func problem(_ line: Int, _ message: String, code: String = "journal_broken") {
        if problems.count < JournalReader.maximumProblems { problems.append((line, message, code)) } else { moreProblems += 1 }
    }

    /// The problems, without the torn lines a later repair record closed (a crash artifact,
    /// not a problem of the chain).
    public var finishedProblems: [Problem] {
        var result = problems.filter { !($0.message == "not a journal record" && repairedLines.contains(Int64($0.line))) }
        if moreProblems > 0 { result.append((lineCount, "\(moreProblems) more problems not listed", "journal_broken")) }
        return result
    }

    mutating func skipLong(lineNumber: Int) {
        lineCount = lineNumber
        problem(lineNumber, "longer than \(AuditJournal.maximumLineBytes) bytes: not a journal record")
    }

    /// A line `scan` did not read: the chain is not checked across it.
    mutating func skipUnread(lineNumber: Int) {
        lineCount = lineNumber
        resynchronise = true
    }

    mutating func tornTail(lineNumber: Int) {
        isTorn = true
        lineCount = lineNumber
        problem(lineNumber, "last record is cut short", code: "journal_truncated")
    }

    /// Reads one whole line (without its newline); returns the record when it is one.
    public mutating func read(_ line: ArraySlice<UInt8>, lineNumber number: Int) -> JournalRecord? {
        lineCount = number
        if unknownVersion != nil { return nil }
        if number == 1 {
            if line.elementsEqual(AuditJournal.versionLine) { return nil }
            if line.starts(with: Array("bodycam-journal/".utf8)) && line.count <= 64 && !line.contains(0x20) {
                unknownVersion = String(decoding: line, as: UTF8.self)
                problem(number, "the journal is \(unknownVersion ?? "?"), a version this reader does not know: not read", code: "journal_unreadable")
                return nil
            }
            // Read on as a record, so that one damaged first line costs no more than itself.
            problem(number, "the first line is not the version line bodycam-journal/1")
        }
        guard let space = line.lastIndex(of: 0x20) else {
            problem(number, "not a journal record")
            return nil
        }
        let json = Array(line[line.startIndex..<space])
        guard let body = try? JSONParser.parse(json), body.canonical == json,
              let sequence = body["seq"]?.integer, (1...JournalReader.maximumSequence).contains(sequence), let kind = body["kind"]?.string, let utc = body["utc"]?.string,
              ClockParse.nanoseconds(iso8601: utc) != nil,
              let mono = body["mono_ns"]?.integer, let prev = body["prev"]?.string, Hex.decode(prev)?.count == 32, let fields = body["fields"]?.object,
              let signature = Base64.decode(String(decoding: line[(space + 1)...], as: UTF8.self)), signature.count == 64 else {
            problem(number, "not a journal record")
            return nil
        }
        // A lost device key is replaced, never silently: the record that says so carries the new
        // public key and is signed by it; the records after it are too.
        var replacement: Ed25519PublicKey? = nil
        if kind == EvidenceVault.keyReplacedKind, let raw = fields["new_key"]?.string.flatMap(Base64.decode) {
            replacement = try? Ed25519PublicKey(raw: raw)
        }
        if let checking = key.map({ replacement ?? $0 }), !checking.isValidSignature(signature, for: AuditJournal.domain + json) {
            problem(number, "record \(sequence) has a bad signature", code: "journal_bad_signature")
            replacement = nil
        }
        if !resynchronise {
            if sequence != expected { problem(number, "record \(sequence) where \(expected) was expected") }
            if prev != previous { problem(number, "record \(sequence) does not follow the record before it (chain broken)") }
            // A replacement counts only in its place in the chain.
            if sequence != expected || prev != previous { replacement = nil }
        }
        resynchronise = false
        guard let hash = try? SHA256.hash(Array(line)) else {
            problem(number, "record \(sequence) cannot be hashed (OpenSSL failed)")
            return nil
        }
        if kind == "journal_repaired", let torn = fields["torn_line"]?.integer { repairedLines.insert(torn) }
        let record = JournalRecord(sequence: sequence, utc: utc, monotonicNanoseconds: mono, kind: kind, fields: fields,
                                   previous: prev, hash: hash, line: number)
        if let replacement {
            replacements.append((replacement, record))
            if key != nil { key = replacement }
        }
        previous = Hex.encode(hash)
        // Checked: a record may claim any sequence; the next one expected must not trap.
        expected = sequence.addingReportingOverflow(1).partialValue
        last = record
        return record
    }
}

extension ArraySlice where Element == UInt8 {
    /// Whether `needle` (not empty) occurs in these bytes.
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard let first = needle.first, count >= needle.count else { return false }
        var index = startIndex
        let last = endIndex - needle.count
        while index <= last {
            guard let found = self[index...last].firstIndex(of: first) else { return false }
            if self[found..<(found + needle.count)].elementsEqual(needle) { return true }
            index = found + 1
        }
        return false
    }
}
