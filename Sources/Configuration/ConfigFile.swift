import TOMLKit

/// A value in a configuration file.
public enum ConfigValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case strings([String])
    /// A value of a type no setting takes (a float, a date, a table array, a list of
    /// non-strings), named for the error message.
    case unsupported(String)

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "true or false"
        case .strings: return "a list of strings"
        case .unsupported(let name): return name
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

/// A TOML 1.0 file (parsed by toml++ through TOMLKit), flattened to "table.key" settings. A
/// syntax error — a duplicate key among them — names the file and the line; values of types
/// no setting takes are kept as `.unsupported` so that the setting that reads one can say so.
public struct ConfigFile: Sendable {
    public struct Entry: Sendable {
        public var value: ConfigValue
        /// 0: TOMLKit gives no positions for parsed values, only for syntax errors.
        public var line: Int
    }

    public let file: String
    /// "table.key" (or "key" outside any table) → value.
    public private(set) var entries: [String: Entry] = [:]
    /// Keys that came from another file than `file` (a board profile).
    public private(set) var origins: [String: String] = [:]

    public init(file: String, text: String) throws {
        self.file = file
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(file: file, line: error.source.begin.line, key: "", message: error.description)
        }
        flatten(table, prefix: "")
        let lines = ConfigFile.keyLines(text)
        for key in entries.keys { entries[key]?.line = lines[key] ?? 0 }
    }

    /// The line of each `key = …` under its `[table]` header, for messages: TOMLKit gives no
    /// positions for parsed values. The text has already parsed, so a plain scan is enough for
    /// the forms the configuration uses; keys it cannot place (dotted keys, inline tables) get 0.
    static func keyLines(_ text: String) -> [String: Int] {
        var lines: [String: Int] = [:]
        var table = ""
        let bare: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") && !line.hasPrefix("[[") {
                table = String(line.dropFirst().prefix { $0 != "]" }).filter { $0 != " " && $0 != "\t" }
                continue
            }
            let key = line.prefix(while: bare)
            guard !key.isEmpty, line.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" }).first == "=" else { continue }
            let name = table.isEmpty ? String(key) : table + "." + key
            if lines[name] == nil { lines[name] = index + 1 }
        }
        return lines
    }

    /// `base`'s entries overlaid with `overlay`'s (the overlay wins): a board profile under the
    /// device's own configuration. Errors keep naming the file each entry came from.
    public init(base: ConfigFile, overlay: ConfigFile) {
        file = overlay.file
        entries = base.entries.merging(overlay.entries) { _, mine in mine }
        origins = base.entries.keys.reduce(into: [:]) { $0[$1] = base.file }
        for key in overlay.entries.keys { origins[key] = nil }
    }

    private mutating func flatten(_ table: TOMLTable, prefix: String) {
        for key in table.keys {
            guard let value = table[key] else { continue }
            let name = prefix.isEmpty ? key : prefix + "." + key
            if let inner = value.table {
                flatten(inner, prefix: name)
            } else {
                entries[name] = Entry(value: ConfigFile.convert(value), line: 0)
            }
        }
    }

    static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .integer(value.int ?? 0)
        case .bool: return .boolean(value.bool ?? false)
        case .array:
            let items = value.array.map { Array($0) } ?? []
            let strings = items.compactMap { $0.type == .string ? $0.string : nil }
            return strings.count == items.count ? .strings(strings) : .unsupported("a list holding other values than strings")
        case .double: return .unsupported("a floating-point number")
        case .date, .time, .dateTime: return .unsupported("a date or time")
        case .table: return .unsupported("a table")
        }
    }
}
