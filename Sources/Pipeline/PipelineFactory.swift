import LibAV
import V4L2

/// Builds the concrete stages a configuration names.
public enum PipelineFactory {
    public static func makeSource(_ camera: BodycamConfiguration.Camera, frameLimit: Int? = nil) throws -> FrameSource {
        let format = FrameFormat(width: camera.width, height: camera.height, pixelFormat: camera.pixelFormat, framesPerSecond: camera.framesPerSecond)
        switch camera.source {
        case .testPattern:
            return try TestPatternSource(format: format, pacing: camera.pacing, frameLimit: frameLimit)
        case .rawFile:
            return try RawFileSource(path: camera.path, format: format, pacing: camera.pacing)
        case .v4l2:
            return try V4L2FrameSource(settings: V4L2Settings(devicePath: camera.device, width: camera.width, height: camera.height,
                                                              framesPerSecond: camera.framesPerSecond,
                                                              preferredFormats: camera.formats, bufferCount: camera.buffers))
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
}
