import Configuration
import Settings
import ControlProtocol
import Evidence
import LibCrypto
import Tokens
import Wire

/// The parsers that read outside input, one fuzz target each (docs/TESTING.md, "Fuzzing"). Each
/// takes any bytes; an error is the expected answer to bad input, a trap or a hang is a finding.
enum FuzzTarget: String, CaseIterable {
    /// A sealed segment file: layout, then every chunk opened with the vector identity.
    case segment
    /// A manifest (a signed document with range-checked members).
    case manifest
    /// An audit journal: every line, signatures checked with the vector key.
    case journal
    /// A stop or duty token, checked as the daemon checks one.
    case token
    /// A device certificate.
    case certificate
    /// A key file of each type.
    case keyfile
    /// An offload acknowledgement.
    case ack
    /// A configuration file (TOML through toml++, then every setting typed).
    case config
    /// A control-socket request line.
    case request

    /// The office identity of docs/vectors/segment-ok.json, so that seeds made from the vectors
    /// decrypt and the fuzzer reaches the chunks.
    static let identity = try! X25519PrivateKey(raw: SecretBytes(Base64.decode("5jwPs95VcWdk2dC27ZOqfOTOB/QDx4vnvg0tuFBlePg=")!))
    /// The device key of docs/vectors/journal-ok.json (it signed the vectors' documents too).
    static let deviceKey = try! Ed25519PublicKey(raw: Base64.decode("Ki7SPcFn2HYARND6OPSZzTDWIC0SEzJgGD5NeGh8Q8s=")!)
    static let verifier = TokenVerifier(deviceID: "BC-0001", supervisors: [deviceKey])

    func run(_ bytes: [UInt8]) {
        switch self {
        case .segment:
            guard let layout = try? SealedSegmentLayout(bytes, what: "fuzz") else { return }
            _ = layout.frames
            _ = layout.ticks
            _ = try? layout.decryptChunks(bytes, identity: FuzzTarget.identity, allowUnsealed: true, what: "fuzz")
        case .manifest:
            guard let manifest = try? Manifest.read(bytes, what: "fuzz") else { return }
            _ = manifest.document.isSigned(by: FuzzTarget.deviceKey)
            _ = manifest.baseName
        case .journal:
            _ = AuditJournal.parse(bytes, key: FuzzTarget.deviceKey)
        case .token:
            _ = FuzzTarget.verifier.grant(bytes, expecting: .stop, now: "2026-06-01T00:00:00.000000Z")
            _ = FuzzTarget.verifier.grant(bytes, expecting: .duty, now: "2026-06-01T00:00:00.000000Z")
        case .certificate:
            guard let certificate = try? DeviceCertificate(document: SignedDocument.parse(bytes, expectedType: DeviceCertificate.type, what: "fuzz")) else { return }
            _ = certificate.problems(authority: FuzzTarget.deviceKey)
            _ = certificate.isValid(at: "2026-06-01T00:00:00.000000Z")
        case .keyfile:
            for type in [KeyFile.ed25519Secret, KeyFile.ed25519Public, KeyFile.x25519Secret, KeyFile.x25519Public] {
                guard let raw = try? KeyFile.decode(bytes, type: type, path: "fuzz") else { continue }
                switch type {
                case KeyFile.ed25519Public: _ = try? Ed25519PublicKey(raw: raw)
                case KeyFile.x25519Public: _ = try? X25519PublicKey(raw: raw)
                case KeyFile.x25519Secret: _ = try? X25519PrivateKey(raw: SecretBytes(raw))
                default: _ = try? Ed25519PrivateKey(seed: SecretBytes(raw))
                }
            }
        case .ack:
            guard let ack = try? OffloadAcknowledgement.read(bytes, what: "fuzz") else { return }
            _ = ack.refusal(authority: FuzzTarget.deviceKey)
        case .config:
            guard let text = String(validating: bytes, as: UTF8.self),
                  let file = try? ConfigFile(file: "fuzz.toml", text: text) else { return }
            _ = try? BodycamConfiguration(file)
        case .request:
            _ = try? ControlRequest.parse(bytes)
        }
    }
}
