import Glibc
import Synchronization
import LibCrypto
import Pipeline
import Platform
import Wire

/// An offload acknowledgement (docs/FORMAT.md): the office's signed statement that it holds
/// verified copies of the named segments. It is the only thing that lets a device delete a
/// segment. Signed by the authority's key (`bodycamctl offload ack`, offline), or by an office
/// key the authority certified for the purpose, whose certificate it carries (`bodycam-office`,
/// as segments arrive).
public struct OffloadAcknowledgement: Sendable {
    public static let type = "bodycam-offload-ack/1"
    public struct Entry: Equatable, Sendable {
        public var sequence: Int64
        public var ciphertextSHA256: String
    }
    public let document: SignedDocument
    public let ackID: String
    public let deviceID: String
    public let issuedUTC: String
    public let entries: [Entry]
    /// The certificate of the office key that signed it; nil when the authority's key did.
    public let signerCertificate: KeyCertificate?

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "offload acknowledgement")
        ackID = try fields.hexString("ack_id", count: 8)
        deviceID = try fields.string("device_id")
        issuedUTC = try fields.time("issued_utc")
        entries = try fields.array("segments").map { value in
            let entry = try Fields(value, what: "offload acknowledgement segment")
            return Entry(sequence: try entry.integer("sequence"), ciphertextSHA256: Hex.encode(try entry.hex("ciphertext_sha256", count: 32)))
        }
        signerCertificate = try fields.object["signer_certificate"].map { _ in
            try KeyCertificate.parse(try fields.bytes("signer_certificate"), what: "offload acknowledgement's signer certificate")
        }
    }

    /// Acknowledges `manifests` (verified copies the office holds), signed with `key`: the
    /// authority's, or an office key with its `certificate`.
    public static func issue(deviceID: String, manifests: [Manifest], key: Ed25519PrivateKey, certificate: KeyCertificate? = nil,
                             now: Int64 = Clock.wallNanoseconds()) throws -> OffloadAcknowledgement {
        var body: [String: JSONValue] = [
            "ack_id": .string(Hex.encode(try randomBytes(8))),
            "device_id": .string(deviceID),
            "issued_utc": .string(Clock.iso8601(wallNanoseconds: now)),
            "segments": .array(manifests.sorted { $0.sequence < $1.sequence }.map {
                .object(["ciphertext_sha256": .string($0.ciphertextSHA256), "sequence": .integer($0.sequence)])
            }),
        ]
        if let certificate {
            precondition(certificate.key == key.publicKey, "the certificate is for another key")
            body["signer_certificate"] = .string(Base64.encode(certificate.document.bytes))
        }
        return try OffloadAcknowledgement(document: SignedDocument.sign(type: type, body: .object(body), with: key))
    }

    public static func read(_ bytes: [UInt8], what: String) throws -> OffloadAcknowledgement {
        try OffloadAcknowledgement(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    /// Why `authority` does not stand behind this acknowledgement; nil when it does: signed by
    /// the authority's key, or by the key of a signer certificate the authority issued for
    /// offload acknowledgements, valid when the acknowledgement was issued and not on
    /// `revocations`.
    public func refusal(authority: Ed25519PublicKey, revocations: RevocationList? = nil) -> String? {
        guard let certificate = signerCertificate else {
            return document.isSigned(by: authority) ? nil : "not signed by the authority \(authority.keyID)"
        }
        if let reason = certificate.refusal(authority: authority, purpose: KeyCertificate.offloadAcknowledgement, at: issuedUTC,
                                            revocations: revocations) {
            return reason
        }
        return document.isSigned(by: certificate.key) ? nil : "not signed by the key its certificate names (\(certificate.holder))"
    }

    /// The name the acknowledgement is kept under in the store.
    public var fileName: String { "offload-\(ackID).ack" }

    /// Whether `name` is one an acknowledgement is kept under (`offload-` and 16 lower-case hex
    /// digits, `.ack`): nothing else is read or written as one, on the device or at the office.
    public static func isFileName(_ name: String) -> Bool {
        name.utf8.count == 28 && name.hasPrefix("offload-") && name.hasSuffix(".ack")
            && Hex.decode(String(name.dropFirst(8).dropLast(4))) != nil && name == name.lowercased()
    }
}

/// What the acknowledgements kept in a store name, built from the store once and kept up to date
/// by the vault (so releasing and asking cost no file reads): every acknowledged sequence, and
/// the acknowledged segments whose files are still here.
struct OffloadIndex: Sendable {
    struct Pending: Sendable {
        var segmentFile: String
        var endUTC: String
        var manifestSHA256: String
        var ackID: String
        var ackSHA256: String
    }
    var acknowledged: Set<Int64> = []
    var pending: [Int64: Pending] = [:]
}

extension EvidenceVault {
    public struct OffloadResult: Equatable, Sendable {
        public var deleted: [Int64] = []
        /// Entries not acted on, with the reason.
        public var refused: [String] = []
    }

    /// Checks an acknowledgement and keeps it in the store (durably, as `fileName`), journaled
    /// (`offload_received`), so that its segments can be released later under the retention
    /// setting: `authority` must stand behind it (`OffloadAcknowledgement.refusal`), its signer
    /// certificate (if any) must not have ended before `now` (wall ns), and it must name this
    /// device. Entries that match no manifest are journaled (one `offload_refused` record for
    /// them all) and listed in `refused`; they are never acted on. A refused acknowledgement is
    /// journaled and thrown (`EvidenceError`), as is one under a name the store holds with other
    /// bytes. Receiving one already kept is harmless.
    public func receiveOffload(_ bytes: [UInt8], authority: Ed25519PublicKey, revocations: RevocationList? = nil,
                               now: Int64 = Clock.wallNanoseconds()) throws -> (ack: OffloadAcknowledgement, refused: [String]) {
        func refuse(_ ackID: String?, _ reason: String, _ error: Error) throws -> Never {
            var fields: [String: JSONValue] = ["reason": .string(String(reason.prefix(300)))]
            if let ackID { fields["ack_id"] = .string(ackID) }
            try journal.append(kind: "offload_refused", fields: fields)
            throw error
        }
        let ack: OffloadAcknowledgement
        do {
            ack = try OffloadAcknowledgement.read(bytes, what: "offload acknowledgement")
        } catch {
            try refuse(nil, "\(error)", error)
        }
        if let reason = ack.refusal(authority: authority, revocations: revocations) {
            try refuse(ack.ackID, reason, EvidenceError.badSignature(what: "offload acknowledgement \(ack.ackID): \(String(reason.prefix(300)))"))
        }
        // Judged at its issue for the record; a key whose certificate has ended signs nothing
        // new, whatever time it writes into what it signs.
        if let certificate = ack.signerCertificate, let end = ClockParse.nanoseconds(iso8601: certificate.notAfter), now > end {
            let reason = "the key certificate of \(certificate.holder) ended at \(certificate.notAfter)"
            try refuse(ack.ackID, reason, EvidenceError.badSignature(what: "offload acknowledgement \(ack.ackID): \(String(reason.prefix(300)))"))
        }
        guard ack.deviceID == configuration.deviceID else {
            try refuse(ack.ackID, "for device \(ack.deviceID.prefix(64))",
                       EvidenceError.malformed(what: "offload acknowledgement \(ack.ackID)", reason: "it is for device \(ack.deviceID.prefix(64)), this is \(configuration.deviceID)"))
        }
        return try offloads.withLock { index in
            let directory = configuration.directory
            let path = directory + "/" + ack.fileName
            if access(path, F_OK) == 0 {
                if (try? readWholeFile(path, limit: 1 << 20, followLinks: false)) == bytes { return (ack, []) }
                // The kept one proves past deletions: it is never replaced.
                try refuse(ack.ackID, "the store keeps another acknowledgement under this id",
                           EvidenceError.malformed(what: "offload acknowledgement \(ack.ackID)", reason: "the store keeps another acknowledgement under this id"))
            }
            let manifests = Dictionary(try EvidenceVault.readManifests(directory).map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
            let unmatched = ack.entries.filter { manifests[$0.sequence]?.ciphertextSHA256 != $0.ciphertextSHA256 }.map(\.sequence)
            if !unmatched.isEmpty {
                try journal.append(kind: "offload_refused", fields: [
                    "ack_id": .string(ack.ackID), "reason": .string("no manifest with that ciphertext hash"),
                    "count": .integer(Int64(unmatched.count)), "sequences": .array(unmatched.prefix(16).map(JSONValue.integer)),
                ])
            }
            try writeFileAtomically(path, bytes, mode: 0o640, exclusive: true)
            try syncDirectory(directory)
            try journal.append(kind: "offload_received", fields: [
                "ack_id": .string(ack.ackID), "ack_sha256": .string(Hex.encode(ack.document.sha256)),
                "segments": .integer(Int64(ack.entries.count - unmatched.count)),
                "signer": .string(ack.signerCertificate.map { "key certificate \($0.serial) of \($0.holder.prefix(64))" } ?? "authority"),
            ])
            if index != nil { add(ack, manifests: manifests, to: &index!) }
            return (ack, unmatched.map { "segment \($0): no manifest with that ciphertext hash" })
        }
    }

    /// Adds what `ack` names and `manifests` match to `index`.
    private func add(_ ack: OffloadAcknowledgement, manifests: [Int64: Manifest], to index: inout OffloadIndex) {
        for entry in ack.entries {
            guard let manifest = manifests[entry.sequence], manifest.ciphertextSHA256 == entry.ciphertextSHA256 else { continue }
            index.acknowledged.insert(entry.sequence)
            if index.pending[entry.sequence] == nil, access(configuration.directory + "/" + manifest.segmentFile, F_OK) == 0 {
                index.pending[entry.sequence] = .init(segmentFile: manifest.segmentFile, endUTC: manifest.endUTC, manifestSHA256: Hex.encode(manifest.sha256),
                                                      ackID: ack.ackID, ackSHA256: Hex.encode(ack.document.sha256))
            }
        }
    }

    /// The index, read from the store the first time (every acknowledgement kept there that
    /// `authority` stands behind, and that names this device).
    private func offloadIndex(_ index: inout OffloadIndex?, authority: Ed25519PublicKey, revocations: RevocationList?) throws {
        guard index == nil else { return }
        var built = OffloadIndex()
        let directory = configuration.directory
        let names = try directoryEntries(directory).filter(OffloadAcknowledgement.isFileName)
        if !names.isEmpty {
            let manifests = Dictionary(try EvidenceVault.readManifests(directory).map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
            for name in names.sorted() {
                guard let bytes = try? readWholeFile(directory + "/" + name, limit: 1 << 20, followLinks: false),
                      let ack = try? OffloadAcknowledgement.read(bytes, what: name), ack.fileName == name,
                      ack.deviceID == configuration.deviceID, ack.refusal(authority: authority, revocations: revocations) == nil else { continue }
                add(ack, manifests: manifests, to: &built)
            }
        }
        index = built
    }

    /// Deletes up to `limit` segment files that acknowledgements kept in the store name, lowest
    /// first, each when `due` says its time has come (its manifest's end time and the retention
    /// setting; always true to delete at once). Each deletion is journaled (a tombstone,
    /// `segment_offloaded`) before the file goes; manifests stay, so the chain still verifies.
    /// A file that cannot be removed is logged and left (its tombstone is not repeated). Safe
    /// from any thread (one at a time). Returns the sequences deleted.
    public func releaseOffloaded(authority: Ed25519PublicKey, revocations: RevocationList? = nil, limit: Int = .max,
                                 due: (_ sequence: Int64, _ endUTC: String) -> Bool) throws -> [Int64] {
        try offloads.withLock { index in
            try offloadIndex(&index, authority: authority, revocations: revocations)
            var deleted: [Int64] = []
            for sequence in index!.pending.keys.sorted() where deleted.count < limit {
                let entry = index!.pending[sequence]!
                guard due(sequence, entry.endUTC) else { continue }
                let path = configuration.directory + "/" + entry.segmentFile
                index!.pending[sequence] = nil
                guard access(path, F_OK) == 0 else { continue }
                try journal.append(kind: "segment_offloaded", fields: [
                    "sequence": .integer(sequence), "manifest_sha256": .string(entry.manifestSHA256),
                    "ack_id": .string(entry.ackID), "ack_sha256": .string(entry.ackSHA256),
                ])
                if unlink(path) < 0 {
                    Log.error("offload: \(SystemError.file(path: path, call: "unlink", errno: errno)); the file stays")
                    continue
                }
                deleted.append(sequence)
            }
            if !deleted.isEmpty { try syncDirectory(configuration.directory) }
            return deleted
        }
    }

    /// The lowest sequence whose segment file is still here and that no acknowledgement in the
    /// store names (what the uplink asks the office to acknowledge from); nil when there is
    /// none. Reads the folder's names, no file.
    public func firstUnacknowledged(authority: Ed25519PublicKey, revocations: RevocationList? = nil) throws -> Int64? {
        try offloads.withLock { index in
            try offloadIndex(&index, authority: authority, revocations: revocations)
            return try directoryEntries(configuration.directory).compactMap { name -> Int64? in
                guard name.hasSuffix(".bcseg"), let sequence = SegmentName.sequence(of: name).map(Int64.init) else { return nil }
                return index!.acknowledged.contains(sequence) ? nil : sequence
            }.min()
        }
    }

    /// `bodycamctl offload apply`: receives an acknowledgement and deletes at once every
    /// segment it names.
    public func applyOffload(_ bytes: [UInt8], authority: Ed25519PublicKey) throws -> OffloadResult {
        let (_, refused) = try receiveOffload(bytes, authority: authority)
        return OffloadResult(deleted: try releaseOffloaded(authority: authority, due: { _, _ in true }), refused: refused)
    }
}

/// Free space on the store's file system against the reserve and the floor.
public final class StorageMonitor: Sendable {
    public enum Level: String, Equatable, Sendable {
        case ok
        /// Below the reserve: recording goes on, an alarm is raised.
        case low
        /// Below the floor: the open segment is sealed and recording stops.
        case critical
    }

    public let path: String
    public let reserveBytes: Int64
    public let floorBytes: Int64
    private let freeBytes: @Sendable (String) throws -> Int64
    private let current = Mutex(Level.ok)
    /// The level at the last `check()` (housekeeping checks; the control socket reads).
    public var level: Level { current.withLock { $0 } }

    /// `freeBytes` defaults to statvfs(3): blocks available to unprivileged users.
    public init(path: String, reserveBytes: Int64, floorBytes: Int64, freeBytes: (@Sendable (String) throws -> Int64)? = nil) {
        precondition(floorBytes < reserveBytes)
        self.path = path
        self.reserveBytes = reserveBytes
        self.floorBytes = floorBytes
        self.freeBytes = freeBytes ?? { try Platform.freeSpace($0) }
    }

    /// Measures; returns the new level when it changed (nil when it did not).
    public func check() throws -> (level: Level, free: Int64)? {
        let free = try freeBytes(path)
        let now: Level = free < floorBytes ? .critical : free < reserveBytes ? .low : .ok
        let before = current.withLock { level in
            defer { level = now }
            return level
        }
        return now == before ? nil : (now, free)
    }
}
