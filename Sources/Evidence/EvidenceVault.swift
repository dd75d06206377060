import Glibc
import Synchronization
import LibCrypto
import Pipeline
import Platform
import Wire

/// The device's evidence store, and the `SegmentStore` the daemon records into. Every segment
/// is sealed (`SealingSink`) to the office's recipient keys, then gets a manifest signed with
/// the device key and chained to the previous one, written atomically only after the segment is
/// durable, and a journal record. On opening, segments a crash left unsealed are recovered.
public final class EvidenceVault: SegmentStore, Sendable {
    public struct Configuration: Sendable {
        public var directory: String
        public var deviceID: String
        public var recipients: [X25519PublicKey]
        public var deviceKey: Ed25519PrivateKey
        /// False when the device key has no certificate from the authority.
        public var provisioned: Bool
        public var software: String

        public init(directory: String, deviceID: String, recipients: [X25519PublicKey], deviceKey: Ed25519PrivateKey,
                    provisioned: Bool, software: String = "bodycam 0.1") {
            self.directory = directory
            self.deviceID = deviceID
            self.recipients = recipients
            self.deviceKey = deviceKey
            self.provisioned = provisioned
            self.software = software
        }
    }

    public let configuration: Configuration
    public let journal: AuditJournal
    /// One writer per store: held from before the journal is opened until the vault goes.
    private let writerLock: ExclusiveLock
    /// What the pipeline thread (sealing), the policy (duty, marks) and the control socket
    /// (status) share.
    private struct State {
        var nextSequence: UInt64 = 1
        /// Manifest hashes by sequence: each manifest names the hash of the one before it.
        var manifestHashes: [Int64: String] = [:]
        /// Segments sealed since start: how many, and the end of the newest.
        var sealedCount = 0
        var lastEndUTC = ""
        /// The duty the officer is on (set by the recording policy), written into each manifest.
        var duty = ""
        /// Marks not yet in a manifest: (CLOCK_MONOTONIC ns, the mark as written).
        var pendingMarks: [(at: Int64, mark: JSONValue)] = []
        /// The last manifest's segment, [start, end) in CLOCK_MONOTONIC ns.
        var lastSegment: Range<Int64>?
    }
    private let state = Mutex(State())
    /// Held while acknowledgements are received or their segments released (Offload.swift):
    /// what they name, read from the store at first use.
    let offloads = Mutex<OffloadIndex?>(nil)

    /// The sequence number the next segment gets.
    public var nextSequence: UInt64 { state.withLock { $0.nextSequence } }
    /// Segments sealed since start, and the UTC end of the newest ("" before the first).
    public var sealedSummary: (count: Int, lastEndUTC: String) { state.withLock { ($0.sealedCount, $0.lastEndUTC) } }
    /// The duty the officer is on (set by the recording policy), written into each manifest.
    public var dutyID: String {
        get { state.withLock { $0.duty } }
        set { state.withLock { $0.duty = newValue } }
    }

    /// Adds a mark (from any thread): it goes into the manifest of the segment that contains
    /// the moment `at` (CLOCK_MONOTONIC ns). At most 1,000 wait; the journal keeps every one.
    public func addMark(label: String, source: String, at: Int64, utc: String) {
        state.withLock { state in
            state.pendingMarks.append((at, .object(["label": .string(label), "monotonic_ns": .integer(at), "source": .string(source), "utc": .string(utc)])))
            if state.pendingMarks.count > 1_000 { state.pendingMarks.removeFirst(state.pendingMarks.count - 1_000) }
        }
    }

    /// Takes the pending marks within [start, end), and those that came too late for the
    /// segment before (their moment falls in it, but its manifest was already signed: a mark
    /// pressed just before a cut, handled after it on a starved machine), which keep their own
    /// times.
    private func takeMarks(from start: Int64, to end: Int64) -> [JSONValue] {
        state.withLock { state in
            // Only the segment just before: a mark made between recordings (in standby, with the
            // camera gone) falls in no segment, and no later manifest claims it.
            let before = state.lastSegment
            let taken = { (mark: (at: Int64, mark: JSONValue)) in (mark.at >= start && mark.at < end) || before?.contains(mark.at) == true }
            let inside = state.pendingMarks.filter(taken)
            state.pendingMarks.removeAll(where: taken)
            state.lastSegment = start..<max(start, end)
            return inside.sorted { $0.at < $1.at }.map(\.mark)
        }
    }
    public static let journalName = "journal.log"
    /// The journal record of a device key replaced after it was lost (docs/POLICY.md).
    public static let keyReplacedKind = "device_key_replaced"

    /// The key the store's evidence was signed with before this start: `device.pub`, which the
    /// first start wrote (nil for a new store).
    public static func storedDeviceKey(_ directory: String) -> Ed25519PublicKey? {
        try? KeyFile.readVerifyingKey(directory + "/device.pub")
    }

    /// Opens the store for writing: takes its writer lock (`EvidenceError.storeInUse` when
    /// another process holds it), opens the journal (`visitJournal` sees each of its records
    /// that `journalInterest` wants, as it is read) and learns the next sequence from the manifests and segment names.
    public init(configuration: Configuration, journalInterest: AuditJournal.Interest = AuditJournal.Interest(),
                visitJournal: (JournalRecord) -> Void = { _ in }) throws {
        self.configuration = configuration
        let directory = configuration.directory
        if mkdir(directory, 0o750) < 0 && errno != EEXIST { throw SystemError.file(path: directory, call: "mkdir", errno: errno) }
        // Before anything is read or recovered: a second daemon on this store would "recover"
        // the first one's open segment under it and break both chains.
        do {
            writerLock = try ExclusiveLock(path: directory)
        } catch is ExclusiveLock.Held {
            throw EvidenceError.storeInUse(path: directory)
        }
        journal = try AuditJournal(path: directory + "/" + EvidenceVault.journalName, key: configuration.deviceKey,
                                   interest: journalInterest, visit: visitJournal)
        let publicPath = directory + "/device.pub"
        if access(publicPath, F_OK) != 0 { try KeyFile.write(configuration.deviceKey.publicKey, to: publicPath) }
        var known = State()
        for manifest in try EvidenceVault.readManifests(directory) {
            known.manifestHashes[manifest.sequence] = Hex.encode(manifest.sha256)
            known.nextSequence = max(known.nextSequence, UInt64(manifest.sequence) + 1)
        }
        let highestFile = try highestSegmentSequence(in: directory) ?? 0
        known.nextSequence = max(known.nextSequence, highestFile + 1)
        let initial = known
        state.withLock { $0 = initial }
    }

    /// The readable manifests in a store, by sequence (unreadable ones are the verifier's to report).
    public static func readManifests(_ directory: String) throws -> [Manifest] {
        try directoryEntries(directory).filter { $0.hasSuffix(".manifest") }.compactMap { name in
            try? Manifest.read(try readWholeFile(directory + "/" + name, limit: 1 << 20, followLinks: false), what: name)
        }.sorted { $0.sequence < $1.sequence }
    }

    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        guard !configuration.recipients.isEmpty else {
            throw EvidenceError.keyFile(path: configuration.directory, reason: "no recipient keys: footage cannot be sealed to anyone")
        }
        let dataKey = try SecretBytes.random(count: 32)
        let header = JSONValue.object([
            "codec": .string(segment.codec),
            "created_utc": .string(Clock.iso8601(wallNanoseconds: segment.startWallNanoseconds)),
            "device_id": .string(configuration.deviceID),
            "duty_id": .string(dutyID),
            "fps": .integer(Int64(segment.framesPerSecond)),
            "height": .integer(Int64(segment.height)),
            "officer_id": .string(segment.officerID),
            "recipients": .array(try configuration.recipients.map { try SealedSegmentFormat.wrap(dataKey, to: $0) }),
            "sequence": .integer(Int64(segment.sequence)),
            "start_monotonic_ns": .integer(segment.startMonotonicNanoseconds),
            "boot_id": .string(segment.bootID),
            "width": .integer(Int64(segment.width)),
        ])
        state.withLock { $0.nextSequence = max($0.nextSequence, segment.sequence + 1) }
        return try SealingSink(directory: configuration.directory, fileName: segment.baseName + ".bcseg", header: header, dataKey: dataKey) {
            [weak self] result in
            try self?.writeManifest(result: result, header: header, recovered: false, tornTail: 0)
        }
    }

    /// Builds, signs and atomically writes the manifest for a durable segment, then journals it.
    @discardableResult
    func writeManifest(result: SealedSegmentResult, header: JSONValue, recovered: Bool, tornTail: Int) throws -> Manifest {
        let sequence = header["sequence"]?.integer ?? 0
        let startMonotonic = header["start_monotonic_ns"]?.integer ?? 0
        // 90 kHz ticks to nanoseconds, in two parts so that no bounded count can overflow.
        let durationNanoseconds = result.ticks / 90_000 * 1_000_000_000 + result.ticks % 90_000 * 1_000_000_000 / 90_000
        let startWall = ClockParse.nanoseconds(iso8601: header["created_utc"]?.string ?? "") ?? 0
        // What the recorder saw over the segment; for a recovered one (which cannot tell) the
        // clock now, and plausibility from the segment's own start.
        let clock = result.clock ?? {
            let sync = ClockSync.read()
            return SegmentClock(synchronised: sync.synchronised, estimatedErrorMicroseconds: sync.estimatedErrorMicroseconds,
                                plausible: startWall >= Clock.earliestPlausibleWallNanoseconds)
        }()
        let previous = state.withLock { $0.manifestHashes[sequence - 1] } ?? AuditJournal.zeroHash
        var members: [String: JSONValue] = [
            "chunks": .integer(Int64(result.chunks)),
            "ciphertext_bytes": .integer(Int64(result.ciphertextBytes)),
            "ciphertext_sha256": .string(Hex.encode(result.ciphertextSHA256)),
            "clock_error_us": .integer(Int64(clock.estimatedErrorMicroseconds)),
            "clock_synced": .boolean(clock.synchronised),
            "clock_plausible": .boolean(clock.plausible),
            "cut_by_clock_step": .boolean(clock.cutByStep),
            "boot_id": header["boot_id"] ?? .string(""),
            "codec": header["codec"] ?? .string("h264"),
            "device_id": .string(configuration.deviceID),
            "duration_us": .integer(durationNanoseconds / 1_000),
            "duty_id": header["duty_id"] ?? .string(""),
            "end_monotonic_ns": .integer(saturatingAdd(startMonotonic, durationNanoseconds)),
            "end_utc": .string(Clock.iso8601(wallNanoseconds: saturatingAdd(startWall, durationNanoseconds))),
            "fps": header["fps"] ?? .integer(0),
            "frames": .integer(Int64(result.frames)),
            "height": header["height"] ?? .integer(0),
            "marks": .array(takeMarks(from: startMonotonic, to: saturatingAdd(startMonotonic, durationNanoseconds))),
            "officer_id": header["officer_id"] ?? .string(""),
            "plaintext_bytes": .integer(Int64(result.plaintextBytes)),
            "previous_manifest_sha256": .string(previous),
            "recipients": .array(configuration.recipients.map { .string($0.keyID) }),
            "recovered": .boolean(recovered),
            "segment_file": .string(result.fileName),
            "sequence": .integer(sequence),
            "software": .string(configuration.software),
            "start_monotonic_ns": .integer(startMonotonic),
            "start_utc": .string(Clock.iso8601(wallNanoseconds: startWall)),
            "torn_tail_bytes": .integer(Int64(tornTail)),
            "unprovisioned": .boolean(!configuration.provisioned),
            "width": header["width"] ?? .integer(0),
        ]
        // Known while recording; a recovered segment cannot tell (its chunks do not carry it).
        if let dropped = result.framesDropped {
            members["frames_dropped"] = .integer(Int64(dropped))
            members["frames_dropped_estimated"] = .boolean(result.framesDroppedEstimated)
        }
        let document = try SignedDocument.sign(type: Manifest.type, body: .object(members), with: configuration.deviceKey)
        let manifest = try Manifest(document: document)
        let base = String(result.fileName.dropLast(".bcseg".count))
        try writeFileAtomically(configuration.directory + "/" + base + ".manifest", document.bytes, exclusive: true)
        state.withLock {
            $0.manifestHashes[sequence] = Hex.encode(manifest.sha256)
            $0.nextSequence = max($0.nextSequence, UInt64(sequence) + 1)
        }
        var fields: [String: JSONValue] = [
            "sequence": .integer(sequence), "manifest_sha256": .string(Hex.encode(manifest.sha256)),
            "segment_file": .string(result.fileName), "frames": .integer(Int64(result.frames)),
        ]
        if let dropped = result.framesDropped { fields["frames_dropped"] = .integer(Int64(dropped)) }
        try journal.append(kind: recovered ? "segment_recovered" : "segment_sealed", fields: fields)
        state.withLock {
            $0.sealedCount += 1
            $0.lastEndUTC = manifest.endUTC
        }
        return manifest
    }

    /// What crash recovery did.
    public struct Recovery: Equatable {
        public var recovered: [String] = []
        public var unrecoverable: [String] = []
        /// Files that could not be segments of this store, renamed NAME.damaged (never deleted).
        public var setAside: [String] = []
    }

    /// Crash recovery (run once at start, before recording): every segment without a manifest
    /// — cut off mid-write (NAME.bcseg.partial) or sealed just before the crash — keeps its
    /// complete chunks as they are and gets a manifest marked recovered, with the frames and
    /// duration its chunk headers count, and a journal record. Nothing is deleted: a file too
    /// short to hold even its header is left in place and journaled; one that cannot be a
    /// segment of this store (not a regular file, larger than any segment, a header whose
    /// sequence, name or times are impossible) is renamed NAME.damaged and journaled, so that
    /// no store content stops the daemon from starting and recording.
    @discardableResult
    public func recover() throws -> Recovery {
        var recovery = Recovery()
        let directory = configuration.directory
        let names = try directoryEntries(directory)
        let manifests = Set(names.filter { $0.hasSuffix(".manifest") }.map { String($0.dropLast(".manifest".count)) })
        let candidates = names.filter { name in
            (name.hasSuffix(".bcseg.partial") && !manifests.contains(String(name.dropLast(".bcseg.partial".count))))
                || (name.hasSuffix(".bcseg") && !manifests.contains(String(name.dropLast(".bcseg".count))))
        }
        for name in candidates {
            let path = directory + "/" + name
            func setAside(_ reason: String) throws {
                var target = path + ".damaged"
                var attempt = 1
                var existing = stat()
                while lstat(target, &existing) == 0 {
                    attempt += 1
                    target = path + ".damaged-\(attempt)"
                }
                if rename(path, target) < 0 { throw SystemError.file(path: path, call: "rename", errno: errno) }
                try syncDirectory(directory)
                let kept = String(target.dropFirst(directory.count + 1))
                try journal.append(kind: "segment_set_aside", fields: ["file": .string(name), "renamed": .string(kept), "reason": .string(reason)])
                recovery.setAside.append(kept)
            }
            let bytes: [UInt8]
            do {
                bytes = try readWholeFile(path, limit: SealedSegmentFormat.maximumFileBytes, followLinks: false)
            } catch {
                try setAside("\(error)")
                continue
            }
            let layout: SealedSegmentLayout
            do {
                layout = try SealedSegmentLayout(bytes, what: name, zeroFilledIsTorn: true)
            } catch {
                try journal.append(kind: "segment_unrecoverable", fields: ["file": .string(name), "reason": .string("\(error)")])
                recovery.unrecoverable.append(name)
                continue
            }
            if let reason = EvidenceVault.impossible(layout, name: name) {
                try setAside(reason)
                continue
            }
            let fileName = name.hasSuffix(".partial") ? String(name.dropLast(".partial".count)) : name
            var existing = stat()
            if fileName != name && lstat(directory + "/" + fileName, &existing) == 0 {
                // A sealed file of the same name is there too: neither is replaced.
                try setAside("\(fileName) exists beside it")
                continue
            }
            if fileName != name {
                if rename(path, directory + "/" + fileName) < 0 { throw SystemError.file(path: path, call: "rename", errno: errno) }
                try syncDirectory(directory)
            }
            let result = SealedSegmentResult(
                path: directory + "/" + fileName, fileName: fileName, ciphertextSHA256: try SHA256.hash(bytes), ciphertextBytes: bytes.count,
                plaintextBytes: layout.chunks.reduce(0) { $0 + $1.sealedLength - AES256GCM.tagSize }, chunks: layout.chunks.count,
                frames: layout.frames, ticks: layout.ticks)
            try writeManifest(result: result, header: layout.header, recovered: true, tornTail: layout.tornTail + layout.trailingData)
            recovery.recovered.append(fileName)
        }
        return recovery
    }

    /// Why a readable segment header cannot be one this store's writer made (nil when it can):
    /// its sequence must be the file name's, and its start times must be ones a clock gives.
    static func impossible(_ layout: SealedSegmentLayout, name: String) -> String? {
        guard let sequence = layout.sequence, sequence >= 1, SegmentName.sequence(of: name) == UInt64(sequence) else {
            return "header sequence \(layout.sequence.map(String.init) ?? "missing") is not the file name's"
        }
        guard let start = layout.header["start_monotonic_ns"]?.integer, (0...SealedSegmentFormat.maximumNanoseconds).contains(start) else {
            return "header start_monotonic_ns is missing or impossible"
        }
        guard ClockParse.nanoseconds(iso8601: layout.header["created_utc"]?.string ?? "") != nil else {
            return "header created_utc is missing or not a time"
        }
        return nil
    }
}

/// a + b, held at Int64's ends instead of trapping (times from a recovered header are not trusted).
func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? .max : .min) : sum
}

/// Parses the ISO 8601 UTC timestamps this project writes ("2026-11-29T03:10:16.250000Z"), in
/// their one canonical spelling only (docs/FORMAT.md, "Conventions").
public enum ClockParse {
    /// Nanoseconds since 1970 (UTC), or nil for anything else: another spelling (no fraction,
    /// `+00:00`, a sign, a leap second, 30 February), or a year outside 1970–2199.
    public static func nanoseconds(iso8601 text: String) -> Int64? {
        let bytes = Array(text.utf8)
        let separators: [Int: UInt8] = [4: 0x2D, 7: 0x2D, 10: 0x54, 13: 0x3A, 16: 0x3A, 19: 0x2E, 26: 0x5A]
        guard bytes.count == 27 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if let separator = separators[index] {
                guard byte == separator else { return nil }
            } else if !(0x30...0x39).contains(byte) {
                return nil
            }
        }
        func number(_ range: Range<Int>) -> Int { bytes[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
        // Years 1970–2199 only: every time this project writes, and far inside Int64 nanoseconds.
        let year = number(0..<4), month = number(5..<7), day = number(8..<10)
        guard (1970...2199).contains(year), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var broken = tm()
        broken.tm_year = Int32(year - 1900)
        broken.tm_mon = Int32(month - 1)
        broken.tm_mday = Int32(day)
        broken.tm_hour = Int32(number(11..<13))
        broken.tm_min = Int32(number(14..<16))
        broken.tm_sec = Int32(number(17..<19))
        let nanoseconds = Int64(timegm(&broken)) * 1_000_000_000 + Int64(number(20..<26)) * 1_000
        // The one spelling: what normalisation moved (an hour 24, a second 60, a 31 June) is not it.
        return Clock.iso8601(wallNanoseconds: nanoseconds) == text ? nanoseconds : nil
    }

    /// The last nanosecond a time can have (2199-12-31T23:59:59.999999999Z).
    public static let latestNanoseconds: Int64 = 7_258_118_399_999_999_999

    /// `time + delta` when it stays a time (1970–2199), else nil (never an overflow).
    public static func inRange(_ time: Int64, plus delta: Int64) -> Int64? {
        let (sum, overflow) = time.addingReportingOverflow(delta)
        return !overflow && (0...latestNanoseconds).contains(sum) ? sum : nil
    }
}
