import Evidence
import Export
import Platform
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
    /// Not in the incident's window (not a problem).
    var outside: Bool?
    /// The MP4 file its pictures went to, and (one file per segment) that file's SHA-256 and size.
    var file: String?
    var fileSHA256: String?
    var fileBytes: Int64?
    /// SHA-256 of the decrypted segment as recorded (a fragmented MP4), before the remux.
    var plaintextSHA256: String?
    var framesExported: Int?
    /// Pictures of the whole exported file that decode, and its length.
    var framesDecoded: Int?
    var durationSeconds: Double?
    /// Wall-clock times of the segment's first and last exported picture (corrected when the
    /// journal corrects the segment's clock).
    var firstFrameUTC: String?
    var lastFrameUTC: String?
    var framesDropped: Int64?
    var framesDroppedEstimated: Bool?
    /// A recovered segment: chunks after its authentic ones that did not authenticate (a torn
    /// write), not exported.
    var tornChunks: Int?
    /// Where libavformat stopped reading the segment early (a torn last fragment).
    var readError: String?
    var decodeProblems: [String]?
    var flagged: Bool?
    /// The segment's times as the journal corrects them (its clock was wrong when recorded).
    var correctedStartUTC: String?
    var correctedEndUTC: String?

    init(manifest: String) { self.manifest = manifest }

    /// Exported and decoding, or nothing to export (offloaded, empty, outside the incident).
    var isClean: Bool { offloaded == true || empty == true || outside == true || (exported && decodeProblems?.isEmpty == true) }

    enum CodingKeys: String, CodingKey {
        case manifest, exported, reason, sequence, offloaded, verified, empty, outside, file, flagged
        case manifestBody = "manifest_body", manifestSHA256 = "manifest_sha256", plaintextSHA256 = "plaintext_sha256"
        case fileSHA256 = "file_sha256", fileBytes = "file_bytes", framesExported = "frames_exported"
        case framesDecoded = "frames_decoded", durationSeconds = "duration_seconds", framesDropped = "frames_dropped"
        case firstFrameUTC = "first_frame_utc", lastFrameUTC = "last_frame_utc", readError = "read_error"
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
    /// Every mark in the store, numbered as `--incident mark:N` counts them.
    var marks: [MarkLine]
    var incident: Incident?
    var exportedUTC: String?

    enum CodingKeys: String, CodingKey { case verification, segments, marks, incident, exportedUTC = "exported_utc" }

    struct MarkLine: Encodable {
        var number: Int
        var label: String
        var source: String
        var utc: String
        init(number: Int, _ mark: ExportMark) {
            self.number = number
            label = mark.label
            source = mark.source
            utc = Clock.iso8601(wallNanoseconds: mark.utcNanoseconds)
        }
    }

    /// `--incident`: the window asked for and the file(s) written for it.
    struct Incident: Encodable {
        var fromUTC: String
        var toUTC: String
        var chosenBy: String?
        var files: [FileReport] = []
        enum CodingKeys: String, CodingKey { case fromUTC = "from_utc", toUTC = "to_utc", chosenBy = "chosen_by", files }
    }

    /// One MP4 file an incident export wrote.
    struct FileReport: Encodable {
        struct Piece: Encodable {
            var sequence: Int64
            var segmentFile: String
            var frames: Int
            var fileOffsetSeconds: Double
            var firstFrameUTC: String
            var lastFrameUTC: String
            var gapBeforeSeconds: Double
            enum CodingKeys: String, CodingKey {
                case sequence, frames, segmentFile = "segment_file", fileOffsetSeconds = "file_offset_seconds"
                case firstFrameUTC = "first_frame_utc", lastFrameUTC = "last_frame_utc", gapBeforeSeconds = "gap_before_seconds"
            }
        }
        struct ChapterLine: Encodable {
            var title: String
            var startSeconds: Double
            var endSeconds: Double
            enum CodingKeys: String, CodingKey { case title, startSeconds = "start_seconds", endSeconds = "end_seconds" }
        }
        var file: String
        var sha256: String
        var bytes: Int64
        var frames: Int
        var keyframes: Int
        var durationSeconds: Double
        var firstFrameUTC: String?
        var lastFrameUTC: String?
        var pieces: [Piece]
        var chapters: [ChapterLine]
        enum CodingKeys: String, CodingKey {
            case file, sha256, bytes, frames, keyframes, pieces, chapters, durationSeconds = "duration_seconds"
            case firstFrameUTC = "first_frame_utc", lastFrameUTC = "last_frame_utc"
        }

        init(_ file: ExportedFile) {
            self.file = file.path
            sha256 = file.sha256
            bytes = file.bytes
            frames = file.frames
            keyframes = file.keyframes
            durationSeconds = file.durationSeconds
            firstFrameUTC = file.firstFrameUTCNanoseconds.map { Clock.iso8601(wallNanoseconds: $0) }
            lastFrameUTC = file.lastFrameUTCNanoseconds.map { Clock.iso8601(wallNanoseconds: $0) }
            pieces = file.pieces.map {
                Piece(sequence: $0.sequence, segmentFile: $0.segmentFile, frames: $0.frames, fileOffsetSeconds: $0.fileOffsetSeconds,
                      firstFrameUTC: Clock.iso8601(wallNanoseconds: $0.firstFrameUTCNanoseconds),
                      lastFrameUTC: Clock.iso8601(wallNanoseconds: $0.lastFrameUTCNanoseconds), gapBeforeSeconds: Double($0.gapBeforeNanoseconds) / 1e9)
            }
            chapters = file.chapters.map { ChapterLine(title: $0.title, startSeconds: $0.startSeconds, endSeconds: $0.endSeconds) }
        }
    }

    /// Verified, every segment exported and decoding, and an incident that found pictures.
    var isClean: Bool { verification.isClean && segments.allSatisfy(\.isClean) && incident.map { !$0.files.isEmpty } != false }

    /// export-report.txt.
    var text: String {
        var lines = [verification.text, ""]
        for mark in marks {
            lines.append("MARK \(mark.number) \(mark.utc) \(mark.label.isEmpty ? "(no label)" : mark.label) (\(mark.source))")
        }
        if let incident {
            lines.append("INCIDENT \(incident.fromUTC) .. \(incident.toUTC)\(incident.chosenBy.map { " (\($0))" } ?? "")")
            if incident.files.isEmpty { lines.append("NOTHING RECORDED in the incident's window") }
            for file in incident.files {
                let gaps = file.pieces.filter { $0.gapBeforeSeconds > 0 }
                lines.append("INCIDENT FILE \(file.file): \(file.frames) frames, \(String(format: "%.3f", file.durationSeconds)) s, "
                             + "first picture \(file.firstFrameUTC ?? "?"), last picture \(file.lastFrameUTC ?? "?"), "
                             + "\(file.pieces.count) segment\(file.pieces.count == 1 ? "" : "s")"
                             + (gaps.isEmpty ? ", no gap" : ", gaps: " + gaps.map { String(format: "%.1f s before %@", $0.gapBeforeSeconds, $0.segmentFile) }.joined(separator: "; "))
                             + ", SHA-256 \(file.sha256)")
                for chapter in file.chapters {
                    lines.append("  CHAPTER \(String(format: "%.3f", chapter.startSeconds)) s: \(chapter.title)")
                }
            }
        }
        for entry in segments {
            if entry.exported {
                let estimated = entry.framesDroppedEstimated == true
                let missing = entry.framesDropped.map {
                    $0 > 0 ? " (\(estimated ? "about " : "")\($0) missing: the camera's frames dropped\(estimated ? ", estimated" : ""))"
                        : estimated ? " (none missing, estimated)" : ""
                } ?? ""
                let corrected = entry.correctedStartUTC.map { ", corrected UTC \($0) – \(entry.correctedEndUTC ?? "?")" } ?? ""
                let torn = entry.tornChunks.map { ", \($0) torn chunk\($0 == 1 ? "" : "s") after them not authentic (a write the power cut left unfinished)" } ?? ""
                let problems = entry.decodeProblems.flatMap { $0.isEmpty ? nil : ", PROBLEMS: " + $0.joined(separator: "; ") } ?? ""
                let hash = entry.fileSHA256.map { ", SHA-256 \($0)" } ?? ""
                lines.append("\(entry.flagged == true ? "FLAGGED " : "")EXPORTED \(entry.manifest) to \(entry.file ?? "?"): \(entry.framesExported ?? 0) frames\(missing), "
                             + "first picture \(entry.firstFrameUTC ?? "?"), last \(entry.lastFrameUTC ?? "?")\(corrected)\(torn)\(problems)\(hash)")
            } else if entry.empty == true {
                lines.append("EMPTY \(entry.manifest): \(entry.reason ?? "")")
            } else if entry.outside == true {
                lines.append("OUTSIDE \(entry.manifest): \(entry.reason ?? "")")
            } else {
                lines.append("NOT EXPORTED \(entry.manifest): \(entry.reason ?? "")")
            }
        }
        return lines.joined(separator: "\n")
    }
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
