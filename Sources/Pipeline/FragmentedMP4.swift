/// The little of ISO BMFF (ISO/IEC 14496-12) that live view needs of the camera's fragmented
/// MP4: the track's timescale (moov/trak/mdia/mdhd), a fragment's decode time (moof/traf/tfdt),
/// moved so that one segment's fragments follow the last one's, and whether a fragment opens
/// with a sync sample (trun's first-sample flags, else its per-sample flags, else tfhd's
/// default). Hand-written: no library on the machine edits boxes in place, and libavformat
/// would remux every fragment to change one number. Every read is bounds-checked: the bytes are
/// the camera's, decrypted, and a malformed box makes the answer nil, never a trap.
public enum FragmentedMP4 {
    public struct Box {
        public var type: String
        /// Where the box starts, its payload starts, and the box ends.
        public var start: Int
        public var payload: Int
        public var end: Int
    }

    public static func integer(_ bytes: [UInt8], _ at: Int, _ count: Int) -> Int? {
        guard at >= 0, count <= 8, at + count <= bytes.count else { return nil }
        var value: UInt64 = 0
        for index in at..<(at + count) { value = value << 8 | UInt64(bytes[index]) }
        return value > UInt64(Int.max) ? nil : Int(value)
    }

    /// The boxes directly inside `range`.
    public static func children(_ bytes: [UInt8], _ range: Range<Int>) -> [Box] {
        var boxes: [Box] = []
        var offset = range.lowerBound
        while offset + 8 <= range.upperBound, let size32 = integer(bytes, offset, 4) {
            var size = size32, header = 8
            if size == 1 {
                guard let large = integer(bytes, offset + 8, 8) else { break }
                size = large
                header = 16
            } else if size == 0 {
                size = range.upperBound - offset
            }
            guard size >= header, size <= range.upperBound - offset else { break }
            boxes.append(Box(type: String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self), start: offset, payload: offset + header, end: offset + size))
            offset += size
        }
        return boxes
    }

    /// The first box of `path` (types, outermost first) in `bytes`.
    public static func find(_ bytes: [UInt8], _ path: [String], in range: Range<Int>? = nil) -> Box? {
        var range = range ?? 0..<bytes.count
        var found: Box? = nil
        for type in path {
            guard let box = children(bytes, range).first(where: { $0.type == type }) else { return nil }
            found = box
            range = box.payload..<box.end
        }
        return found
    }

    /// The video track's timescale (ticks a second) from an init segment (ftyp, moov).
    public static func timescale(initSegment bytes: [UInt8]) -> Int? {
        guard let mdhd = find(bytes, ["moov", "trak", "mdia", "mdhd"]) else { return nil }
        // version (1), flags (3), then creation and modification times of 4 or 8 bytes each.
        guard let version = integer(bytes, mdhd.payload, 1) else { return nil }
        let scale = integer(bytes, mdhd.payload + 4 + (version == 1 ? 16 : 8), 4)
        return scale.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The fragment's decode time (tfdt's baseMediaDecodeTime), moved by `shift` ticks in place;
    /// returns the time before the move, nil when the fragment has no tfdt or the time would
    /// not fit its field.
    public static func shiftDecodeTime(_ bytes: inout [UInt8], by shift: Int) -> Int? {
        guard let moof = children(bytes, 0..<bytes.count).first(where: { $0.type == "moof" }),
              let tfdt = find(bytes, ["traf", "tfdt"], in: moof.payload..<moof.end) else { return nil }
        guard let version = integer(bytes, tfdt.payload, 1) else { return nil }
        let width = version == 1 ? 8 : 4
        guard let time = integer(bytes, tfdt.payload + 4, width), tfdt.payload + 4 + width <= tfdt.end else { return nil }
        let (moved, overflow) = time.addingReportingOverflow(shift)
        guard !overflow, moved >= 0, width == 8 || moved <= Int(UInt32.max) else { return nil }
        for index in 0..<width { bytes[tfdt.payload + 4 + index] = UInt8(truncatingIfNeeded: moved >> (8 * (width - 1 - index))) }
        return time
    }

    /// The H.264 decoder configuration (the avcC box, with its SPS and PPS) inside a moov's
    /// sample description; nil when there is none.
    public static func decoderConfiguration(_ bytes: [UInt8], in moov: Range<Int>) -> [UInt8]? {
        guard let stsd = find(bytes, ["trak", "mdia", "minf", "stbl", "stsd"], in: moov), stsd.payload + 8 <= stsd.end else { return nil }
        // stsd: version and flags, entry count, then sample entries; avc1's children start 78
        // bytes into it (ISO/IEC 14496-12 VisualSampleEntry).
        guard let entry = children(bytes, (stsd.payload + 8)..<stsd.end).first, entry.payload + 78 <= entry.end,
              let avcC = children(bytes, (entry.payload + 78)..<entry.end).first(where: { $0.type == "avcC" }) else { return nil }
        return Array(bytes[avcC.payload..<avcC.end])
    }

    /// The top-level moof and mdat boxes of `bytes`, without anything else (the mfra index that
    /// ends a camera segment's last chunk): what a live stream carries of a fragment.
    public static func fragmentBoxes(_ bytes: [UInt8]) -> [UInt8] {
        children(bytes, 0..<bytes.count).filter { $0.type == "moof" || $0.type == "mdat" }.reduce(into: [UInt8]()) { $0 += bytes[$1.start..<$1.end] }
    }

    /// Whether the fragment's first sample is a sync sample (a keyframe): a viewer can start there.
    public static func startsWithSyncSample(_ bytes: [UInt8]) -> Bool {
        guard let moof = children(bytes, 0..<bytes.count).first(where: { $0.type == "moof" }),
              let traf = find(bytes, ["traf"], in: moof.payload..<moof.end) else { return false }
        let boxes = children(bytes, traf.payload..<traf.end)
        // sample_is_non_sync_sample is bit 16 of the sample flags.
        func isSync(_ flags: Int) -> Bool { flags & 0x1_0000 == 0 }
        if let trun = boxes.first(where: { $0.type == "trun" }), let flags = integer(bytes, trun.payload + 1, 3) {
            var at = trun.payload + 8  // version and flags, sample_count
            if flags & 0x1 != 0 { at += 4 }  // data_offset
            if flags & 0x4 != 0 { return integer(bytes, at, 4).map(isSync) ?? false }  // first_sample_flags
            if flags & 0x400 != 0 {
                if flags & 0x100 != 0 { at += 4 }  // the first sample's duration
                if flags & 0x200 != 0 { at += 4 }  // and size, before its flags
                return integer(bytes, at, 4).map(isSync) ?? false
            }
        }
        if let tfhd = boxes.first(where: { $0.type == "tfhd" }), let flags = integer(bytes, tfhd.payload + 1, 3), flags & 0x20 != 0 {
            var at = tfhd.payload + 8  // version and flags, track_ID
            for (bit, width) in [(0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)] where flags & bit != 0 { at += width }
            return integer(bytes, at, 4).map(isSync) ?? false
        }
        return false
    }
}
