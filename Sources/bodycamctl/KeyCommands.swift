import ArgumentParser
import Evidence
import Foundation
import LibCrypto
import Pipeline
import Daemon
import Configuration
import ControlProtocol
import Capture
import Tokens
import Policy
import Controls
import PKI
import Platform
import Wire

/// Runs `body`, turning any error into a one-line message and exit code 2.
func orExit2<R>(_ body: () throws -> R) throws -> R {
    do { return try body() } catch let error as ExitCode { throw error } catch {
        throw BodycamCtl.failure("\(error)")
    }
}

func ensureFolder(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
}

/// Makes an Ed25519 key pair as DIR/NAME.key (secret, never over an existing one) and
/// DIR/NAME.pub; returns the key.
func makeSigningKeyPair(dir: String, name: String) throws -> Ed25519PrivateKey {
    try ensureFolder(dir)
    let key = try Ed25519PrivateKey()
    try KeyFile.write(key, to: "\(dir)/\(name).key")
    try KeyFile.write(key.publicKey, to: "\(dir)/\(name).pub")
    return key
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The device's own keys.", subcommands: [Provision.self, Show.self, InstallCertificate.self])

    struct InstallCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-certificate",
            abstract: "Give the running daemon a certificate the authority issued for its key (root only).",
            discussion: """
                The daemon checks that the certificate is for its own key and device id and has not expired, writes it \
                (evidence.certificate and the store's copy) and journals it; manifests are signed as provisioned from its next start. \
                Exit 0: installed; 1: refused (journaled, with the reason); 2: the file or the daemon cannot be reached.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: SocketOptions
        @Argument(help: "The certificate file (bodycamctl authority certify).") var certificate: String
        func run() throws {
            let bytes = try orExit2 { try readWholeFile(certificate, limit: 1 << 16) }
            try send(.installCertificate(bytes),
                     socket: connection.socket, json: global.json)
        }
    }

    struct Provision: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the device's Ed25519 identity key.",
            discussion: "Writes DIR/device.key (mode 0600, readable only by its owner: run as the daemon's user) and DIR/device.pub. Never overwrites a key.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Folder for the key files.") var dir: String
        func run() throws {
            try orExit2 {
                let key = try makeSigningKeyPair(dir: dir, name: "device")
                if global.json { try printJSON(ProvisionedKey(deviceKeyID: key.publicKey.keyID, public: dir + "/device.pub")) }
                else { print("device key \(key.publicKey.keyID): \(dir)/device.key (secret), \(dir)/device.pub (give this to the authority)") }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a key file's type and key id.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A public key file.") var file: String
        func run() throws {
            try orExit2 {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                let id: String
                if text.hasPrefix(KeyFile.x25519Public) { id = try KeyFile.readRecipient(file).keyID }
                else { id = try KeyFile.readVerifyingKey(file).keyID }
                let type = String(text.prefix { $0 != " " })
                if global.json { try printJSON(KeyListing(keyID: id, type: type)) } else { print("\(type) \(id)") }
            }
        }
    }
}

struct Authority: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The certifying authority (office side).",
                                                    subcommands: [Init.self, Certify.self, CertifyKey.self, Issue.self, Revoke.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the authority: its Ed25519 key (DIR/authority.key, DIR/authority.pub) and its X.509 CA (DIR/ca.key, DIR/ca.pem).",
            discussion: "The Ed25519 key signs device certificates, offload acknowledgements and revocation lists; the CA issues TLS certificates (docs/PKI.md).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Folder for the key files.") var dir: String
        @Option(help: "The CA's common name.") var name = "bodycam authority"
        func run() throws {
            try orExit2 {
                // An authority made before it had a CA gains one; nothing is ever written over.
                if access(dir + "/authority.key", F_OK) != 0 || access(dir + "/ca.key", F_OK) == 0 {
                    let key = try makeSigningKeyPair(dir: dir, name: "authority")
                    print("authority key \(key.publicKey.keyID): \(dir)/authority.key (secret), \(dir)/authority.pub")
                }
                let ca = try TLSAuthority.create(name: name)
                try ca.write(certificatePath: dir + "/ca.pem", keyPath: dir + "/ca.key")
                print("X.509 CA \"\(name)\" (serial \(TLSIdentity.serial(of: ca.certificate))): \(dir)/ca.key (secret), \(dir)/ca.pem")
            }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an X.509 certificate from the authority's CA: OUT/NAME.key (a new P-256 key, secret) and OUT/NAME.pem (the certificate, then the CA's).",
            discussion: "device ID: a camera's TLS client certificate. office HOST [--host HOST…]: the office server's. officer NAME --role ROLE…: a person's TLS client certificate (roles: evidence, live, technician). media-signing ID: a camera's ONVIF Media Signing certificate (OUT/ID-media.key, OUT/ID-media.pem), not for TLS. docs/PKI.md says what each holds.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The authority's folder (ca.key, ca.pem).") var dir: String
        @Option(help: "Folder to write the key and certificate into.") var out: String
        @Argument(help: "device, office, officer or media-signing.") var kind: String
        @Argument(help: "The device id (device, media-signing), the office's first host name, or the officer's name.") var name: String
        @Option(name: .customLong("host"), help: "More host names or addresses of the office.") var hosts: [String] = []
        @Option(name: .customLong("role"), help: "An officer's role (repeat for several).") var roles: [String] = []
        @Option(help: "Days of validity from now.") var days = 825
        func validate() throws {
            guard ["device", "office", "officer", "media-signing"].contains(kind) else { throw ValidationError("the kind must be device, office, officer or media-signing") }
            guard (1...36500).contains(days) else { throw ValidationError("--days must be 1…36500") }
            guard kind == "officer" || roles.isEmpty else { throw ValidationError("--role is for officers") }
            guard kind == "office" || hosts.isEmpty else { throw ValidationError("--host is for the office") }
            for role in roles where TLSRole(rawValue: role) == nil {
                throw ValidationError("unknown role \(role) (roles: \(TLSRole.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { throw ValidationError("the name must be a file name") }
        }
        func run() throws {
            try orExit2 {
                let ca = try TLSAuthority.load(certificatePath: dir + "/ca.pem", keyPath: dir + "/ca.key")
                let subject: TLSSubject = switch kind {
                case "device": .device(id: name)
                case "media-signing": .mediaSigning(deviceID: name)
                case "office": .office(hosts: [name] + hosts)
                default: .officer(name: name, roles: roles.compactMap(TLSRole.init(rawValue:)))
                }
                // The certificate first: a subject it refuses (a bad host name) leaves no key behind.
                let key = PEMFiles.newKey()
                let certificate = try ca.issue(subject, publicKey: key.publicKey, days: days)
                try ensureFolder(out)
                let base = out + "/" + name + (kind == "media-signing" ? "-media" : "")
                try PEMFiles.write(key, to: base + ".key")
                try PEMFiles.write([certificate, ca.certificate], to: base + ".pem")
                print("\(kind) certificate for \(name) (serial \(TLSIdentity.serial(of: certificate))), valid \(days) days: \(base).key (secret), \(base).pem")
            }
        }
    }

    struct CertifyKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "certify-key",
            abstract: "Make an office server's signing key and certify it for one purpose: OUT/HOLDER-offload.key (a new Ed25519 key, secret) and OUT/HOLDER-offload.certificate, or HOLDER-export.* for --purpose export-package.",
            discussion: "offload-acknowledgement: the office signs offload acknowledgements with it as segments arrive. export-package: an evidence officer signs export packages with it (bodycamctl export --signing-key). The authority's own key stays offline (docs/PKI.md, docs/FORMAT.md \"Key certificate\").")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The authority's folder (authority.key).") var dir: String
        @Option(help: "Folder to write the key and certificate into.") var out: String
        @Argument(help: "Who holds the key: the office server's name.") var holder: String
        @Option(help: "Days of validity from now.") var days = 825
        @Option(help: "offload-acknowledgement or export-package.") var purpose = KeyCertificate.offloadAcknowledgement
        func validate() throws {
            guard [KeyCertificate.offloadAcknowledgement, KeyCertificate.exportPackage].contains(purpose) else {
                throw ValidationError("--purpose is offload-acknowledgement or export-package")
            }
            guard (1...36500).contains(days) else { throw ValidationError("--days must be 1…36500") }
            guard !holder.isEmpty, holder.utf8.count <= 64, !holder.contains("/"), holder != ".", holder != ".." else {
                throw ValidationError("the holder must be a file name of at most 64 bytes")
            }
        }
        func run() throws {
            try orExit2 {
                let authority = try KeyFile.readSigningKey(dir + "/authority.key")
                let key = try Ed25519PrivateKey()
                let now = Clock.wallNanoseconds()
                let certificate = try KeyCertificate.issue(
                    holder: holder, key: key.publicKey, purpose: purpose, authority: authority,
                    notBefore: Clock.iso8601(wallNanoseconds: now - 60_000_000_000),
                    notAfter: Clock.iso8601(wallNanoseconds: now + Int64(days) * 86_400_000_000_000))
                try ensureFolder(out)
                let base = out + "/" + holder + (purpose == KeyCertificate.exportPackage ? "-export" : "-offload")
                try KeyFile.write(key, to: base + ".key")
                try writeFileAtomically(base + ".certificate", certificate.document.bytes, mode: 0o644, exclusive: true)
                print("\(purpose) key \(key.publicKey.keyID) of \(holder) (serial \(certificate.serial)), valid until \(certificate.notAfter): "
                      + "\(base).key (secret), \(base).certificate")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate by its serial number: DIR/revocations.list, signed by the authority key, gains it.",
            discussion: "The list holds every revocation so far; give the office and the devices the new one (docs/PKI.md).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The authority's folder (authority.key, revocations.list).") var dir: String
        @Option(help: "The certificate's serial number (hex, as issue printed it).") var serial: String
        @Option(help: "Why.") var reason = "unspecified"
        func validate() throws {
            guard let bytes = Hex.decode(serial), (1...20).contains(bytes.count) else { throw ValidationError("--serial must be 1 to 20 bytes of lower-case hex") }
        }
        func run() throws {
            try orExit2 {
                let key = try KeyFile.readSigningKey(dir + "/authority.key")
                let path = dir + "/revocations.list"
                var entries: [RevocationList.Entry] = []
                var previous: Int64? = nil
                if access(path, F_OK) == 0 {
                    let list = try RevocationList.read(try readWholeFile(path, limit: 16 << 20), authority: key.publicKey, what: path)
                    entries = list.entries
                    previous = ClockParse.nanoseconds(iso8601: list.issuedUTC)
                }
                // Readers keep the newest list: this one is issued after the one before, whatever
                // this machine's clock says.
                let now = max(Clock.wallNanoseconds(), (previous ?? 0) + 1_000)
                if !entries.contains(where: { $0.serial == serial }) {
                    entries.append(RevocationList.Entry(serial: serial, revokedUTC: Clock.iso8601(wallNanoseconds: now), reason: reason))
                }
                let list = try RevocationList.issue(entries, key: key, now: now)
                try writeFileAtomically(path, list.document.bytes, mode: 0o644)
                print("\(path): \(entries.count) revoked, issued \(list.issuedUTC)")
            }
        }
    }

    struct Certify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Certify a device's public key for its device id.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("authority-key"), help: "The authority's secret key file.") var authorityKey: String
        @Option(name: .customLong("device-pub"), help: "The device's public key file.") var devicePub: String
        @Option(name: .customLong("device-id"), help: "The device id the certificate names.") var deviceID: String
        @Option(help: "Days of validity from now.") var days = 1825
        @Option(help: "Where to write the certificate.") var out: String
        func validate() throws {
            guard (1...36500).contains(days) else { throw ValidationError("--days must be 1…36500") }
        }
        func run() throws {
            try orExit2 {
                let now = Clock.wallNanoseconds()
                let certificate = try DeviceCertificate.issue(
                    deviceID: deviceID, deviceKey: try KeyFile.readVerifyingKey(devicePub), authority: try KeyFile.readSigningKey(authorityKey),
                    notBefore: Clock.iso8601(wallNanoseconds: now), notAfter: Clock.iso8601(wallNanoseconds: now + Int64(days) * 86_400_000_000_000))
                try writeFileAtomically(out, certificate.document.bytes, mode: 0o644)
                print("certificate for \(deviceID) (key \(certificate.deviceKey.keyID)) valid until \(certificate.notAfter): \(out)")
            }
        }
    }
}

struct Office: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evidence office identities (X25519): footage is sealed to their public keys.",
                                                    subcommands: [Init.self])
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an identity: DIR/NAME.key (secret, stays in the office) and DIR/NAME.pub (goes on every device as a recipient).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Folder for the key files.") var dir: String
        @Option(help: "Name of the identity (office, escrow, …).") var name = "office"
        func run() throws {
            try orExit2 {
                try ensureFolder(dir)
                let key = try X25519PrivateKey()
                try KeyFile.write(key, to: "\(dir)/\(name).key")
                try KeyFile.write(key.publicKey, to: "\(dir)/\(name).pub")
                print("identity \(name) \(key.publicKey.keyID): \(dir)/\(name).key (secret), \(dir)/\(name).pub (recipient)")
            }
        }
    }
}
