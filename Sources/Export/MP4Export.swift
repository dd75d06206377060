import H264
import Glibc
import LibAV
import LibCrypto
import MediaSigning
import Platform
import Wire
import LibAVFormat

/// A segment to export: its decrypted MP4 (fragmented, as recorded) and when its first picture
/// was taken.
public struct ExportSource {
    public var sequence: Int64
    /// The segment's file name in the store ("seg-….bcseg").
    public var segmentFile: String
    /// Wall-clock time of the first picture, ns since 1970 UTC: the corrected time when
    /// verification gave one (docs/POLICY.md, "Clock"), else the manifest's `start_utc`.
    public var startUTCNanoseconds: Int64
    /// Decrypts the segment (called once, when the export reaches it): plaintext stays in memory.
    public var plaintext: () throws -> [UInt8]

    public init(sequence: Int64, segmentFile: String, startUTCNanoseconds: Int64, plaintext: @escaping () throws -> [UInt8]) {
        self.sequence = sequence
        self.segmentFile = segmentFile
        self.startUTCNanoseconds = startUTCNanoseconds
        self.plaintext = plaintext
    }
}

/// A moment the officer marked (a manifest's `marks` entry), at its wall-clock time.
public struct ExportMark: Sendable, Equatable {
    public var label: String
    public var source: String
    public var utcNanoseconds: Int64

    public init(label: String, source: String, utcNanoseconds: Int64) {
        self.label = label
        self.source = source
        self.utcNanoseconds = utcNanoseconds
    }
}

/// One stretch of a segment inside an exported file.
public struct ExportedPiece: Sendable, Equatable {
    public var sequence: Int64
    public var segmentFile: String
    public var frames: Int
    /// Where the piece starts in the file, in seconds.
    public var fileOffsetSeconds: Double
    /// Wall-clock times of its first and last picture (presentation order), ns since 1970 UTC.
    public var firstFrameUTCNanoseconds: Int64
    public var lastFrameUTCNanoseconds: Int64
    /// Wall-clock time of the end of its last picture.
    public var endUTCNanoseconds: Int64
    /// Time not recorded between the end of the piece before and this one's first picture (ns;
    /// 0 for the first piece and for a seamless join).
    public var gapBeforeNanoseconds: Int64
}

/// What was written to one MP4 file.
public struct ExportedFile: Sendable {
    public var path: String
    public var sha256: String
    public var bytes: Int64
    public var frames: Int
    public var keyframes: Int
    /// Seconds from the first picture to the end of the last.
    public var durationSeconds: Double
    public var pieces: [ExportedPiece]
    public var chapters: [Chapter]
    /// Why reading a segment stopped early (a torn last fragment), by segment file.
    public var readErrors: [String: String]

    public var firstFrameUTCNanoseconds: Int64? { pieces.map(\.firstFrameUTCNanoseconds).min() }
    public var lastFrameUTCNanoseconds: Int64? { pieces.map(\.lastFrameUTCNanoseconds).max() }
}

/// A segment left out of an export because it could not be read (it does not decrypt, or
/// libavformat cannot read it), and why: the export goes on without it, and the join after it
/// shows as a gap.
public struct SkippedSegment: Sendable, Equatable {
    public var sequence: Int64
    public var segmentFile: String
    public var reason: String
}

/// An export that cannot be made: what and why.
public struct ExportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What an export wrote and left out.
public struct ExportResult: Sendable {
    /// The files, in order; empty when nothing falls in the window.
    public var files: [ExportedFile]
    public var skipped: [SkippedSegment]
}

/// Writes recorded segments as standard MP4 files that play in any player (docs/EXPORT.md): the
/// index (moov) first and no fragments, by stream copy through libavformat: not one picture is
/// decoded or encoded again, so the H.264 bytes are the camera's. Several segments are joined
/// into one file, each picture's decode time following on from the one before, so that no
/// picture is lost or doubled at a join; an incident window is cut on keyframes (from the last
/// keyframe at or before its start to the end of the GOP holding its end: a clip that starts on
/// a picture that is not a keyframe does not decode).
///
/// Where the stream's parameters change between segments (a new resolution after a restart),
/// one file cannot hold both: the export goes on in a new file, `NAME-part2.mp4` and so on.
/// Runs on the caller's thread; files appear only complete and fsynced (a private folder, then
/// link(2) or rename(2)).
public enum MP4Export {
    /// Writes `sources` (in recording order) as `folder/name.mp4` (and `-part2…` when needed).
    /// - Parameters:
    ///   - window: UTC ns; only GOPs that overlap it are written. nil: everything.
    ///   - marks: chapters at the marks that fall inside what was written; gaps in the recording
    ///     become chapters too.
    ///   - tail: the segment after the last of `sources`, when it follows on: a signed stream's
    ///     last GOP is signed in the next GOP's second picture, so when the export runs to the
    ///     end of `sources` its first two pictures are added (`signatureTail`).
    ///   - exclusive: refuse to replace existing files (EEXIST).
    /// - Throws: `AVError`, `SystemError` (writing failed, or a file of that name exists when
    ///   `exclusive`); a file being written is removed. A segment that cannot be read is skipped.
    public static func write(_ sources: [ExportSource], window: ClosedRange<Int64>? = nil, marks: [ExportMark] = [],
                             tail: ExportSource? = nil, folder: String, name: String, exclusive: Bool) throws -> ExportResult {
        let scratch = try makePrivateFolder(in: folder, prefix: ".export-")
        defer { removePrivateFolder(scratch) }
        var files: [ExportedFile] = []
        var skipped: [SkippedSegment] = []
        var current: Joiner? = nil
        // The selection reached the end of the sources read so far: its last GOP's signature
        // (ONVIF Media Signing) is at the start of what follows.
        var tailDue = false
        for (index, source) in (sources + [tail].compactMap { $0 }).enumerated() {
            let isTail = index == sources.count
            if isTail && !tailDue { break }
            let demuxer: MemoryDemuxer
            do {
                demuxer = try MemoryDemuxer(bytes: try source.plaintext(), what: source.segmentFile)
            } catch {
                if !isTail { skipped.append(SkippedSegment(sequence: source.sequence, segmentFile: source.segmentFile, reason: "\(error)")) }
                tailDue = false
                continue
            }
            let selection: Selection
            do {
                selection = try selectedPackets(demuxer, source: source, window: isTail ? nil : window)
            } catch {
                if !isTail { skipped.append(SkippedSegment(sequence: source.sequence, segmentFile: source.segmentFile, reason: "\(error)")) }
                tailDue = false
                continue
            }
            if let joiner = current, !joiner.parameters.describesSameStream(as: demuxer.parameters) {
                files.append(try publish(joiner, marks: marks, as: published(folder, name, part: files.count + 1), exclusive: exclusive))
                current = nil
                tailDue = false
            }
            if selection.packets.isEmpty || isTail {
                // Past the window: only the signature of the last GOP written, if it is here.
                if tailDue, let joiner = current {
                    let tail = signatureTail(selection.packets.isEmpty ? selection.after : selection.packets, closingGOP: joiner.lastGOP)
                    if !tail.isEmpty {
                        try joiner.append(tail, from: source, originPTS: selection.origin, timeBase: demuxer.timeBase, readError: nil)
                    }
                }
                tailDue = false
                if current != nil { break }
                continue
            }
            if current == nil {
                let part = files.count + 1
                current = Joiner(muxer: try MP4FileMuxer(path: scratch + "/" + partName(name, part: part), parameters: demuxer.parameters,
                                                         timeBase: demuxer.timeBase, metadata: demuxer.metadata),
                                 parameters: demuxer.parameters, timeBase: demuxer.timeBase)
            }
            try current!.append(selection.packets, from: source, originPTS: selection.origin, timeBase: demuxer.timeBase,
                                readError: demuxer.readError)
            if selection.after.isEmpty {
                tailDue = true
            } else {
                let tail = signatureTail(selection.after, closingGOP: current!.lastGOP)
                if !tail.isEmpty { try current!.append(tail, from: source, originPTS: selection.origin, timeBase: demuxer.timeBase, readError: nil) }
                tailDue = false
                break
            }
        }
        if let joiner = current {
            files.append(try publish(joiner, marks: marks, as: published(folder, name, part: files.count + 1), exclusive: exclusive))
        }
        return ExportResult(files: files, skipped: skipped)
    }

    /// Closes the joiner's file, makes it durable and gives it its name.
    private static func publish(_ joiner: Joiner, marks: [ExportMark], as path: String, exclusive: Bool) throws -> ExportedFile {
        var file = try joiner.finish(marks: marks)
        // libavformat made the file 0666 less the umask: evidence is the owner's and the group's.
        if chmod(file.path, 0o640) < 0 { throw SystemError.file(path: file.path, call: "chmod", errno: errno) }
        // fsync, and the hash of what is on disk (read back: the file as stored).
        let (sha256, bytes) = try fileSHA256(file.path, sync: true)
        try publishFile(file.path, as: path, exclusive: exclusive)
        file.path = path
        file.sha256 = sha256
        file.bytes = bytes
        return file
    }

    /// One segment as a standard MP4 in memory (index first, then a `free` box, then the
    /// samples): for a download, with nothing written to storage.
    /// - Parameter tail: the segment after `source`, when it follows on: its first pictures are
    ///   added when they carry the signature of `source`'s last GOP (as `write` does); one that
    ///   cannot be read, or is another stream, adds nothing.
    /// - Throws: `ExportError` (no picture), `AVError` (unreadable, or the muxer failed).
    public static func standardMP4(_ source: ExportSource, tail: ExportSource? = nil) throws -> (bytes: [UInt8], file: ExportedFile) {
        let demuxer = try MemoryDemuxer(bytes: try source.plaintext(), what: source.segmentFile)
        let selection = try selectedPackets(demuxer, source: source, window: nil)
        let (packets, origin) = (selection.packets, selection.origin)
        guard !packets.isEmpty else { throw ExportError("\(source.segmentFile) holds no picture that decodes") }
        var signature: (packets: [CompressedPacket], origin: Int64, source: ExportSource)?
        if let tail, let next = try? MemoryDemuxer(bytes: try tail.plaintext(), what: tail.segmentFile),
           next.parameters.describesSameStream(as: demuxer.parameters), next.timeBase == demuxer.timeBase,
           let following = try? selectedPackets(next, source: tail, window: nil) {
            let lastGOP = packets.lastIndex(where: \.isKeyframe).map { Array(packets[$0...]) } ?? []
            let closing = signatureTail(following.packets, closingGOP: lastGOP)
            if !closing.isEmpty { signature = (closing, following.origin, tail) }
        }
        let samples = packets.count + (signature?.packets.count ?? 0)
        let room = MP4FileMuxer.indexBytesBound(samples: samples, keyframes: packets.filter(\.isKeyframe).count + 1,
                                                extradata: demuxer.parameters.extradata.count,
                                                metadataBytes: demuxer.metadata.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 32 },
                                                chapters: [])
        let muxer = try MP4FileMuxer(reservingIndexBytes: room, parameters: demuxer.parameters, timeBase: demuxer.timeBase, metadata: demuxer.metadata)
        let joiner = Joiner(muxer: muxer, parameters: demuxer.parameters, timeBase: demuxer.timeBase)
        try joiner.append(packets, from: source, originPTS: origin, timeBase: demuxer.timeBase, readError: demuxer.readError)
        if let signature {
            try joiner.append(signature.packets, from: signature.source, originPTS: signature.origin, timeBase: demuxer.timeBase, readError: nil)
        }
        var file = try joiner.finish(marks: [])
        file.sha256 = Hex.encode(try SHA256.hash(muxer.bytes))
        file.bytes = Int64(muxer.bytes.count)
        return (muxer.bytes, file)
    }

    private static func partName(_ name: String, part: Int) -> String { part == 1 ? name + ".mp4" : "\(name)-part\(part).mp4" }
    private static func published(_ folder: String, _ name: String, part: Int) -> String { folder + "/" + partName(name, part: part) }

    struct Selection {
        /// Whole GOPs that overlap the window.
        var packets: [CompressedPacket]
        /// The presentation time of the segment's first picture (the one `startUTCNanoseconds` dates).
        var origin: Int64
        /// The segment's packets after the last selected GOP (empty when the selection runs to
        /// its end, or selected nothing).
        var after: [CompressedPacket]
    }

    /// The most ticks a timestamp may be from 0, and a segment may span: about 4 months at 90 kHz,
    /// far past a segment's hour, far inside what nanoseconds in an Int64 hold.
    static let maximumTicks: Int64 = 1 << 40

    /// The segment's packets in whole GOPs that overlap `window`, and what follows them. A segment
    /// is cut into GOPs at its keyframes; pictures before the first keyframe (none in a segment
    /// this project writes) cannot decode and are left out.
    /// - Throws: `ExportError` for times a segment cannot have (missing, beyond `maximumTicks`,
    ///   decode times that do not rise): whoever made such a segment, it is not exported.
    static func selectedPackets(_ demuxer: MemoryDemuxer, source: ExportSource, window: ClosedRange<Int64>?) throws -> Selection {
        var all: [CompressedPacket] = []
        while let packet = demuxer.next() {
            let bounded = -maximumTicks...maximumTicks
            guard bounded.contains(packet.pts), bounded.contains(packet.dts), (0...maximumTicks).contains(packet.duration) else {
                throw ExportError("\(source.segmentFile): picture \(all.count) has times no segment has (pts \(packet.pts), dts \(packet.dts))")
            }
            if let last = all.last, packet.dts <= last.dts {
                throw ExportError("\(source.segmentFile): picture \(all.count)'s decode time does not follow the one before")
            }
            all.append(packet)
        }
        guard let origin = all.map(\.pts).min() else { return Selection(packets: [], origin: 0, after: []) }
        guard all.map(\.pts).max()! - origin <= maximumTicks else { throw ExportError("\(source.segmentFile) spans more time than a segment can") }
        let tb = demuxer.timeBase
        func wall(_ pts: Int64) -> Int64 { source.startUTCNanoseconds + nanoseconds(pts - origin, tb) }
        var gops: [[CompressedPacket]] = []
        for packet in all {
            if packet.isKeyframe { gops.append([packet]) } else if !gops.isEmpty { gops[gops.count - 1].append(packet) }
        }
        guard let window else { return Selection(packets: gops.flatMap { $0 }, origin: origin, after: []) }
        let inside = gops.map { gop in
            let start = wall(gop.map(\.pts).min()!)
            let end = wall(gop.map { $0.pts + $0.duration }.max()!)
            return start <= window.upperBound && end > window.lowerBound
        }
        guard let last = inside.lastIndex(of: true) else { return Selection(packets: [], origin: origin, after: gops.flatMap { $0 }) }
        return Selection(packets: gops.indices.filter { inside[$0] }.flatMap { gops[$0] }, origin: origin,
                         after: gops[(last + 1)...].flatMap { $0 })
    }

    /// The pictures at the start of `packets` (a GOP) up to the one that carries the ONVIF Media
    /// Signing SEI of the GOP before (the IDR, then the picture after it), at most three, when
    /// that SEI signs exactly `closingGOP`, the last GOP written (its GOP hash is the one of
    /// those pictures): none when the stream is not signed, when what follows is another
    /// recording, or when the GOP signed ran on past what was written (a recording stopped in
    /// it, its pictures after the stop kept only in the pre-event buffer).
    static func signatureTail(_ packets: [CompressedPacket], closingGOP: [CompressedPacket]) -> [CompressedPacket] {
        guard closingGOP.first?.isKeyframe == true,
              let written = try? MediaSigner.gopHash(of: closingGOP.map { H264Units.sample($0.data) }) else { return [] }
        for (index, packet) in packets.prefix(3).enumerated() {
            for unit in H264Units.sample(packet.data) where SigningSEI.isSigningSEI(unit) {
                guard let sei = try? SigningSEI.parse(unit), sei.general?.gopHash == written else { return [] }
                return Array(packets[...index])
            }
        }
        return []
    }

    /// `ticks` of `timeBase` in ns (to the nearest; a double holds ns exactly for 104 days).
    static func nanoseconds(_ ticks: Int64, _ timeBase: Rational) -> Int64 {
        Int64((Double(ticks) * Double(timeBase.numerator) * 1e9 / Double(timeBase.denominator)).rounded())
    }
}

/// One MP4 file being written: packets of successive segments on one timeline.
private final class Joiner {
    let parameters: CodecParameters
    private let muxer: MP4FileMuxer
    private let timeBase: Rational
    /// Decode time the next packet gets (the file's time base).
    private var nextDTS: Int64 = 0
    private var firstPTS: Int64?
    private var endPTS: Int64 = 0
    private var frames = 0
    private var keyframes = 0
    private var pieces: [ExportedPiece] = []
    private var readErrors: [String: String] = [:]

    init(muxer: MP4FileMuxer, parameters: CodecParameters, timeBase: Rational) {
        self.muxer = muxer
        self.parameters = parameters
        self.timeBase = timeBase
    }

    func seconds(_ ticks: Int64) -> Double { Double(ticks) * Double(timeBase.numerator) / Double(timeBase.denominator) }

    /// Writes one segment's selected packets after what the file holds: their decode times are
    /// shifted so the first follows the last one written (presentation times by the same shift).
    func append(_ packets: [CompressedPacket], from source: ExportSource, originPTS: Int64, timeBase segmentTimeBase: Rational,
                readError: AVError?) throws {
        // Same stream parameters imply the same encoder settings, but not the same time base:
        // rescale when they differ.
        let scaled = try packets.map { packet -> CompressedPacket in
            guard segmentTimeBase != timeBase else { return packet }
            var copy = packet
            // Both time bases are a file's: a ratio far from 1 could take a time past Int64.
            func rescale(_ value: Int64) throws -> Int64 {
                let scaled = (Double(value) * Double(segmentTimeBase.numerator) * Double(timeBase.denominator)
                    / (Double(segmentTimeBase.denominator) * Double(timeBase.numerator))).rounded()
                guard scaled.isFinite, abs(scaled) <= Double(MP4Export.maximumTicks) else {
                    throw ExportError("\(source.segmentFile): its time base cannot join the file's")
                }
                return Int64(scaled)
            }
            copy.pts = try rescale(packet.pts)
            copy.dts = try rescale(packet.dts)
            copy.duration = try rescale(packet.duration)
            return copy
        }
        guard let firstDTS = scaled.first?.dts else { return }
        let shift = nextDTS - firstDTS
        let pieceStartPTS = scaled.map(\.pts).min()! + shift
        let pieceFirstWall = source.startUTCNanoseconds + MP4Export.nanoseconds(packets.map(\.pts).min()! - originPTS, segmentTimeBase)
        // A gap is time not recorded: more than two pictures' time between one segment's end and
        // the next one's first picture (start times are written to the microsecond, and each
        // segment dates itself from the clock it read: a seamless join differs by far less).
        var gap: Int64 = 0
        if let last = pieces.last, last.sequence != source.sequence {
            let difference = pieceFirstWall - last.endUTCNanoseconds
            if difference > 2 * max(lastFrameNanoseconds, 1_000_000) { gap = difference }
        }
        var lastWrittenDTS = nextDTS - 1
        for var packet in scaled {
            packet.pts += shift
            packet.dts += shift
            // Rescaled times may collapse: decode times must rise.
            if packet.dts <= lastWrittenDTS { packet.dts = lastWrittenDTS + 1 }
            if packet.pts < packet.dts { packet.pts = packet.dts }
            try muxer.write(packet)
            if packet.isKeyframe { lastGOP = [] }
            lastGOP.append(packet)
            lastWrittenDTS = packet.dts
            frames += 1
            if packet.isKeyframe { keyframes += 1 }
            nextDTS = packet.dts + max(packet.duration, 1)
            endPTS = max(endPTS, packet.pts + max(packet.duration, 0))
            lastFrameNanoseconds = MP4Export.nanoseconds(max(packet.duration, 0), timeBase)
        }
        if firstPTS == nil { firstPTS = pieceStartPTS }
        let lastPTS = scaled.map(\.pts).max()! + shift
        if var last = pieces.last, last.sequence == source.sequence {
            // More of the same segment (the signature at the start of its next GOP).
            last.frames += scaled.count
            last.lastFrameUTCNanoseconds = last.firstFrameUTCNanoseconds + MP4Export.nanoseconds(lastPTS - lastPieceStartPTS, timeBase)
            last.endUTCNanoseconds = last.firstFrameUTCNanoseconds + MP4Export.nanoseconds(endPTS - lastPieceStartPTS, timeBase)
            pieces[pieces.count - 1] = last
        } else {
            lastPieceStartPTS = pieceStartPTS
            pieces.append(ExportedPiece(
                sequence: source.sequence, segmentFile: source.segmentFile, frames: scaled.count,
                fileOffsetSeconds: seconds(pieceStartPTS - firstPTS!),
                firstFrameUTCNanoseconds: pieceFirstWall,
                lastFrameUTCNanoseconds: pieceFirstWall + MP4Export.nanoseconds(lastPTS - pieceStartPTS, timeBase),
                endUTCNanoseconds: pieceFirstWall + MP4Export.nanoseconds(endPTS - pieceStartPTS, timeBase),
                gapBeforeNanoseconds: gap))
        }
        if let readError { readErrors[source.segmentFile] = readError.description }
    }

    /// The last GOP written, from its keyframe (the one a signature tail would sign).
    private(set) var lastGOP: [CompressedPacket] = []
    /// The last picture's duration, ns; where the last piece starts (the file's time base).
    private var lastFrameNanoseconds: Int64 = 0
    private var lastPieceStartPTS: Int64 = 0

    /// Adds the chapters and closes the file: what was written (path, hash and size are the
    /// caller's to fill once the file has its place).
    func finish(marks: [ExportMark]) throws -> ExportedFile {
        let duration = seconds(endPTS - (firstPTS ?? 0))
        var chapters: [Chapter] = []
        for piece in pieces where piece.gapBeforeNanoseconds > 0 {
            let tenths = (piece.gapBeforeNanoseconds + 50_000_000) / 100_000_000
            chapters.append(Chapter(title: "not recorded: \(tenths / 10).\(tenths % 10) s",
                                    startSeconds: piece.fileOffsetSeconds, endSeconds: piece.fileOffsetSeconds))
        }
        for mark in marks {
            guard let piece = pieces.last(where: { $0.firstFrameUTCNanoseconds <= mark.utcNanoseconds }),
                  mark.utcNanoseconds < piece.endUTCNanoseconds else { continue }
            let offset = piece.fileOffsetSeconds + Double(mark.utcNanoseconds - piece.firstFrameUTCNanoseconds) / 1e9
            chapters.append(Chapter(title: mark.label.isEmpty ? "mark (\(mark.source))" : "\(mark.label) (\(mark.source))",
                                    startSeconds: offset, endSeconds: offset))
        }
        chapters.sort { $0.startSeconds < $1.startSeconds }
        // Chapters are written as a text track too, whose first sample starts at 0: a first
        // chapter that does not would be read back moved to 0.
        if let first = chapters.first, first.startSeconds > 0 {
            chapters.insert(Chapter(title: "start", startSeconds: 0, endSeconds: first.startSeconds), at: 0)
        }
        // Each chapter runs to the next one (the last to the end of the file).
        for index in chapters.indices {
            chapters[index].endSeconds = index + 1 < chapters.count ? chapters[index + 1].startSeconds : duration
        }
        try muxer.finish(chapters: chapters)
        return ExportedFile(path: muxer.path, sha256: "", bytes: 0, frames: frames, keyframes: keyframes, durationSeconds: duration,
                            pieces: pieces, chapters: chapters, readErrors: readErrors)
    }
}
