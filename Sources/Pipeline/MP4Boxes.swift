import Glibc
import Capture
import Platform
/// A top-level ISO BMFF box (ftyp, moov, moof, mdat, mfra, …).
public struct MP4Box: Equatable, Sendable {
    public var type: String
    public var offset: Int
    public var size: Int
    /// False when the file ends before the box does (a cut-off write).
    public var isComplete: Bool
}

/// Walks the top-level boxes of an MP4 file: how a fragmented segment's structure (moov, then
/// moof+mdat pairs) is checked without a demuxer.
public enum MP4Boxes {
    /// The top-level boxes of the file at `path`, reading only their headers (pread): an export
    /// of hours is not read whole. Throws `SystemError`.
    public static func topLevel(path: String) throws -> [MP4Box] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.file(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError.file(path: path, call: "fstat", errno: errno) }
        let length = Int(info.st_size)
        var boxes: [MP4Box] = []
        var offset = 0
        while offset + 8 <= length, boxes.count < 1_000_000 {
            let header = try readBytes(fd, count: min(16, length - offset), at: Int64(offset), path: path)
            guard header.count >= 8 else { break }
            let parsed = topLevel(header)
            guard var box = parsed.first else { break }
            // `topLevel` on 16 bytes sees every box as cut short: its size is in its header.
            let size = header[0..<4].reduce(0) { $0 << 8 | Int($1) }
            var full = size
            if size == 1 { full = header.count >= 16 ? header[8..<16].reduce(0) { $0 << 8 | Int($1) } : length - offset }
            if size == 0 { full = length - offset }
            guard full >= 8 else { break }
            box.offset = offset
            box.isComplete = full <= length - offset
            box.size = box.isComplete ? full : length - offset
            boxes.append(box)
            guard box.isComplete else { break }  // (and no sum past the file: a size may be 2^63)
            offset += full
        }
        return boxes
    }

    public static func topLevel(_ bytes: [UInt8]) -> [MP4Box] {
        var boxes: [MP4Box] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            func be(_ at: Int, _ count: Int) -> Int {
                (0..<count).reduce(0) { $0 << 8 | Int(bytes[at + $1]) }
            }
            var size = be(offset, 4)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            if size == 1 {
                guard offset + 16 <= bytes.count else {
                    boxes.append(MP4Box(type: type, offset: offset, size: bytes.count - offset, isComplete: false))
                    break
                }
                size = be(offset + 8, 8)
            } else if size == 0 {
                size = bytes.count - offset
            }
            guard size >= 8 else { break }  // corrupt: a box cannot be smaller than its header
            let complete = offset + size <= bytes.count
            boxes.append(MP4Box(type: type, offset: offset, size: complete ? size : bytes.count - offset, isComplete: complete))
            offset += size
        }
        return boxes
    }
}
