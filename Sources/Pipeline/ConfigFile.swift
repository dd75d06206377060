/// A value in a configuration file.
public enum ConfigValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case strings([String])

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "true or false"
        case .strings: return "a list of strings"
        }
    }
}

/// A configuration problem, with the file, line and setting it concerns.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var key: String
    public var message: String

    public init(file: String, line: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = line > 0 ? "\(file):\(line)" : file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}

/// The subset of TOML the configuration uses: `[section]` headers, `key = value` with strings,
/// integers, booleans and one-line lists of strings, `#` comments. Anything else is an error
/// naming the line; a key given twice is an error.
public struct ConfigFile: Sendable {
    public struct Entry: Sendable {
        public var value: ConfigValue
        public var line: Int
    }

    public let file: String
    /// "section.key" (or "key" before any section) → value.
    public private(set) var entries: [String: Entry] = [:]

    public init(file: String, text: String) throws {
        self.file = file
        var section = ""
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = ConfigFile.stripComment(rawLine).trimmed
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw ConfigError(file: file, line: number, key: "", message: "malformed section header \(line)")
                }
                section = String(line.dropFirst().dropLast()).trimmed
                guard ConfigFile.isBareKey(section) else {
                    throw ConfigError(file: file, line: number, key: "", message: "malformed section name \(section)")
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigError(file: file, line: number, key: "", message: "expected key = value, found \(line)")
            }
            let key = String(line[..<equals]).trimmed
            guard ConfigFile.isBareKey(key) else {
                throw ConfigError(file: file, line: number, key: key, message: "malformed key")
            }
            let fullKey = section.isEmpty ? key : section + "." + key
            let value = try ConfigFile.parseValue(String(line[line.index(after: equals)...]).trimmed, file: file, line: number, key: fullKey)
            if let previous = entries[fullKey] {
                throw ConfigError(file: file, line: number, key: fullKey, message: "set twice (first on line \(previous.line))")
            }
            entries[fullKey] = Entry(value: value, line: number)
        }
    }

    /// `base`'s entries overlaid with `overlay`'s (the overlay wins): a board profile under the
    /// device's own configuration. Errors keep naming the file each entry came from.
    public init(base: ConfigFile, overlay: ConfigFile) {
        file = overlay.file
        entries = base.entries.merging(overlay.entries) { _, mine in mine }
        origins = base.entries.keys.reduce(into: [:]) { $0[$1] = base.file }
        for key in overlay.entries.keys { origins[key] = nil }
    }

    /// Keys that came from another file than `file` (a board profile).
    public private(set) var origins: [String: String] = [:]

    static func isBareKey(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }

    /// Drops a `#` comment that is not inside a string.
    static func stripComment(_ line: Substring) -> Substring {
        var inString = false
        var escaped = false
        for index in line.indices {
            let character = line[index]
            if escaped { escaped = false; continue }
            if character == "\\" && inString { escaped = true; continue }
            if character == "\"" { inString.toggle() }
            if character == "#" && !inString { return line[..<index] }
        }
        return line
    }

    static func parseValue(_ text: String, file: String, line: Int, key: String) throws -> ConfigValue {
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: line, key: key, message: message) }
        if text == "true" { return .boolean(true) }
        if text == "false" { return .boolean(false) }
        if text.hasPrefix("\"") {
            var rest = text[...]
            let string = try parseString(&rest, fail)
            guard rest.trimmed.isEmpty else { throw fail("unexpected text after the string: \(rest.trimmed)") }
            return .string(string)
        }
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw fail("a list must open and close on the same line") }
            var rest = text.dropFirst().dropLast()[...]
            var items: [String] = []
            while true {
                rest = rest.drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty { break }
                guard rest.first == "\"" else { throw fail("lists hold strings in double quotes") }
                items.append(try parseString(&rest, fail))
                rest = rest.drop { $0 == " " || $0 == "\t" }
                if rest.first == "," { rest = rest.dropFirst() } else if !rest.isEmpty { throw fail("expected , between list items") }
            }
            return .strings(items)
        }
        let digits = text.replacingAll("_", with: "")
        if let integer = Int(digits) { return .integer(integer) }
        throw fail("cannot read value \(text) (strings need double quotes)")
    }

    static func parseString(_ text: inout Substring, _ fail: (String) -> ConfigError) throws -> String {
        precondition(text.first == "\"")
        text = text.dropFirst()
        var result = ""
        while let character = text.first {
            text = text.dropFirst()
            switch character {
            case "\"": return result
            case "\\":
                guard let escaped = text.first else { throw fail("unfinished escape in string") }
                text = text.dropFirst()
                switch escaped {
                case "\"": result.append("\"")
                case "\\": result.append("\\")
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: throw fail("unknown escape \\\(escaped) in string")
                }
            default: result.append(character)
            }
        }
        throw fail("string is not closed")
    }
}

extension StringProtocol {
    var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
