import LibAV
import LibX264
import Capture

/// `VideoEncoder` over libx264 itself, with the settings libavcodec's libx264 wrapper gave it
/// (the same preset and tune; ABR with a VBV of the bit rate over two seconds; closed GOPs, no
/// scene cuts, forced pictures IDR; SPS and PPS out of band; x264's own thread count), so the
/// recording path does not load libavcodec and its dependency chain for one encoder. I420 and
/// NV12 pictures go in as they are; YUYV is converted to I420 with libswscale first. Timestamps come from
/// capture time (`CaptureTimeline`). Not thread-safe: the pipeline thread drives it.
public final class X264VideoEncoder: VideoEncoder {
    /// The `VideoEncoderSettings.codec` this encoder serves.
    public static let codecName = "libx264"

    private let encoder: X264Encoder
    private let converter: PixelConverter?
    private var timeline: CaptureTimeline
    public let settings: VideoEncoderSettings
    public let format: FrameFormat
    public let parameters: VideoStreamParameters
    public var timeBase: Rational { VideoEncoderSettings.timeBase }
    /// The pixel format the codec is fed with.
    public let codecPixelFormat: PixelFormat
    public var convertsPixels: Bool { converter != nil }
    public var name: String {
        let conversion = converter.map { " (converted from \($0.source))" } ?? ""
        return "libx264 \(settings.preset) \(settings.rateDescription) \(codecPixelFormat)\(conversion)"
    }

    /// Throws `X264Error` for settings libx264 refuses (an unknown preset or tune, an odd
    /// size), or `AVError` when the conversion cannot be set up.
    public init(settings: VideoEncoderSettings, format: FrameFormat) throws {
        precondition(settings.codec == X264VideoEncoder.codecName)
        self.settings = settings
        self.format = format
        timeline = CaptureTimeline(framesPerSecond: format.framesPerSecond)
        let bitrate = settings.bitrateKbps
        codecPixelFormat = format.pixelFormat == .nv12 ? .nv12 : .yuv420p
        encoder = try X264Encoder(X264Settings(
            input: codecPixelFormat == .nv12 ? .nv12 : .i420, width: format.width, height: format.height, framesPerSecond: format.framesPerSecond,
            timescale: Int(VideoEncoderSettings.timeBase.denominator),
            preset: settings.preset, tune: settings.tune.isEmpty ? nil : settings.tune,
            bitrateKbps: bitrate, vbvMaxKbps: bitrate, vbvBufferKbits: bitrate.map { $0 * 2 },
            crf: bitrate == nil ? Double(settings.crf ?? 23) : nil,
            keyintFrames: settings.gopFrames > 0 ? settings.gopFrames : 2 * format.framesPerSecond,
            bFrames: settings.bFrames, globalHeader: settings.globalHeader))
        parameters = VideoStreamParameters(codecName: "h264", width: format.width, height: format.height,
                                           extradata: encoder.parameterSets)
        converter = format.pixelFormat == codecPixelFormat ? nil
            : try PixelConverter(width: format.width, height: format.height, from: format.pixelFormat, to: codecPixelFormat)
    }

    public func requestKeyframe() { timeline.keyframeRequested = true }

    public var lastInputPts: Int64 { timeline.lastPts }

    public func encode(_ frame: VideoFrame) throws -> [EncodedPacket] {
        let input = try converter?.convert(frame) ?? frame
        let pts = timeline.pts(for: frame.captureNanoseconds)
        let idr = timeline.takeKeyframe(at: pts) || input.forceKeyframe
        // The planes stay valid while `input` lives, which is past the call: libx264 copies them.
        let planes = (0..<input.pixelFormat.planeCount).map { index in
            input.withPlane(index) { bytes, stride in (UnsafeRawPointer(bytes.baseAddress!), stride) }
        }
        let packet = try withExtendedLifetime(input) { try encoder.encode(planes: planes, pts: pts, idr: idr) }
        return packet.map { [take($0)] } ?? []
    }

    public func flush() throws -> [EncodedPacket] {
        var packets: [EncodedPacket] = []
        while let packet = try encoder.flush() { packets.append(take(packet)) }
        return packets
    }

    private func take(_ packet: X264Packet) -> EncodedPacket {
        if packet.isKeyframe { timeline.sawKeyframe(at: packet.pts) }
        return EncodedPacket(data: packet.data, pts: packet.pts, dts: packet.dts, duration: timeline.frameTicks,
                             isKeyframe: packet.isKeyframe)
    }
}
