/// The JSON values the evidence formats use: no floating point (every number is an integer),
/// so one value has exactly one encoding.
public enum JSONValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var string: String? { if case .string(let value) = self { return value }; return nil }
    public var integer: Int64? { if case .integer(let value) = self { return value }; return nil }
    public var boolean: Bool? { if case .boolean(let value) = self { return value }; return nil }
    public var array: [JSONValue]? { if case .array(let value) = self { return value }; return nil }
    public var object: [String: JSONValue]? { if case .object(let value) = self { return value }; return nil }

    /// The canonical encoding (docs/FORMAT.md, "Canonical JSON"): object members sorted by the
    /// UTF-8 bytes of their names, no white space, integers in shortest decimal form, strings
    /// with only `"`, `\` and control characters escaped (as \uXXXX, lower-case hex, except
    /// \n \r \t \b \f).
    public var canonical: [UInt8] {
        var output: [UInt8] = []
        encode(into: &output)
        return output
    }

    public var canonicalString: String { String(decoding: canonical, as: UTF8.self) }

    private func encode(into output: inout [UInt8]) {
        switch self {
        case .string(let value): JSONValue.encodeString(value, into: &output)
        case .integer(let value): output += Array(String(value).utf8)
        case .boolean(let value): output += Array((value ? "true" : "false").utf8)
        case .null: output += Array("null".utf8)
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                value.encode(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONValue.encodeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                members[key]!.encode(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func encodeString(_ value: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): output += Array("\\\\".utf8)
            case 0x0A: output += Array("\\n".utf8)
            case 0x0D: output += Array("\\r".utf8)
            case 0x09: output += Array("\\t".utf8)
            case 0x08: output += Array("\\b".utf8)
            case 0x0C: output += Array("\\f".utf8)
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                output += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 15)]]
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// A JSON text that cannot be read, with the byte offset where reading stopped.
public struct JSONError: Error, CustomStringConvertible, Equatable {
    public var offset: Int
    public var message: String
    public var description: String { "JSON at byte \(offset): \(message)" }
}

/// A strict JSON reader for the evidence formats (docs/FORMAT.md, "Canonical JSON"): UTF-8,
/// integers only (no fraction or exponent), member names of printable ASCII given once each,
/// nesting at most 32 deep (each object or array is one level), no lone surrogate, nothing
/// after the value.
public struct JSONParser {
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected data after the value") }
        return value
    }

    public static func parse(_ text: String) throws -> JSONValue { try parse(Array(text.utf8)) }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ message: String) -> JSONError { JSONError(offset: position, message: message) }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ literal: String) throws {
        let literalBytes = Array(literal.utf8)
        guard bytes.count - position >= literalBytes.count, Array(bytes[position..<(position + literalBytes.count)]) == literalBytes else {
            throw error("expected \(literal)")
        }
        position += literalBytes.count
    }

    private mutating func value() throws -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .boolean(true)
        case UInt8(ascii: "f"): try expect("false"); return .boolean(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
        default: throw error("unexpected character")
        }
    }

    private mutating func nest() throws {
        depth += 1
        if depth > 32 { throw error("nested too deeply") }
    }

    private mutating func object() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let key = try string()
            // Printable ASCII only: so a name is its bytes (Swift compares strings by Unicode
            // canonical equivalence, another reader would not) and sorts the same everywhere.
            guard key.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { throw error("member name is not printable ASCII") }
            if members[key] != nil { throw error("member \(key) given twice") }
            skipWhitespace()
            try expect(":")
            members[key] = try value()
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end in object") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            throw error("expected , or }")
        }
    }

    private mutating func array() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var values: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(values) }
        while true {
            values.append(try value())
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end in array") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(values) }
            throw error("expected , or ]")
        }
    }

    private mutating func integer() throws -> Int64 {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            throw error("only integers are allowed")
        }
        guard let value = Int64(String(decoding: bytes[start..<position], as: UTF8.self)) else { throw error("bad integer") }
        return value
    }

    /// The four hex digits of a \u escape (either case), nothing else.
    private mutating func hexQuad() throws -> UInt32 {
        guard bytes.count - position >= 4 else { throw error("bad \\u escape") }
        var code: UInt32 = 0
        for byte in bytes[position..<(position + 4)] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): code = code << 4 | UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): code = code << 4 | UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): code = code << 4 | UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("bad \\u escape")
            }
        }
        position += 4
        return code
    }

    private mutating func string() throws -> String {
        position += 1
        var output: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: output, as: UTF8.self) else { throw error("string is not UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw error("unfinished escape") }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "\""): output.append(0x22)
                case UInt8(ascii: "\\"): output.append(0x5C)
                case UInt8(ascii: "/"): output.append(0x2F)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "u"):
                    var code = try hexQuad()
                    // A surrogate pair is one character; a lone surrogate is no character at all.
                    if (0xD800...0xDBFF).contains(code) {
                        guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw error("lone surrogate in \\u escape")
                        }
                        position += 2
                        let low = try hexQuad()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("lone surrogate in \\u escape") }
                        code = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw error("lone surrogate in \\u escape") }
                    output += Array(String(Character(scalar)).utf8)
                default: throw error("unknown escape")
                }
            case 0..<0x20: throw error("control character in string")
            default: output.append(byte)
            }
        }
        throw error("string is not closed")
    }
}

/// A JSON value inside `Encodable` output (a manifest body in an export report, a journal
/// record's fields in `bodycamctl events --json`): written as the JSON it is.
extension JSONValue: Encodable {
    struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .integer(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .boolean(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .object(let members):
            var container = encoder.container(keyedBy: MemberKey.self)
            for (key, value) in members { try container.encode(value, forKey: MemberKey(stringValue: key)) }
        }
    }
}
