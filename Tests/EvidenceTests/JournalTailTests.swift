import Foundation
import LibCrypto
import Platform
import TestSupport
import Testing
import Wire
@testable import Evidence

/// The journal's version line and its tail (docs/FORMAT.md, "The journal's tail"): a clean end
/// is told from a crash, and a journal whose records stop before what the manifests prove is
/// truncated.
@Suite("The journal's tail: clean ends, crashes and cuts")
struct JournalTailTests {
    /// Three runs of the writer, each a `boot` record and one second of footage: the first ends
    /// with `shutdown`, the second crashes, the third ends as `lastRunClean` says.
    func makeStore(_ path: String, keys: Keys, lastRunClean: Bool = true) throws {
        for run in 0..<3 {
            let vault = try makeVault(path, keys: keys)
            try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields)
            try recordEvidence(into: vault, frames: 30)
            if run == 0 || (run == 2 && lastRunClean) {
                try vault.journal.append(kind: AuditJournal.finalKind, fields: ["reason": .string("SIGTERM")])
            }
        }
    }

    func records(_ store: String) throws -> [JournalRecord] {
        AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil).records
    }

    /// The journal written anew by someone holding the device key: the same records, minus those
    /// `keep` drops and with the fields `edit` makes of each, in a chain that is whole again, its boot
    /// records' accounts of the run before them made to match.
    func rewriteJournal(_ store: String, keys: Keys, keep: (JournalRecord) -> Bool = { _ in true },
                        edit: (JournalRecord, [String: JSONValue]) -> [String: JSONValue] = { $1 }) throws {
        let old = try records(store)
        try FileManager.default.removeItem(atPath: store + "/journal.log")
        let journal = try AuditJournal(path: store + "/journal.log", key: keys.device)
        var last: JournalRecord? = nil
        for record in old where keep(record) {
            var fields = record.fields
            if record.kind == "boot" { fields.merge(AuditJournal.runAccount(after: last)) { $1 } }
            last = try journal.append(kind: record.kind, fields: edit(record, fields))
        }
    }

    @Test("a new journal starts with its version line; another version is refused unread, a missing one is a problem of line 1")
    func versionLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = try Ed25519PrivateKey(), path = directory.path + "/journal.log"
        try AuditJournal(path: path, key: key).append(kind: "boot", fields: [:])
        let bytes = try readWholeFile(path)
        #expect(bytes.starts(with: Array("bodycam-journal/1\n{".utf8)))
        #expect(AuditJournal.parse(bytes, key: key.publicKey).problems.isEmpty)

        let later = AuditJournal.parse(Array("bodycam-journal/2\n".utf8) + bytes.drop(while: { $0 != 0x0A }).dropFirst(), key: key.publicKey)
        #expect(later.records.isEmpty && later.problems.map(\.code) == ["journal_unreadable"], "\(later.problems)")
        // The daemon refuses to append to a journal of a version it does not know.
        let newer = directory.path + "/newer.log"
        #expect(FileManager.default.createFile(atPath: newer, contents: Data("bodycam-journal/2\n".utf8)))
        #expect(throws: EvidenceError.self) { try AuditJournal(path: newer, key: key) }
        let bare = AuditJournal.parse(Array(bytes.drop(while: { $0 != 0x0A }).dropFirst()), key: key.publicKey)
        #expect(bare.records.count == 1, "the record on line 1 is still read")
        #expect(bare.problems.map(\.line) == [1] && bare.problems.map(\.code) == ["journal_broken"])
    }

    @Test("each boot record says how the run before it ended; a crash is reported as an unclean stop, not a problem")
    func crashIsToldApart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        let boots = try records(store).filter { $0.kind == "boot" }
        #expect(boots.map { $0.fields["previous_end"]?.string } == ["none", "shutdown", "unclean"])
        #expect(boots[0].fields["previous_records"] == .integer(0) && boots[0].fields["previous_sha256"] == .string(AuditJournal.zeroHash))
        #expect(boots[2].fields["previous_records"] == .integer(boots[2].sequence - 1))

        let report = try StoreVerifier.verify(store: store, authority: keys.authority.publicKey)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.verifiedSequences == [1, 2, 3])
        #expect(report.uncleanStops == [UncleanStop(bootRecord: boots[1].sequence, lastRecord: boots[2].sequence - 1,
                                                    lastUTC: try records(store)[Int(boots[2].sequence) - 2].utc,
                                                    nextBootRecord: boots[2].sequence, nextBootUTC: boots[2].utc)])
    }

    @Test("records cut after the last segment (the final shutdown removed) leave a last run without a clean end, which is all the device alone can show")
    func finalRecordsRemoved() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        #expect(try StoreVerifier.verify(store: store, authority: nil).uncleanStops.count == 1)
        let final = try #require(try records(store).last)
        #expect(final.kind == AuditJournal.finalKind)
        try rewriteJournal(store, keys: keys, keep: { $0.sequence < final.sequence })
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.uncleanStops.count == 2 && report.uncleanStops.last?.nextBootRecord == nil)
    }

    @Test("records cut before a sealed segment's record are a truncated journal; a manifest the journal went on without was put in")
    func truncationAndInsertion() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        let pristine = directory.path + "/pristine"
        try FileManager.default.copyItem(atPath: store, toPath: pristine)

        let lastSealed = try #require(try records(store).last { $0.kind == "segment_sealed" })
        try rewriteJournal(store, keys: keys, keep: { $0.sequence < lastSealed.sequence })
        let cut = try StoreVerifier.verify(store: store, authority: nil)
        #expect(cut.problems.map(\.code) == ["journal_truncated"] && cut.problems.first?.sequences == [3], "\(cut.problems)")
        #expect(cut.verifiedSequences == [1, 2], "what the journal does not vouch for is not verified")

        let middle = try #require(try records(pristine).first { $0.kind == "segment_sealed" && $0.fields["sequence"] == .integer(2) })
        try rewriteJournal(pristine, keys: keys, keep: { $0.sequence != middle.sequence })
        let inserted = try StoreVerifier.verify(store: pristine, authority: nil)
        #expect(inserted.problems.map(\.code) == ["manifest_not_journaled"] && inserted.problems.first?.sequences == [2], "\(inserted.problems)")
    }

    @Test("a start that failed after its repair record and before its boot leaves the next boot naming that record: not a problem")
    func failedStartBeforeBoot() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        do { try makeVault(store, keys: keys).journal.append(kind: "journal_repaired", fields: ["torn_line": .integer(2)]) }
        let vault = try makeVault(store, keys: keys)
        let boot = try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields)
        #expect(boot.fields["previous_end"] == .string("unclean") && boot.fields["previous_records"] == .integer(boot.sequence - 1))
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean, "\(report.problems)")
    }

    @Test("journal records claiming times at the ends of the range make no correction overflow: verify reports, never traps")
    func extremeClockRecords() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        // Records out of their place (a forger's), claiming the last time there is and a
        // monotonic clock near its bound, for the boot the segments were recorded on.
        let lines = try String(contentsOfFile: store + "/journal.log", encoding: .utf8)
        var text = lines
        for (utc, mono) in [("2199-12-31T23:59:59.999999Z", Int64(0)), ("1970-01-01T00:00:00.000000Z", Int64(3_162_240_000_000_000_000))] {
            let body = JSONValue.object(["fields": .object(["boot_id": .string(kernelBootID)]), "kind": .string("boot"), "mono_ns": .integer(mono),
                                         "prev": .string(AuditJournal.zeroHash), "seq": .integer(1), "utc": .string(utc)]).canonical
            text += String(decoding: body, as: UTF8.self) + " " + Base64.encode(try keys.device.sign(AuditJournal.domain + body)) + "\n"
        }
        try text.write(toFile: store + "/journal.log", atomically: true, encoding: .utf8)
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.problems.contains { $0.code == "journal_broken" })
        #expect(report.timeCorrections.allSatisfy { ClockParse.nanoseconds(iso8601: $0.correctedStartUTC) != nil })
        #expect(ClockParse.inRange(ClockParse.latestNanoseconds, plus: 1) == nil && ClockParse.inRange(0, plus: -1) == nil)
        #expect(ClockParse.inRange(Int64.max, plus: Int64.max) == nil && ClockParse.inRange(5, plus: 5) == 10)
    }

    @Test("a boot record whose account of the run before it does not match the journal is a broken journal")
    func bootClaimChecked() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys(), store = directory.path + "/store"
        try makeStore(store, keys: keys)
        let third = try #require(try records(store).filter { $0.kind == "boot" }.last)
        try rewriteJournal(store, keys: keys, edit: { record, fields in
            record.sequence == third.sequence ? fields.merging(["previous_end": .string("shutdown")]) { $1 } : fields
        })
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.problems.map(\.code) == ["journal_broken"], "\(report.problems)")
    }
}
