import TOMLShim

/// Reads typed settings out of a `ConfigFile`, remembering which keys were used so that the
/// rest can be rejected as unknown.
public struct ConfigReader {
    public let file: ConfigFile
    private var used: Set<String> = []
    public var usedKeys: Set<String> { used }

    public init(file: ConfigFile) { self.file = file }

    public static func isIdentifier(_ text: String) -> Bool {
        (1...32).contains(text.count) && text.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" }
    }

    public func has(_ key: String) -> Bool { file.entries[key] != nil }

    public func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file.origins[key] ?? file.file, line: file.entries[key]?.line ?? 0, key: key, message: message)
    }

    private mutating func value(_ key: String) -> ConfigValue? {
        used.insert(key)
        return file.entries[key]?.value
    }

    private func mismatch(_ key: String, _ value: ConfigValue, _ wanted: String) -> ConfigError {
        error(key, "expected \(wanted), found \(value.typeName)")
    }

    public mutating func string(_ key: String, default fallback: String, where valid: (String) -> Bool = { _ in true }, _ rule: String = "") throws -> String {
        guard let value = value(key) else { return fallback }
        guard case .string(let string) = value else { throw mismatch(key, value, "a string") }
        guard !string.contains("\u{0}") else { throw error(key, "holds U+0000, which no setting takes") }
        guard valid(string) else { throw error(key, "\"\(string)\" is not valid: \(rule)") }
        return string
    }

    public mutating func integer(_ key: String, default fallback: Int, in range: ClosedRange<Int>, even: Bool = false) throws -> Int {
        guard let value = value(key) else { return fallback }
        guard case .integer(let integer) = value else { throw mismatch(key, value, "an integer") }
        guard range.contains(integer) else { throw error(key, "\(integer) is out of range \(range.lowerBound)…\(range.upperBound)") }
        if even && integer % 2 != 0 { throw error(key, "\(integer) must be even (4:2:0 chroma)") }
        return integer
    }

    public mutating func boolean(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = value(key) else { return fallback }
        guard case .boolean(let boolean) = value else { throw mismatch(key, value, "true or false") }
        return boolean
    }

    public mutating func strings(_ key: String, default fallback: [String]) throws -> [String] {
        guard let value = value(key) else { return fallback }
        guard case .strings(let strings) = value else { throw mismatch(key, value, "a list of strings") }
        return strings
    }

    public mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        let text = try string(key, default: fallback.rawValue)
        guard let choice = T(rawValue: text) else {
            throw error(key, "\"\(text)\" is not one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return choice
    }

    public mutating func choices<T: RawRepresentable & Equatable>(_ key: String, default fallback: [T], allowed: [T]) throws -> [T] where T.RawValue == String {
        guard has(key) else {
            used.insert(key)
            return fallback
        }
        let texts = try strings(key, default: [])
        guard !texts.isEmpty else { throw error(key, "must name at least one of \(allowed.map(\.rawValue).joined(separator: ", "))") }
        return try texts.map { text in
            guard let choice = T(rawValue: text), allowed.contains(choice) else {
                throw error(key, "\"\(text)\" is not one of \(allowed.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            return choice
        }
    }

    public func rejectUnknown() throws {
        if let unknown = file.entries.keys.filter({ !used.contains($0) }).sorted().first {
            throw error(unknown, "unknown setting")
        }
    }
}


