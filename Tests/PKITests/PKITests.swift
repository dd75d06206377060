import Crypto
import Evidence
import Foundation
import LibCrypto
import Platform
import TestSupport
import Testing
import Wire
@_spi(FixedExpiryValidationTime) import X509
@testable import PKI

/// The authority's X.509 side (docs/PKI.md): what each certificate holds, that it chains to the
/// CA and to nothing else, checked both by swift-certificates' RFC 5280 verifier and by OpenSSL's
/// command-line `openssl verify` (a second implementation); and the signed revocation list.
@Suite("PKI: the authority's CA, TLS certificates and revocation list")
struct PKITests {
    static let now = Date(timeIntervalSince1970: 1_796_112_000)  // 2026-12-01T08:00:00Z

    /// Validates `leaf` against `ca` as RFC 5280 says, at `time`.
    func validates(_ leaf: Certificate, against ca: Certificate, at time: Date = PKITests.now) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([ca])) { RFC5280Policy(fixedExpiryValidationTime: time) }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore()) { return true }
        return false
    }

    @Test("each kind of certificate says who it is for and what it may do, and reads back as such")
    func kinds() throws {
        let ca = try TLSAuthority.create(name: "Test authority", now: Self.now)
        let key = P256.Signing.PrivateKey().publicKey
        let cases: [(TLSSubject, ExtendedKeyUsage.Usage)] = [
            (.device(id: "BC-0001"), .clientAuth),
            (.office(hosts: ["office.example", "127.0.0.1", "::1"]), .serverAuth),
            (.officer(name: "Jana Novak", roles: [.live, .evidence]), .clientAuth),
        ]
        for (subject, usage) in cases {
            let certificate = try ca.issue(subject, publicKey: key, now: Self.now, days: 30)
            let identity = try TLSIdentity(certificate)
            if case .officer(let name, let roles) = subject {
                #expect(identity.subject == .officer(name: name, roles: roles.sorted()))
            } else {
                #expect(identity.subject == subject)
            }
            #expect(try certificate.extensions.extendedKeyUsage.map(Array.init) == [usage])
            #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
            #expect(certificate.issuer == ca.certificate.subject)
            #expect(try certificate.extensions.authorityKeyIdentifier?.keyIdentifier == ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            #expect(identity.serial.count >= 16 && Hex.decode(identity.serial) != nil)
        }
        for bad in ["not a host", "10.0.0.256", "1.2.3", "a..b", "-a.example", "a-.example", String(repeating: "a", count: 64) + ".example"] {
            #expect(throws: PKIError.self, "\(bad)") { try ca.issue(.office(hosts: [bad]), publicKey: key, now: Self.now, days: 30) }
        }
        #expect(try TLSIdentity(try ca.issue(.office(hosts: ["Office.Example"]), publicKey: key, now: Self.now, days: 30)).subject == .office(hosts: ["office.example"]))
        // Serials: positive, at most 20 octets in DER (no sign octet needed), random.
        let serials = try (0..<40).map { _ in try ca.issue(.device(id: "BC-0001"), publicKey: key, now: Self.now, days: 30).serialNumber.bytes }
        #expect(serials.allSatisfy { $0.count == 20 && $0.first! & 0x80 == 0 } && Set(serials.map(Array.init)).count == 40)
        #expect(throws: PKIError.self) { try ca.issue(.office(hosts: []), publicKey: key, now: Self.now, days: 30) }
        #expect(throws: PKIError.self) { try TLSIdentity(ca.certificate) }
    }

    @Test("a certificate chains to its CA while valid, and not to another CA nor after it ends")
    func chains() async throws {
        let ca = try TLSAuthority.create(name: "Test authority", now: Self.now)
        let other = try TLSAuthority.create(name: "Test authority", now: Self.now)
        let device = try ca.issue(.device(id: "BC-0001"), publicKey: P256.Signing.PrivateKey().publicKey, now: Self.now, days: 30)
        #expect(await validates(device, against: ca.certificate))
        #expect(await !validates(device, against: other.certificate), "a CA of the same name but another key")
        #expect(await !validates(device, against: ca.certificate, at: Self.now.addingTimeInterval(31 * 86_400)), "expired")
        #expect(await !validates(device, against: ca.certificate, at: Self.now.addingTimeInterval(-3_600)), "not yet valid")
    }

    @Test("the files bodycamctl writes: keys 0600 and never replaced, the CA loads back only with its own key, and OpenSSL agrees on every purpose")
    func filesAndOpenSSL() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path
        let ca = try TLSAuthority.create(name: "Test authority")
        try ca.write(certificatePath: path + "/ca.pem", keyPath: path + "/ca.key")
        var status = stat()
        #expect(stat(path + "/ca.key", &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(throws: (any Error).self, "a key is never written over") { try ca.write(certificatePath: path + "/ca.pem", keyPath: path + "/ca.key") }
        let loaded = try TLSAuthority.load(certificatePath: path + "/ca.pem", keyPath: path + "/ca.key")
        #expect(loaded.certificate == ca.certificate)
        _ = try PEMFiles.makeKey(at: path + "/stranger.key")
        #expect(throws: PKIError.self) { try TLSAuthority.load(certificatePath: path + "/ca.pem", keyPath: path + "/stranger.key") }

        for (name, subject) in [("device", TLSSubject.device(id: "BC-0001")), ("office", .office(hosts: ["localhost", "127.0.0.1"])),
                                ("officer", .officer(name: "Jana Novak", roles: [.evidence]))] {
            let key = try PEMFiles.makeKey(at: path + "/\(name).key")
            try PEMFiles.write([try ca.issue(subject, publicKey: key.publicKey, days: 30), ca.certificate], to: path + "/\(name).pem")
            #expect(try PEMFiles.certificates(at: path + "/\(name).pem").count == 2)
        }
        // OpenSSL, from the chain files as written: client certificates are for clients, the
        // office's for servers, and nothing verifies under a CA it was not issued by.
        func openssl(_ arguments: [String]) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try openssl(["verify", "-CAfile", path + "/ca.pem", "-purpose", "sslclient", path + "/device.pem"]) == 0)
        #expect(try openssl(["verify", "-CAfile", path + "/ca.pem", "-purpose", "sslclient", path + "/officer.pem"]) == 0)
        #expect(try openssl(["verify", "-CAfile", path + "/ca.pem", "-purpose", "sslserver", path + "/office.pem"]) == 0)
        #expect(try openssl(["verify", "-CAfile", path + "/ca.pem", "-purpose", "sslserver", path + "/device.pem"]) != 0, "a device is not a server")
        #expect(try openssl(["verify", "-CAfile", path + "/ca.pem", "-purpose", "sslclient", path + "/office.pem"]) != 0, "the office is not a client")
        try TLSAuthority.create(name: "Test authority").write(certificatePath: path + "/other.pem", keyPath: path + "/other.key")
        #expect(try openssl(["verify", "-CAfile", path + "/other.pem", "-purpose", "sslclient", path + "/device.pem"]) != 0)
        #expect(try openssl(["x509", "-checkhost", "localhost", "-checkip", "127.0.0.1", "-noout", "-in", path + "/office.pem"]) == 0)
    }

    @Test("the revocation list: signed by the authority, holds every entry, names what it revokes; an altered or foreign list is refused")
    func revocations() throws {
        let authority = try Ed25519PrivateKey()
        let list = try RevocationList.issue([.init(serial: "0a0b", revokedUTC: "2026-12-01T08:00:00.000000Z", reason: "lost"),
                                             .init(serial: "01", revokedUTC: "2026-12-02T08:00:00.000000Z", reason: "left the service")],
                                            key: authority)
        let read = try RevocationList.read(list.document.bytes, authority: authority.publicKey, what: "list")
        #expect(read.entries.map(\.serial) == ["01", "0a0b"])
        #expect(read.revokes(serial: "0a0b") && !read.revokes(serial: "0a0c"))
        #expect(throws: EvidenceError.self) { try RevocationList.read(list.document.bytes, authority: try Ed25519PrivateKey().publicKey, what: "list") }
        var altered = list.document.bytes
        altered[altered.firstIndex(of: UInt8(ascii: "0"))!] = UInt8(ascii: "1")
        #expect(throws: EvidenceError.self) { try RevocationList.read(altered, authority: authority.publicKey, what: "list") }
        #expect(throws: EvidenceError.self, "upper-case serials are not the one spelling") {
            try RevocationList.issue([.init(serial: "0A", revokedUTC: "2026-12-01T08:00:00.000000Z", reason: "x")], key: authority)
        }
    }
}
