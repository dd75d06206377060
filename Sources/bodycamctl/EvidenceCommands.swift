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

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify, then decrypt a store to playable MP4 files with an export report.",
        discussion: """
            Writes OUT/NAME.mp4 per segment and OUT/export-report.json and OUT/export-report.txt (plaintext hashes, \
            manifests, the verification). Segments that fail verification are exported only with --force, and \
            flagged. Files already in OUT are never replaced unless --overwrite is given, and nothing is written \
            through a link planted there. Exit 0: everything verified and exported; 1: problems (see the report); \
            2: usage or I/O error.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The office's secret identity file (X25519).") var identity: String
    @Option(help: "The authority's public key file.") var authority: String?
    @Option(help: "Folder for the MP4 files and the report.") var out: String
    @Flag(help: "Export segments that failed verification too (flagged in the report).") var force = false
    @Flag(help: "Replace files of an earlier export in the output folder.") var overwrite = false
    @Argument(help: "The store folder.") var store: String

    func run() throws {
        LibAVLogging.setQuiet(true)
        let (report, entries) = try orExit2 { () throws -> (VerificationReport, [ExportEntry]) in
            let key = try KeyFile.readIdentity(identity)
            let report = try StoreVerifier.verify(store: store, authority: try authority.map(KeyFile.readVerifyingKey))
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            var entries: [ExportEntry] = []
            let manifests = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".manifest") }.sorted()
            for name in manifests {
                var entry = ExportEntry(manifest: name)
                defer { entries.append(entry) }
                guard let manifest = try? Manifest.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name) else {
                    entry.reason = "manifest unreadable"
                    continue
                }
                entry.sequence = manifest.sequence
                entry.manifestBody = manifest.document.body
                entry.manifestSHA256 = Hex.encode(manifest.sha256)
                // An offloaded segment whose file is here all the same (the office's copy of a
                // store, which holds what the device deleted) is exported like any other.
                if report.offloaded.contains(manifest.sequence) && access(store + "/" + manifest.segmentFile, F_OK) != 0 {
                    entry.offloaded = true
                    entry.reason = "offloaded earlier under an acknowledgement; the office holds it"
                    continue
                }
                let verified = report.verifiedSequences.contains(manifest.sequence)
                entry.verified = verified
                if manifest.recovered && manifest.frames == 0 && verified {
                    // The power went as the segment opened: its header survived, no fragment did.
                    entry.empty = true
                    entry.reason = "recovered with no complete fragment: no picture to export"
                    continue
                }
                if !verified && !force {
                    entry.reason = "failed verification (use --force to export anyway)"
                    continue
                }
                do {
                    // The name was checked to be a segment name when the manifest was read.
                    let bytes = try readWholeFile(store + "/" + manifest.segmentFile, limit: SealedSegmentFormat.maximumFileBytes, followLinks: false)
                    // A recovered segment keeps every chunk that authenticates: a torn write after
                    // them (a header on disk, its payload not) is reported, not a reason to lose them.
                    let layout = try SealedSegmentLayout(bytes, what: manifest.segmentFile, zeroFilledIsTorn: manifest.recovered)
                    let plain: [UInt8]
                    if manifest.recovered {
                        let part = try layout.decryptAuthenticPrefix(bytes, identity: key, what: manifest.segmentFile)
                        plain = part.plaintext
                        if part.lostChunks > 0 { entry.tornChunks = part.lostChunks }
                    } else {
                        plain = try layout.decrypt(bytes, identity: key, allowUnsealed: false, what: manifest.segmentFile)
                    }
                    let path = out + "/" + manifest.baseName + ".mp4"
                    try writeFileAtomically(path, plain, mode: 0o640, exclusive: !overwrite)
                    let inspected = try SegmentInspector.inspect(path: path)
                    entry.exported = true
                    entry.file = path
                    entry.plaintextSHA256 = Hex.encode(try SHA256.hash(plain))
                    entry.framesDecoded = inspected.decodedFrames
                    entry.durationSeconds = inspected.durationSeconds
                    entry.framesDropped = manifest.framesDropped
                    entry.framesDroppedEstimated = manifest.framesDropped == nil ? nil : manifest.framesDroppedEstimated
                    if let correction = report.timeCorrections.first(where: { $0.sequence == manifest.sequence }) {
                        entry.correctedStartUTC = correction.correctedStartUTC
                        entry.correctedEndUTC = correction.correctedEndUTC
                    }
                    entry.decodeProblems = inspected.problems
                    entry.flagged = !verified
                } catch {
                    entry.exported = false
                    entry.reason = "\(error)"
                }
            }
            let document = ExportReport(verification: report, segments: entries,
                                        exportedUTC: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()))
            try writeFileAtomically(out + "/export-report.json", try jsonBytes(document), mode: 0o640, exclusive: !overwrite)
            var text = [report.text, ""]
            for entry in entries {
                if entry.exported {
                    let estimated = entry.framesDroppedEstimated == true
                    let missing = entry.framesDropped.map {
                        $0 > 0 ? " (\(estimated ? "about " : "")\($0) missing: the camera's frames dropped\(estimated ? ", estimated" : ""))"
                            : estimated ? " (none missing, estimated)" : ""
                    } ?? ""
                    let corrected = entry.correctedStartUTC.map { ", corrected UTC \($0) – \(entry.correctedEndUTC ?? "?")" } ?? ""
                    let torn = entry.tornChunks.map { ", \($0) torn chunk\($0 == 1 ? "" : "s") after them not authentic (a write the power cut left unfinished)" } ?? ""
                    text.append("\(entry.flagged == true ? "FLAGGED " : "")EXPORTED \(entry.file ?? "?"): \(entry.framesDecoded ?? 0) frames\(missing)\(corrected)\(torn), "
                                + "plaintext SHA-256 \(entry.plaintextSHA256 ?? "?")")
                } else if entry.empty == true {
                    text.append("EMPTY \(entry.manifest): \(entry.reason ?? "")")
                } else {
                    text.append("NOT EXPORTED \(entry.manifest): \(entry.reason ?? "")")
                }
            }
            try writeFileAtomically(out + "/export-report.txt", Array((text.joined(separator: "\n") + "\n").utf8), mode: 0o640, exclusive: !overwrite)
            return (report, entries)
        }
        if global.json {
            try printJSON(ExportReport(verification: report, segments: entries, exportedUTC: nil))
        } else {
            print((try? String(contentsOfFile: out + "/export-report.txt", encoding: .utf8)) ?? "")
        }
        let allExported = entries.allSatisfy { $0.offloaded == true || $0.empty == true || ($0.exported && $0.decodeProblems?.isEmpty == true) }
        if !report.isClean || !allExported { throw ExitCode(1) }
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
