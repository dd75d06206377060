import Evidence
import Foundation
import Wire

// Every `--json` output is one of these Encodable types (or a library's Encodable type), printed
// by `printJSON`: no hand-built JSON text, no untyped dictionaries.

/// The JSON of `value` (sorted keys, indented, slashes unescaped), with a final newline.
func jsonBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return Array(try encoder.encode(value)) + [0x0A]
}

/// Prints an Encodable value as JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try jsonBytes(value).dropLast(), as: UTF8.self))
}

/// One line of JSON (for streams read line by line: `gpio watch`, `gpio test-outputs`).
func printJSONLine<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// `export`: one manifest of the store and what became of it.
struct ExportEntry: Encodable {
    var manifest: String
    var exported = false
    var reason: String?
    var sequence: Int64?
    var manifestBody: JSONValue?
    var manifestSHA256: String?
    var offloaded: Bool?
    var verified: Bool?
    var empty: Bool?
    var file: String?
    var plaintextSHA256: String?
    var framesDecoded: Int?
    var durationSeconds: Double?
    var framesDropped: Int64?
    var framesDroppedEstimated: Bool?
    /// A recovered segment: chunks after its authentic ones that did not authenticate (a torn
    /// write), not exported.
    var tornChunks: Int?
    var decodeProblems: [String]?
    var flagged: Bool?
    /// The segment's times as the journal corrects them (its clock was wrong when recorded).
    var correctedStartUTC: String?
    var correctedEndUTC: String?

    init(manifest: String) { self.manifest = manifest }

    enum CodingKeys: String, CodingKey {
        case manifest, exported, reason, sequence, offloaded, verified, empty, file, flagged
        case manifestBody = "manifest_body", manifestSHA256 = "manifest_sha256", plaintextSHA256 = "plaintext_sha256"
        case framesDecoded = "frames_decoded", durationSeconds = "duration_seconds", framesDropped = "frames_dropped"
        case framesDroppedEstimated = "frames_dropped_estimated"
        case tornChunks = "torn_chunks"
        case decodeProblems = "decode_problems"
        case correctedStartUTC = "corrected_start_utc", correctedEndUTC = "corrected_end_utc"
    }
}

/// `export`: the report (OUT/export-report.json; without `exported_utc` on standard output).
struct ExportReport: Encodable {
    var verification: VerificationReport
    var segments: [ExportEntry]
    var exportedUTC: String?

    enum CodingKeys: String, CodingKey { case verification, segments, exportedUTC = "exported_utc" }
}

/// `camera list` and `camera formats`: one V4L2 node.
struct CameraNode: Encodable {
    var path: String
    var driver: String?
    var card: String?
    var capture: Bool?
    var formats: [String]?
    var error: String?
}

/// `camera snapshot`.
struct SnapshotResult: Encodable {
    var file: String
    var width: Int
    var height: Int
    var source: String
}

/// `gpio watch`: a gesture (or a chord) `t` seconds after the watch began.
struct GestureLine: Encodable {
    var button: String?
    var gesture: String?
    var chord: [String]?
    var t: Double
}

/// `gpio test-outputs`: one output line driven.
struct OutputTestLine: Encodable {
    var line: String
    var ok: Bool
}

/// `gpio list`: a chip and its lines.
struct ChipListing: Encodable {
    struct Line: Encodable {
        var offset: Int
        var name: String
        var consumer: String
        var output: Bool
    }
    var chip: String
    var label: String
    var lines: [Line]
}

/// `selftest`: one check.
struct CheckResult: Encodable {
    var check: String
    var verdict: String
    var reason: String
}

/// `keys provision`.
struct ProvisionedKey: Encodable {
    var deviceKeyID: String
    var `public`: String
    enum CodingKeys: String, CodingKey { case deviceKeyID = "device_key_id", `public` }
}

/// `keys show`.
struct KeyListing: Encodable {
    var keyID: String
    var type: String
    enum CodingKeys: String, CodingKey { case keyID = "key_id", type }
}

/// `events`: the journal's records and its problems.
struct EventListing: Encodable {
    struct Problem: Encodable {
        var line: Int
        var message: String
    }
    struct Record: Encodable {
        var seq: Int64
        var utc: String
        var kind: String
        var fields: JSONValue
    }
    var problems: [Problem]
    var records: [Record]
}

/// `storage`.
struct StorageReport: Encodable {
    var store: String
    var freeBytes: Int64
    var segments: Int
    var segmentBytes: Int64
    var recordedSeconds: Double
    var bytesPerSecond: Double
    var hoursLeft: Double
    enum CodingKeys: String, CodingKey {
        case store, segments
        case freeBytes = "free_bytes", segmentBytes = "segment_bytes", recordedSeconds = "recorded_seconds"
        case bytesPerSecond = "bytes_per_second", hoursLeft = "hours_left"
    }
}

/// `time`.
struct TimeReport: Encodable {
    var utc: String
    var monotonicNanoseconds: Int64
    var synchronised: Bool
    var estimatedErrorMicroseconds: Int
    enum CodingKeys: String, CodingKey {
        case utc, synchronised
        case monotonicNanoseconds = "monotonic_ns", estimatedErrorMicroseconds = "estimated_error_us"
    }
}
