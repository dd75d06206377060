import Capture
import Configuration
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

    /// Opens the encoder for what `source` delivers. For a V4L2 camera call this after
    /// `source.start()`, when the negotiated format is known.
    public static func makeEncoder(_ configuration: BodycamConfiguration, for source: FrameSource) throws -> LibAVVideoEncoder {
        try LibAVVideoEncoder(settings: configuration.encoder, format: source.format)
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
