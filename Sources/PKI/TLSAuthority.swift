import Crypto
import Foundation
import Platform
import SwiftASN1
import X509

/// What an X.509 certificate of the authority's is for (docs/PKI.md): the subject's kind is its
/// organisational unit, `device`, `office`, `officer` (TLS) or `media-signing` (not for TLS).
public enum TLSSubject: Equatable, Sendable {
    /// A camera's TLS client certificate; the common name is its device id.
    case device(id: String)
    /// The evidence office server's certificate, for the host names and addresses clients reach
    /// it by (the first is the common name).
    case office(hosts: [String])
    /// A person's TLS client certificate, with the roles the office grants them.
    case officer(name: String, roles: [TLSRole])
    /// A camera's ONVIF Media Signing certificate (docs/EXPORT.md): its key signs the H.264
    /// stream; the common name is its device id. No TLS use: TLS refuses its kind.
    case mediaSigning(deviceID: String)
}

/// An officer's role at the office (docs/PKI.md): one organisational unit `role:NAME` each.
public enum TLSRole: String, CaseIterable, Sendable, Comparable {
    /// Reads and exports evidence.
    case evidence
    /// Watches a recording camera's live view.
    case live
    /// Reads the fleet's status and journals.
    case technician
    public static func < (a: TLSRole, b: TLSRole) -> Bool { a.rawValue < b.rawValue }
}

public enum PKIError: Error, CustomStringConvertible, Equatable {
    case malformed(what: String, reason: String)
    case notAuthorityCertificate(String)
    public var description: String {
        switch self {
        case .malformed(let what, let reason): return "\(what): \(reason)"
        case .notAuthorityCertificate(let reason): return "not a certificate of this authority: \(reason)"
        }
    }
}

/// The authority's X.509 certificate authority (docs/PKI.md): a P-256 key and a self-signed CA
/// certificate, which issues the devices', the office's and the officers' TLS certificates.
/// Devices and the office trust only this CA. (P-256 rather than the Ed25519 of the evidence
/// documents: browsers present and accept only RSA and ECDSA certificates in TLS.)
public struct TLSAuthority {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// The CA's subject: `CN=NAME, O=bodycam`.
    public static func create(name: String, now: Date = Date(), years: Int = 10) throws -> TLSAuthority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            CommonName(name)
            OrganizationName("bodycam")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let certificate = try Certificate(
            version: .v3, serialNumber: TLSAuthority.serialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(Double(years) * 365.25 * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return TLSAuthority(certificate: certificate, key: key)
    }

    /// Reads the CA certificate (PEM) and its key (PKCS #8 PEM), and checks they belong together.
    public static func load(certificatePath: String, keyPath: String) throws -> TLSAuthority {
        let certificate = try PEMFiles.certificates(at: certificatePath).first
            ?? { throw PKIError.malformed(what: certificatePath, reason: "no certificate") }()
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: try readWholeFile(keyPath, limit: 1 << 16), as: UTF8.self))
        } catch {
            throw PKIError.malformed(what: keyPath, reason: "not a P-256 private key in PEM (\(error))")
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw PKIError.malformed(what: keyPath, reason: "not the key of the CA certificate \(certificatePath)")
        }
        guard case .isCertificateAuthority = try certificate.extensions.basicConstraints, try certificate.extensions.keyUsage?.keyCertSign == true,
              try certificate.extensions.subjectKeyIdentifier != nil else {
            throw PKIError.malformed(what: certificatePath, reason: "not a CA certificate (basic constraints, key usage keyCertSign, subject key identifier)")
        }
        return TLSAuthority(certificate: certificate, key: key)
    }

    /// Writes the key (mode 0600, never over an existing file) and the certificate (0644).
    public func write(certificatePath: String, keyPath: String) throws {
        try writeFileAtomically(keyPath, Array(key.pemRepresentation.utf8), mode: 0o600, exclusive: true)
        try writeFileAtomically(certificatePath, Array(try certificate.serializeAsPEM().pemString.utf8) + [0x0A], mode: 0o644)
    }

    /// Issues a certificate for `subject`'s `publicKey`, valid from a minute ago (clock skew)
    /// for `days`: `CN`, `O=bodycam`, `OU` = the kind (and `role:NAME` for each role); the
    /// extended key usage `clientAuth` (device, officer) or `serverAuth` with the host names and
    /// addresses as subject alternative names (office); the authority's key identifier.
    public func issue(_ subject: TLSSubject, publicKey: P256.Signing.PublicKey, now: Date = Date(), days: Int) throws -> Certificate {
        let name: DistinguishedName
        var alternativeNames: [GeneralName] = []
        var usage: ExtendedKeyUsage.Usage?
        switch subject {
        case .mediaSigning(let id):
            name = try DistinguishedName { CommonName(id); OrganizationName("bodycam"); OrganizationalUnitName("media-signing") }
            usage = nil
        case .device(let id):
            name = try DistinguishedName { CommonName(id); OrganizationName("bodycam"); OrganizationalUnitName("device") }
            usage = .clientAuth
        case .office(let hosts):
            guard let first = hosts.first else { throw PKIError.malformed(what: "office certificate", reason: "no host name") }
            name = try DistinguishedName { CommonName(first); OrganizationName("bodycam"); OrganizationalUnitName("office") }
            alternativeNames = try hosts.map(TLSAuthority.generalName)
            usage = .serverAuth
        case .officer(let person, let roles):
            var units = [RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationalUnitName, utf8String: "officer"))]
            for role in Set(roles).sorted() {
                units.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationalUnitName, utf8String: "role:" + role.rawValue)))
            }
            name = DistinguishedName([RelativeDistinguishedName(.init(type: .RDNAttributeType.commonName, utf8String: person)),
                                      RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationName, utf8String: "bodycam"))] + units)
            usage = .clientAuth
        }
        let key = Certificate.PublicKey(publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            if let usage { try ExtendedKeyUsage([usage]) }
            SubjectKeyIdentifier(hash: key)
            AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            if !alternativeNames.isEmpty { SubjectAlternativeNames(alternativeNames) }
        }
        return try Certificate(
            version: .v3, serialNumber: TLSAuthority.serialNumber(), publicKey: key,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: certificate.subject, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(self.key))
    }

    /// A random positive serial of at most 20 octets in DER (RFC 5280, 4.1.2.2): 159 random
    /// bits, so no leading zero octet is ever needed for the sign.
    static func serialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = bytes[0] & 0x7F | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// A host as a subject alternative name: an IPv4 or IPv6 address, else a DNS name (RFC 1123:
    /// labels of 1–63 letters, digits and inner hyphens, 253 characters at most, written in
    /// lower case; a name of digits and dots only must be an address).
    static func generalName(_ host: String) throws -> GeneralName {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) })) }
        if inet_pton(AF_INET6, host, &v6) == 1 { return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) })) }
        let name = host.lowercased()
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let isLabel = { (label: Substring) in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { $0 == 0x2D || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }
        }
        guard name.utf8.count <= 253, labels.allSatisfy(isLabel), !name.utf8.allSatisfy({ $0 == 0x2E || (0x30...0x39).contains($0) }) else {
            throw PKIError.malformed(what: "office certificate", reason: "\(host) is not a host name or an address")
        }
        return .dnsName(name)
    }
}

/// What one of the authority's certificates says of its subject (docs/PKI.md), read back.
public struct TLSIdentity: Equatable, Sendable {
    public let subject: TLSSubject
    /// The certificate's serial number, lower-case hex (what a revocation list names).
    public let serial: String

    public init(_ certificate: Certificate) throws {
        func values(_ type: ASN1ObjectIdentifier) -> [String] {
            certificate.subject.flatMap { $0 }.filter { $0.type == type }.map { String(describing: $0.value) }
        }
        guard let common = values(.RDNAttributeType.commonName).first else {
            throw PKIError.notAuthorityCertificate("no common name")
        }
        let units = values(.RDNAttributeType.organizationalUnitName)
        switch units.first {
        case "device": subject = .device(id: common)
        case "office":
            let names = (try certificate.extensions.subjectAlternativeNames).map { Array($0) } ?? []
            subject = .office(hosts: names.compactMap(TLSIdentity.host))
        case "officer":
            let roles = units.dropFirst().compactMap { $0.hasPrefix("role:") ? TLSRole(rawValue: String($0.dropFirst(5))) : nil }
            subject = .officer(name: common, roles: roles.sorted())
        default:
            throw PKIError.notAuthorityCertificate("its organisational unit is not device, office or officer")
        }
        serial = TLSIdentity.serial(of: certificate)
    }

    /// A certificate's serial number in lower-case hex.
    public static func serial(of certificate: Certificate) -> String {
        certificate.serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// A subject alternative name as the host it names (a DNS name, or an address written out).
    static func host(_ name: GeneralName) -> String? {
        switch name {
        case .dnsName(let host): return host
        case .ipAddress(let octets):
            let bytes = Array(octets.bytes)
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = bytes.count == 4 ? AF_INET : AF_INET6
            guard bytes.count == 4 || bytes.count == 16, inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return nil }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        default: return nil
        }
    }
}

/// PEM files of certificates (RFC 7468), read with swift-certificates.
public enum PEMFiles {
    /// Every certificate in a PEM file (a chain, or one), in order.
    public static func certificates(at path: String) throws -> [Certificate] {
        let text = String(decoding: try readWholeFile(path, limit: 1 << 20), as: UTF8.self)
        do {
            return try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
        } catch {
            throw PKIError.malformed(what: path, reason: "not a PEM certificate (\(error))")
        }
    }

    /// Writes `certificates` as one PEM file (mode 0644).
    public static func write(_ certificates: [Certificate], to path: String) throws {
        let text = try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
        try writeFileAtomically(path, Array(text.utf8), mode: 0o644)
    }

    /// A fresh P-256 key (for `write(_:to:)` once what it is for has been made).
    public static func newKey() -> P256.Signing.PrivateKey { P256.Signing.PrivateKey() }

    /// Writes a fresh P-256 key (PKCS #8 PEM, mode 0600, never over an existing file) and returns it.
    public static func makeKey(at path: String) throws -> P256.Signing.PrivateKey {
        let key = P256.Signing.PrivateKey()
        try write(key, to: path)
        return key
    }

    /// Writes a P-256 key (PKCS #8 PEM, mode 0600, never over an existing file).
    public static func write(_ key: P256.Signing.PrivateKey, to path: String) throws {
        try writeFileAtomically(path, Array(key.pemRepresentation.utf8), mode: 0o600, exclusive: true)
    }
}
