import Foundation
import LibAV
import LibCrypto
import Evidence
import Pipeline
import Capture
import Platform


public func names(_ directory: String, suffix: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }.sorted()
}

/// The office's identity and a device key, as provisioning makes them.
public struct Keys {
    public let office = try! X25519PrivateKey()
    public let escrow = try! X25519PrivateKey()
    public let device = try! Ed25519PrivateKey()
    public let authority = try! Ed25519PrivateKey()
    public init() {}
}

public func makeVault(_ directory: String, keys: Keys, deviceID: String = "BC-EV-1", certify: Bool = true) throws -> EvidenceVault {
    if certify && !FileManager.default.fileExists(atPath: directory + "/device.certificate") {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificate = try DeviceCertificate.issue(deviceID: deviceID, deviceKey: keys.device.publicKey, authority: keys.authority,
                                                      notBefore: "2020-01-01T00:00:00.000000Z", notAfter: "2099-01-01T00:00:00.000000Z")
        _ = FileManager.default.createFile(atPath: directory + "/device.certificate", contents: Data(certificate.document.bytes))
    }
    return try EvidenceVault(configuration: .init(directory: directory, deviceID: deviceID, recipients: [keys.office.publicKey, keys.escrow.publicKey],
                                                  deviceKey: keys.device, provisioned: certify))
}

/// Records `frames` test-pattern pictures (30 fps, 1 s segments) into a vault.
@discardableResult
public func recordEvidence(into vault: EvidenceVault, frames: Int, deviceID: String = "BC-EV-1", width: Int = 160, height: Int = 120) throws -> Recorder {
    _ = quietLibAV
    let format = FrameFormat(width: width, height: height, pixelFormat: .yuv420p, framesPerSecond: 30)
    let source = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
    var settings = VideoEncoderSettings()
    settings.preset = "ultrafast"
    let recorder = Recorder(configuration: .init(deviceID: deviceID, officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 1),
                            source: source, overlay: nil, store: vault,
                            makeEncoder: { try makeVideoEncoder(settings: settings, format: $0) })
    recorder.startRecording()
    try recorder.run()
    return recorder
}

/// One recorded store (150 frames), made once per test process and copied by tests that damage it.
// Immutable after init.
public final class Pristine: @unchecked Sendable {
    public static let shared = Pristine()
    public let directory: TemporaryDirectory
    public let keys = Keys()
    private init() {
        directory = try! TemporaryDirectory("bodycam-pristine")
        try! recordEvidence(into: try! makeVault(directory.path + "/store", keys: keys), frames: 150)
    }
    public var store: String { directory.path + "/store" }

    public func copy() throws -> String {
        let copy = NSTemporaryDirectory() + "bodycam-tamper-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: store, toPath: copy)
        return copy
    }
}

