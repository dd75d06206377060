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
    public static let warnings: Set<String> = ["clock_implausible", "clock_backwards", "unprovisioned", "segment_set_aside", "segment_without_manifest"]
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
    public var isClean: Bool { problems.isEmpty }
}

/// `bodycamctl verify`: checks a store without decrypting anything — signatures and the
/// certificate, the manifest chain, sequence gaps, duplicates and replays, segments of another
/// device, every ciphertext hash, the journal's own chain, and that every segment the journal
/// says was sealed is there.
public enum StoreVerifier {
    public static func verify(store: String, authority: Ed25519PublicKey?, now: String? = nil) throws -> VerificationReport {
        var problems: [VerificationProblem] = []
        func problem(_ code: String, _ message: String, _ sequences: [Int64] = [], _ manifests: [Manifest] = [], file: String? = nil) {
            problems.append(VerificationProblem(code: code, message: message, sequences: sequences,
                                                from: manifests.map(\.startUTC).min(), to: manifests.map(\.endUTC).max(),
                                                segmentFiles: file.map { [$0] } ?? Array(Set(manifests.map(\.segmentFile)).sorted().prefix(VerificationProblem.maximumListed))))
        }
        let names = try directoryEntries(store)

        // The device key: the public key the device left in the store when it first recorded,
        // else its certificate's (checked against the authority when given). The journal may
        // then name replacements of a lost key; the certificate must be for one of these keys.
        var deviceKey: Ed25519PublicKey? = nil
        var certifiedKey: Ed25519PublicKey? = nil
        var certifiedDevice: String? = nil
        if names.contains("device.certificate") {
            do {
                let certificate = try DeviceCertificate.read(store + "/device.certificate")
                certifiedKey = certificate.deviceKey
                certifiedDevice = certificate.deviceID
                if let authority {
                    for message in certificate.problems(authority: authority, at: now ?? Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())) {
                        problem("certificate_invalid", message)
                    }
                }
            } catch {
                problem("certificate_invalid", "device.certificate: \(error)")
            }
        } else if authority != nil {
            problem("unprovisioned", "no device certificate: the device key cannot be traced to the authority")
        }
        if names.contains("device.pub") {
            do {
                deviceKey = try KeyFile.readVerifyingKey(store + "/device.pub")
            } catch {
                problem("device_key_unreadable", "\(error)")
            }
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
        if names.contains(EvidenceVault.journalName) {
            do {
                try AuditJournal.scan(path: store + "/" + EvidenceVault.journalName, into: &journal) { record in
                    journalRecords += 1
                    if ["segment_offloaded", "segment_sealed", "segment_recovered"].contains(record.kind) { kept.append(record) }
                    if record.kind == "boot" {
                        currentBoot = record.fields["boot_id"]?.string.flatMap { $0.isEmpty ? nil : $0 }
                    }
                    if let boot = currentBoot, let wall = ClockParse.nanoseconds(iso8601: record.utc),
                       (0...SealedSegmentFormat.maximumNanoseconds).contains(record.monotonicNanoseconds) {
                        bootOffsets[boot] = (wall - record.monotonicNanoseconds, record.sequence)
                    }
                }
                journalReadable = true
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
        var deviceID = certifiedDevice
        for name in names where name.hasSuffix(".manifest") {
            let manifest: Manifest
            do {
                manifest = try Manifest.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name)
            } catch {
                problem("manifest_malformed", "\(name): \(error)")
                continue
            }
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
                  let ack = acks[ackHash], ack.entries.contains(where: { $0.sequence == sequence && $0.ciphertextSHA256 == manifest.ciphertextSHA256 }) else {
                problem("offload_unproven", "the journal records an offload (record \(record.sequence)) that no acknowledgement in the store backs")
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
            if let layout = try? SealedSegmentLayout(bytes, what: name) {
                if layout.sequence != manifest.sequence || layout.deviceID != manifest.deviceID {
                    problem("segment_header_mismatch", "\(name) holds segment \(layout.sequence.map(String.init) ?? "?") of \(layout.deviceID ?? "?"), its manifest says \(manifest.sequence) of \(manifest.deviceID)",
                            [manifest.sequence], [manifest])
                    good = false
                }
                if good && !layout.isSealed && !manifest.recovered {
                    problem("segment_unsealed", "segment \(manifest.sequence) has no last chunk", [manifest.sequence], [manifest])
                    good = false
                }
            } else if good {
                problem("segment_malformed", "\(name) is not a readable sealed segment", [manifest.sequence], [manifest])
                good = false
            }
            if good && bySequence[manifest.sequence]?.count == 1 { verified.insert(manifest.sequence) }
        }
        for (hash, manifests) in byHash where manifests.count > 1 {
            problem("replayed_segment", "the same segment bytes (\(hash.prefix(16))…) appear as segments \(manifests.map { String($0.sequence) }.joined(separator: ", "))",
                    manifests.map(\.sequence), manifests)
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
        for sequence in ordered {
            guard let manifest = bySequence[sequence]?.first, let before = bySequence[sequence - 1]?.first else { continue }
            if manifest.previousManifestSHA256 != Hex.encode(before.sha256) {
                problem("chain_broken", "segment \(sequence) does not follow the manifest of segment \(sequence - 1)", [sequence - 1, sequence], [before, manifest])
                verified.remove(sequence)
            }
        }

        // Files nobody vouches for.
        let manifestedFiles = Set(bySequence.values.flatMap { $0 }.map(\.segmentFile))
        // A live store: while its writer holds the store's lock, the one `.partial` after the
        // highest manifest is the segment being recorded (docs/FORMAT.md, "A live store").
        var inProgress: String? = nil
        let partials = names.filter { $0.hasSuffix(".bcseg.partial") }
        if partials.count == 1, let name = partials.first, ExclusiveLock.isHeld(path: store),
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
            for (line, message) in journal.finishedProblems {
                problem(message.contains("cut short") ? "journal_truncated" : message.contains("signature") ? "journal_bad_signature" : "journal_broken",
                        "journal line \(line): \(message)")
            }
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
            let unjournaled = ordered.filter { !journaled.contains($0) }
            if !unjournaled.isEmpty {
                problem("journal_truncated", "segments \(unjournaled.map(String.init).joined(separator: ", ")) are not in the journal (its tail is missing, or they were put in)",
                        unjournaled, unjournaled.compactMap { bySequence[$0]?.first })
            }
        } else if !names.contains(EvidenceVault.journalName) {
            problem("journal_missing", "no journal in the store")
        }

        for (replacement, record) in journal.replacements {
            let sequences = (signedByReplacement[replacement.keyID] ?? []).sorted()
            let previous = record.fields["previous_key_id"]?.string ?? "?"
            let certified = replacement == certifiedKey
            // Until the authority certifies the replacement, what it signed is not verified
            // (exported only with --force, flagged).
            if !certified { verified.subtract(sequences) }
            problem(EvidenceVault.keyReplacedKind,
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

        let all = bySequence.values.compactMap(\.first)
        var report = VerificationReport(store: store, deviceID: deviceID, deviceKeyID: deviceKey.keyID, authorityChecked: authority != nil,
                                        segments: all.count, offloaded: offloaded.sorted(), frames: all.reduce(0) { $0 + $1.frames },
                                        firstUTC: all.map(\.startUTC).min(), lastUTC: all.map(\.endUTC).max(),
                                        journalRecords: journalRecords, problems: problems, verifiedSequences: verified.sorted())
        report.timeCorrections = corrections
        report.recordingInProgress = inProgress
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
