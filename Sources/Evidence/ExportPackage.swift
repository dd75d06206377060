import LibCrypto
import Platform
import Wire

/// An export package's signed list (docs/FORMAT.md, "Export package";
/// `OUT/export-package.signed`): every file an export wrote, with its SHA-256 and size, who
/// exported what and when, signed by an office key the authority certified for the purpose
/// `export-package`, whose certificate it carries. A court checks it with the authority's
/// public key alone (`bodycamctl verify-export`): an edited report, a changed byte in a clip, a
/// file removed or added are each found.
public struct ExportPackage: Sendable {
    public static let type = "bodycam-export-package/1"
    public static let fileName = "export-package.signed"
    /// At most this many files (a year of one-minute segments, and their manifests).
    public static let maximumFiles = 1_100_000

    public struct Entry: Sendable, Equatable {
        /// The file's path inside the package, "/"-separated, of plain names.
        public var name: String
        public var sha256: String
        public var bytes: Int64

        public init(name: String, sha256: String, bytes: Int64) {
            self.name = name
            self.sha256 = sha256
            self.bytes = bytes
        }
    }

    public let document: SignedDocument
    public let exportedUTC: String
    /// The device whose store was exported, and its key's id.
    public let deviceID: String
    public let deviceKeyID: String
    /// The office identity (X25519) that decrypted it.
    public let officeIdentityKeyID: String
    /// Whether the store verified without a problem when it was exported.
    public let verificationClean: Bool
    public let files: [Entry]
    public let signerCertificate: KeyCertificate

    /// Signs the list with `key`, whose `certificate` the authority issued for `export-package`.
    public static func issue(files: [Entry], deviceID: String, deviceKeyID: String, officeIdentityKeyID: String, verificationClean: Bool,
                             exportedUTC: String, key: Ed25519PrivateKey, certificate: KeyCertificate) throws -> ExportPackage {
        precondition(certificate.key == key.publicKey, "the certificate is for another key")
        let body = JSONValue.object([
            "device_id": .string(deviceID),
            "device_key_id": .string(deviceKeyID),
            "exported_utc": .string(exportedUTC),
            "files": .array(files.sorted { $0.name < $1.name }.map {
                .object(["bytes": .integer($0.bytes), "name": .string($0.name), "sha256": .string($0.sha256)])
            }),
            "office_identity_key_id": .string(officeIdentityKeyID),
            "signer_certificate": .string(Base64.encode(certificate.document.bytes)),
            "verification_clean": .boolean(verificationClean),
        ])
        return try ExportPackage(document: SignedDocument.sign(type: type, body: body, with: key))
    }

    /// Reads the members and checks each (`EvidenceError.malformed` naming it): a file name must
    /// be a relative path of plain names (no "", ".", ".." or "/" at either end), listed once.
    public init(document: SignedDocument) throws {
        self.document = document
        let fields = try Fields(document.body, what: "export package")
        exportedUTC = try fields.time("exported_utc")
        deviceID = try fields.string("device_id")
        deviceKeyID = try fields.string("device_key_id")
        officeIdentityKeyID = try fields.string("office_identity_key_id")
        verificationClean = try fields.boolean("verification_clean")
        signerCertificate = try KeyCertificate.parse(try fields.bytes("signer_certificate"), what: "export package's signer certificate")
        let list = try fields.array("files")
        guard list.count <= ExportPackage.maximumFiles else { throw fields.fail("files", "more than \(ExportPackage.maximumFiles)") }
        var seen: Set<String> = []
        files = try list.map { value in
            let entry = try Fields(value, what: "export package file")
            let name = try entry.string("name")
            guard ExportPackage.isPackageName(name), seen.insert(name).inserted else {
                throw fields.fail("files", "\(name.prefix(80)) is not a file name inside the package, or is listed twice")
            }
            let bytes = try entry.integer("bytes")
            guard bytes >= 0 else { throw fields.fail("files", "\(name): a negative size") }
            return Entry(name: name, sha256: try entry.hexString("sha256", count: 32), bytes: bytes)
        }
    }

    /// A relative path of plain names, at most 1,024 bytes, that is not the list itself.
    public static func isPackageName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 1024, name != fileName, !name.contains("\0") else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    public static func parse(_ bytes: [UInt8], what: String) throws -> ExportPackage {
        try ExportPackage(document: SignedDocument.parse(bytes, expectedType: type, what: what))
    }

    /// Why the list does not stand under `authority`; nil when it does: its certificate is the
    /// authority's, for `export-package`, valid when the export was made and not revoked, and the
    /// list is signed by the certified key.
    public func refusal(authority: Ed25519PublicKey, revocations: RevocationList? = nil) -> String? {
        if let reason = signerCertificate.refusal(authority: authority, purpose: KeyCertificate.exportPackage, at: exportedUTC,
                                                  revocations: revocations) {
            return reason
        }
        return document.isSigned(by: signerCertificate.key) ? nil
            : "the list is not signed by the key of \(signerCertificate.holder)'s certificate (\(signerCertificate.key.keyID))"
    }
}
