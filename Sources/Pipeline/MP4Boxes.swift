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
