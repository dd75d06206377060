import ArgumentParser
import Evidence
import Foundation
import LibAV
import LibCrypto
import Pipeline
import Daemon
import Configuration
import ControlProtocol
import Capture
import Tokens
import Policy
import Controls
import Platform
import Wire

extension VerificationReport {
    var text: String {
        var lines = ["store \(store): device \(deviceID ?? "?") (key \(deviceKeyID ?? "?")), \(segments) segments, \(frames) frames, "
                     + "\(firstUTC ?? "-") to \(lastUTC ?? "-"), \(journalRecords) journal records"
                     + (authorityChecked ? "" : " (not checked against an authority: pass --authority)")]
        for correction in timeCorrections {
            lines.append("TIME CORRECTED segment \(correction.sequence): recorded as \(correction.recordedStartUTC) – \(correction.recordedEndUTC), "
                         + "really \(correction.correctedStartUTC) – \(correction.correctedEndUTC) "
                         + "(the clock was \(formatDecimal(Double(-correction.offsetMilliseconds) / 1000, places: 3)) s off; journal record \(correction.basisRecord))")
        }
        for stop in uncleanStops {
            lines.append("UNCLEAN STOP: the run from journal record \(stop.bootRecord) ended without a shutdown record after record \(stop.lastRecord) at \(stop.lastUTC) "
                         + (stop.nextBootUTC.map { "(a crash, a kill, the watchdog or a power loss; the device started again at \($0))" }
                            ?? "(a crash, a kill, the watchdog or a power loss, or the journal was cut after that record: the device alone cannot tell which)"))
        }
        if let recordingInProgress {
            lines.append("RECORDING IN PROGRESS: \(recordingInProgress) is being written by the device (not a problem; not checked until it is sealed)")
        }
        for problem in problems {
            let range = problem.from.map { " [\($0) – \(problem.to ?? "?")]" } ?? ""
            lines.append("PROBLEM \(problem.code) (\(problem.severity)): \(problem.message)\(range)")
        }
        lines.append(isClean ? "VERIFIED: no problems" : "NOT VERIFIED: \(problems.count) problems")
        return lines.joined(separator: "\n")
    }
}



struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a store without decrypting: signatures, certificate, chain, gaps, replays, hashes, journal.",
        discussion: "Exit 0: clean; 1: problems found (each named, with the segments and time range affected); 2: usage or I/O error.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The authority's public key file; without it the device key found in the store is trusted.") var authority: String?
    @Option(name: .customLong("journal-head"),
            help: "N:SHA256 — the journal's record count and last record's hash as someone outside the device last saw them (the office): a journal cut or rewritten since is found.")
    var journalHead: String?
    @Flag(name: .customLong("access"),
          help: "STORE is an evidence office's store: check its access journal (STORE/access.log, signed by STORE/access.pub or --access-key).")
    var access = false
    @Option(name: .customLong("access-key"), help: "The office's access journal key (public), kept apart from the office.") var accessKey: String?
    @Argument(help: "The store folder.") var store: String

    func validate() throws {
        if let journalHead, JournalHead(journalHead) == nil { throw ValidationError("--journal-head must be N:SHA256 (a record count, a colon, 64 lower-case hex)") }
        if !access && accessKey != nil { throw ValidationError("--access-key goes with --access") }
        if access && (journalHead != nil || authority != nil) { throw ValidationError("--access checks the access journal only: no --authority or --journal-head") }
    }

    /// The office's access journal (docs/OFFICE.md, "The access journal"): the device
    /// journal's format, read as a stream — signatures, the hash chain, sequence numbers.
    func verifyAccessJournal() throws {
        let path = store + "/access.log"
        var reader = JournalReader(key: try orExit2 { try KeyFile.readVerifyingKey(accessKey ?? store + "/access.pub") })
        var kinds: [String: Int] = [:]
        var first: String? = nil, last: String? = nil
        _ = try orExit2 {
            try AuditJournal.scan(path: path, into: &reader) { record in
                kinds[record.kind, default: 0] += 1
                first = first ?? record.utc
                last = record.utc
            }
        }
        var problems = reader.finishedProblems.map { (line: $0.line, message: $0.message, code: $0.code) }
        if let version = reader.unknownVersion { problems.append((0, "a journal version this reader does not know: \(version)", "journal_unreadable")) }
        let records = kinds.values.reduce(0, +)
        if global.json {
            try printJSON(AccessJournalReport(journal: path, records: records, firstUTC: first, lastUTC: last, kinds: kinds,
                                              problems: problems.map { .init(line: $0.line, code: $0.code, message: $0.message) }))
        } else {
            print("access journal \(path): \(records) records" + (first.map { ", \($0) to \(last ?? $0)" } ?? ""))
            print("   " + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            for problem in problems { print("PROBLEM \(problem.code) line \(problem.line): \(problem.message)") }
            print(problems.isEmpty ? "VERIFIED: no problems" : "NOT VERIFIED: \(problems.count) problem(s)")
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    struct AccessJournalReport: Encodable {
        struct Problem: Encodable { let line: Int, code: String, message: String }
        let journal: String, records: Int, firstUTC: String?, lastUTC: String?, kinds: [String: Int], problems: [Problem]
        var clean: Bool { problems.isEmpty }
        enum CodingKeys: String, CodingKey { case journal, records, firstUTC = "first_utc", lastUTC = "last_utc", kinds, problems, clean }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(journal, forKey: .journal)
            try container.encode(records, forKey: .records)
            try container.encode(firstUTC, forKey: .firstUTC)
            try container.encode(lastUTC, forKey: .lastUTC)
            try container.encode(kinds, forKey: .kinds)
            try container.encode(clean, forKey: .clean)
            try container.encode(problems, forKey: .problems)
        }
    }

    func run() throws {
        if access { return try verifyAccessJournal() }
        let report = try orExit2 { () throws -> VerificationReport in
            guard FileManager.default.fileExists(atPath: store) else { throw EvidenceError.keyFile(path: store, reason: "no such store") }
            return try StoreVerifier.verify(store: store, authority: try authority.map(KeyFile.readVerifyingKey), journalHead: journalHead.flatMap(JournalHead.init))
        }
        if global.json { try printJSON(report) } else { print(report.text) }
        if !report.isClean { throw ExitCode(1) }
    }
}

struct Offload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Offload acknowledgements: the only way segments leave a device.",
        subcommands: [Ack.self, Apply.self])

    struct Ack: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Office side: verify a received copy of a store and acknowledge every verified segment.",
            discussion: "Exit 0: written; 1: the copy has problems (nothing is acknowledged); 2: usage or I/O error.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("authority-key"), help: "The authority's secret key file (signs the acknowledgement).") var authorityKey: String
        @Option(help: "Where to write the acknowledgement.") var out: String
        @Argument(help: "The office's copy of the store.") var store: String
        func run() throws {
            let key = try orExit2 { try KeyFile.readSigningKey(authorityKey) }
            let report = try orExit2 { try StoreVerifier.verify(store: store, authority: key.publicKey) }
            guard report.isClean, let deviceID = report.deviceID else {
                print(report.text)
                throw ExitCode(1)
            }
            try orExit2 {
                let manifests = try EvidenceVault.readManifests(store).filter { report.verifiedSequences.contains($0.sequence) }
                let ack = try OffloadAcknowledgement.issue(deviceID: deviceID, manifests: manifests, key: key)
                try writeFileAtomically(out, ack.document.bytes, mode: 0o644)
                print("acknowledgement \(ack.ackID) for \(deviceID): segments \(ack.entries.map { String($0.sequence) }.joined(separator: ",")): \(out)")
            }
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Device side: delete the segments an acknowledgement names, after checking it; every deletion is journaled.",
            discussion: "Run with the daemon stopped. Exit 0: applied; 1: refused (journaled); 2: usage or I/O error.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The acknowledgement file.") var ack: String
        @Option(help: "The authority's public key file.") var authority: String
        @Option(name: .customLong("device-key"), help: "The device's secret key file (signs the journal).") var deviceKey: String
        @Option(name: .customLong("device-id"), help: "This device's id.") var deviceID: String
        @Argument(help: "The device's store.") var store: String
        func run() throws {
            let vault = try orExit2 {
                try EvidenceVault(configuration: .init(directory: store, deviceID: deviceID, recipients: [],
                                                       deviceKey: try KeyFile.readSigningKey(deviceKey), provisioned: true))
            }
            do {
                let result = try vault.applyOffload(try readWholeFile(ack, limit: 1 << 20), authority: try KeyFile.readVerifyingKey(authority))
                print("deleted segments \(result.deleted.map(String.init).joined(separator: ",")); refused \(result.refused.count)")
                for reason in result.refused { print("refused: \(reason)") }
                if !result.refused.isEmpty { throw ExitCode(1) }
            } catch let error as EvidenceError {
                FileHandle.standardError.write(Data("bodycamctl: refused: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
