import Glibc
import LibAV
import Capture
import Platform
import LibAVFormat
import Pipeline

/// What a recorded segment holds, read back with libavformat and libavcodec: how technicians,
/// tests and the demo check that segments play.
public struct SegmentReport: Sendable {
    public var path: String
    public var codec: String
    public var width: Int
    public var height: Int
    public var metadata: [String: String]
    public var packets: Int
    public var decodedFrames: Int
    public var decodeErrors: Int
    public var keyframes: Int
    /// Top-level box types in file order ("ftyp", "moov", "moof", "mdat", …).
    public var boxes: [String]
    /// Pictures in each moof+mdat fragment, in order (empty for a plain MP4: an export).
    public var framesPerFragment: [Int]
    /// Fragments holding a keyframe after their first picture: a GOP begins inside them. (A
    /// GOP may span several fragments, the later ones beginning with a picture that is not a
    /// keyframe; it never begins mid-fragment, so that every GOP can be cut out whole.)
    public var fragmentsSplittingGOPs: [Int]
    public var startsWithKeyframe: Bool
    /// Seconds from the first picture to the end of the last.
    public var durationSeconds: Double
    /// The file ends inside a box (cut short).
    public var isTruncated: Bool
    /// Why the demuxer stopped early, if it did.
    public var readError: String?

    public var problems: [String] {
        var result: [String] = []
        if decodedFrames == 0 { result.append("no picture decodes") }
        if decodeErrors > 0 { result.append("\(decodeErrors) decode errors") }
        if !startsWithKeyframe { result.append("does not start on a keyframe") }
        if !fragmentsSplittingGOPs.isEmpty { result.append("fragments \(fragmentsSplittingGOPs.map(String.init).joined(separator: ",")) begin a GOP after their first picture") }
        if boxes.first(where: { $0 != "ftyp" }) != "moov" { result.append("no moov box after ftyp") }
        if isTruncated { result.append("truncated (last box incomplete)") }
        if let readError { result.append("unreadable from some point: \(readError)") }
        return result
    }
}

public enum SegmentInspector {
    /// Demuxes and decodes every picture of the segment at `path`, and maps each packet to the
    /// fragment whose mdat holds it. `onFrame` sees each decoded picture.
    public static func inspect(path: String, onFrame: (VideoFrame) throws -> Void = { _ in }) throws -> SegmentReport {
        let boxes = try MP4Boxes.topLevel(path: path)
        let mdats = boxes.filter { $0.type == "mdat" }
        let reader = try MediaReader(path: path)
        var packets: [DemuxedPacket] = []
        let frames = try reader.decodeAll(packet: { packets.append($0) }, frame: onFrame)

        // A plain MP4 (an export) has no fragments to check: one mdat holds every picture.
        let fragmented = boxes.contains { $0.type == "moof" }
        var framesPerFragment = [Int](repeating: 0, count: fragmented ? mdats.count : 0)
        var splitting: Set<Int> = []
        for packet in packets where fragmented {
            guard let index = mdats.firstIndex(where: { Int64($0.offset) <= packet.position && packet.position < Int64($0.offset + $0.size) }) else { continue }
            if packet.isKeyframe && framesPerFragment[index] > 0 { splitting.insert(index) }
            framesPerFragment[index] += 1
        }
        let start = packets.map(\.pts).min() ?? 0
        let end = packets.map { $0.pts + $0.duration }.max() ?? 0
        let ticks = Double(end - start)
        return SegmentReport(
            path: path, codec: reader.codecName, width: reader.width, height: reader.height, metadata: reader.metadata,
            packets: packets.count, decodedFrames: frames, decodeErrors: reader.decodeErrors,
            keyframes: packets.filter(\.isKeyframe).count, boxes: boxes.map(\.type),
            framesPerFragment: framesPerFragment, fragmentsSplittingGOPs: splitting.sorted(),
            startsWithKeyframe: packets.first?.isKeyframe ?? false,
            durationSeconds: ticks * Double(reader.timeBase.numerator) / Double(reader.timeBase.denominator),
            isTruncated: boxes.last.map { !$0.isComplete } ?? true, readError: reader.readError?.description)
    }
}
