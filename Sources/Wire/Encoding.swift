/// Base64 (RFC 4648, with padding) and lower-case hex, without Foundation.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index], b1 = index + 1 < bytes.count ? bytes[index + 1] : 0, b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            output.append(index + 1 < bytes.count ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// nil unless `text` is canonical padded base64 (so one value has one spelling).
    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var lookup = [Int16](repeating: -1, count: 256)
        for (index, character) in alphabet.enumerated() { lookup[Int(character)] = Int16(index) }
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            let padding = (input[index + 2] == UInt8(ascii: "=") ? 1 : 0) + (input[index + 3] == UInt8(ascii: "=") ? 1 : 0)
            guard padding == 0 || index + 4 == input.count, !(input[index + 2] == UInt8(ascii: "=") && input[index + 3] != UInt8(ascii: "=")) else { return nil }
            var values: [Int16] = []
            for offset in 0..<(4 - padding) {
                let value = lookup[Int(input[index + offset])]
                if value < 0 { return nil }
                values.append(value)
            }
            output.append(UInt8(values[0] << 2 | values[1] >> 4))
            if padding < 2 { output.append(UInt8((values[1] & 15) << 4 | values[2] >> 2)) }
            if padding < 1 { output.append(UInt8((values[2] & 3) << 6 | values[3])) }
            if padding == 2 && values[1] & 15 != 0 { return nil }
            if padding == 1 && values[2] & 3 != 0 { return nil }
            index += 4
        }
        return output
    }
}

public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 15)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// nil unless `text` is lower-case hex of whole bytes.
    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 2 == 0 else { return nil }
        func value(_ character: UInt8) -> UInt8? {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            guard let high = value(input[index]), let low = value(input[index + 1]) else { return nil }
            output.append(high << 4 | low)
            index += 2
        }
        return output
    }
}

/// Big-endian integer helpers for the binary layouts.
extension Array where Element == UInt8 {
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        Swift.withUnsafeBytes(of: &big) { append(contentsOf: $0) }
    }
}

public func readBigEndian<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, as: T.Type) -> T {
    var value: T = 0
    for byte in bytes.prefix(MemoryLayout<T>.size) { value = value << 8 | T(byte) }
    return value
}
