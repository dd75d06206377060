import Foundation
import Testing
import Capture
import Evidence
import Export
import LibAV
import LibCrypto
import Wire
import Pipeline
import Platform
import TestSupport
import LibAVFormat

/// A store of five one-second segments (320x240, 30 fps, one GOP each) recorded once, and its
/// segments' plaintext.
final class RecordedSegments: @unchecked Sendable {
    static let shared = RecordedSegments()
    let directory: TemporaryDirectory
    let keys = Keys()
    let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30)
    let manifests: [Manifest]

    private init() {
        directory = try! TemporaryDirectory("bodycam-export")
        try! recordEvidence(into: try! makeVault(directory.path + "/store", keys: keys), frames: 150, width: 320, height: 240)
        manifests = try! EvidenceVault.readManifests(directory.path + "/store")
    }

    var store: String { directory.path + "/store" }

    func source(_ manifest: Manifest, shiftedBy shift: Int64 = 0) -> ExportSource {
        ExportSource(sequence: manifest.sequence, segmentFile: manifest.segmentFile,
                     startUTCNanoseconds: ClockParse.nanoseconds(iso8601: manifest.startUTC)! + shift) { [store, keys] in
            try manifest.decryptSegment(in: store, identity: keys.office).plaintext
        }
    }

    /// A fresh, empty folder to export into.
    func outFolder() throws -> String {
        let path = directory.path + "/out-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }
}

@Suite("MP4 export", .serialized)
struct MP4ExportTests {
    let recorded = RecordedSegments.shared

    @Test("a segment becomes a standard MP4: index first, no fragments, every picture, its full length")
    func singleSegment() throws {
        let manifest = recorded.manifests[1]
        let out = try recorded.outFolder()
        let files = try MP4Export.write([recorded.source(manifest)], folder: out, name: "one", exclusive: true).files
        try #require(files.count == 1)
        let file = files[0]
        #expect(file.path == out + "/one.mp4")
        let boxes = MP4Boxes.topLevel(try readWholeFile(file.path)).map(\.type)
        #expect(boxes.firstIndex(of: "moov")! < boxes.firstIndex(of: "mdat")!, "index first: \(boxes)")
        #expect(!boxes.contains("moof"))
        let report = try SegmentInspector.inspect(path: file.path)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.decodedFrames == Int(manifest.frames))
        #expect(file.frames == Int(manifest.frames))
        #expect(abs(report.durationSeconds - Double(manifest.durationMicroseconds) / 1e6) < 1.0 / 30)
        #expect(abs(file.durationSeconds - report.durationSeconds) < 1e-6)
        // The same pictures as recorded: the burned-in frame numbers of the plaintext.
        let original = recorded.directory.path + "/plain-\(manifest.sequence).mp4"
        try writeFileAtomically(original, try manifest.decryptSegment(in: recorded.store, identity: recorded.keys.office).plaintext)
        #expect(try burnedInFrameNumbers(path: file.path, format: recorded.format) == burnedInFrameNumbers(path: original, format: recorded.format))
        // The hash is the file's, and nothing else is left in the folder.
        #expect(file.sha256 == Hex.encode(try SHA256.hash(try readWholeFile(file.path))))
        #expect(try directoryEntries(out) == ["one.mp4"])
    }

    @Test("a segment as a standard MP4 in memory: index first, the same pictures as the file export")
    func inMemory() throws {
        let manifest = recorded.manifests[2]
        let (bytes, file) = try MP4Export.standardMP4(recorded.source(manifest))
        let boxes = MP4Boxes.topLevel(bytes).map(\.type)
        // The room left after the index, and libavformat's own 8-byte free box, before the samples.
        #expect(Array(boxes.prefix(2)) == ["ftyp", "moov"] && boxes.last == "mdat" && Set(boxes.dropFirst(2).dropLast()) == ["free"], "\(boxes)")
        #expect(file.sha256 == Hex.encode(try SHA256.hash(bytes)) && file.bytes == Int64(bytes.count))
        let out = try recorded.outFolder()
        try writeFileAtomically(out + "/memory.mp4", bytes)
        let written = try MP4Export.write([recorded.source(manifest)], folder: out, name: "file", exclusive: true).files[0]
        let report = try SegmentInspector.inspect(path: out + "/memory.mp4")
        #expect(report.problems.isEmpty && report.decodedFrames == Int(manifest.frames))
        #expect(abs(report.durationSeconds - written.durationSeconds) < 1e-6)
        #expect(try burnedInFrameNumbers(path: out + "/memory.mp4", format: recorded.format) == burnedInFrameNumbers(path: written.path, format: recorded.format))
        // Not a media file: refused with libavformat's reason.
        #expect(throws: AVError.self) {
            try MP4Export.standardMP4(ExportSource(sequence: 1, segmentFile: "x.bcseg", startUTCNanoseconds: 0) { [UInt8](repeating: 7, count: 64) })
        }
    }

    @Test("segments join into one file: no picture lost or doubled at the joins, the first and last picture's wall-clock times")
    func joined() throws {
        let out = try recorded.outFolder()
        let files = try MP4Export.write(recorded.manifests.map { recorded.source($0) }, folder: out, name: "all", exclusive: true).files
        try #require(files.count == 1)
        let file = files[0]
        let numbers = try burnedInFrameNumbers(path: file.path, format: recorded.format)
        #expect(numbers == (0..<150).map { Optional($0) })
        #expect(file.pieces.map(\.sequence) == recorded.manifests.map(\.sequence))
        #expect(file.pieces.allSatisfy { $0.gapBeforeNanoseconds == 0 }, "\(file.pieces.map(\.gapBeforeNanoseconds))")
        #expect(file.chapters.isEmpty)
        let report = try SegmentInspector.inspect(path: file.path)
        #expect(report.problems.isEmpty)
        #expect(abs(report.durationSeconds - 5.0) < 1.0 / 30, "\(report.durationSeconds)")
        #expect(file.firstFrameUTCNanoseconds == ClockParse.nanoseconds(iso8601: recorded.manifests[0].startUTC))
        // The last picture starts one frame before the end of the last segment.
        let last = recorded.manifests.last!
        let lastEnd = ClockParse.nanoseconds(iso8601: last.startUTC)! + last.durationMicroseconds * 1000
        #expect(abs(file.lastFrameUTCNanoseconds! - (lastEnd - 1_000_000_000 / 30)) < 2_000_000)
    }

    @Test("an incident window is cut on keyframes: from the GOP holding its start to the end of the GOP holding its end")
    func window() throws {
        let second = recorded.manifests[1], third = recorded.manifests[2]
        let from = ClockParse.nanoseconds(iso8601: second.startUTC)! + 500_000_000
        let to = ClockParse.nanoseconds(iso8601: third.startUTC)! + 200_000_000
        let out = try recorded.outFolder()
        let files = try MP4Export.write(recorded.manifests.map { recorded.source($0) }, window: from...to, folder: out, name: "cut", exclusive: true).files
        try #require(files.count == 1)
        #expect(files[0].pieces.map(\.sequence) == [second.sequence, third.sequence])
        #expect(try burnedInFrameNumbers(path: files[0].path, format: recorded.format) == (30..<90).map { Optional($0) })
        let report = try SegmentInspector.inspect(path: files[0].path)
        #expect(report.startsWithKeyframe && report.problems.isEmpty)
        // A window before the recording exports nothing, and leaves nothing behind.
        let none = try MP4Export.write(recorded.manifests.map { recorded.source($0) }, window: 0...1, folder: out, name: "none", exclusive: true).files
        #expect(none.isEmpty)
        #expect(try directoryEntries(out) == ["cut.mp4"])
    }

    @Test("marks and gaps become chapters that libavformat reads back")
    func chapters() throws {
        let first = recorded.manifests[0], second = recorded.manifests[1]
        let start = ClockParse.nanoseconds(iso8601: first.startUTC)!
        // The second segment placed 10 s after the first ends: a gap the recording did not cover.
        let gap: Int64 = 10_000_000_000
        let firstEnd = start + first.durationMicroseconds * 1000
        let marks = [ExportMark(label: "stop", source: "button", utcNanoseconds: start + 400_000_000),
                     ExportMark(label: "", source: "control", utcNanoseconds: firstEnd + gap + 500_000_000),
                     ExportMark(label: "outside", source: "button", utcNanoseconds: firstEnd + 1_000_000_000)]
        let out = try recorded.outFolder()
        let files = try MP4Export.write([recorded.source(first), recorded.source(second, shiftedBy: firstEnd + gap - ClockParse.nanoseconds(iso8601: second.startUTC)!)],
                                        marks: marks, folder: out, name: "marked", exclusive: true).files
        try #require(files.count == 1)
        #expect(files[0].pieces[1].gapBeforeNanoseconds == gap)
        let read = try MediaReader(path: files[0].path).chapters
        #expect(read.map(\.title) == ["start", "stop (button)", "not recorded: 10.0 s", "mark (control)"], "\(read)")
        let one = Double(first.durationMicroseconds) / 1e6
        let expected = [0, 0.4, one, one + 0.5]
        for (chapter, start) in zip(read, expected) { #expect(abs(chapter.startSeconds - start) < 0.002, "\(chapter)") }
    }

    @Test("a segment that cannot be read is left out and named, and the export goes on past it as a gap")
    func skipped() throws {
        let first = recorded.manifests[0], third = recorded.manifests[2]
        let broken = ExportSource(sequence: recorded.manifests[1].sequence, segmentFile: recorded.manifests[1].segmentFile,
                                  startUTCNanoseconds: ClockParse.nanoseconds(iso8601: recorded.manifests[1].startUTC)!) {
            [UInt8](repeating: 0x42, count: 4096)
        }
        let out = try recorded.outFolder()
        let result = try MP4Export.write([recorded.source(first), broken, recorded.source(third)], folder: out, name: "holed", exclusive: true)
        #expect(result.skipped.map(\.sequence) == [recorded.manifests[1].sequence])
        #expect(result.skipped.first?.reason.contains("avformat_open_input") == true, "\(result.skipped)")
        try #require(result.files.count == 1)
        #expect(result.files[0].pieces.map(\.sequence) == [first.sequence, third.sequence])
        #expect(abs(result.files[0].pieces[1].gapBeforeNanoseconds - recorded.manifests[1].durationMicroseconds * 1000) < 40_000_000)
        #expect(try burnedInFrameNumbers(path: result.files[0].path, format: recorded.format) == ((0..<30).map { Optional($0) } + (60..<90).map { Optional($0) }))
    }

    @Test("a change of picture size starts a second file; existing files are not replaced")
    func parts() throws {
        let other = try TemporaryDirectory("bodycam-export-small")
        defer { other.cleanup() }
        try recordEvidence(into: try makeVault(other.path + "/store", keys: recorded.keys), frames: 30, width: 160, height: 120)
        let small = try EvidenceVault.readManifests(other.path + "/store")[0]
        let smallSource = ExportSource(sequence: 99, segmentFile: small.segmentFile, startUTCNanoseconds: ClockParse.nanoseconds(iso8601: small.startUTC)!) {
            try small.decryptSegment(in: other.path + "/store", identity: self.recorded.keys.office).plaintext
        }
        let out = try recorded.outFolder()
        let files = try MP4Export.write([recorded.source(recorded.manifests[0]), smallSource], folder: out, name: "mixed", exclusive: true).files
        #expect(files.map(\.path) == [out + "/mixed.mp4", out + "/mixed-part2.mp4"])
        #expect(try MediaReader(path: files[1].path).width == 160)
        #expect(throws: SystemError.self) {
            try MP4Export.write([recorded.source(recorded.manifests[0])], folder: out, name: "mixed", exclusive: true).files
        }
        #expect(try directoryEntries(out) == ["mixed-part2.mp4", "mixed.mp4"])
    }
}
