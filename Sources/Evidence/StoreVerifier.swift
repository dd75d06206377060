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
        var end = recent.last(where: { !RunTracker.prelude.contains($0.kind) })
        if let claimed = record.fields["previous_records"]?.integer {
            let sha = record.fields["previous_sha256"]?.string, said = record.fields["previous_end"]?.string
            // The account must be of the run's last record: the last one before the boot other
            // than the start's own.
            let named = end.flatMap { $0.sequence == claimed ? $0 : nil }
            let actual = named.map { $0.kind == AuditJournal.finalKind ? "shutdown" : "unclean" } ?? "none"
            if claimed == 0 ? (sha != AuditJournal.zeroHash || said != "none" || end != nil)
                            : (named.map { Hex.encode($0.hash) } != sha || said != actual) {
                problem = "boot record \(record.sequence) says the journal held \(claimed) records (the last \(sha?.prefix(16) ?? "?")…, \(said ?? "?")) "
                    + "when that run began, and the journal shows otherwise"
            }
            end = named ?? end
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

/// `bodycamctl verify`: checks a store without decrypting anything — signatures and the
/// certificate, the manifest chain, sequence gaps, duplicates and replays, segments of another
/// device, every ciphertext hash, the journal's own chain, and that every segment the journal
/// says was sealed is there.
public enum StoreVerifier {
    public static func verify(store: String, authority: Ed25519PublicKey?) throws -> VerificationReport {
        var problems: [VerificationProblem] = []
        func problem(_ code: String, _ message: String, _ sequences: [Int64] = [], _ manifests: [Manifest] = [], file: String? = nil) {
            problems.append(VerificationProblem(code: code, message: message, sequences: sequences,
                                                from: manifests.map(\.startUTC).min(), to: manifests.map(\.endUTC).max(),
                                                segmentFiles: file.map { [$0] } ?? Array(Set(manifests.map(\.segmentFile)).sorted().prefix(VerificationProblem.maximumListed))))
        }
        let names = try directoryEntries(store)

        // The device key (docs/FORMAT.md, "Which key verifies what"): the public key the device
        // left in the store when it first recorded (`device.pub`), else its certificate's. The
        // journal may then name replacements of a lost key; the certificate must be for one of
        // these keys. With an authority, the certificate must be its; its validity is judged at
        // the time each manifest was signed, below.
        var deviceKey: Ed25519PublicKey? = nil
        var certificate: DeviceCertificate? = nil
        if names.contains("device.certificate") {
            do {
                let read = try DeviceCertificate.read(store + "/device.certificate")
                certificate = read
                if let authority {
                    let messages = read.problems(authority: authority)
                    if !messages.isEmpty { problem("certificate_invalid", messages.joined(separator: "; ")) }
                }
            } catch {
                problem("certificate_invalid", "device.certificate: \(error)")
            }
        } else if authority != nil {
            problem("unprovisioned", "no device certificate: the device key cannot be traced to the authority")
        }
        let certifiedKey = certificate?.deviceKey
        if names.contains("device.pub") {
            do {
                deviceKey = try KeyFile.readVerifyingKey(store + "/device.pub")
            } catch {
                problem("device_key_unreadable", "\(error)")
            }
        } else if let certifiedKey {
            problem("device_key_missing", "device.pub is gone: signatures are checked with the certificate's key \(certifiedKey.keyID)")
        }
        deviceKey = deviceKey ?? certifiedKey
        guard let deviceKey else {
            problem("no_device_key", "neither device.certificate nor device.pub: no signature can be checked")
            return VerificationReport(store: store, deviceID: nil, deviceKeyID: nil, authorityChecked: authority != nil, segments: 0, offloaded: [], frames: 0,
                                      firstUTC: nil, lastUTC: nil, journalRecords: 0, problems: problems, verifiedSequences: [])
        }

        // The journal is read as a stream (any size, bounded memory); only the records the
        // checks below need are kept.
        var journal = JournalReader(key: deviceKey)
        var kept: [JournalRecord] = []
        var journalRecords = 0
        // For each kernel boot (a `boot` record's boot_id, until the next `boot` record): the
        // offset between wall and monotonic time of its last record — the latest clock the
        // device knew while those monotonic times held.
        var currentBoot: String? = nil
        var bootOffsets: [String: (offset: Int64, record: Int64)] = [:]
        var journalReadable = false
        var journalDevice: String? = nil
        var runs = RunTracker()
        if names.contains(EvidenceVault.journalName) {
            do {
                try AuditJournal.scan(path: store + "/" + EvidenceVault.journalName, into: &journal) { record in
                    journalRecords += 1
                    if let message = runs.observe(record) { problem("journal_broken", message) }
                    if ["segment_offloaded", "segment_sealed", "segment_recovered"].contains(record.kind) { kept.append(record) }
                    if record.kind == "boot" {
                        journalDevice = journalDevice ?? record.fields["device_id"]?.string
                        currentBoot = record.fields["boot_id"]?.string.flatMap { $0.isEmpty ? nil : $0 }
                    }
                    if let boot = currentBoot, let wall = ClockParse.nanoseconds(iso8601: record.utc),
                       (0...SealedSegmentFormat.maximumNanoseconds).contains(record.monotonicNanoseconds) {
                        bootOffsets[boot] = (wall - record.monotonicNanoseconds, record.sequence)
                    }
                }
                journalReadable = journal.unknownVersion == nil
                if let version = journal.unknownVersion {
                    problem("journal_unreadable", "\(EvidenceVault.journalName) is \(version), a version this reader does not know: not read")
                }
            } catch {
                problem("journal_unreadable", "\(EvidenceVault.journalName): \(error)")
            }
        }
        if let certifiedKey, certifiedKey != deviceKey, !journal.replacements.contains(where: { $0.key == certifiedKey }) {
            problem("device_key_mismatch", "device.pub is not the certified device key, nor a replacement the journal records")
        }

        // Manifests: signature, device, one per sequence.
        var signedByReplacement: [String: [Int64]] = [:]
        var bySequence: [Int64: [Manifest]] = [:]
        var readable: [(name: String, manifest: Manifest)] = []
        for name in names where name.hasSuffix(".manifest") {
            do {
                readable.append((name, try Manifest.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name)))
            } catch {
                problem("manifest_malformed", "\(name): \(error)")
            }
        }
        // The store's device: its certificate's; without one, the journal's first boot record's;
        // without that, the lowest-numbered manifest's that the device key signed.
        var deviceID = certificate?.deviceID ?? journalDevice
            ?? readable.filter { $0.manifest.document.isSigned(by: deviceKey) }.min { $0.manifest.sequence < $1.manifest.sequence }?.manifest.deviceID
        for (name, manifest) in readable {
            if !manifest.document.isSigned(by: deviceKey) {
                // Signed by a key the journal says replaced a lost device key: one finding for
                // all of them below, not a bad signature each.
                // Only for segments begun after the replacement (its `next_sequence`).
                if let replacement = journal.replacements.first(where: {
                    manifest.sequence >= ($0.record.fields["next_sequence"]?.integer ?? Int64.max) && manifest.document.isSigned(by: $0.key)
                }) {
                    signedByReplacement[replacement.key.keyID, default: []].append(manifest.sequence)
                } else {
                    problem("manifest_bad_signature", "\(name): signature does not verify with device key \(deviceKey.keyID) (altered, or signed by another key)",
                            [manifest.sequence], [manifest])
                    continue
                }
            }
            deviceID = deviceID ?? manifest.deviceID
            if manifest.deviceID != deviceID {
                problem("foreign_device", "\(name): belongs to device \(manifest.deviceID), the store is \(deviceID ?? "?")", [manifest.sequence], [manifest])
                continue
            }
            if manifest.baseName + ".manifest" != name {
                problem("manifest_renamed", "\(name): names segment \(manifest.segmentFile)", [manifest.sequence], [manifest])
            }
            bySequence[manifest.sequence, default: []].append(manifest)
        }
        for (sequence, manifests) in bySequence where manifests.count > 1 {
            problem("duplicate_sequence", "\(manifests.count) manifests claim segment \(sequence) (a replay)", [sequence], manifests)
        }

        // Segments the office acknowledged and the device then deleted: a journaled tombstone
        // naming the manifest, and the acknowledgement kept in the store, signed by the authority.
        var offloaded: Set<Int64> = []
        var acks: [String: OffloadAcknowledgement] = [:]
        for name in names where name.hasSuffix(".ack") {
            guard let ack = try? OffloadAcknowledgement.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name) else {
                problem("offload_ack_invalid", "\(name) is not a readable offload acknowledgement")
                continue
            }
            if let authority, !ack.document.isSigned(by: authority) {
                problem("offload_ack_invalid", "\(name) is not signed by the authority")
                continue
            }
            acks[Hex.encode(ack.document.sha256)] = ack
        }
        for record in kept where record.kind == "segment_offloaded" {
            guard let sequence = record.fields["sequence"]?.integer, let ackHash = record.fields["ack_sha256"]?.string,
                  let manifestHash = record.fields["manifest_sha256"]?.string,
                  let manifest = bySequence[sequence]?.first, Hex.encode(manifest.sha256) == manifestHash,
                  let ack = acks[ackHash], ack.deviceID == deviceID,
                  ack.entries.contains(where: { $0.sequence == sequence && $0.ciphertextSHA256 == manifest.ciphertextSHA256 }) else {
                let sequence = record.fields["sequence"]?.integer
                problem("offload_unproven", "the journal records an offload (record \(record.sequence)\(sequence.map { ", segment \($0)" } ?? "")) "
                        + "that no acknowledgement in the store for this device backs", sequence.map { [$0] } ?? [])
                continue
            }
            offloaded.insert(sequence)
        }

        // Segment files: present, the bytes the manifest signed, the segment it names.
        var verified: Set<Int64> = []
        var byHash: [String: [Manifest]] = [:]
        for manifest in bySequence.values.flatMap({ $0 }) {
            byHash[manifest.ciphertextSHA256, default: []].append(manifest)
            let name = manifest.segmentFile
            guard names.contains(name) else {
                if offloaded.contains(manifest.sequence) { continue }
                problem("segment_missing", "segment \(manifest.sequence) (\(name)) is missing: deleted", [manifest.sequence], [manifest])
                continue
            }
            let bytes: [UInt8]
            do {
                bytes = try readWholeFile(store + "/" + name, limit: SealedSegmentFormat.maximumFileBytes, followLinks: false)
            } catch {
                problem("segment_unreadable", "segment \(manifest.sequence): \(error)", [manifest.sequence], [manifest])
                continue
            }
            var good = true
            if Hex.encode(try SHA256.hash(bytes)) != manifest.ciphertextSHA256 || bytes.count != manifest.ciphertextBytes {
                problem("ciphertext_mismatch", "segment \(manifest.sequence) (\(name)) is not the file its manifest signed: altered, truncated, extended or swapped",
                        [manifest.sequence], [manifest])
                good = false
            }
            // Each check stands alone, so one fault may raise several codes (a file cut short is
            // `ciphertext_mismatch` and `segment_unsealed`; docs/FORMAT.md, "How codes combine").
            if let layout = try? SealedSegmentLayout(bytes, what: name) {
                if layout.sequence != manifest.sequence || layout.deviceID != manifest.deviceID {
                    problem("segment_header_mismatch", "\(name) holds segment \(layout.sequence.map(String.init) ?? "?") of \(layout.deviceID ?? "?"), its manifest says \(manifest.sequence) of \(manifest.deviceID)",
                            [manifest.sequence], [manifest])
                    good = false
                }
                if !layout.isSealed && !manifest.recovered {
                    problem("segment_unsealed", "segment \(manifest.sequence) (\(name)) ends without its last chunk, and its manifest does not say recovered",
                            [manifest.sequence], [manifest])
                    good = false
                }
                if layout.trailingData > 0 {
                    problem("segment_trailing_data", "segment \(manifest.sequence) (\(name)) has \(layout.trailingData) bytes after its last chunk",
                            [manifest.sequence], [manifest])
                    good = false
                }
            } else {
                problem("segment_malformed", "\(name) is not a readable sealed segment", [manifest.sequence], [manifest])
                good = false
            }
            if good && bySequence[manifest.sequence]?.count == 1 { verified.insert(manifest.sequence) }
        }
        for (hash, manifests) in byHash where manifests.count > 1 {
            problem("replayed_segment", "the same segment bytes (\(hash.prefix(16))…) appear as segments \(manifests.map { String($0.sequence) }.joined(separator: ", "))",
                    manifests.map(\.sequence), manifests)
        }

        // A list of sequences for a message: the first twenty, then "…".
        func listed(_ sequences: [Int64]) -> String {
            sequences.prefix(20).map(String.init).joined(separator: ", ") + (sequences.count > 20 ? " …" : "")
        }

        // The chain: each manifest names the hash of the one before; no sequence is skipped.
        let ordered = bySequence.keys.sorted()
        // A gap lists its sequences, up to `maximumListed` of them (the message gives the range).
        func missing(_ range: Range<Int64>) -> [Int64] { Array(range.prefix(VerificationProblem.maximumListed)) }
        if let first = ordered.first, first > 1 {
            problem("sequence_gap", "segments 1–\(first - 1) (\(first - 1)) are missing (deleted)", missing(1..<first))
        }
        for (previous, sequence) in zip(ordered, ordered.dropFirst()) where sequence != previous + 1 {
            let around = (bySequence[previous] ?? []) + (bySequence[sequence] ?? [])
            problem("sequence_gap", "segments \(previous + 1)–\(sequence - 1) (\(sequence - previous - 1)) are missing (deleted)",
                    missing((previous + 1)..<sequence), around)
        }
        if let first = bySequence[1]?.first, first.previousManifestSHA256 != AuditJournal.zeroHash {
            problem("chain_broken", "segment 1 names a manifest before it (the chain's first link must be 64 zeros)", [1], [first])
        }
        for sequence in ordered {
            // Where a sequence has two manifests the chain is not judged (duplicate_sequence says it).
            guard bySequence[sequence]?.count == 1, bySequence[sequence - 1]?.count == 1,
                  let manifest = bySequence[sequence]?.first, let before = bySequence[sequence - 1]?.first else { continue }
            if manifest.previousManifestSHA256 != Hex.encode(before.sha256) {
                problem("chain_broken", "segment \(sequence) does not follow the manifest of segment \(sequence - 1)", [sequence - 1, sequence], [before, manifest])
                verified.remove(sequence)
            }
        }

        // Files nobody vouches for.
        let live = ExclusiveLock.isHeld(path: store)
        var uncleanStops: [UncleanStop] = []
        let manifestedFiles = Set(bySequence.values.flatMap { $0 }.map(\.segmentFile))
        // A live store: while its writer holds the store's lock, the one `.partial` after the
        // highest manifest is the segment being recorded (docs/FORMAT.md, "A live store").
        var inProgress: String? = nil
        let partials = names.filter { $0.hasSuffix(".bcseg.partial") }
        if partials.count == 1, let name = partials.first, live,
           let sequence = SegmentName.sequence(of: name), Int64(sequence) > (bySequence.keys.max() ?? 0) {
            inProgress = name
        }
        for name in names where (name.hasSuffix(".bcseg") && !manifestedFiles.contains(name)) || (name.hasSuffix(".bcseg.partial") && name != inProgress) {
            problem("segment_without_manifest", "\(name) has no manifest (unsealed, not recovered, or put in)", file: name)
        }
        for name in names where name.contains(".damaged") {
            problem("segment_set_aside", "\(name) was set aside by the device: it could not be a segment of this store (see the journal)", file: name)
        }

        // The journal: its own chain and signatures, and every sealed segment it records.
        if journalReadable {
            for (line, message, code) in journal.finishedProblems {
                problem(code, "journal line \(line): \(message)")
            }
            if journal.lineCount == 0 { problem("journal_broken", "\(EvidenceVault.journalName) is empty: it has no version line") }
            var journaled: Set<Int64> = []
            for record in kept where record.kind == "segment_sealed" || record.kind == "segment_recovered" {
                guard let sequence = record.fields["sequence"]?.integer, let hash = record.fields["manifest_sha256"]?.string else { continue }
                journaled.insert(sequence)
                let manifests = bySequence[sequence] ?? []
                if manifests.isEmpty {
                    problem("journaled_segment_missing", "the journal records segment \(sequence) as sealed at \(record.utc), but its manifest is gone (deleted)", [sequence])
                } else if !manifests.contains(where: { Hex.encode($0.sha256) == hash }) {
                    problem("journaled_manifest_differs", "segment \(sequence)'s manifest is not the one the journal recorded", [sequence], manifests)
                    verified.remove(sequence)
                }
            }
            // A manifest the journal never recorded: past the journal's last sealed segment, the
            // journal's records stop before what the manifests prove (its tail was cut); before
            // it, the journal went on without it (put in).
            let lastJournaled = journaled.max() ?? 0
            let unjournaled = ordered.filter { !journaled.contains($0) }
            let (beyond, within) = (unjournaled.filter { $0 > lastJournaled }, unjournaled.filter { $0 < lastJournaled })
            if !beyond.isEmpty {
                problem("journal_truncated", "the journal's records stop before segments \(listed(beyond)), whose manifests prove they were sealed: its tail was cut",
                        Array(beyond.prefix(VerificationProblem.maximumListed)), beyond.compactMap { bySequence[$0]?.first })
            }
            if !within.isEmpty {
                problem("manifest_not_journaled", "the journal goes on past segments \(listed(within)) without recording them: their manifests were put in",
                        Array(within.prefix(VerificationProblem.maximumListed)), within.compactMap { bySequence[$0]?.first })
            }
            uncleanStops = runs.finish(live: live)
        } else if !names.contains(EvidenceVault.journalName) {
            problem("journal_missing", "no journal in the store")
        }

        for (replacement, record) in journal.replacements {
            let sequences = (signedByReplacement[replacement.keyID] ?? []).sorted()
            let previous = record.fields["previous_key_id"]?.string ?? "?"
            let certified = replacement == certifiedKey
            // Until the authority certifies the replacement, what it signed is not verified
            // (exported only with --force, flagged); once it does, the replacement is a fact to
            // tell, not a problem.
            problem(certified ? "device_key_replaced_certified" : EvidenceVault.keyReplacedKind,
                    "the device key \(previous) was lost and replaced by \(replacement.keyID) at \(record.utc) (journal record \(record.sequence)): "
                    + "the journal from there on and \(sequences.isEmpty ? "no segment" : "segments " + sequences.map(String.init).joined(separator: ", ")) "
                    + "are signed by the replacement, "
                    + (certified ? "which the store's certificate now vouches for" : "which no certificate vouches for"),
                    Array(sequences.prefix(VerificationProblem.maximumListed)))
        }

        // The clock (docs/POLICY.md, "Clock"): corrected times where the journal knows better,
        // then times that cannot be right, and times that run backwards from one segment to
        // the next, judged on the corrected times.
        var corrections: [TimeCorrection] = []
        var effective: [Int64: (start: Int64, end: Int64)] = [:]
        var implausible: [Manifest] = []
        for sequence in ordered {
            guard let manifest = bySequence[sequence]?.first, let start = ClockParse.nanoseconds(iso8601: manifest.startUTC),
                  let end = ClockParse.nanoseconds(iso8601: manifest.endUTC) else { continue }
            var times = (start: start, end: end)
            if let boot = manifest.bootID, let monotonic = manifest.startMonotonicNanoseconds, let basis = bootOffsets[boot] {
                let delta = basis.offset - (start - monotonic)
                if abs(delta) >= 1_000_000_000 {
                    times = (start + delta, end + delta)
                    corrections.append(TimeCorrection(sequence: sequence, recordedStartUTC: manifest.startUTC, recordedEndUTC: manifest.endUTC,
                                                      correctedStartUTC: Clock.iso8601(wallNanoseconds: times.start),
                                                      correctedEndUTC: Clock.iso8601(wallNanoseconds: times.end),
                                                      offsetMilliseconds: delta / 1_000_000, basisRecord: basis.record))
                }
            }
            effective[sequence] = times
            if times.start < Clock.earliestPlausibleWallNanoseconds { implausible.append(manifest) }
        }
        if !implausible.isEmpty {
            let sequences = implausible.map(\.sequence)
            problem("clock_implausible", "segments \(sequences.prefix(20).map(String.init).joined(separator: ", "))\(sequences.count > 20 ? " …" : "") "
                    + "were recorded with a wall clock before this software existed, and the journal holds no later clock to correct them by: "
                    + "their times are wrong (the order and durations stand)",
                    Array(sequences.prefix(VerificationProblem.maximumListed)), implausible)
        }
        for (previous, sequence) in zip(ordered, ordered.dropFirst()) where sequence == previous + 1 {
            guard let before = effective[previous], let after = effective[sequence],
                  let first = bySequence[previous]?.first, let second = bySequence[sequence]?.first else { continue }
            // Within one kernel boot the monotonic clock says how far apart they really were (a
            // file source recorded faster than real time runs ahead of the wall clock, rightly);
            // across boots only the wall clock can.
            var gap = after.start - before.end
            if let boot = first.bootID, !boot.isEmpty, boot == second.bootID,
               let end = first.endMonotonicNanoseconds, let start = second.startMonotonicNanoseconds {
                gap -= start - end
            }
            guard gap <= -1_000_000_000 else { continue }
            problem("clock_backwards", "segment \(sequence) starts \(formatDecimal(Double(-gap) / 1e9, places: 1)) s earlier than it can after segment \(previous), "
                    + "and the journal does not explain it: at least one of their times is wrong", [previous, sequence], [first, second])
        }

        // The certificate judged when each manifest was signed (as its segment ended, on the
        // corrected clock where the journal corrects it), not today: evidence stays verified
        // after the certificate expires, and a key used past its certificate's end is not the
        // authority's word. A renewal certifies the same key from a later date, so footage
        // signed before `not_before` is not judged by it (docs/FORMAT.md, "Device certificate").
        if let certificate {
            let late = ordered.compactMap { sequence -> Manifest? in
                guard let manifest = bySequence[sequence]?.first, let end = effective[sequence]?.end,
                      Clock.iso8601(wallNanoseconds: end) > certificate.notAfter, manifest.document.isSigned(by: certificate.deviceKey) else { return nil }
                return manifest
            }
            if !late.isEmpty {
                problem("certificate_expired_at_signing", "segments \(listed(late.map(\.sequence))) were signed after the certificate's end (\(certificate.notAfter))",
                        Array(late.map(\.sequence).prefix(VerificationProblem.maximumListed)), late)
                verified.subtract(late.map(\.sequence))
            }
        }

        // An error names the segments it leaves unverified (docs/FORMAT.md, "Findings").
        verified.subtract(problems.filter { $0.severity == "error" }.flatMap(\.sequences))
        let all = bySequence.values.compactMap(\.first)
        var report = VerificationReport(store: store, deviceID: deviceID, deviceKeyID: deviceKey.keyID, authorityChecked: authority != nil,
                                        segments: all.count, offloaded: offloaded.sorted(), frames: all.reduce(0) { $0 + $1.frames },
                                        firstUTC: all.map(\.startUTC).min(), lastUTC: all.map(\.endUTC).max(),
                                        journalRecords: journalRecords, problems: problems, verifiedSequences: verified.sorted())
        report.timeCorrections = corrections
        report.recordingInProgress = inProgress
        report.uncleanStops = uncleanStops
        return report
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
