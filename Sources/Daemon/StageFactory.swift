import Capture
import Glibc
import Configuration
import LibCrypto
import MediaSigning
import Platform
import Controls
import LibAV
import Pipeline
import Policy
import V4L2
import V4L2Simulator

/// Builds the concrete stages a configuration names (the daemon and `bodycamctl`'s diagnostics).
public enum StageFactory {
    /// The camera `camera.source` names; `frameLimit` ends a test pattern after that many pictures.
    public static func makeSource(_ camera: BodycamConfiguration.Camera, frameLimit: Int? = nil) throws -> FrameSource {
        let format = FrameFormat(width: camera.width, height: camera.height, pixelFormat: camera.pixelFormat, framesPerSecond: camera.framesPerSecond)
        switch camera.source {
        case .testPattern:
            return try TestPatternSource(format: format, pacing: camera.pacing, frameLimit: frameLimit)
        case .rawFile:
            return try RawFileSource(path: camera.path, format: format, pacing: camera.pacing)
        case .v4l2, .simulatedV4L2:
            let settings = V4L2Settings(devicePath: camera.device, width: camera.width, height: camera.height,
                                        framesPerSecond: camera.framesPerSecond, preferredFormats: camera.formats, bufferCount: camera.buffers)
            guard camera.source == .simulatedV4L2 else { return try V4L2FrameSource(settings: settings) }
            let simulated = SimulatedV4L2(framesPerSecond: camera.framesPerSecond, timestamps: camera.simulateTimestamps,
                                          maxFramesPerSecond: camera.simulateMaxFramesPerSecond)
            return try V4L2FrameSource(settings: settings, system: simulated)
        }
    }

    /// The ONVIF Media Signing stage, when `[evidence] media_signing_key` is set: the key and
    /// the certificate chain (the root left out of the stream: a validator brings its own).
    /// Throws when either file cannot be read or is not what it should be.
    public static func makeMediaSigner(_ configuration: BodycamConfiguration, software: String) throws -> PacketStage? {
        guard let keyPath = configuration.mediaSigningKeyPath, let certificatePath = configuration.mediaSigningCertificatePath else { return nil }
        let key = try ECDSASigningKey(pem: try readWholeFile(keyPath, limit: 1 << 16))
        var chain = try X509Certificate.chain(pem: try readWholeFile(certificatePath, limit: 1 << 20))
        if chain.count > 1, let root = chain.last, root.isSelfSigned { chain.removeLast() }
        // A pair that does not belong together would sign every GOP so that nothing verifies.
        guard chain[0].matches(key) else {
            throw SystemError.file(path: certificatePath, call: "a certificate for the key in \(keyPath)", errno: EINVAL)
        }
        guard chain[0].organizationalUnits.first == "media-signing", chain[0].commonNames == [configuration.deviceID] else {
            throw SystemError.file(path: certificatePath, call: "a media-signing certificate of \(configuration.deviceID)", errno: EINVAL)
        }
        // An SEI's TLV holds at most 65,535 bytes.
        guard chain.reduce(0, { $0 + $1.pem.count }) < 60_000 else {
            throw SystemError.file(path: certificatePath, call: "a certificate chain under 60,000 bytes", errno: EINVAL)
        }
        let signer = MediaSigner(key: key, certificatePEM: chain.flatMap(\.pem),
                                 vendor: .init(firmware: software, serial: configuration.deviceID, manufacturer: "bodycam"))
        return SigningStage(signer: signer)
    }

    public static func makeOverlay(_ configuration: BodycamConfiguration) -> Overlay? {
        configuration.overlay.enabled
            ? Overlay(settings: configuration.overlay, deviceID: configuration.deviceID, officerID: configuration.officerID)
            : nil
    }

    /// The GPIO backend `controls.backend` names, with its lines: by name (gpio-line-names), or by
    /// chip and offset where `controls.lines` places them (as a board profile does).
    public static func makeGPIO(_ controls: BodycamConfiguration.Controls, outputs: [OutputLine] = OutputLine.allCases) throws -> GPIOBackend {
        switch controls.backend {
        case .simulated:
            return try SimulatedGPIO()
        case .gpiod:
            func spec(_ line: ControlLine) -> LineSpec {
                let place = controls.lines.first { $0.line == line }
                let isButton = if case .button = line { true } else { false }
                return LineSpec(name: line.name, chip: place?.chip, offset: place?.offset,
                                activeLow: line == .output(.powerHold) ? controls.powerHoldActiveLow : controls.activeLow,
                                bias: isButton ? controls.bias : .asIs)
            }
            return try LibgpiodBackend(inputs: Dictionary(uniqueKeysWithValues: Button.allCases.map { ($0, spec(.button($0))) }),
                                       outputs: Dictionary(uniqueKeysWithValues: outputs.map { ($0, spec(.output($0))) }))
        }
    }
}

/// The media signer as the recorder's packet stage: each packet's SEI times are the wall clock
/// as it passes (the GOP's first and next IDR, to the millisecond).
final class SigningStage: PacketStage {
    let signer: MediaSigner
    init(signer: MediaSigner) { self.signer = signer }
    /// A stopped recording keeps the IDR that closes its last GOP and the access unit after it,
    /// which carries that GOP's SEI: every picture up to the stop is signed in the recording.
    var closingPackets: Int { 2 }
    func process(_ packet: inout EncodedPacket) throws {
        packet.data = signer.process(accessUnit: packet.data, unixNanoseconds: Clock.wallNanoseconds())
        if let failure = signer.takeFailure() { throw failure }  // the packet keeps what was added
    }
}
