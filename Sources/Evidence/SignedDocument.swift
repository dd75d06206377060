import LibCrypto
import Pipeline
import Platform
import Wire

/// Why an evidence file could not be read or trusted.
public enum EvidenceError: Error, CustomStringConvertible, Equatable, Sendable {
    case malformed(what: String, reason: String)
    case badSignature(what: String)
    case keyFile(path: String, reason: String)
    case decryption(what: String, reason: String)
    /// Another process (a second bodycamd) holds the store's writer lock.
    case storeInUse(path: String)

    public var description: String {
        switch self {
        case .malformed(let what, let reason): return "\(what): malformed: \(reason)"
        case .badSignature(let what): return "\(what): signature does not verify"
        case .keyFile(let path, let reason): return "\(path): \(reason)"
        case .decryption(let what, let reason): return "\(what): cannot decrypt: \(reason)"
        case .storeInUse(let path):
            return "\(path): the store is in use by another process (another bodycamd?); one writer per store, so this one does not start"
        }
    }
}

/// A signed document (docs/FORMAT.md, "Signed documents"): three lines — a type and version
/// line, the canonical JSON body, the base64 Ed25519 signature over the first two lines
/// (newlines included). Manifests, certificates, tokens and acknowledgements all use it.
public struct SignedDocument: Equatable, Sendable {
    public let type: String
    public let body: JSONValue
    public let signature: [UInt8]
    /// The exact bytes the signature covers.
    public let signedBytes: [UInt8]
    /// The whole document as stored.
    public let bytes: [UInt8]
    /// SHA-256 of `bytes` (what the chain and the journal name a document by).
    public let sha256: [UInt8]

    init(type: String, body: JSONValue, signature: [UInt8], signedBytes: [UInt8], bytes: [UInt8]) throws {
        self.type = type
        self.body = body
        self.signature = signature
        self.signedBytes = signedBytes
        self.bytes = bytes
        sha256 = try SHA256.hash(bytes)
    }

    public static func sign(type: String, body: JSONValue, with key: Ed25519PrivateKey) throws -> SignedDocument {
        let signed = Array((type + "\n").utf8) + body.canonical + [0x0A]
        let signature = try key.sign(signed)
        return try SignedDocument(type: type, body: body, signature: signature, signedBytes: signed,
                              bytes: signed + Array((Base64.encode(signature) + "\n").utf8))
    }

    /// Parses without checking the signature; `expectedType` must match the first line.
    public static func parse(_ bytes: [UInt8], expectedType: String, what: String) throws -> SignedDocument {
        func fail(_ reason: String) -> EvidenceError { .malformed(what: what, reason: reason) }
        guard bytes.count < 1 << 20 else { throw fail("larger than 1 MiB") }
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count == 4, lines[3].isEmpty else { throw fail("expected three lines") }
        let type = String(decoding: lines[0], as: UTF8.self)
        guard type == expectedType else { throw fail("type is \"\(type.prefix(40))\", expected \"\(expectedType)\"") }
        let body: JSONValue
        do { body = try JSONParser.parse(Array(lines[1])) } catch { throw fail("\(error)") }
        guard body.canonical == Array(lines[1]) else { throw fail("body is not in canonical form") }
        guard let signature = Base64.decode(String(decoding: lines[2], as: UTF8.self)), signature.count == 64 else {
            throw fail("signature line is not a base64 Ed25519 signature")
        }
        return try SignedDocument(type: type, body: body, signature: signature, signedBytes: Array(bytes[0..<(lines[0].count + lines[1].count + 2)]),
                              bytes: bytes)
    }

    public func isSigned(by key: Ed25519PublicKey) -> Bool {
        key.isValidSignature(signature, for: signedBytes)
    }
}

/// Typed access to a document body, with errors naming the field.
struct Fields {
    let object: [String: JSONValue]
    let what: String

    init(_ value: JSONValue, what: String) throws {
        guard let object = value.object else { throw EvidenceError.malformed(what: what, reason: "body is not an object") }
        self.object = object
        self.what = what
    }

    func fail(_ field: String, _ reason: String) -> EvidenceError { .malformed(what: what, reason: "\(field): \(reason)") }

    func string(_ field: String) throws -> String {
        guard let value = object[field]?.string else { throw fail(field, "missing or not a string") }
        return value
    }
    func integer(_ field: String) throws -> Int64 {
        guard let value = object[field]?.integer else { throw fail(field, "missing or not an integer") }
        return value
    }
    func boolean(_ field: String) throws -> Bool {
        guard let value = object[field]?.boolean else { throw fail(field, "missing or not true/false") }
        return value
    }
    func array(_ field: String) throws -> [JSONValue] {
        guard let value = object[field]?.array else { throw fail(field, "missing or not a list") }
        return value
    }
    func bytes(_ field: String, base64 count: Int? = nil) throws -> [UInt8] {
        guard let bytes = Base64.decode(try string(field)), count == nil || bytes.count == count else {
            throw fail(field, "not base64\(count.map { " of \($0) bytes" } ?? "")")
        }
        return bytes
    }
    /// A time in its one spelling (`ClockParse`), returned as written.
    func time(_ field: String) throws -> String {
        let value = try string(field)
        guard ClockParse.nanoseconds(iso8601: value) != nil else { throw fail(field, "not a time written YYYY-MM-DDTHH:MM:SS.ffffffZ") }
        return value
    }
    /// Lower-case hex of `count` bytes, returned as written.
    func hexString(_ field: String, count: Int) throws -> String {
        _ = try hex(field, count: count)
        return try string(field)
    }
    func hex(_ field: String, count: Int) throws -> [UInt8] {
        guard let bytes = Hex.decode(try string(field)), bytes.count == count else { throw fail(field, "not \(count) bytes of hex") }
        return bytes
    }
}
