import LibCrypto
import Platform
import Wire

/// A key certificate (docs/FORMAT.md, "Key certificate"): the authority's signature on an
/// Ed25519 key that a server of the evidence office holds, for one purpose, valid for a period.
/// The office signs with it what the authority's own key, kept offline, cannot sign as it
/// happens: offload acknowledgements (`bodycam-key-certificate/1`).
public struct KeyCertificate: Sendable {
    public static let type = "bodycam-key-certificate/1"
    /// Signing offload acknowledgements.
    public static let offloadAcknowledgement = "offload-acknowledgement"
    /// Signing export packages (`bodycam-export-package/1`).
    public static let exportPackage = "export-package"

    public let document: SignedDocument
    /// Who holds the key (an office server's name, for people).
    public let holder: String
    public let key: Ed25519PublicKey
    public let purpose: String
    public let authorityKeyID: String
    public let notBefore: String
    public let notAfter: String
    public let serial: String

    public static func issue(holder: String, key: Ed25519PublicKey, purpose: String, authority: Ed25519PrivateKey,
                             notBefore: String, notAfter: String) throws -> KeyCertificate {
        let body = JSONValue.object([
            "authority_key_id": .string(authority.publicKey.keyID),
            "holder": .string(holder),
            "key": .string(Base64.encode(key.raw)),
            "not_after": .string(notAfter),
            "not_before": .string(notBefore),
            "purpose": .string(purpose),
            "serial": .string(Hex.encode(try randomBytes(8))),
        ])
        return try KeyCertificate(document: SignedDocument.sign(type: type, body: body, with: authority))
    }

    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "key certificate")
        holder = try fields.string("holder")
        key = try Ed25519PublicKey(raw: try fields.bytes("key", base64: 32))
        purpose = try fields.string("purpose")
        authorityKeyID = try fields.hexString("authority_key_id", count: 8)
        notBefore = try fields.time("not_before")
        notAfter = try fields.time("not_after")
        serial = try fields.hexString("serial", count: 8)
    }

    public static func parse(_ bytes: [UInt8], what: String) throws -> KeyCertificate {
        try KeyCertificate(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    public static func read(_ path: String) throws -> KeyCertificate {
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: 1 << 16) } catch { throw EvidenceError.keyFile(path: path, reason: "\(error)") }
        return try parse(bytes, what: path)
    }

    /// Why this certificate does not vouch for its key for `purpose` at `time` (a canonical UTC
    /// time) under `authority`; nil when it does: signed by the authority and naming it, for
    /// that purpose, `time` within its validity (both bounds included), and not on `revocations`.
    public func refusal(authority: Ed25519PublicKey, purpose: String, at time: String, revocations: RevocationList? = nil) -> String? {
        if !document.isSigned(by: authority) || authorityKeyID != authority.keyID {
            return "the key certificate of \(holder) is not the authority's (\(authority.keyID))"
        }
        if self.purpose != purpose { return "the key certificate of \(holder) is for \(self.purpose), not \(purpose)" }
        if !(notBefore <= time && time <= notAfter) {
            return "the key certificate of \(holder) is valid from \(notBefore) to \(notAfter), not at \(time)"
        }
        if let revocations, revocations.revokes(serial: serial) { return "the key certificate \(serial) of \(holder) is revoked" }
        return nil
    }
}
