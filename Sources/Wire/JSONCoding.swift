/// `Codable` to and from `JSONValue`, so that typed messages (the control protocol) are read and
/// written without Foundation. Foundation's JSONEncoder would do the same work, but loading
/// Foundation costs the daemon about 2.5 MiB (FoundationEssentials) to 9 MiB (Foundation, with
/// ICU) of resident memory on the camera, measured with `/usr/bin/time` on a program that only
/// imports it; the daemon stays without it.
///
/// Integers are `Int64` on the wire (the formats' range); floating-point values are refused,
/// since no message of this project carries one. Keys are the `CodingKey`s' string values;
/// `nil` optionals are omitted by `encodeIfPresent` and written as `null` by `encode`.
public enum JSONCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = ValueEncoder(path: [])
        try value.encode(to: encoder)
        return encoder.storage.value ?? .object([:])
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: ValueDecoder(value: value, path: []))
    }
}

// MARK: encoding

/// Where an encoder writes: set once for a single value, filled member by member for a
/// container. A reference, so that nested containers write into their parent.
final class Slot {
    enum Content {
        case empty
        case value(JSONValue)
        case object([String: Slot], order: [String])
        case array([Slot])
    }
    var content = Content.empty

    var value: JSONValue? {
        switch content {
        case .empty: return nil
        case .value(let value): return value
        case .object(let members, _): return .object(members.compactMapValues(\.value))
        case .array(let items): return .array(items.map { $0.value ?? .null })
        }
    }

    func member(_ key: String) -> Slot {
        var members: [String: Slot] = [:], order: [String] = []
        if case .object(let existing, let existingOrder) = content { (members, order) = (existing, existingOrder) }
        if let slot = members[key] { return slot }
        let slot = Slot()
        members[key] = slot
        order.append(key)
        content = .object(members, order: order)
        return slot
    }

    func makeObject() {
        if case .object = content { return }
        content = .object([:], order: [])
    }

    func append() -> Slot {
        var items: [Slot] = []
        if case .array(let existing) = content { items = existing }
        let slot = Slot()
        items.append(slot)
        content = .array(items)
        return slot
    }

    func makeArray() {
        if case .array = content { return }
        content = .array([])
    }

    var count: Int {
        if case .array(let items) = content { return items.count }
        return 0
    }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { intValue.map(String.init) ?? "" }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

final class ValueEncoder: Encoder {
    let storage: Slot
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(path: [CodingKey], storage: Slot = Slot()) {
        codingPath = path
        self.storage = storage
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        storage.makeObject()
        return KeyedEncodingContainer(KeyedEncoder<Key>(slot: storage, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        storage.makeArray()
        return UnkeyedEncoder(slot: storage, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleEncoder(slot: storage, codingPath: codingPath) }
}

func encodeValue<T: Encodable>(_ value: T, into slot: Slot, path: [CodingKey]) throws {
    switch value {
    case let value as JSONValue: slot.content = .value(value)
    case let value as String: slot.content = .value(.string(value))
    case let value as Bool: slot.content = .value(.boolean(value))
    case let value as any BinaryInteger:
        guard let integer = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "outside the signed 64-bit range"))
        }
        slot.content = .value(.integer(integer))
    case is any BinaryFloatingPoint:
        throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "floating-point values are not part of these messages"))
    default:
        try value.encode(to: ValueEncoder(path: path, storage: slot))
    }
}

struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: Slot
    let codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).content = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encodeValue(value, into: slot.member(key.stringValue), path: codingPath + [key])
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let member = slot.member(key.stringValue)
        member.makeObject()
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(slot: member, codingPath: codingPath + [key]))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        let member = slot.member(key.stringValue)
        member.makeArray()
        return UnkeyedEncoder(slot: member, codingPath: codingPath + [key])
    }
    mutating func superEncoder() -> Encoder { ValueEncoder(path: codingPath, storage: slot.member("super")) }
    mutating func superEncoder(forKey key: Key) -> Encoder { ValueEncoder(path: codingPath + [key], storage: slot.member(key.stringValue)) }
}

struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let slot: Slot
    let codingPath: [CodingKey]
    var count: Int { slot.count }

    mutating func encodeNil() throws { slot.append().content = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [IndexKey(count)]
        try encodeValue(value, into: slot.append(), path: path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [IndexKey(count)]
        let item = slot.append()
        item.makeObject()
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(slot: item, codingPath: path))
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let path = codingPath + [IndexKey(count)]
        let item = slot.append()
        item.makeArray()
        return UnkeyedEncoder(slot: item, codingPath: path)
    }
    mutating func superEncoder() -> Encoder { ValueEncoder(path: codingPath + [IndexKey(count)], storage: slot.append()) }
}

struct SingleEncoder: SingleValueEncodingContainer {
    let slot: Slot
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { slot.content = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: slot, path: codingPath) }
}

// MARK: decoding

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSONValue, path: [CodingKey]) {
        self.value = value
        codingPath = path
    }

    func mismatch(_ expected: String) -> DecodingError {
        .typeMismatch(JSONValue.self, .init(codingPath: codingPath, debugDescription: "expected \(expected)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let members = value.object else { throw mismatch("an object") }
        return KeyedDecodingContainer(KeyedDecoder<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard let items = value.array else { throw mismatch("an array") }
        return UnkeyedDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleDecoder(value: value, codingPath: codingPath) }
}

func decodeValue<T: Decodable>(_ type: T.Type, from value: JSONValue, path: [CodingKey]) throws -> T {
    func mismatch(_ expected: String) -> DecodingError {
        .typeMismatch(T.self, .init(codingPath: path, debugDescription: "expected \(expected)"))
    }
    if type == JSONValue.self { return value as! T }
    if type == String.self {
        guard let string = value.string else { throw mismatch("a string") }
        return string as! T
    }
    if type == Bool.self {
        guard let boolean = value.boolean else { throw mismatch("true or false") }
        return boolean as! T
    }
    if type is any BinaryFloatingPoint.Type { throw mismatch("no floating-point value (these messages carry none)") }
    if let integerType = type as? any FixedWidthInteger.Type {
        guard let integer = value.integer, let converted = integerType.init(exactly: integer) else { throw mismatch("an integer in range") }
        return converted as! T
    }
    return try T(from: ValueDecoder(value: value, path: path))
}

struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [CodingKey]
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \"\(key.stringValue)\""))
        }
        return value
    }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }
    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeValue(type, from: try member(key), path: codingPath + [key])
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try member(key), path: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: try member(key), path: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { ValueDecoder(value: .object(members), path: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder { ValueDecoder(value: try member(key), path: codingPath + [key]) }
}

struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> (JSONValue, [CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: codingPath, debugDescription: "the array has no more items"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next()
        return try decodeValue(type, from: value, path: path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next()
        return try ValueDecoder(value: value, path: path).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (value, path) = try next()
        return try ValueDecoder(value: value, path: path).unkeyedContainer()
    }
    mutating func superDecoder() throws -> Decoder {
        let (value, path) = try next()
        return ValueDecoder(value: value, path: path)
    }
}

struct SingleDecoder: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]

    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, from: value, path: codingPath) }
}
