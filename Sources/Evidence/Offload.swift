import Glibc
import Synchronization
import LibCrypto
import Pipeline
import Platform
import Wire

/// An offload acknowledgement (docs/FORMAT.md): the office's signed statement that it holds
/// copies of the named segments. It is the only thing that lets a device delete a segment.
public struct OffloadAcknowledgement {
    public static let type = "bodycam-offload-ack/1"
    public struct Entry: Equatable {
        public var sequence: Int64
        public var ciphertextSHA256: String
    }
    public let document: SignedDocument
    public let ackID: String
    public let deviceID: String
    public let entries: [Entry]

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "offload acknowledgement")
        ackID = try fields.hexString("ack_id", count: 8)
        deviceID = try fields.string("device_id")
        _ = try fields.time("issued_utc")
        entries = try fields.array("segments").map { value in
            let entry = try Fields(value, what: "offload acknowledgement segment")
            return Entry(sequence: try entry.integer("sequence"), ciphertextSHA256: Hex.encode(try entry.hex("ciphertext_sha256", count: 32)))
        }
    }

    /// The office side: acknowledges `manifests` (verified copies it holds) with the authority key.
    public static func issue(deviceID: String, manifests: [Manifest], key: Ed25519PrivateKey) throws -> OffloadAcknowledgement {
        let body = JSONValue.object([
            "ack_id": .string(Hex.encode(try randomBytes(8))),
            "device_id": .string(deviceID),
            "issued_utc": .string(Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())),
            "segments": .array(manifests.sorted { $0.sequence < $1.sequence }.map {
                .object(["ciphertext_sha256": .string($0.ciphertextSHA256), "sequence": .integer($0.sequence)])
            }),
        ])
        return try OffloadAcknowledgement(document: SignedDocument.sign(type: type, body: body, with: key))
    }

    public static func read(_ bytes: [UInt8], what: String) throws -> OffloadAcknowledgement {
        try OffloadAcknowledgement(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    /// The name the acknowledgement is kept under in the store.
    public var fileName: String { "offload-\(ackID).ack" }
}

extension EvidenceVault {
    public struct OffloadResult: Equatable {
        public var deleted: [Int64] = []
        /// Entries not acted on, with the reason.
        public var refused: [String] = []
    }

    /// Deletes the segment files an acknowledgement names, after checking it: signed by the
    /// authority, for this device, each entry matching a manifest's ciphertext hash. The
    /// acknowledgement is kept in the store and every deletion journaled (a tombstone) before
    /// the file goes; manifests stay, so the chain still verifies. A refused acknowledgement is
    /// journaled too.
    public func applyOffload(_ bytes: [UInt8], authority: Ed25519PublicKey) throws -> OffloadResult {
        let ack: OffloadAcknowledgement
        do {
            ack = try OffloadAcknowledgement.read(bytes, what: "offload acknowledgement")
        } catch {
            try journal.append(kind: "offload_refused", fields: ["reason": .string("\(error)")])
            throw error
        }
        guard ack.document.isSigned(by: authority) else {
            try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "reason": .string("not signed by the authority")])
            throw EvidenceError.badSignature(what: "offload acknowledgement \(ack.ackID)")
        }
        guard ack.deviceID == configuration.deviceID else {
            try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "reason": .string("for device \(ack.deviceID)")])
            throw EvidenceError.malformed(what: "offload acknowledgement \(ack.ackID)", reason: "it is for device \(ack.deviceID), this is \(configuration.deviceID)")
        }
        let directory = configuration.directory
        try writeFileAtomically(directory + "/" + ack.fileName, bytes, mode: 0o640)
        let manifests = Dictionary(try EvidenceVault.readManifests(directory).map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
        var result = OffloadResult()
        for entry in ack.entries {
            guard let manifest = manifests[entry.sequence], manifest.ciphertextSHA256 == entry.ciphertextSHA256 else {
                result.refused.append("segment \(entry.sequence): no manifest with that ciphertext hash")
                try journal.append(kind: "offload_refused", fields: ["ack_id": .string(ack.ackID), "sequence": .integer(entry.sequence),
                                                                     "reason": .string("no matching manifest")])
                continue
            }
            let path = directory + "/" + manifest.segmentFile
            guard access(path, F_OK) == 0 else { continue }  // already offloaded
            try journal.append(kind: "segment_offloaded", fields: [
                "sequence": .integer(entry.sequence), "manifest_sha256": .string(Hex.encode(manifest.sha256)),
                "ack_id": .string(ack.ackID), "ack_sha256": .string(Hex.encode(ack.document.sha256)),
            ])
            if unlink(path) < 0 { throw SystemError.file(path: path, call: "unlink", errno: errno) }
            result.deleted.append(entry.sequence)
        }
        try syncDirectory(directory)
        return result
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
