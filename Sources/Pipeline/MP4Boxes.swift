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
        return try walk(length: Int(info.st_size)) { offset, count in try readBytes(fd, count: count, at: Int64(offset), path: path) }
    }

    public static func topLevel(_ bytes: [UInt8]) -> [MP4Box] {
        walk(length: bytes.count) { offset, count in Array(bytes[offset..<offset + count]) }
    }

    /// The boxes of `length` bytes, each header (its first 8 bytes, 16 with a 64-bit size) read
    /// with `read(offset, count)`. A box whose size runs past the end is the last, incomplete;
    /// a size below 8 (corrupt: a box cannot be smaller than its header) ends the walk.
    private static func walk(length: Int, read: (Int, Int) throws -> [UInt8]) rethrows -> [MP4Box] {
        func bigEndian(_ bytes: ArraySlice<UInt8>) -> Int { bytes.reduce(0) { $0 << 8 | Int($1) } }
        var boxes: [MP4Box] = []
        var offset = 0
        while offset + 8 <= length, boxes.count < 1_000_000 {
            let header = try read(offset, min(16, length - offset))
            guard header.count >= 8 else { break }
            let type = String(decoding: header[4..<8], as: UTF8.self)
            var size = bigEndian(header[0..<4])
            if size == 1 {
                guard header.count >= 16 else {
                    boxes.append(MP4Box(type: type, offset: offset, size: length - offset, isComplete: false))
                    break
                }
                size = bigEndian(header[8..<16])
            } else if size == 0 {
                size = length - offset
            }
            guard size >= 8 else { break }
            let complete = size <= length - offset
            boxes.append(MP4Box(type: type, offset: offset, size: complete ? size : length - offset, isComplete: complete))
            guard complete else { break }  // (and no sum past the file: a 64-bit size may be 2^62)
            offset += size
        }
        return boxes
    }
}
