import Glibc
import Platform
import TOMLShim

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

/// A TOML 1.0 file (parsed by toml++, through TOMLShim's C view), flattened to "table.key"
/// settings, each with its line. A syntax error — a duplicate key among them — names the file
/// and the line; values of types no setting takes are kept as `.unsupported` so that the setting
/// that reads one can say so.
public struct ConfigFile: Sendable {
    public struct Entry: Sendable {
        public var value: ConfigValue
        /// Where the value begins, 1-based.
        public var line: Int
    }

    public let file: String
    /// "table.key" (or "key" outside any table) → value.
    public private(set) var entries: [String: Entry] = [:]
    /// Keys that came from another file than `file` (a board profile).
    public private(set) var origins: [String: String] = [:]

    public init(file: String, text: String) throws {
        self.file = file
        final class Collected {
            var entries: [String: Entry] = [:]
            /// A name that two different paths flatten to ("camera.fps" at the top and fps in
            /// [camera]), or that holds a character no setting name has.
            var refused: (key: String, line: Int, reason: String)?
        }
        let collected = Collected()
        var bytes = Array(text.utf8)
        var message = [CChar](repeating: 0, count: 512)
        var line: UInt32 = 0
        let status = withExtendedLifetime(collected) {
            bytes.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { text in
                    bc_toml_parse(text.baseAddress, text.count, { context, setting in
                        guard let context, let setting = setting?.pointee else { return }
                        let collected = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
                        let parts = (0..<setting.depth).map { ConfigFile.text(setting.keys[$0]!, setting.key_lengths[$0]) }
                        let key = parts.joined(separator: ".")
                        let line = Int(setting.line)
                        if collected.refused != nil { return }
                        if parts.contains(where: { $0.contains(".") || $0.contains("\u{0}") }) {
                            collected.refused = (key, line, "a key holding \".\" or U+0000 is not a setting name")
                        } else if let first = collected.entries[key] {
                            collected.refused = (key, line, "set twice (first on line \(first.line))")
                        } else {
                            collected.entries[key] = Entry(value: ConfigFile.convert(setting), line: line)
                        }
                    }, Unmanaged.passUnretained(collected).toOpaque(), &message, message.count, &line)
                }
            }
        }
        if status != 0 {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw ConfigError(file: file, line: Int(line), key: "", message: text)
        }
        if let refused = collected.refused { throw ConfigError(file: file, line: refused.line, key: refused.key, message: refused.reason) }
        entries = collected.entries
    }

    /// `length` bytes of UTF-8 (toml++ has checked them) as a String; U+0000 kept.
    static func text(_ bytes: UnsafePointer<CChar>, _ length: Int) -> String {
        bytes.withMemoryRebound(to: UInt8.self, capacity: length) { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) }
    }

    /// `base`'s entries overlaid with `overlay`'s (the overlay wins): a board profile under the
    /// device's own configuration. Errors keep naming the file each entry came from.
    public init(base: ConfigFile, overlay: ConfigFile) {
        file = overlay.file
        entries = base.entries.merging(overlay.entries) { _, mine in mine }
        origins = base.entries.keys.reduce(into: [:]) { $0[$1] = base.file }
        for key in overlay.entries.keys { origins[key] = nil }
    }

    static func convert(_ setting: bc_toml_setting) -> ConfigValue {
        switch setting.kind {
        case BC_TOML_STRING: return .string(text(setting.text, setting.text_length))
        case BC_TOML_INTEGER: return Int(exactly: setting.integer).map(ConfigValue.integer) ?? .unsupported("an integer out of range")
        case BC_TOML_BOOLEAN: return .boolean(setting.boolean != 0)
        case BC_TOML_STRINGS:
            return .strings((0..<setting.count).map { text(setting.strings[$0]!, setting.string_lengths[$0]) })
        case BC_TOML_FLOAT: return .unsupported("a floating-point number")
        case BC_TOML_DATE_TIME: return .unsupported("a date or time")
        default: return .unsupported("a list holding other values than strings")
        }
    }
}

extension ConfigFile {
    /// Reads and parses a configuration file: at most 1 MiB of UTF-8 text, or an error naming it.
    public static func read(path: String) throws -> ConfigFile {
        let bytes: [UInt8]
        do {
            bytes = try readWholeFile(path, limit: 1 << 20)
        } catch SystemError.file(_, let call, let code) {
            throw ConfigError(file: path, line: 0, key: "", message: "cannot \(call): \(String(cString: strerror(code)))")
        } catch {
            throw ConfigError(file: path, line: 0, key: "", message: "larger than 1 MiB: not a configuration file")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, line: 0, key: "", message: "not UTF-8 text")
        }
        return try ConfigFile(file: path, text: text)
    }
}
