import Glibc
import LibCrypto
import Pipeline
import Platform
import Synchronization
import Wire

/// One run of `StoreVerifier.verify`, phase by phase in the order docs/FORMAT.md ("Verification")
/// gives them: the keys, the journal, the manifests, offloads, the segment files, the chain, the
/// files nobody vouches for, the journal against the manifests, key replacements, the clock,
/// the certificate at signing time. Each phase adds findings; `report()` assembles the verdict.
struct StoreVerification {
    let store: String
    let authority: Ed25519PublicKey?
    let journalHead: JournalHead?
    let cache: SegmentFactsCache?
    let names: [String]
    private(set) var problems: [VerificationProblem] = []

    // The keys.
    var deviceKey: Ed25519PublicKey! = nil
    var certificate: DeviceCertificate? = nil
    var certifiedKey: Ed25519PublicKey? { certificate?.deviceKey }
    // The journal, read as a stream; only what the later phases need is kept.
    var journal = JournalReader(key: nil)
    var journalReadable = false
    var journalRecords = 0
    var segmentRecords: [JournalRecord] = []
    var journalDevice: String? = nil
    var headSeen: String? = nil
    var runs = RunTracker()
    /// For each kernel boot (a `boot` record's boot_id, until the next `boot` record): the offset
    /// between wall and monotonic time of its last record — the latest clock the device knew
    /// while those monotonic times held.
    var bootOffsets: [String: (offset: Int64, record: Int64)] = [:]
    // The manifests.
    var deviceID: String? = nil
    var bySequence: [Int64: [Manifest]] = [:]
    var signedByReplacement: [String: [Int64]] = [:]
    var ordered: [Int64] = []
    // What the later phases find.
    var offloaded: Set<Int64> = []
    var verified: Set<Int64> = []
    var live = false
    var inProgress: String? = nil
    var uncleanStops: [UncleanStop] = []
    var corrections: [TimeCorrection] = []
    /// Each segment's start and end, corrected where the journal corrects them (wall ns).
    var effective: [Int64: (start: Int64, end: Int64)] = [:]

    init(store: String, authority: Ed25519PublicKey?, journalHead: JournalHead?, cache: SegmentFactsCache? = nil) throws {
        self.store = store
        self.authority = authority
        self.journalHead = journalHead
        self.cache = cache
        names = try directoryEntries(store)
    }

    mutating func problem(_ code: String, _ message: String, _ sequences: [Int64] = [], _ manifests: [Manifest] = [], file: String? = nil) {
        problems.append(VerificationProblem(code: code, message: message, sequences: Array(sequences.prefix(VerificationProblem.maximumListed)),
                                            from: manifests.map(\.startUTC).min(), to: manifests.map(\.endUTC).max(),
                                            segmentFiles: file.map { [$0] } ?? Array(Set(manifests.map(\.segmentFile)).sorted().prefix(VerificationProblem.maximumListed))))
    }

    /// A list of sequences for a message: the first twenty, then "…".
    func listed(_ sequences: [Int64]) -> String {
        sequences.prefix(20).map(String.init).joined(separator: ", ") + (sequences.count > 20 ? " …" : "")
    }

    /// The device key (docs/FORMAT.md, "Which key verifies what"): the public key the device
    /// left in the store when it first recorded (`device.pub`), else its certificate's. With an
    /// authority, the certificate must be its; its validity is judged at the time each manifest
    /// was signed (`certificateAtSigning`). Returns false when no key can check anything.
    mutating func readKeys() -> Bool {
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
        var key: Ed25519PublicKey? = nil
        if names.contains("device.pub") {
            do {
                key = try KeyFile.readVerifyingKey(store + "/device.pub")
            } catch {
                problem("device_key_unreadable", "\(error)")
            }
        } else if let certifiedKey {
            problem("device_key_missing", "device.pub is gone: signatures are checked with the certificate's key \(certifiedKey.keyID)")
        }
        guard let key = key ?? certifiedKey else {
            problem("no_device_key", "neither device.certificate nor device.pub: no signature can be checked")
            return false
        }
        deviceKey = key
        return true
    }

    /// The journal, as a stream (any size, bounded memory): its chain and signatures are checked
    /// as it is read; the segment records, the runs, the boots' clocks and the device id are kept.
    mutating func readJournal() {
        guard names.contains(EvidenceVault.journalName) else { return }
        var reader = JournalReader(key: deviceKey)
        var currentBoot: String? = nil
        do {
            try AuditJournal.scan(path: store + "/" + EvidenceVault.journalName, into: &reader) { record in
                journalRecords += 1
                if let message = runs.observe(record) { problem("journal_broken", message) }
                if ["segment_offloaded", "segment_sealed", "segment_recovered"].contains(record.kind) { segmentRecords.append(record) }
                if record.sequence == journalHead?.records { headSeen = Hex.encode(record.hash) }
                if record.kind == "boot" {
                    journalDevice = journalDevice ?? record.fields["device_id"]?.string
                    currentBoot = record.fields["boot_id"]?.string.flatMap { $0.isEmpty ? nil : $0 }
                }
                // A start's own records before its `boot` belong to the new kernel boot, not the
                // one still current here: they give no clock.
                if let boot = currentBoot, !RunTracker.prelude.contains(record.kind), let wall = ClockParse.nanoseconds(iso8601: record.utc),
                   (0...SealedSegmentFormat.maximumNanoseconds).contains(record.monotonicNanoseconds) {
                    bootOffsets[boot] = (wall - record.monotonicNanoseconds, record.sequence)
                }
            }
            journalReadable = reader.unknownVersion == nil
            if let version = reader.unknownVersion {
                problem("journal_unreadable", "\(EvidenceVault.journalName) is \(version), a version this reader does not know: not read")
            }
        } catch {
            problem("journal_unreadable", "\(EvidenceVault.journalName): \(error)")
        }
        journal = reader
    }

    /// The certificate must be for the device key or a replacement the journal records.
    mutating func checkCertifiedKey() {
        if let certifiedKey, certifiedKey != deviceKey, !journal.replacements.contains(where: { $0.key == certifiedKey }) {
            problem("device_key_mismatch", "device.pub is not the certified device key, nor a replacement the journal records")
        }
    }

    /// Manifests: readable, signed by the device key (or a replacement from its `next_sequence`
    /// on), of this device, named after their segment; one per sequence.
    mutating func readManifests() {
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
        let key: Ed25519PublicKey = deviceKey
        deviceID = certificate?.deviceID ?? journalDevice
            ?? readable.filter { $0.manifest.document.isSigned(by: key) }.min { $0.manifest.sequence < $1.manifest.sequence }?.manifest.deviceID
        for (name, manifest) in readable {
            if !manifest.document.isSigned(by: key) {
                // Signed by a key the journal says replaced a lost device key, for a segment
                // begun after the replacement (its `next_sequence`): one finding for all of them
                // (`replacements`), not a bad signature each.
                if let replacement = journal.replacements.first(where: {
                    manifest.sequence >= ($0.record.fields["next_sequence"]?.integer ?? Int64.max) && manifest.document.isSigned(by: $0.key)
                }) {
                    signedByReplacement[replacement.key.keyID, default: []].append(manifest.sequence)
                } else {
                    problem("manifest_bad_signature", "\(name): signature does not verify with device key \(key.keyID) (altered, or signed by another key)",
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
        for (sequence, manifests) in bySequence.sorted(by: { $0.key < $1.key }) where manifests.count > 1 {
            problem("duplicate_sequence", "\(manifests.count) manifests claim segment \(sequence) (a replay)", [sequence], manifests)
        }
        ordered = bySequence.keys.sorted()
    }

    /// Segments the office acknowledged and the device then deleted: a journaled tombstone
    /// naming the manifest, and the acknowledgement kept in the store, for this device, that the
    /// authority stands behind (its own signature, or an office key it certified).
    mutating func proveOffloads() {
        var acks: [String: OffloadAcknowledgement] = [:]
        for name in names where name.hasSuffix(".ack") {
            guard let ack = try? OffloadAcknowledgement.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name) else {
                problem("offload_ack_invalid", "\(name) is not a readable offload acknowledgement")
                continue
            }
            if let authority, let reason = ack.refusal(authority: authority) {
                problem("offload_ack_invalid", "\(name): \(reason)")
                continue
            }
            acks[Hex.encode(ack.document.sha256)] = ack
        }
        for record in segmentRecords where record.kind == "segment_offloaded" {
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
    }

    /// Segment files: present, the bytes the manifest signed, the segment it names, whole. Each
    /// check stands alone, so one fault may raise several codes (a file cut short is
    /// `ciphertext_mismatch` and `segment_unsealed`; docs/FORMAT.md, "How codes combine").
    mutating func checkSegments() throws {
        var byHash: [String: [Manifest]] = [:]
        for sequence in ordered {
            for manifest in bySequence[sequence] ?? [] {
                byHash[manifest.ciphertextSHA256, default: []].append(manifest)
                if try checkSegment(of: manifest) && bySequence[sequence]?.count == 1 { verified.insert(sequence) }
            }
        }
        for (hash, manifests) in byHash.sorted(by: { $0.key < $1.key }) where manifests.count > 1 {
            problem("replayed_segment", "the same segment bytes (\(hash.prefix(16))…) appear as segments \(manifests.map { String($0.sequence) }.joined(separator: ", "))",
                    manifests.map(\.sequence), manifests)
        }
    }

    /// Checks the file `manifest` names; true when nothing is wrong with it.
    private mutating func checkSegment(of manifest: Manifest) throws -> Bool {
        let name = manifest.segmentFile
        guard names.contains(name) else {
            if !offloaded.contains(manifest.sequence) {
                problem("segment_missing", "segment \(manifest.sequence) (\(name)) is missing: deleted", [manifest.sequence], [manifest])
            }
            return false
        }
        let facts: SegmentFacts
        do {
            facts = try segmentFacts(name)
        } catch {
            problem("segment_unreadable", "segment \(manifest.sequence): \(error)", [manifest.sequence], [manifest])
            return false
        }
        var good = true
        if facts.sha256 != manifest.ciphertextSHA256 || facts.byteCount != manifest.ciphertextBytes {
            problem("ciphertext_mismatch", "segment \(manifest.sequence) (\(name)) is not the file its manifest signed: altered, truncated, extended or swapped",
                    [manifest.sequence], [manifest])
            good = false
        }
        guard let layout = facts.layout else {
            problem("segment_malformed", "\(name) is not a readable sealed segment", [manifest.sequence], [manifest])
            return false
        }
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
        return good
    }

    /// What the checks need of a segment file: read and hashed, or taken from `cache` when the
    /// file is the one the cache saw.
    private func segmentFacts(_ name: String) throws -> SegmentFacts {
        let path = store + "/" + name
        var status = stat()
        let identity = lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG ? SegmentFactsCache.Identity(status) : nil
        if let identity, let known = cache?.facts(path: path, identity: identity) { return known }
        let bytes = try readWholeFile(path, limit: SealedSegmentFormat.maximumFileBytes, followLinks: false)
        let layout = try? SealedSegmentLayout(bytes, what: name)
        let facts = SegmentFacts(sha256: Hex.encode(try SHA256.hash(bytes)), byteCount: Int64(bytes.count),
                                 layout: layout.map { .init(sequence: $0.sequence, deviceID: $0.deviceID, isSealed: $0.isSealed, trailingData: $0.trailingData) })
        // Kept only when the file did not change while it was read.
        var after = stat()
        if let identity, lstat(path, &after) == 0, SegmentFactsCache.Identity(after) == identity, identity.size == facts.byteCount {
            cache?.keep(path: path, identity: identity, facts: facts)
        }
        return facts
    }

    /// The chain: each manifest names the hash of the one before; no sequence is skipped. A gap
    /// lists its sequences, up to `maximumListed` of them (the message gives the range).
    mutating func checkChain() {
        if let first = ordered.first, first > 1 {
            problem("sequence_gap", "segments 1–\(first - 1) (\(first - 1)) are missing (deleted)", Array((1..<first).prefix(VerificationProblem.maximumListed)))
        }
        for (previous, sequence) in zip(ordered, ordered.dropFirst()) where sequence != previous + 1 {
            problem("sequence_gap", "segments \(previous + 1)–\(sequence - 1) (\(sequence - previous - 1)) are missing (deleted)",
                    Array(((previous + 1)..<sequence).prefix(VerificationProblem.maximumListed)), (bySequence[previous] ?? []) + (bySequence[sequence] ?? []))
        }
        if bySequence[1]?.count == 1, let first = bySequence[1]?.first, first.previousManifestSHA256 != AuditJournal.zeroHash {
            problem("chain_broken", "segment 1 names a manifest before it (the chain's first link must be 64 zeros)", [1], [first])
        }
        for sequence in ordered {
            // Where a sequence has two manifests the chain is not judged (duplicate_sequence says it).
            guard bySequence[sequence]?.count == 1, bySequence[sequence - 1]?.count == 1,
                  let manifest = bySequence[sequence]?.first, let before = bySequence[sequence - 1]?.first,
                  manifest.previousManifestSHA256 != Hex.encode(before.sha256) else { continue }
            problem("chain_broken", "segment \(sequence) does not follow the manifest of segment \(sequence - 1)", [sequence - 1, sequence], [before, manifest])
        }
    }

    /// Files nobody vouches for. A live store: while its writer holds the store's lock, the one
    /// `.partial` after the highest manifest is the segment being recorded (docs/FORMAT.md, "A
    /// live store").
    mutating func checkLooseFiles() {
        live = ExclusiveLock.isHeld(path: store)
        let manifestedFiles = Set(bySequence.values.flatMap { $0 }.map(\.segmentFile))
        let partials = names.filter { $0.hasSuffix(".bcseg.partial") }
        if partials.count == 1, let name = partials.first, live,
           let sequence = SegmentName.sequence(of: name), Int64(sequence) > (ordered.last ?? 0) {
            inProgress = name
        }
        for name in names where (name.hasSuffix(".bcseg") && !manifestedFiles.contains(name)) || (name.hasSuffix(".bcseg.partial") && name != inProgress) {
            problem("segment_without_manifest", "\(name) has no manifest (unsealed, not recovered, or put in)", file: name)
        }
        for name in names where name.contains(".damaged") {
            problem("segment_set_aside", "\(name) was set aside by the device: it could not be a segment of this store (see the journal)", file: name)
        }
    }

    /// The journal's own chain and signatures, every sealed segment it records against the
    /// manifests, its runs, and the head someone outside the device saw.
    mutating func checkJournal() {
        guard journalReadable else {
            if !names.contains(EvidenceVault.journalName) { problem("journal_missing", "no journal in the store") }
            return
        }
        for (line, message, code) in journal.finishedProblems {
            problem(code, "journal line \(line): \(message)")
        }
        if journal.lineCount == 0 { problem("journal_broken", "\(EvidenceVault.journalName) is empty: it has no version line") }
        var journaled: Set<Int64> = []
        for record in segmentRecords where record.kind == "segment_sealed" || record.kind == "segment_recovered" {
            guard let sequence = record.fields["sequence"]?.integer, let hash = record.fields["manifest_sha256"]?.string else { continue }
            journaled.insert(sequence)
            let manifests = bySequence[sequence] ?? []
            if manifests.isEmpty {
                problem("journaled_segment_missing", "the journal records segment \(sequence) as sealed at \(record.utc), but its manifest is gone (deleted)", [sequence])
            } else if !manifests.contains(where: { Hex.encode($0.sha256) == hash }) {
                problem("journaled_manifest_differs", "segment \(sequence)'s manifest is not the one the journal recorded", [sequence], manifests)
            }
        }
        // A manifest the journal never recorded: past the journal's last sealed segment, the
        // journal's records stop before what the manifests prove (its tail was cut); before it,
        // the journal went on without it (put in).
        let lastJournaled = journaled.max() ?? 0
        let unjournaled = ordered.filter { !journaled.contains($0) }
        let (beyond, within) = (unjournaled.filter { $0 > lastJournaled }, unjournaled.filter { $0 < lastJournaled })
        if !beyond.isEmpty {
            problem("journal_truncated", "the journal's records stop before segments \(listed(beyond)), whose manifests prove they were sealed: its tail was cut",
                    beyond, beyond.compactMap { bySequence[$0]?.first })
        }
        if !within.isEmpty {
            problem("manifest_not_journaled", "the journal goes on past segments \(listed(within)) without recording them: their manifests were put in",
                    within, within.compactMap { bySequence[$0]?.first })
        }
        uncleanStops = runs.finish(live: live)
        if let head = journalHead {
            let last = journal.last?.sequence ?? 0
            if last < head.records {
                problem("journal_truncated", "the journal ends at record \(last), before record \(head.records), which was seen of it (cut after that)")
            } else if headSeen != head.sha256 {
                problem("journal_broken", "journal record \(head.records) is not the one that was seen of it (\(head.sha256.prefix(16))…): rewritten")
            }
        }
    }

    /// A lost device key replaced (the journal's `device_key_replaced`): until the authority
    /// certifies the replacement, what it signed is not verified (exported only with --force,
    /// flagged); once it does, the replacement is a fact to tell, not a problem.
    mutating func reportReplacements() {
        for (replacement, record) in journal.replacements {
            let sequences = (signedByReplacement[replacement.keyID] ?? []).sorted()
            let previous = record.fields["previous_key_id"]?.string ?? "?"
            let certified = replacement == certifiedKey
            problem(certified ? "device_key_replaced_certified" : EvidenceVault.keyReplacedKind,
                    "the device key \(previous) was lost and replaced by \(replacement.keyID) at \(record.utc) (journal record \(record.sequence)): "
                    + "the journal from there on and \(sequences.isEmpty ? "no segment" : "segments " + sequences.map(String.init).joined(separator: ", ")) "
                    + "are signed by the replacement, "
                    + (certified ? "which the store's certificate now vouches for" : "which no certificate vouches for"),
                    sequences)
        }
    }

    /// The clock (docs/POLICY.md, "Clock"): corrected times where the journal knows better, then
    /// times that cannot be right, and times that run backwards from one segment to the next,
    /// judged on the corrected times.
    mutating func checkClock() {
        var implausible: [Manifest] = []
        for sequence in ordered {
            guard let manifest = bySequence[sequence]?.first, let start = ClockParse.nanoseconds(iso8601: manifest.startUTC),
                  let end = ClockParse.nanoseconds(iso8601: manifest.endUTC) else { continue }
            var times = (start: start, end: end)
            // Every time here is a parsed one (1970–2199) or a monotonic one (0–100 years), so
            // differences of two fit in Int64; a sum of three may not (a journal record can claim
            // any time), so those are checked, and a correction that leaves 1970–2199 is none.
            if let boot = manifest.bootID, let monotonic = manifest.startMonotonicNanoseconds, let basis = bootOffsets[boot],
               case let (delta, overflow) = basis.offset.subtractingReportingOverflow(start - monotonic), !overflow,
               abs(delta) >= 1_000_000_000, let correctedStart = ClockParse.inRange(start, plus: delta),
               let correctedEnd = ClockParse.inRange(end, plus: delta) {
                times = (correctedStart, correctedEnd)
                corrections.append(TimeCorrection(sequence: sequence, recordedStartUTC: manifest.startUTC, recordedEndUTC: manifest.endUTC,
                                                  correctedStartUTC: Clock.iso8601(wallNanoseconds: times.start),
                                                  correctedEndUTC: Clock.iso8601(wallNanoseconds: times.end),
                                                  offsetMilliseconds: delta / 1_000_000, basisRecord: basis.record))
            }
            effective[sequence] = times
            if times.start < Clock.earliestPlausibleWallNanoseconds { implausible.append(manifest) }
        }
        if !implausible.isEmpty {
            let sequences = implausible.map(\.sequence)
            problem("clock_implausible", "segments \(listed(sequences)) were recorded with a wall clock before this software existed, and the journal "
                    + "holds no later clock to correct them by: their times are wrong (the order and durations stand)", sequences, implausible)
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
                let (less, overflow) = gap.subtractingReportingOverflow(start - end)
                gap = overflow ? (gap < 0 ? .min : .max) : less
            }
            guard gap <= -1_000_000_000 else { continue }
            problem("clock_backwards", "segment \(sequence) starts \(formatDecimal(Double(-gap) / 1e9, places: 1)) s earlier than it can after segment \(previous), "
                    + "and the journal does not explain it: at least one of their times is wrong", [previous, sequence], [first, second])
        }
    }

    /// The certificate judged when each manifest was signed (as its segment ended, on the
    /// corrected clock where the journal corrects it), not today: evidence stays verified after
    /// the certificate expires, and a key used past its certificate's end is not the authority's
    /// word. A renewal certifies the same key from a later date, so footage signed before
    /// `not_before` is not judged by it (docs/FORMAT.md, "Device certificate").
    mutating func checkCertificateAtSigning() {
        guard let certificate else { return }
        let late = ordered.compactMap { sequence -> Manifest? in
            guard let manifest = bySequence[sequence]?.first, let end = effective[sequence]?.end,
                  Clock.iso8601(wallNanoseconds: end) > certificate.notAfter, manifest.document.isSigned(by: certificate.deviceKey) else { return nil }
            return manifest
        }
        if !late.isEmpty {
            problem("certificate_expired_at_signing", "segments \(listed(late.map(\.sequence))) were signed after the certificate's end (\(certificate.notAfter))",
                    late.map(\.sequence), late)
        }
    }

    /// The verdict. An error names the segments it leaves unverified (docs/FORMAT.md, "Findings").
    func report() -> VerificationReport {
        let all = bySequence.values.compactMap(\.first)
        var report = VerificationReport(store: store, deviceID: deviceID, deviceKeyID: deviceKey?.keyID, authorityChecked: authority != nil,
                                        segments: all.count, offloaded: offloaded.sorted(), frames: all.reduce(0) { $0 + $1.frames },
                                        firstUTC: all.map(\.startUTC).min(), lastUTC: all.map(\.endUTC).max(), journalRecords: journalRecords,
                                        problems: problems,
                                        verifiedSequences: verified.subtracting(problems.filter { $0.severity == "error" }.flatMap(\.sequences)).sorted())
        report.timeCorrections = corrections
        report.recordingInProgress = inProgress
        report.uncleanStops = uncleanStops
        return report
    }
}

/// What verification needs of a segment file: its hash, its length and its layout's summary.
struct SegmentFacts: Sendable {
    struct Layout: Sendable {
        var sequence: Int64?
        var deviceID: String?
        var isSealed: Bool
        var trailingData: Int
    }
    var sha256: String
    var byteCount: Int64
    /// nil: not a readable sealed segment.
    var layout: Layout?
}

/// Remembers what verification learned of each segment file, so that verifying a store again
/// (the office, as uploads arrive) reads and hashes only the files that changed. A file counts
/// as the same while its device, inode, size and modification and change times are (as git's
/// index judges a file unchanged). Safe from any thread.
public final class SegmentFactsCache: Sendable {
    struct Identity: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64
        var modified: Int64, changed: Int64
        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
            size = Int64(status.st_size)
            modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
            changed = Int64(status.st_ctim.tv_sec) * 1_000_000_000 + Int64(status.st_ctim.tv_nsec)
        }
    }
    private let entries = Mutex<[String: (identity: Identity, facts: SegmentFacts)]>([:])

    public init() {}

    func facts(path: String, identity: Identity) -> SegmentFacts? {
        entries.withLock { entries in entries[path].flatMap { $0.identity == identity ? $0.facts : nil } }
    }

    /// Forgets every file but `paths` (a verification's folder as it found it).
    func retain(_ paths: Set<String>, under folder: String) {
        entries.withLock { entries in entries = entries.filter { !$0.key.hasPrefix(folder + "/") || paths.contains($0.key) } }
    }

    func keep(path: String, identity: Identity, facts: SegmentFacts) {
        entries.withLock { $0[path] = (identity, facts) }
    }
}
