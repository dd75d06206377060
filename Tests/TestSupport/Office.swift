import Evidence
import Foundation
import LibCrypto
import Office
import PKI
import Platform
import Uplink

/// An authority (CA, Ed25519 key, revocation list), an office server on loopback with its
/// certificate, and client certificates for devices and officers, all in one folder.
public final class OfficeFixture {
    public let folder: TemporaryDirectory
    public let keys: Keys
    public let ca: TLSAuthority
    public let server: OfficeServer
    public let port: Int
    public var path: String { folder.path }

    /// `revoked`: names of client certificates (as `client(_:)` names them) to put on the list.
    /// `extraHosts`: more names and addresses in the office's certificate (besides loopback).
    /// `acknowledging`: the office has an offload acknowledgement key the authority certified
    /// (`offload.key`, `offload.certificate` in the folder).
    /// `identity`: the office's X25519 identity (the recipient the cameras seal to), for live view.
    public init(revoked: [String] = [], extraHosts: [String] = [], maximumBodyBytes: Int? = nil, acknowledging: Bool = true,
                identity: X25519PrivateKey? = nil, acknowledgeAfterSeconds: Int = 0) throws {
        keys = Pristine.shared.keys
        let folder = try TemporaryDirectory("bodycam-office")
        let ca = try TLSAuthority.create(name: "Test authority")
        self.folder = folder
        self.ca = ca
        try PEMFiles.write([ca.certificate], to: folder.path + "/ca.pem")
        try KeyFile.write(keys.authority.publicKey, to: folder.path + "/authority.pub")
        try OfficeFixture.issue("office", .office(hosts: ["127.0.0.1", "localhost"] + extraHosts), by: ca, in: folder.path)
        for (name, subject) in OfficeFixture.clients { try OfficeFixture.issue(name, subject, by: ca, in: folder.path) }
        var settings = OfficeConfiguration()
        settings.listenHost = "127.0.0.1"
        settings.listenPort = 0
        settings.storePath = folder.path + "/office"
        settings.certificatePath = folder.path + "/office.pem"
        settings.keyPath = folder.path + "/office.key"
        settings.caPath = folder.path + "/ca.pem"
        settings.authorityPath = folder.path + "/authority.pub"
        settings.journalKeyPath = folder.path + "/office/access.key"
        settings.eventLoopThreads = 1
        settings.ioThreads = 2
        if let maximumBodyBytes { settings.maximumBodyBytes = maximumBodyBytes }
        if let identity {
            try KeyFile.write(identity, to: folder.path + "/identity.key")
            settings.identityPath = folder.path + "/identity.key"
        }
        if acknowledging {
            let key = try Ed25519PrivateKey()
            let certificate = try KeyCertificate.issue(holder: "test office", key: key.publicKey, purpose: KeyCertificate.offloadAcknowledgement,
                                                       authority: keys.authority, notBefore: "2026-01-01T00:00:00.000000Z",
                                                       notAfter: "2099-01-01T00:00:00.000000Z")
            try KeyFile.write(key, to: folder.path + "/offload.key")
            try writeFileAtomically(folder.path + "/offload.certificate", certificate.document.bytes)
            settings.offloadKeyPath = folder.path + "/offload.key"
            settings.offloadCertificatePath = folder.path + "/offload.certificate"
            settings.acknowledgeAfterSeconds = acknowledgeAfterSeconds
        }
        if !revoked.isEmpty {
            let serials = try revoked.map { TLSIdentity.serial(of: try PEMFiles.certificates(at: folder.path + "/\($0).pem")[0]) }
            let list = try RevocationList.issue(serials.map { .init(serial: $0, revokedUTC: "2026-11-30T00:00:00.000000Z", reason: "lost") },
                                                key: keys.authority)
            try writeFileAtomically(folder.path + "/revocations.list", list.document.bytes)
            settings.revocationsPath = folder.path + "/revocations.list"
        }
        server = try OfficeServer(configuration: settings)
        port = try server.start()
    }

    public static let clients: [(String, TLSSubject)] = [
        ("BC-EV-1", .device(id: "BC-EV-1")), ("BC-EV-2", .device(id: "BC-EV-2")), ("BC-PROC-1", .device(id: "BC-PROC-1")),
        ("evidence", .officer(name: "Eva Evidence", roles: [.evidence])),
        ("technician", .officer(name: "Tom Technician", roles: [.technician])),
        ("live", .officer(name: "Lia Live", roles: [.live])),
    ]

    private static func issue(_ name: String, _ subject: TLSSubject, by authority: TLSAuthority, in folder: String) throws {
        let key = PEMFiles.newKey()
        let certificate = try authority.issue(subject, publicKey: key.publicKey, days: 30)
        try PEMFiles.write([certificate, authority.certificate], to: folder + "/\(name).pem")
        try PEMFiles.write(key, to: folder + "/\(name).key")
    }

    /// A device certificate for BC-EV-1 from another authority's CA.
    public func issueForeign() throws {
        try OfficeFixture.issue("foreign", .device(id: "BC-EV-1"), by: try TLSAuthority.create(name: "Another authority"), in: path)
    }

    /// A certificate of this authority's CA for `subject` that ended ten days ago, as `name`.
    public func issueExpired(_ name: String, _ subject: TLSSubject) throws {
        let key = PEMFiles.newKey()
        let certificate = try ca.issue(subject, publicKey: key.publicKey, now: Date(timeIntervalSinceNow: -40 * 86_400), days: 30)
        try PEMFiles.write([certificate, ca.certificate], to: path + "/\(name).pem")
        try PEMFiles.write(key, to: path + "/\(name).key")
    }

    /// The office's base URL.
    public var url: String { "https://127.0.0.1:\(port)" }

    /// A client with the named certificate ("" for none).
    public func client(_ name: String) throws -> OfficeClient {
        try OfficeClient(OfficeLink(url: "https://127.0.0.1:\(port)", certificatePath: name.isEmpty ? "" : path + "/\(name).pem",
                                    keyPath: name.isEmpty ? "" : path + "/\(name).key", caPath: path + "/ca.pem"))
    }

    /// Writes an office.toml for a `bodycam-office` process with this fixture's TLS files; returns its path.
    public func writeConfig(listenHost: String, port: Int, store: String) throws -> String {
        let config = path + "/office.toml"
        try """
        [office]
        listen_host = "\(listenHost)"
        listen_port = \(port)
        store = "\(store)"
        certificate = "\(path)/office.pem"
        key = "\(path)/office.key"
        ca = "\(path)/ca.pem"
        authority = "\(path)/authority.pub"
        \(FileManager.default.fileExists(atPath: path + "/offload.key")
            ? "offload_key = \"\(path)/offload.key\"\noffload_certificate = \"\(path)/offload.certificate\"\nacknowledge_after_seconds = 0" : "")

        """.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Starts a `bodycam-office` process (`command`: the program and its arguments) and returns
    /// it with the first line of its standard error ("… listening on HOST:PORT, store …").
    public static func launch(_ command: [String]) throws -> (Process, String) {
        let office = Process()
        office.executableURL = URL(fileURLWithPath: command[0])
        office.arguments = Array(command.dropFirst())
        let errors = Pipe()
        office.standardError = errors
        try office.run()
        var line = [UInt8]()
        while let byte = try errors.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        return (office, String(decoding: line, as: UTF8.self))
    }

    /// The files of `store`'s upload plan whose copy in `copy` (default: BC-EV-1's folder at
    /// this office) is missing or differs.
    public func differingFiles(store: String, copy: String? = nil) throws -> [String] {
        let folder = copy ?? path + "/office/devices/BC-EV-1"
        return try StoreUploader.plan(store: store).map(\.name).filter {
            (try? readWholeFile(folder + "/" + $0)) != (try readWholeFile(store + "/" + $0))
        }
    }

    /// Stops the server (work in flight finishes) and reads its access journal.
    public func stopAndReadJournal() throws -> AuditJournal.Parsed {
        server.stop()
        let key = try KeyFile.readVerifyingKey(path + "/office/access.pub")
        return AuditJournal.parse(try readWholeFile(path + "/office/access.log"), key: key)
    }

    deinit {
        server.stop()
        folder.cleanup()
    }
}


/// Checks `condition` until it holds (true) or `seconds` have passed (false): a wait on an event
/// the code under test makes visible (a socket, a status, a journaled record, a file growing),
/// with a deadline.
public func eventually(within seconds: Double = 30, _ condition: () throws -> Bool) -> Bool {
    let deadline = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
    while Clock.monotonicNanoseconds() < deadline {
        if (try? condition()) == true { return true }
        Clock.sleep(untilMonotonic: Clock.monotonicNanoseconds() + 10_000_000)
    }
    return (try? condition()) == true
}
