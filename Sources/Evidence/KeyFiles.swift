import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire

/// Key files (docs/FORMAT.md, "Key files"): one line, "<type> <base64 raw key>\n".
public enum KeyFile {
    public static let ed25519Secret = "bodycam-ed25519-secret/1"
    public static let ed25519Public = "bodycam-ed25519-public/1"
    public static let x25519Secret = "bodycam-x25519-secret/1"
    public static let x25519Public = "bodycam-x25519-public/1"


    static func encode(type: String, _ raw: [UInt8]) -> [UInt8] { Array("\(type) \(Base64.encode(raw))\n".utf8) }

    /// The 32 raw bytes of a key file's text ("TYPE BASE64\n"); `EvidenceError.keyFile` naming
    /// `path` when it is not a key file of `type`.
    public static func decode(_ bytes: [UInt8], type: String, path: String) throws -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n"), text.utf8.count < 512 else { throw EvidenceError.keyFile(path: path, reason: "not a key file") }
        let parts = text.dropLast().split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw EvidenceError.keyFile(path: path, reason: "not a key file") }
        guard parts[0] == type else {
            throw EvidenceError.keyFile(path: path, reason: "holds a \(parts[0].prefix(40)) key, expected \(type)")
        }
        guard let raw = Base64.decode(String(parts[1])), raw.count == 32 else {
            throw EvidenceError.keyFile(path: path, reason: "key is not 32 bytes of base64")
        }
        return raw
    }

    static func read(_ path: String, type: String) throws -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: 4096) } catch { throw EvidenceError.keyFile(path: path, reason: "\(error)") }
        return try decode(bytes, type: type, path: path)
    }

    public static func readSigningKey(_ path: String) throws -> Ed25519PrivateKey {
        let raw = SecretBytes(try read(path, type: ed25519Secret))
        return try Ed25519PrivateKey(seed: raw)
    }
    public static func readVerifyingKey(_ path: String) throws -> Ed25519PublicKey { try Ed25519PublicKey(raw: try read(path, type: ed25519Public)) }
    public static func readIdentity(_ path: String) throws -> X25519PrivateKey { try X25519PrivateKey(raw: SecretBytes(try read(path, type: x25519Secret))) }
    /// A recipient's X25519 public key; a low-order point is refused (`EvidenceError.keyFile`).
    public static func readRecipient(_ path: String) throws -> X25519PublicKey {
        let raw = try read(path, type: x25519Public)
        do {
            return try X25519PublicKey(raw: raw)
        } catch let error as CryptoError {
            throw EvidenceError.keyFile(path: path, reason: "not a usable recipient key: \(error)")
        }
    }

    /// Secret keys are written mode 0600 and never over an existing file.
    public static func write(_ key: Ed25519PrivateKey, to path: String) throws {
        try writeFileAtomically(path, encode(type: ed25519Secret, key.seed.bytes), mode: 0o600, exclusive: true)
    }
    public static func write(_ key: Ed25519PublicKey, to path: String) throws {
        try writeFileAtomically(path, encode(type: ed25519Public, key.raw), mode: 0o644)
    }
    public static func write(_ key: X25519PrivateKey, to path: String) throws {
        try writeFileAtomically(path, encode(type: x25519Secret, key.rawPrivate.bytes), mode: 0o600, exclusive: true)
    }
    public static func write(_ key: X25519PublicKey, to path: String) throws {
        try writeFileAtomically(path, encode(type: x25519Public, key.raw), mode: 0o644)
    }
}

/// A device certificate: the authority's signature on a device id and its Ed25519 key, valid
/// for a period (docs/FORMAT.md, "Device certificate").
public struct DeviceCertificate: Sendable {
    public static let type = "bodycam-certificate/1"
    public let document: SignedDocument
    public let deviceID: String
    public let deviceKey: Ed25519PublicKey
    public let authorityKeyID: String
    public let notBefore: String
    public let notAfter: String
    public let serial: String

    public static func issue(deviceID: String, deviceKey: Ed25519PublicKey, authority: Ed25519PrivateKey,
                             notBefore: String, notAfter: String) throws -> DeviceCertificate {
        let body = JSONValue.object([
            "authority_key_id": .string(authority.publicKey.keyID),
            "device_id": .string(deviceID),
            "device_key": .string(Base64.encode(deviceKey.raw)),
            "not_after": .string(notAfter),
            "not_before": .string(notBefore),
            "serial": .string(Hex.encode(try randomBytes(8))),
        ])
        return try DeviceCertificate(document: SignedDocument.sign(type: type, body: body, with: authority))
    }

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "device certificate")
        deviceID = try fields.string("device_id")
        deviceKey = try Ed25519PublicKey(raw: try fields.bytes("device_key", base64: 32))
        authorityKeyID = try fields.hexString("authority_key_id", count: 8)
        notBefore = try fields.time("not_before")
        notAfter = try fields.time("not_after")
        serial = try fields.hexString("serial", count: 8)
    }

    public static func read(_ path: String) throws -> DeviceCertificate {
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: 1 << 16) } catch { throw EvidenceError.keyFile(path: path, reason: "\(error)") }
        return try DeviceCertificate(document: SignedDocument.parse(bytes, expectedType: type, what: path))
    }

    /// Problems with this certificate under `authority`; empty when the authority signed it and
    /// it names that authority. Its validity is judged at the time each thing was signed, not
    /// here (`isValid(at:)`; docs/FORMAT.md, "Device certificate").
    public func problems(authority: Ed25519PublicKey) -> [String] {
        var result: [String] = []
        if !document.isSigned(by: authority) { result.append("certificate of \(deviceID) is not signed by the authority \(authority.keyID)") }
        if authorityKeyID != authority.keyID { result.append("certificate of \(deviceID) names authority \(authorityKeyID), not \(authority.keyID)") }
        if notAfter < notBefore { result.append("certificate of \(deviceID) ends (\(notAfter)) before it begins (\(notBefore))") }
        return result
    }

    /// Whether `time` (a canonical UTC time) lies in the validity period, both bounds included.
    /// The canonical spelling has a fixed width, so times compare as strings.
    public func isValid(at time: String) -> Bool { notBefore <= time && time <= notAfter }
}
