import LibCrypto
import Pipeline
import Platform
import Wire

/// One thing wrong with a store, named for a person and for a program.
public struct VerificationProblem: Equatable, Sendable {
    public var code: String
    public var message: String
    /// Segment sequence numbers concerned (at most `maximumListed`; the message names a
    /// longer range whole).
    public var sequences: [Int64]
    public static let maximumListed = 1_000
    /// UTC time range concerned, when known.
    public var from: String?
    public var to: String?
    /// The segment files concerned (from the manifests named), at most `maximumListed`.
    public var segmentFiles: [String] = []

    /// How much a finding weighs (docs/FORMAT.md, "Findings"): `error`, evidence may have been
    /// altered, removed or put in, and the segments named are not verified; `warning`, the
    /// footage verifies and something about it must be said (its times, its provenance, a file
    /// beside it).
    public var severity: String { VerificationProblem.warnings.contains(code) ? "warning" : "error" }
    public static let warnings: Set<String> = ["clock_implausible", "clock_backwards", "unprovisioned", "segment_set_aside", "segment_without_manifest",
                                               "device_key_missing", "device_key_replaced_certified"]
}

/// A run of the writer (from a `boot` record) that ended without the final `shutdown` record.
public struct UncleanStop: Equatable, Sendable, Encodable {
    /// The run's `boot` record, and its last record (where the journal stops for it).
    public var bootRecord: Int64
    public var lastRecord: Int64
    public var lastUTC: String
    /// The next run's `boot` record and time; nil for the journal's last run, whose end the
    /// device alone cannot tell from a journal cut after its last record.
    public var nextBootRecord: Int64?
    public var nextBootUTC: String?

    enum CodingKeys: String, CodingKey {
        case bootRecord = "boot_record", lastRecord = "last_record", lastUTC = "last_utc"
        case nextBootRecord = "next_boot_record", nextBootUTC = "next_boot_utc"
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bootRecord, forKey: .bootRecord)
        try container.encode(lastRecord, forKey: .lastRecord)
        try container.encode(lastUTC, forKey: .lastUTC)
        try container.encode(nextBootRecord, forKey: .nextBootRecord)
        try container.encode(nextBootUTC, forKey: .nextBootUTC)
    }
}

/// Follows the journal's runs as it is read (docs/FORMAT.md, "The journal's tail"): each `boot`
/// record's account of the run before it is checked against the records themselves, and runs
/// that ended without `shutdown` are collected.
struct RunTracker {
    /// The last few records (the start of a run may journal a repair and a key replacement
    /// between the last run's end and its `boot`).
    private var recent: [JournalRecord] = []
    private var current: JournalRecord? = nil
    private(set) var stops: [UncleanStop] = []
    /// What a start writes before its `boot` record.
    static let prelude: Set<String> = ["journal_repaired", EvidenceVault.keyReplacedKind]

    /// Takes the next record; returns a problem when a `boot` record misstates the run before it.
    mutating func observe(_ record: JournalRecord) -> String? {
        defer {
            recent.append(record)
            if recent.count > 8 { recent.removeFirst() }
        }
        guard record.kind == "boot" else { return nil }
        var problem: String? = nil
        let endIndex = recent.lastIndex(where: { !RunTracker.prelude.contains($0.kind) })
        let end = endIndex.map { recent[$0] }
        if let claimed = record.fields["previous_records"]?.integer {
            let sha = record.fields["previous_sha256"]?.string, said = record.fields["previous_end"]?.string
            // The account is of the journal's last record when the start began: the run's last
            // record, or a record of an earlier start that failed before its own `boot` (a
            // repair, a key replacement) after it; a claim of 0 needs no record but a start's.
            let candidates = recent[(endIndex ?? recent.startIndex)...].filter { $0.sequence == end?.sequence || RunTracker.prelude.contains($0.kind) }
            let named = candidates.last { $0.sequence == claimed }
            let right = AuditJournal.runAccount(after: named)
            if !(claimed == 0 ? end == nil : named != nil) || right["previous_sha256"]?.string != sha || right["previous_end"]?.string != said {
                problem = "boot record \(record.sequence) says the journal held \(claimed) records (the last \(sha?.prefix(16) ?? "?")…, \(said ?? "?")) "
                    + "when that run began, and the journal shows otherwise"
            }
        }
        if let current, let end, end.kind != AuditJournal.finalKind, end.sequence >= current.sequence {
            stops.append(UncleanStop(bootRecord: current.sequence, lastRecord: end.sequence, lastUTC: end.utc,
                                     nextBootRecord: record.sequence, nextBootUTC: record.utc))
        }
        current = record
        return problem
    }

    /// The journal's last run: ended cleanly, still running (`live`), or stopped without `shutdown`.
    mutating func finish(live: Bool) -> [UncleanStop] {
        if let current, let end = recent.last, end.kind != AuditJournal.finalKind, !live {
            stops.append(UncleanStop(bootRecord: current.sequence, lastRecord: end.sequence, lastUTC: end.utc, nextBootRecord: nil, nextBootUTC: nil))
        }
        return stops
    }
}

/// A segment recorded while the wall clock was wrong by a second or more, with the times the
/// journal shows it really had (docs/POLICY.md, "Clock"): its start and end as recorded, and
/// as corrected by the offset between CLOCK_MONOTONIC and the wall clock that the last journal
/// record of the same kernel boot carries.
public struct TimeCorrection: Equatable, Sendable {
    public var sequence: Int64
    public var recordedStartUTC: String
    public var recordedEndUTC: String
    public var correctedStartUTC: String
    public var correctedEndUTC: String
    /// Corrected minus recorded, milliseconds.
    public var offsetMilliseconds: Int64
    /// The journal record whose times are the basis.
    public var basisRecord: Int64
}

public struct VerificationReport: Sendable {
    public var store: String
    public var deviceID: String?
    public var deviceKeyID: String?
    public var authorityChecked: Bool
    public var segments: Int
    /// Segments deleted under an offload acknowledgement (their manifests remain).
    public var offloaded: [Int64]
    public var frames: Int64
    public var firstUTC: String?
    public var lastUTC: String?
    public var journalRecords: Int
    public var problems: [VerificationProblem]
    /// Manifests that passed every check, by sequence.
    public var verifiedSequences: [Int64]
    /// Segments whose recorded times the journal corrects, by sequence.
    public var timeCorrections: [TimeCorrection] = []
    /// A live store (its writer holds the store's lock): the segment being recorded, not a
    /// problem and not checked.
    public var recordingInProgress: String? = nil
    /// Runs of the writer that ended without the final `shutdown` record: a crash, a kill, the
    /// watchdog or a power loss (docs/FORMAT.md, "The journal's tail"). Facts about how the
    /// footage was recorded, not problems.
    public var uncleanStops: [UncleanStop] = []
    public var isClean: Bool { problems.isEmpty }
}

/// What someone outside the device holds of its journal (the evidence office, from the camera's
/// heartbeats; docs/FORMAT.md, "The journal's tail"): the number of records it had and the last
/// one's hash. A journal that ends before that record, or whose record of that number is
/// another, was cut or rewritten after it was seen.
public struct JournalHead: Equatable, Sendable {
    public var records: Int64
    /// SHA-256 of record `records`'s line, lower-case hex.
    public var sha256: String
    public init(records: Int64, sha256: String) {
        self.records = records
        self.sha256 = sha256
    }

    /// `N:HEX` (`bodycamctl verify --journal-head`); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let records = Int64(parts[0]), (1...JournalReader.maximumSequence).contains(records),
              Hex.decode(String(parts[1]))?.count == 32 else { return nil }
        self.init(records: records, sha256: String(parts[1]))
    }
}

/// `bodycamctl verify`: checks a store without decrypting anything — signatures and the
/// certificate, the manifest chain, sequence gaps, duplicates and replays, segments of another
/// device, every ciphertext hash, the journal's own chain, and that every segment the journal
/// says was sealed is there; with `journalHead`, that the journal still holds what was seen of it.
public enum StoreVerifier {
    /// `cache`: what an earlier verification learned of the segment files (the office keeps one
    /// per device, so verifying as uploads arrive hashes each file once).
    public static func verify(store: String, authority: Ed25519PublicKey?, journalHead: JournalHead? = nil,
                              cache: SegmentFactsCache? = nil) throws -> VerificationReport {
        var run = try StoreVerification(store: store, authority: authority, journalHead: journalHead, cache: cache)
        guard run.readKeys() else { return run.report() }
        run.readJournal()
        run.checkCertifiedKey()
        run.readManifests()
        run.proveOffloads()
        try run.checkSegments()
        run.checkChain()
        run.checkLooseFiles()
        run.checkJournal()
        run.reportReplacements()
        run.checkClock()
        run.checkCertificateAtSigning()
        cache?.retain(Set(run.names.map { store + "/" + $0 }), under: store)
        return run.report()
    }
}

// `bodycamctl verify --json` and the export report: every member always present, null when
// unknown.
extension VerificationProblem: Encodable {
    enum CodingKeys: String, CodingKey { case code, severity, message, sequences, from, to, segmentFiles = "segment_files" }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(severity, forKey: .severity)
        try container.encode(segmentFiles, forKey: .segmentFiles)
        try container.encode(message, forKey: .message)
        try container.encode(sequences, forKey: .sequences)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
    }
}

extension VerificationReport: Encodable {
    enum CodingKeys: String, CodingKey {
        case store, segments, offloaded, frames, problems, clean
        case deviceID = "device_id", deviceKeyID = "device_key_id", authorityChecked = "authority_checked"
        case firstUTC = "first_utc", lastUTC = "last_utc", journalRecords = "journal_records", verifiedSequences = "verified_sequences"
        case timeCorrections = "time_corrections"
        case recordingInProgress = "recording_in_progress"
        case uncleanStops = "unclean_stops"
        case summary
    }
    struct Summary: Encodable {
        let segments: Int, verified: Int, errors: Int, warnings: Int, clean: Bool
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(store, forKey: .store)
        try container.encode(deviceID, forKey: .deviceID)
        try container.encode(deviceKeyID, forKey: .deviceKeyID)
        try container.encode(authorityChecked, forKey: .authorityChecked)
        try container.encode(segments, forKey: .segments)
        try container.encode(offloaded, forKey: .offloaded)
        try container.encode(frames, forKey: .frames)
        try container.encode(firstUTC, forKey: .firstUTC)
        try container.encode(lastUTC, forKey: .lastUTC)
        try container.encode(journalRecords, forKey: .journalRecords)
        try container.encode(isClean, forKey: .clean)
        try container.encode(verifiedSequences, forKey: .verifiedSequences)
        try container.encode(timeCorrections, forKey: .timeCorrections)
        try container.encode(recordingInProgress, forKey: .recordingInProgress)
        try container.encode(uncleanStops, forKey: .uncleanStops)
        try container.encode(Summary(segments: segments, verified: verifiedSequences.count,
                                     errors: problems.filter { $0.severity == "error" }.count,
                                     warnings: problems.filter { $0.severity == "warning" }.count, clean: isClean), forKey: .summary)
        try container.encode(problems, forKey: .problems)
    }
}

extension TimeCorrection: Encodable {
    enum CodingKeys: String, CodingKey {
        case sequence
        case recordedStartUTC = "recorded_start_utc", recordedEndUTC = "recorded_end_utc"
        case correctedStartUTC = "corrected_start_utc", correctedEndUTC = "corrected_end_utc"
        case offsetMilliseconds = "offset_ms", basisRecord = "basis_journal_record"
    }
}
