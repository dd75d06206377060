import LibCrypto
import Pipeline
import Platform
import Wire

/// A segment's manifest (docs/FORMAT.md, "Manifest"): a signed document binding the segment's
/// ciphertext hash, its place in the chain and what it shows.
public struct Manifest: Sendable {
    public static let type = "bodycam-manifest/1"
    public let document: SignedDocument
    public let deviceID: String
    public let sequence: Int64
    public let previousManifestSHA256: String
    public let segmentFile: String
    public let ciphertextSHA256: String
    public let ciphertextBytes: Int64
    public let chunks: Int64
    public let frames: Int64
    /// Camera frames missing inside the segment; nil when unknown (recovered segments, older writers).
    public let framesDropped: Int64?
    public let durationMicroseconds: Int64
    public let startUTC: String
    public let endUTC: String
    public let recovered: Bool
    public let unprovisioned: Bool

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "manifest")
        deviceID = try fields.string("device_id")
        sequence = try fields.integer("sequence")
        previousManifestSHA256 = try fields.string("previous_manifest_sha256")
        segmentFile = try fields.string("segment_file")
        ciphertextSHA256 = try fields.string("ciphertext_sha256")
        ciphertextBytes = try fields.integer("ciphertext_bytes")
        chunks = try fields.integer("chunks")
        frames = try fields.integer("frames")
        framesDropped = document.body["frames_dropped"] == nil ? nil : try fields.integer("frames_dropped")
        durationMicroseconds = try fields.integer("duration_us")
        startUTC = try fields.string("start_utc")
        endUTC = try fields.string("end_utc")
        recovered = try fields.boolean("recovered")
        unprovisioned = try fields.boolean("unprovisioned")
        _ = try fields.array("marks")
    }

    public static func read(_ bytes: [UInt8], what: String) throws -> Manifest {
        try Manifest(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    public var sha256: [UInt8] { document.sha256 }
    /// "seg-000042-…": the manifest's file is this plus ".manifest", the segment's plus ".bcseg".
    public var baseName: String { String(segmentFile.dropLast(".bcseg".count)) }
}
