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
/// before, each made durable (fdatasync) before `append` returns. Thread-safe.
public final class AuditJournal: Sendable {
    public static let domain = Array("bodycam-journal/1\n".utf8)
    public static let zeroHash = String(repeating: "0", count: 64)
    public let path: String
    private let key: Ed25519PrivateKey
    private let fd: Int32
    /// The chain's head and what callers may ask of it; appends come from several threads.
    private struct State {
        var nextSequence: Int64
        var previous: String
        var appended = 0
        var recordsAtOpen: [JournalRecord]
    }
    private let state: Mutex<State>
    /// Records appended since this journal was opened.
    public var appended: Int { state.withLock { $0.appended } }

    /// The records the journal held when it was opened (read once; the caller takes them, e.g.
    /// to rebuild the used token nonces, and they are not kept).
    public func takeRecordsAtOpen() -> [JournalRecord] {
        state.withLock { state in
            defer { state.recordsAtOpen = [] }
            return state.recordsAtOpen
        }
    }

    /// Opens (or creates) the journal. A last line cut short by a crash is closed with a newline
    /// and left as it is; the chain continues from the last whole record, and the repair itself
    /// is journaled.
    public init(path: String, key: Ed25519PrivateKey) throws {
        self.path = path
        self.key = key
        var existing: [UInt8] = []
        if access(path, F_OK) == 0 { existing = try readWholeFile(path) }
        let parsed = AuditJournal.parse(existing, key: nil)
        state = Mutex(State(nextSequence: (parsed.records.last?.sequence ?? 0) + 1,
                            previous: parsed.records.last.map { Hex.encode($0.hash) } ?? AuditJournal.zeroHash,
                            recordsAtOpen: parsed.records))
        // Acquired last: a throw before this point leaves nothing open (deinit does not run).
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if descriptor < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        fd = descriptor
        if let last = existing.last, last != 0x0A {
            try write([0x0A])
            _ = try append(kind: "journal_repaired", fields: ["torn_line": .integer(Int64(parsed.lineCount))])
        }
    }

    // Every record was made durable (fdatasync) when appended: close(2) can lose nothing here.
    deinit { _ = close(fd) }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// Appends and makes durable one record; returns it.
    @discardableResult
    public func append(kind: String, fields: [String: JSONValue]) throws -> JournalRecord {
        try state.withLock { state in
        var record = JournalRecord(sequence: state.nextSequence, utc: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()),
                                   monotonicNanoseconds: Clock.monotonicNanoseconds(), kind: kind, fields: fields,
                                   previous: state.previous, hash: [], line: 0)
        let json = record.body.canonical
        let signature = try key.sign(AuditJournal.domain + json)
        let line = json + Array(" \(Base64.encode(signature))".utf8)
        try write(line + [0x0A])
        if fdatasync(fd) < 0 { throw SystemError.file(path: path, call: "fdatasync", errno: errno) }
        record.hash = try SHA256.hash(line)
        state.previous = Hex.encode(record.hash)
        state.nextSequence += 1
        state.appended += 1
        return record
        }
    }

    public struct Parsed {
        public var records: [JournalRecord] = []
        /// Problems found, each with the line it concerns.
        public var problems: [(line: Int, message: String)] = []
        public var lineCount = 0
        /// The file ends inside a record (a crash mid-append, or a cut).
        public var tornTail = false
    }

    /// Reads a journal. With `key`, every signature is checked; the chain (sequence and
    /// previous hash) is always checked.
    public static func parse(_ bytes: [UInt8], key: Ed25519PublicKey?) -> Parsed {
        var result = Parsed()
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        var previous = zeroHash
        var expected: Int64 = 1
        for (index, line) in lines.enumerated() {
            let number = index + 1
            if index == lines.count - 1 {
                if !line.isEmpty { result.tornTail = true; result.lineCount = number; result.problems.append((number, "last record is cut short")) }
                break
            }
            result.lineCount = number
            guard let space = line.lastIndex(of: 0x20) else {
                result.problems.append((number, "not a journal record"))
                continue
            }
            let json = Array(line[line.startIndex..<space])
            guard let body = try? JSONParser.parse(json), body.canonical == json,
                  let sequence = body["seq"]?.integer, let kind = body["kind"]?.string, let utc = body["utc"]?.string,
                  let mono = body["mono_ns"]?.integer, let prev = body["prev"]?.string, let fields = body["fields"]?.object,
                  let signature = Base64.decode(String(decoding: line[(space + 1)...], as: UTF8.self)) else {
                result.problems.append((number, "not a journal record"))
                continue
            }
            if let key, !key.isValidSignature(signature, for: domain + json) {
                result.problems.append((number, "record \(sequence) has a bad signature"))
            }
            if sequence != expected { result.problems.append((number, "record \(sequence) where \(expected) was expected")) }
            if prev != previous { result.problems.append((number, "record \(sequence) does not follow the record before it (chain broken)")) }
            guard let hash = try? SHA256.hash(Array(line)) else {
                result.problems.append((number, "record \(sequence) cannot be hashed (OpenSSL failed)"))
                continue
            }
            result.records.append(JournalRecord(sequence: sequence, utc: utc, monotonicNanoseconds: mono, kind: kind, fields: fields,
                                                previous: prev, hash: hash, line: number))
            previous = Hex.encode(hash)
            expected = sequence + 1
        }
        // A torn line closed by a later repair is a crash artifact, not a problem of the chain.
        result.problems.removeAll { problem in
            guard problem.message == "not a journal record" else { return false }
            return result.records.contains { $0.kind == "journal_repaired" && $0.fields["torn_line"]?.integer == Int64(problem.line) }
        }
        return result
    }
}
