/// H.264 NAL units (ITU-T H.264 clauses 7.3.1 and 7.4.1, annex B), for the recording path's MP4
/// writer and for ONVIF Media Signing. Hand-written: no library gives NAL-level access to a
/// packet, and the signature covers exact NAL bytes.
public enum H264Units {
    /// The NAL units of an Annex B access unit (start codes 00 00 01 or 00 00 00 01), each from its
    /// header byte to its last byte, trailing zero bytes (before the next start code) removed.
    public static func annexB(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var starts: [(code: Int, payload: Int)] = []
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                starts.append((index, index + 3))
                index += 3
            } else {
                index += 1
            }
        }
        return starts.enumerated().compactMap { position, start in
            var end = position + 1 < starts.count ? starts[position + 1].code : bytes.count
            while end > start.payload, bytes[end - 1] == 0 { end -= 1 }
            return end > start.payload ? bytes[start.payload..<end] : nil
        }
    }

    /// The NAL units of an MP4 sample (each preceded by its length, `lengthSize` bytes big-endian,
    /// ISO/IEC 14496-15); nil when the lengths do not add up to the sample.
    public static func lengthPrefixed(_ bytes: [UInt8], lengthSize: Int = 4) -> [ArraySlice<UInt8>]? {
        guard (1...4).contains(lengthSize) else { return nil }
        var units: [ArraySlice<UInt8>] = []
        var index = 0
        while index < bytes.count {
            guard index + lengthSize <= bytes.count else { return nil }
            let length = bytes[index..<index + lengthSize].reduce(0) { $0 << 8 | Int($1) }
            index += lengthSize
            guard length > 0, length <= bytes.count - index else { return nil }
            var end = index + length
            while end > index + 1, bytes[end - 1] == 0 { end -= 1 }
            units.append(bytes[index..<end])
            index += length
        }
        return units
    }

    /// The NAL units of a sample as an MP4 stores it (4-byte lengths), or of Annex B bytes when
    /// the lengths do not add up.
    public static func sample(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] { lengthPrefixed(bytes) ?? annexB(bytes) }

    /// nal_unit_type (the low five bits of the header byte).
    public static func type(_ unit: ArraySlice<UInt8>) -> UInt8 { unit.first.map { $0 & 0x1F } ?? 0 }

    /// A coded slice (types 1 and 5: what ONVIF Media Signing hashes of the picture data).
    public static func isSlice(_ unit: ArraySlice<UInt8>) -> Bool { [1, 5].contains(type(unit)) }

    /// A picture's first slice: first_mb_in_slice (ue(v), the first field of the slice header) is
    /// 0, whose Exp-Golomb code is the single bit 1.
    public static func isFirstSlice(_ unit: ArraySlice<UInt8>) -> Bool {
        unit.count > 1 && unit[unit.startIndex + 1] & 0x80 != 0
    }

    /// The first slice of an IDR picture: where a GOP begins.
    public static func isIDRStart(_ unit: ArraySlice<UInt8>) -> Bool { type(unit) == 5 && isFirstSlice(unit) }

    /// Adds emulation prevention bytes (H.264 7.4.1): 03 after every two zero bytes that a byte
    /// 00…03 follows.
    public static func addEmulationPrevention(_ rbsp: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rbsp.count + rbsp.count / 64)
        var zeros = 0
        for byte in rbsp {
            if zeros >= 2 && byte <= 3 {
                out.append(3)
                zeros = 0
            }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }

    /// Removes emulation prevention bytes: every 03 that follows two zero bytes.
    public static func removeEmulationPrevention(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var zeros = 0
        for byte in bytes {
            if zeros >= 2 && byte == 3 {
                zeros = 0
                continue
            }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }
}
