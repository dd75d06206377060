import LibAV
import Capture
import Platform

/// One compressed picture, timestamps in `VideoEncoderSettings.timeBase` (90 kHz) counted from
/// the pipeline's first captured frame.
public struct EncodedPacket: Sendable, Equatable {
    public var data: [UInt8]
    public var pts: Int64
    public var dts: Int64
    public var duration: Int64
    public var isKeyframe: Bool
    /// Camera frames known to be missing just before this picture (sequence-number gaps).
    public var droppedBefore = 0
    /// `droppedBefore` is an estimate (the driver's sequence numbers cannot be trusted).
    public var dropsEstimated = false
    /// Kept by a recording that is being stopped only to close what the packet stage added
    /// about the pictures before it (`PacketStage.closingPackets`): a keyframe marked so never
    /// opens a segment of its own.
    public var closesRecording = false

    public init(data: [UInt8], pts: Int64, dts: Int64, duration: Int64, isKeyframe: Bool) {
        self.data = data
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.isKeyframe = isKeyframe
    }
}

/// Raw pictures in, compressed packets out. Does not mux.
public protocol VideoEncoder: AnyObject {
    /// For logs: "libx264 veryfast 4000 kb/s yuv420p (converted from yuyv422)".
    var name: String { get }
    /// Codec, size and decoder configuration, for the muxer.
    var parameters: CodecParameters { get }
    /// Time base of the packets' timestamps.
    var timeBase: Rational { get }
    /// Makes the next picture a keyframe (IDR).
    func requestKeyframe()
    /// The timestamp the last picture given to `encode` got (its packet carries it).
    var lastInputPts: Int64 { get }
    /// Encodes one picture; returns whatever packets the codec has ready (often none or one).
    func encode(_ frame: VideoFrame) throws -> [EncodedPacket]
    /// Drains the codec at the end of the stream.
    func flush() throws -> [EncodedPacket]
}

public struct VideoEncoderSettings: Equatable, Sendable {
    /// "libx264" (software, default) or "h264_v4l2m2m" (the SoC's hardware encoder).
    public var codec: String = "libx264"
    public var preset: String = "veryfast"
    /// "zerolatency": no frame look-ahead, so a picture leaves the encoder as soon as it is in.
    public var tune: String = "zerolatency"
    /// Target bit rate; nil uses `crf` (constant quality) instead.
    public var bitrateKbps: Int? = 4000
    public var crf: Int? = nil
    public var bFrames: Int = 0
    /// A backstop keyframe interval in frames for the codec; 0 means two seconds at the nominal
    /// rate. The keyframes that matter come from capture time: one as soon as one second of it
    /// has passed since the last (`LibAVVideoEncoder`), so every fragment holds at most a second
    /// whatever rate the camera really delivers.
    public var gopFrames: Int = 0
    /// False: the encoder is asked for in-band parameter sets only (tests of an encoder that
    /// gives none out of band, as the board's may).
    public var globalHeader = true

    public init() {}

    /// libavformat's and our packet clock: 90 kHz, as MPEG uses.
    public static let timeBase = Rational(1, 90_000)
}

/// `VideoEncoder` over libavcodec, with a libswscale conversion only when the source's pixel
/// format is not one the codec takes. Timestamps come from capture time.
public final class LibAVVideoEncoder: VideoEncoder {
    private let context: EncoderContext
    private let converter: PixelConverter?
    private let frameTicks: Int64
    private var epochNanoseconds: Int64?
    private var lastPts: Int64 = -1
    private var keyframeRequested = false
    /// The pts of the newest keyframe asked for or seen (90 kHz ticks), the one-second cadence's
    /// origin.
    private var lastKeyframePts: Int64?
    public let settings: VideoEncoderSettings
    public let format: FrameFormat

    public var parameters: CodecParameters { context.parameters }
    public var timeBase: Rational { VideoEncoderSettings.timeBase }
    /// The pixel format the codec is fed with.
    public var codecPixelFormat: PixelFormat { context.pixelFormat }
    public var convertsPixels: Bool { converter != nil }
    public var name: String {
        let rate = settings.bitrateKbps.map { "\($0) kb/s" } ?? "crf \(settings.crf ?? 23)"
        let conversion = converter.map { " (converted from \($0.source))" } ?? ""
        return "\(settings.codec) \(settings.codec == "libx264" ? settings.preset + " " : "")\(rate) \(context.pixelFormat)\(conversion)"
    }

    public init(settings: VideoEncoderSettings, format: FrameFormat) throws {
        self.settings = settings
        self.format = format
        let ticks = Int64(VideoEncoderSettings.timeBase.denominator)
        frameTicks = ticks / Int64(format.framesPerSecond)
        var codecSettings = EncoderSettings(
            codecName: settings.codec, width: format.width, height: format.height,
            framesPerSecond: format.framesPerSecond, sourceFormat: format.pixelFormat,
            timeBase: VideoEncoderSettings.timeBase,
            bitrate: settings.bitrateKbps.map { $0 * 1000 }, crf: settings.bitrateKbps == nil ? settings.crf : nil,
            preset: settings.codec == "libx264" ? settings.preset : nil,
            tune: settings.codec == "libx264" ? settings.tune : nil,
            gopSize: settings.gopFrames > 0 ? settings.gopFrames : 2 * format.framesPerSecond,
            maxBFrames: settings.bFrames)
        codecSettings.globalHeader = settings.globalHeader
        context = try EncoderContext(codecSettings)
        converter = context.pixelFormat == format.pixelFormat ? nil
            : try PixelConverter(width: format.width, height: format.height, from: format.pixelFormat, to: context.pixelFormat)
    }

    public func requestKeyframe() { keyframeRequested = true }

    public var lastInputPts: Int64 { lastPts }

    /// 90 kHz ticks since the first picture, from its capture time; strictly increasing.
    func pts(for captureNanoseconds: Int64) -> Int64 {
        let epoch = epochNanoseconds ?? captureNanoseconds
        epochNanoseconds = epoch
        var pts = ((captureNanoseconds - epoch) * 9 + 50_000) / 100_000
        if pts <= lastPts { pts = lastPts + 1 }
        lastPts = pts
        return pts
    }

    /// Capture time after the last keyframe at which the next picture is made one: one second,
    /// less half a frame period so that timing jitter never stretches a fragment past a second.
    var keyframeDue: Int64 { Int64(VideoEncoderSettings.timeBase.denominator) - frameTicks / 2 }

    public func encode(_ frame: VideoFrame) throws -> [EncodedPacket] {
        let input = try converter?.convert(frame) ?? frame
        let pts = pts(for: frame.captureNanoseconds)
        // One second of capture time, not a count of frames: a camera that halves its rate in
        // low light, or frames dropped under load, still give one-second fragments.
        if keyframeRequested || lastKeyframePts.map({ pts - $0 >= keyframeDue }) ?? true {
            input.forceKeyframe = true
            keyframeRequested = false
            lastKeyframePts = pts
        }
        try context.send(input, pts: pts)
        input.forceKeyframe = false
        return try drain()
    }

    public func flush() throws -> [EncodedPacket] {
        try context.send(nil)
        return try drain()
    }

    private func drain() throws -> [EncodedPacket] {
        var packets: [EncodedPacket] = []
        while case .value(let packet) = try context.receive() {
            if packet.isKeyframe { lastKeyframePts = max(lastKeyframePts ?? packet.pts, packet.pts) }
            packets.append(EncodedPacket(data: packet.bytes, pts: packet.pts, dts: packet.dts,
                                         duration: packet.duration > 0 ? packet.duration : frameTicks,
                                         isKeyframe: packet.isKeyframe))
        }
        return packets
    }
}
