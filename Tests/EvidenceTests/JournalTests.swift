import Foundation
import Glibc
import LibCrypto
import Platform
import Synchronization
import TestSupport
import Testing
import Wire
@testable import Evidence

/// The audit journal under faults: appends that fail half-way, lines cut by a power cut, lines
/// far longer than any record, and a second writer.
@Suite("Audit journal under faults")
struct JournalTests {
    /// A writer that, while `full` is set, writes part of what it is given and then fails with
    /// ENOSPC, as write(2) does when a disk fills mid-record.
    final class FillingDisk: Sendable {
        let full = Mutex(false)
        var writer: AuditJournal.Writer {
            { fd, bytes, path in
                if self.full.withLock({ $0 }) {
                    _ = Glibc.write(fd, bytes.baseAddress, bytes.count / 2)
                    throw SystemError.file(path: path, call: "write", errno: ENOSPC)
                }
                try writeAll(fd, bytes, path: path)
            }
        }
    }

    @Test("an append that fails half-way leaves the file as it was; when space returns the chain goes on and verifies")
    func failedAppendIsCutBack() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        let disk = FillingDisk()
        let journal = try AuditJournal(path: path, key: key, writer: disk.writer)
        try journal.append(kind: "boot", fields: [:])
        let before = try readWholeFile(path)
        disk.full.withLock { $0 = true }
        for _ in 0..<3 {
            #expect(throws: SystemError.file(path: path, call: "write", errno: ENOSPC)) {
                try journal.append(kind: "mark", fields: ["label": .string(String(repeating: "x", count: 500))])
            }
            #expect(try readWholeFile(path) == before, "nothing of the failed record is left")
        }
        disk.full.withLock { $0 = false }
        let record = try journal.append(kind: "storage_alarm", fields: ["level": .string("ok")])
        #expect(record.sequence == 2, "the failed records took no sequence number")
        let parsed = AuditJournal.parse(try readWholeFile(path), key: key.publicKey)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        #expect(parsed.records.map(\.kind) == ["boot", "storage_alarm"])
    }

    @Test("opening streams the file: a torn tail is closed and journaled, an overlong line is skipped and reported, the chain goes on")
    func streamingOpen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        do {
            let journal = try AuditJournal(path: path, key: key)
            try journal.append(kind: "boot", fields: [:])
            try journal.append(kind: "recording_stopped", fields: ["nonce": .string("n-1")])
        }
        // A line of 3 MiB (no record is that long) and then half a record, as a cut would leave.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(repeating: UInt8(ascii: "Z"), count: 3 << 20) + Data("\n{\"fields\":{},\"kind\":\"mark\"".utf8))
        handle.closeFile()

        var kinds: [String] = []
        let journal = try AuditJournal(path: path, key: key, interest: .init(members: ["nonce"])) { kinds.append($0.kind) }
        #expect(kinds == ["recording_stopped"], "the records a start needs (a nonce) were seen, once")
        let next = try journal.append(kind: "boot", fields: [:])
        #expect(next.sequence == 4, "after the repair record (3)")
        let parsed = AuditJournal.parse(try readWholeFile(path), key: key.publicKey)
        #expect(parsed.records.map(\.kind) == ["boot", "recording_stopped", "journal_repaired", "boot"])
        #expect(parsed.records[2].fields["torn_line"] == .integer(5), "line 1 is the version line")
        #expect(parsed.problems.map(\.line) == [4], "the overlong line; the repaired torn line is not a problem: \(parsed.problems)")
        #expect(parsed.problems.first?.message.contains("longer than") == true)
    }

    @Test("a start reads only what it needs: the chain's head and the nonces, also when the last line is damaged or records were skipped")
    func selectiveOpen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        do {
            let journal = try AuditJournal(path: path, key: key)
            for index in 0..<50 { try journal.append(kind: "checkpoint", fields: ["n": .integer(Int64(index))]) }
            try journal.append(kind: "duty_token", fields: ["nonce": .string("n-7")])
            for index in 0..<50 { try journal.append(kind: "checkpoint", fields: ["n": .integer(Int64(index))]) }
        }
        var nonces: [String] = []
        let reopened = try AuditJournal(path: path, key: key, interest: .init(members: ["nonce"])) { if let nonce = $0.fields["nonce"]?.string { nonces.append(nonce) } }
        #expect(nonces == ["n-7"])
        #expect(try reopened.append(kind: "boot", fields: [:]).sequence == 102, "the head was found")
        // A last line that is not a record: the head is found further back.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("not a record\n".utf8))
        handle.closeFile()
        nonces = []
        let again = try AuditJournal(path: path, key: key, interest: .init(members: ["nonce"])) { if let nonce = $0.fields["nonce"]?.string { nonces.append(nonce) } }
        #expect(nonces == ["n-7"])
        #expect(try again.append(kind: "boot", fields: [:]).sequence == 103)
        let parsed = AuditJournal.parse(try readWholeFile(path), key: key.publicKey)
        #expect(parsed.problems.map(\.line) == [104], "only the line that is not a record: \(parsed.problems)")
    }

    @Test("a line torn inside its signature, where what is left still decodes as base64, is a repaired torn line, not a record")
    func tornInsideSignature() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        do {
            let journal = try AuditJournal(path: path, key: key)
            try journal.append(kind: "boot", fields: [:])
            try journal.append(kind: "mark", fields: ["label": .string("x")])
        }
        // Cut the last line 4 base64 characters into its signature (and its newline gone).
        var bytes = try readWholeFile(path)
        let space = try #require(bytes.lastIndex(of: 0x20))
        bytes = Array(bytes[...(space + 4)])
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let journal = try AuditJournal(path: path, key: key)
        try journal.append(kind: "boot", fields: [:])
        let parsed = AuditJournal.parse(try readWholeFile(path), key: key.publicKey)
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        #expect(parsed.records.map(\.kind) == ["boot", "journal_repaired", "boot"])
    }

    @Test("a last record claiming sequence Int64.max is not a record: the journal opens and goes on from the one before")
    func hostileSequence() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        do { try AuditJournal(path: path, key: key).append(kind: "boot", fields: [:]) }
        let forged = JSONValue.object(["fields": .object([:]), "kind": .string("boot"), "mono_ns": .integer(0),
                                       "prev": .string(AuditJournal.zeroHash), "seq": .integer(Int64.max), "utc": .string("2026-11-29T00:00:00.000000Z")]).canonical
        let signature = try key.sign(AuditJournal.domain + forged)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(forged + Array(" \(Base64.encode(signature))\n".utf8)))
        handle.closeFile()
        let journal = try AuditJournal(path: path, key: key)
        #expect(try journal.append(kind: "boot", fields: [:]).sequence == 2)
        #expect(AuditJournal.parse(try readWholeFile(path), key: key.publicKey).problems.map(\.line) == [3])
    }

    @Test("a journal that is not a regular file (a FIFO, a symlink to /dev/zero) is refused, never read without end")
    func notRegular() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey()
        #expect(mkfifo(directory.path + "/fifo.log", 0o600) == 0)
        #expect(throws: EvidenceError.malformed(what: directory.path + "/fifo.log", reason: "not a regular file")) {
            _ = try AuditJournal(path: directory.path + "/fifo.log", key: key)
        }
        #expect(symlink("/dev/zero", directory.path + "/zero.log") == 0)
        #expect(throws: SystemError.file(path: directory.path + "/zero.log", call: "open", errno: ELOOP)) {
            _ = try AuditJournal(path: directory.path + "/zero.log", key: key)
        }
    }

    @Test("a second writer on a store is refused while the first holds it, and admitted once the first is gone")
    func oneWriterPerStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        var first: EvidenceVault? = try makeVault(directory.path, keys: keys)
        #expect(throws: EvidenceError.storeInUse(path: directory.path)) { _ = try makeVault(directory.path, keys: keys) }
        #expect(first != nil)
        first = nil
        let second = try makeVault(directory.path, keys: keys)
        #expect(second.nextSequence == 1)
    }
}
