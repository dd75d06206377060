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
}

extension EvidenceVault {
    public struct OffloadResult: Equatable, Sendable {
        public var deleted: [Int64] = []
        /// Entries not acted on, with the reason.
        public var refused: [String] = []
    }

    /// Checks an acknowledgement and keeps it in the store (durably, as `fileName`), journaled
    /// (`offload_received`), so that its segments can be released later under the retention
    /// setting: `authority` must stand behind it (`OffloadAcknowledgement.refusal`) and it must
    /// name this device. Entries that match no manifest are journaled (`offload_refused`) and
    /// listed in `refused`; they are never acted on. A refused acknowledgement is journaled and
    /// thrown (`EvidenceError`). Receiving one already kept is harmless.
    public func receiveOffload(_ bytes: [UInt8], authority: Ed25519PublicKey, revocations: RevocationList? = nil) throws
        -> (ack: OffloadAcknowledgement, refused: [String]) {
        let ack: OffloadAcknowledgement
        do {
            ack = try OffloadAcknowledgement.read(bytes, what: "offload acknowledgement")
        } catch {
            try journal.append(kind: "offload_refused", fields: ["reason": .string("\(error)")])
            throw error
        }
        if let reason = ack.refusal(authority: authority, revocations: revocations) {
            try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "reason": .string(reason)])
            throw EvidenceError.badSignature(what: "offload acknowledgement \(ack.ackID): \(reason)")
        }
        guard ack.deviceID == configuration.deviceID else {
            try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "reason": .string("for device \(ack.deviceID)")])
            throw EvidenceError.malformed(what: "offload acknowledgement \(ack.ackID)", reason: "it is for device \(ack.deviceID), this is \(configuration.deviceID)")
        }
        return try offloads.withLock { _ in
            let directory = configuration.directory
            let path = directory + "/" + ack.fileName
            if let kept = try? readWholeFile(path, limit: 1 << 20, followLinks: false), kept == bytes { return (ack, []) }
            let manifests = Dictionary(try EvidenceVault.readManifests(directory).map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
            var refused: [String] = []
            for entry in ack.entries where manifests[entry.sequence]?.ciphertextSHA256 != entry.ciphertextSHA256 {
                refused.append("segment \(entry.sequence): no manifest with that ciphertext hash")
                try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "sequence": .integer(entry.sequence),
                                                                     "reason": .string("no matching manifest")])
            }
            try writeFileAtomically(path, bytes, mode: 0o640)
            try syncDirectory(directory)
            try journal.append(kind: "offload_received", fields: [
                "ack_id": .string(ack.ackID), "ack_sha256": .string(Hex.encode(ack.document.sha256)),
                "segments": .integer(Int64(ack.entries.count - refused.count)),
                "signer": .string(ack.signerCertificate.map { "key certificate \($0.serial) of \($0.holder)" } ?? "authority"),
            ])
            return (ack, refused)
        }
    }

    /// Deletes the segment files that the acknowledgements kept in the store name, each when
    /// `due` says its time has come (the retention setting; always true to delete at once): the
    /// entry must match the segment's manifest, and `authority` must still stand behind the
    /// acknowledgement. Each deletion is journaled (a tombstone, `segment_offloaded`) before the
    /// file goes; manifests stay, so the chain still verifies. Safe from any thread (one release
    /// at a time). Returns the sequences deleted, lowest first.
    public func releaseOffloaded(authority: Ed25519PublicKey, revocations: RevocationList? = nil, due: (Manifest) -> Bool) throws -> [Int64] {
        try offloads.withLock { _ in
            let directory = configuration.directory
            let names = try directoryEntries(directory).filter { $0.hasPrefix("offload-") && $0.hasSuffix(".ack") }
            guard !names.isEmpty else { return [] }
            let manifests = Dictionary(try EvidenceVault.readManifests(directory).map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
            var deleted: [Int64] = []
            for name in names.sorted() {
                guard let bytes = try? readWholeFile(directory + "/" + name, limit: 1 << 20, followLinks: false),
                      let ack = try? OffloadAcknowledgement.read(bytes, what: name),
                      ack.deviceID == configuration.deviceID, ack.refusal(authority: authority, revocations: revocations) == nil else { continue }
                for entry in ack.entries {
                    guard let manifest = manifests[entry.sequence], manifest.ciphertextSHA256 == entry.ciphertextSHA256 else { continue }
                    let path = directory + "/" + manifest.segmentFile
                    guard access(path, F_OK) == 0, due(manifest) else { continue }
                    try journal.append(kind: "segment_offloaded", fields: [
                        "sequence": .integer(entry.sequence), "manifest_sha256": .string(Hex.encode(manifest.sha256)),
                        "ack_id": .string(ack.ackID), "ack_sha256": .string(Hex.encode(ack.document.sha256)),
                    ])
                    if unlink(path) < 0 { throw SystemError.file(path: path, call: "unlink", errno: errno) }
                    deleted.append(entry.sequence)
                }
            }
            if !deleted.isEmpty { try syncDirectory(directory) }
            return deleted.sorted()
        }
    }

    /// The lowest sequence whose segment file is still here and that no acknowledgement kept in
    /// the store names (what the uplink asks the office to acknowledge from); nil when there is none.
    public func firstUnacknowledged() throws -> Int64? {
        let directory = configuration.directory
        let names = try directoryEntries(directory)
        var acknowledged: Set<Int64> = []
        for name in names where name.hasPrefix("offload-") && name.hasSuffix(".ack") {
            guard let ack = try? OffloadAcknowledgement.read(try readWholeFile(directory + "/" + name, limit: 1 << 20, followLinks: false), what: name) else { continue }
            acknowledged.formUnion(ack.entries.map(\.sequence))
        }
        let present = Set(names)
        return try EvidenceVault.readManifests(directory).first { !acknowledged.contains($0.sequence) && present.contains($0.segmentFile) }?.sequence
    }

    /// `bodycamctl offload apply`: receives an acknowledgement and deletes at once every
    /// segment it names.
    public func applyOffload(_ bytes: [UInt8], authority: Ed25519PublicKey) throws -> OffloadResult {
        let (_, refused) = try receiveOffload(bytes, authority: authority)
        return OffloadResult(deleted: try releaseOffloaded(authority: authority, due: { _ in true }), refused: refused)
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
