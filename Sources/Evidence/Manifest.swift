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
    /// `framesDropped` is (in part) an estimate: the driver's sequence numbers could not be
    /// trusted (false when absent: written before the member existed).
    public let framesDroppedEstimated: Bool
    public let durationMicroseconds: Int64
    public let startUTC: String
    public let endUTC: String
    public let recovered: Bool
    public let unprovisioned: Bool
    /// CLOCK_MONOTONIC at the first picture, ns, and the kernel boot it belongs to (nil when the
    /// writer did not say): with the journal's pairs of monotonic and wall times they give a
    /// corrected UTC when the wall clock was wrong (docs/POLICY.md, "Clock").
    public let startMonotonicNanoseconds: Int64?
    public let endMonotonicNanoseconds: Int64?
    public let bootID: String?
    /// The wall clock over the segment (nil when the writer did not say).
    public let clockSynced: Bool?
    public let clockPlausible: Bool?
    public let cutByClockStep: Bool?

    /// Counts and sizes above this are not a segment's (about 10^12): every sum a reader makes
    /// of them stays far inside Int64.
    public static let maximumCount: Int64 = 1 << 40

    /// Reads the members and range-checks every number (`EvidenceError.malformed` naming the
    /// member): a manifest is signed by the device, but a reader must not trap on one that was
    /// made by anyone. `segment_file` must be a segment name (`SegmentName`), never a path.
    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "manifest")
        func count(_ name: String, in range: ClosedRange<Int64> = 0...Manifest.maximumCount) throws -> Int64 {
            let value = try fields.integer(name)
            guard range.contains(value) else {
                throw EvidenceError.malformed(what: "manifest", reason: "\(name) \(value) is outside \(range.lowerBound)…\(range.upperBound)")
            }
            return value
        }
        deviceID = try fields.string("device_id")
        sequence = try count("sequence", in: 1...Int64(SegmentName.maximumSequence))
        previousManifestSHA256 = try fields.hexString("previous_manifest_sha256", count: 32)
        segmentFile = try fields.string("segment_file")
        guard segmentFile.hasSuffix(".bcseg"), SegmentName.isValid(baseName: String(segmentFile.dropLast(".bcseg".count))) else {
            throw EvidenceError.malformed(what: "manifest", reason: "segment_file \(Manifest.bounded(segmentFile)) is not a segment name")
        }
        ciphertextSHA256 = try fields.hexString("ciphertext_sha256", count: 32)
        ciphertextBytes = try count("ciphertext_bytes")
        chunks = try count("chunks")
        frames = try count("frames")
        framesDropped = document.body["frames_dropped"] == nil ? nil : try count("frames_dropped")
        framesDroppedEstimated = document.body["frames_dropped_estimated"] == nil ? false : try fields.boolean("frames_dropped_estimated")
        durationMicroseconds = try count("duration_us")
        startUTC = try fields.time("start_utc")
        endUTC = try fields.time("end_utc")
        recovered = try fields.boolean("recovered")
        unprovisioned = try fields.boolean("unprovisioned")
        let body = document.body
        startMonotonicNanoseconds = body["start_monotonic_ns"] == nil ? nil : try count("start_monotonic_ns", in: 0...SealedSegmentFormat.maximumNanoseconds)
        endMonotonicNanoseconds = body["end_monotonic_ns"] == nil ? nil : try count("end_monotonic_ns", in: 0...2 * SealedSegmentFormat.maximumNanoseconds)
        bootID = body["boot_id"] == nil ? nil : try fields.string("boot_id")
        clockSynced = body["clock_synced"] == nil ? nil : try fields.boolean("clock_synced")
        clockPlausible = body["clock_plausible"] == nil ? nil : try fields.boolean("clock_plausible")
        cutByClockStep = body["cut_by_clock_step"] == nil ? nil : try fields.boolean("cut_by_clock_step")
        _ = try fields.array("marks")
    }

    /// A name from a manifest for a message: at most 80 characters.
    private static func bounded(_ text: String) -> String { text.count > 80 ? String(text.prefix(80)) + "…" : text }

    public static func read(_ bytes: [UInt8], what: String) throws -> Manifest {
        try Manifest(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    public var sha256: [UInt8] { document.sha256 }
    /// "seg-000042-…": the manifest's file is this plus ".manifest", the segment's plus ".bcseg".
    public var baseName: String { String(segmentFile.dropLast(".bcseg".count)) }
}
