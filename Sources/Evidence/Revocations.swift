import LibCrypto
import Platform
import Wire

/// The authority's list of revoked certificates (docs/PKI.md): the serial numbers of X.509 TLS
/// certificates and of device certificates it no longer vouches for, a signed document by the
/// authority's Ed25519 key (`bodycam-revocation-list/1`). Each new list holds every earlier entry;
/// a reader keeps the newest list it has verified (the latest `issued_utc`).
public struct RevocationList: Sendable {
    public static let type = "bodycam-revocation-list/1"
    public struct Entry: Equatable, Sendable {
        /// The certificate's serial number, lower-case hex.
        public var serial: String
        public var revokedUTC: String
        public var reason: String
        public init(serial: String, revokedUTC: String, reason: String) {
            self.serial = serial
            self.revokedUTC = revokedUTC
            self.reason = reason
        }
    }
    public let document: SignedDocument
    public let authorityKeyID: String
    public let issuedUTC: String
    public let entries: [Entry]

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "revocation list")
        authorityKeyID = try fields.hexString("authority_key_id", count: 8)
        issuedUTC = try fields.time("issued_utc")
        entries = try fields.array("revoked").map { value in
            let entry = try Fields(value, what: "revocation list entry")
            let serial = try entry.string("serial")
            guard let bytes = Hex.decode(serial), (1...20).contains(bytes.count) else {
                throw EvidenceError.malformed(what: "revocation list entry", reason: "serial: not 1 to 20 bytes of hex")
            }
            return Entry(serial: serial, revokedUTC: try entry.time("revoked_utc"), reason: try entry.string("reason"))
        }
    }

    /// Signs a list of `entries` (sorted by serial) with the authority key, issued now.
    public static func issue(_ entries: [Entry], key: Ed25519PrivateKey, now: Int64 = Clock.wallNanoseconds()) throws -> RevocationList {
        let body = JSONValue.object([
            "authority_key_id": .string(key.publicKey.keyID),
            "issued_utc": .string(Clock.iso8601(wallNanoseconds: now)),
            "revoked": .array(entries.sorted { $0.serial < $1.serial }.map {
                .object(["reason": .string($0.reason), "revoked_utc": .string($0.revokedUTC), "serial": .string($0.serial)])
            }),
        ])
        return try RevocationList(document: SignedDocument.sign(type: type, body: body, with: key))
    }

    /// Reads a list and checks it is the authority's (signature and key id).
    public static func read(_ bytes: [UInt8], authority: Ed25519PublicKey, what: String) throws -> RevocationList {
        let list = try RevocationList(document: SignedDocument.parse(bytes, expectedType: type, what: what))
        guard list.document.isSigned(by: authority), list.authorityKeyID == authority.keyID else {
            throw EvidenceError.badSignature(what: what)
        }
        return list
    }

    /// Whether the certificate with this serial (lower-case hex) is revoked.
    public func revokes(serial: String) -> Bool { entries.contains { $0.serial == serial } }
}
