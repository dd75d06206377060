import Settings

/// `bodycam-office --config office.toml` (docs/OFFICE.md, "Configuration"): where the office
/// listens, where it keeps the devices' evidence, and the files of its TLS identity and trust.
/// Every path is absolute; a missing or malformed setting is an error naming file, line and key.
public struct OfficeConfiguration: Sendable, Equatable {
    /// The address to listen on (an IPv4 or IPv6 literal, or a host name) and the TCP port
    /// (0: any free port, which the server reports once bound).
    public var listenHost = "0.0.0.0"
    public var listenPort = 8443
    /// The office's store: `devices/ID/` (each device's evidence, laid out as on the device),
    /// `status/ID.json` (the last heartbeat), `access.log` (the access journal).
    public var storePath = "/var/lib/bodycam-office"
    /// The office server's TLS certificate chain (PEM: its certificate, then the CA's) and key,
    /// as `bodycamctl authority issue office` writes them.
    public var certificatePath = "/etc/bodycam-office/office.pem"
    public var keyPath = "/etc/bodycam-office/office.key"
    /// The authority's CA certificate: the only one client certificates may chain to.
    public var caPath = "/etc/bodycam-office/ca.pem"
    /// The authority's Ed25519 public key: checks the revocation list and verifies stores.
    public var authorityPath = "/etc/bodycam-office/authority.pub"
    /// The authority's signed revocation list; empty: none (nothing is revoked).
    public var revocationsPath = ""
    /// The office's Ed25519 key for offload acknowledgements (`bodycamctl authority certify-key`)
    /// and the authority's certificate for it; both empty: the office acknowledges nothing and
    /// devices keep every segment (docs/OFFICE.md, "Acknowledgements").
    public var offloadKeyPath = ""
    public var offloadCertificatePath = ""
    /// A verified segment is acknowledged once it ended this long ago, or once 32 wait, or at
    /// once when the camera is short of storage (0: at once).
    public var acknowledgeAfterSeconds = 300
    /// The office's X25519 identity (`bodycamctl office init`), which every segment is sealed
    /// to: live view decrypts the open segment's chunks with it as they arrive. Empty: no live view.
    public var identityPath = ""
    /// The Ed25519 key that signs the access journal (made at first start when absent; its
    /// public half is written beside the journal as `access.pub`).
    public var journalKeyPath = "/var/lib/bodycam-office/access.key"
    /// The largest request body, in bytes: an upload is sent in pieces no larger (4 MiB).
    public var maximumBodyBytes = 4 << 20
    /// Connections open at once (more are closed as they come), and bytes of request bodies
    /// held at once across them (beyond it, an upload is answered 503 and retried later).
    public var maximumConnections = 1024
    public var maximumBufferedBytes = 256 << 20
    /// Event-loop threads (0: one per core) and blocking-I/O threads (file writes, fdatasync,
    /// verification).
    public var eventLoopThreads = 0
    public var ioThreads = 4

    public init() {}

    /// Reads `[office]` from a TOML file; unknown settings are refused.
    public init(file: ConfigFile) throws {
        var reader = ConfigReader(file: file)
        let absolute = { (path: String) in path.hasPrefix("/") }
        listenHost = try reader.string("office.listen_host", default: listenHost, where: { !$0.isEmpty && !$0.contains("/") }, "an address or a host name")
        listenPort = try reader.integer("office.listen_port", default: listenPort, in: 0...65535)
        storePath = try reader.string("office.store", default: storePath, where: absolute, "an absolute path")
        certificatePath = try reader.string("office.certificate", default: certificatePath, where: absolute, "an absolute path")
        keyPath = try reader.string("office.key", default: keyPath, where: absolute, "an absolute path")
        caPath = try reader.string("office.ca", default: caPath, where: absolute, "an absolute path")
        authorityPath = try reader.string("office.authority", default: authorityPath, where: absolute, "an absolute path")
        revocationsPath = try reader.string("office.revocations", default: revocationsPath, where: { $0.isEmpty || $0.hasPrefix("/") },
                                            "an absolute path or empty")
        let optional = { (path: String) in path.isEmpty || path.hasPrefix("/") }
        offloadKeyPath = try reader.string("office.offload_key", default: offloadKeyPath, where: optional, "an absolute path or empty")
        offloadCertificatePath = try reader.string("office.offload_certificate", default: offloadCertificatePath, where: optional,
                                                   "an absolute path or empty")
        if offloadKeyPath.isEmpty != offloadCertificatePath.isEmpty {
            throw reader.error(offloadKeyPath.isEmpty ? "office.offload_certificate" : "office.offload_key",
                               "offload_key and offload_certificate go together: set both or neither")
        }
        acknowledgeAfterSeconds = try reader.integer("office.acknowledge_after_seconds", default: acknowledgeAfterSeconds, in: 0...86_400)
        identityPath = try reader.string("office.identity", default: identityPath, where: optional, "an absolute path or empty")
        journalKeyPath = try reader.string("office.journal_key", default: storePath + "/access.key", where: absolute, "an absolute path")
        maximumBodyBytes = try reader.integer("office.maximum_body_kb", default: maximumBodyBytes >> 10, in: 64...65536) << 10
        maximumConnections = try reader.integer("office.maximum_connections", default: maximumConnections, in: 1...100_000)
        maximumBufferedBytes = try reader.integer("office.maximum_buffered_mb", default: maximumBufferedBytes >> 20, in: 1...65536) << 20
        eventLoopThreads = try reader.integer("office.event_loop_threads", default: eventLoopThreads, in: 0...64)
        ioThreads = try reader.integer("office.io_threads", default: ioThreads, in: 1...64)
        try reader.rejectUnknown()
    }

    public static func load(path: String) throws -> OfficeConfiguration {
        try OfficeConfiguration(file: ConfigFile.read(path: path))
    }
}
