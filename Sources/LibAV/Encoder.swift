// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVCodecShims
import CAVUtil
import CShims
import CSwScale

/// A rational number, as libav uses for time bases.
public struct Rational: Equatable, Sendable {
    public var numerator: Int32
    public var denominator: Int32
    public init(_ numerator: Int32, _ denominator: Int32) {
        self.numerator = numerator
        self.denominator = denominator
    }
    package var av: AVRational { AVRational(num: numerator, den: denominator) }
    package init(_ av: AVRational) { self.init(av.num, av.den) }
}

/// libavcodec, loaded on first use rather than linked (CAVCodecShims): the recording path
/// encodes with libx264 itself and needs libavcodec only for an MJPEG camera or the SoC's
/// h264_v4l2m2m encoder, and Debian's libavcodec brings some 90 libraries into the process.
/// Every type here that calls libavcodec loads it first.
public enum LibAVCodec {
    /// The one attempt's outcome: dlopen's reason when it failed.
    private static let outcome: Result<Void, AVError> = {
        var reason = [CChar](repeating: 0, count: 256)
        guard bc_avcodec_load(&reason, reason.count) == 0 else {
            let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(AVError("loading libavcodec (\(text))", code: bc_averror(ENOSYS)))
        }
        return .success(())
    }()

    /// Loads libavcodec (once per process; later calls give the first outcome at once). Throws
    /// `AVError` naming the library and dlopen's reason when it cannot be loaded.
    public static func load() throws {
        try outcome.get()
    }
}

/// Codec parameters (AVCodecParameters) handed from an encoder to a muxer. Owns its struct.
public final class CodecParameters {
    package let raw: UnsafeMutablePointer<AVCodecParameters>

    package convenience init(copying context: UnsafePointer<AVCodecContext>) throws {
        try self.init(allocating: ())
        try avCheck(bc_avcodec_parameters_from_context(raw, context), "avcodec_parameters_from_context")
    }

    /// Empty parameters, for a copy to fill.
    package init(allocating: Void) throws {
        try LibAVCodec.load()
        guard let raw = bc_avcodec_parameters_alloc() else { throw AVError("avcodec_parameters_alloc", code: bc_averror(ENOMEM)) }
        self.raw = raw
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecParameters>? = raw
        bc_avcodec_parameters_free(&pointer)
    }

    public var width: Int { Int(raw.pointee.width) }
    public var height: Int { Int(raw.pointee.height) }
    public var codecName: String { String(cString: bc_avcodec_get_name(raw.pointee.codec_id)) }
    /// The decoder configuration (for H.264 in MP4, the avcC record with SPS and PPS).
    public var extradata: [UInt8] {
        guard let data = raw.pointee.extradata, raw.pointee.extradata_size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(raw.pointee.extradata_size)))
    }
}

/// One compressed packet from the encoder. Owns its AVPacket.
public final class Packet {
    package let raw: UnsafeMutablePointer<AVPacket>

    init() throws {
        try LibAVCodec.load()
        guard let raw = bc_av_packet_alloc() else { throw AVError("av_packet_alloc", code: bc_averror(ENOMEM)) }
        self.raw = raw
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVPacket>? = raw
        bc_av_packet_free(&pointer)
    }

    public var pts: Int64 { raw.pointee.pts }
    public var dts: Int64 { raw.pointee.dts }
    public var duration: Int64 { raw.pointee.duration }
    public var isKeyframe: Bool { raw.pointee.flags & AV_PKT_FLAG_KEY != 0 }
    public var bytes: [UInt8] {
        guard let data = raw.pointee.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(raw.pointee.size)))
    }
}

/// How to open a libavcodec video encoder.
public struct EncoderSettings: Sendable {
    /// libavcodec encoder name: "libx264", "h264_v4l2m2m", …
    public var codecName: String
    public var width: Int
    public var height: Int
    public var framesPerSecond: Int
    /// Pixel format of the frames that will be offered; used as is when the encoder takes it.
    public var sourceFormat: PixelFormat
    public var timeBase: Rational
    public var bitrate: Int?
    public var crf: Int?
    public var preset: String?
    public var tune: String?
    public var gopSize: Int
    public var maxBFrames: Int
    /// Further AVOptions for the codec's private options (name → value).
    public var options: [(String, String)]
    /// Ask for the parameter sets once, out of band (AV_CODEC_FLAG_GLOBAL_HEADER). False makes
    /// the encoder behave as some hardware encoders do (h264_v4l2m2m): SPS and PPS only in-band,
    /// in the keyframes — for tests of `VideoStreamParameters.adoptParameterSets`.
    public var globalHeader = true

    public init(codecName: String, width: Int, height: Int, framesPerSecond: Int, sourceFormat: PixelFormat,
                timeBase: Rational, bitrate: Int? = nil, crf: Int? = nil, preset: String? = nil, tune: String? = nil,
                gopSize: Int, maxBFrames: Int = 0, options: [(String, String)] = []) {
        self.codecName = codecName
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.sourceFormat = sourceFormat
        self.timeBase = timeBase
        self.bitrate = bitrate
        self.crf = crf
        self.preset = preset
        self.tune = tune
        self.gopSize = gopSize
        self.maxBFrames = maxBFrames
        self.options = options
    }
}

/// An open libavcodec encoder (avcodec_send_frame / avcodec_receive_packet). Owns its
/// AVCodecContext. Not thread-safe: one thread drives it.
public final class EncoderContext {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    /// The format frames must be in when sent (the caller converts when it differs).
    public let pixelFormat: PixelFormat
    public let timeBase: Rational
    public let parameters: CodecParameters
    public let codecName: String

    /// Pixel formats the named encoder accepts, in its order of preference; nil when it does not
    /// say (hardware wrappers).
    public static func supportedFormats(codecName: String) -> [PixelFormat]? {
        guard (try? LibAVCodec.load()) != nil, let codec = bc_avcodec_find_encoder_by_name(codecName), var formats = codec.pointee.pix_fmts else { return nil }
        var result: [PixelFormat] = []
        while formats.pointee != AV_PIX_FMT_NONE {
            if let format = PixelFormat(av: formats.pointee) { result.append(format) }
            formats += 1
        }
        return result
    }

    /// True when this libavcodec has an encoder of that name.
    public static func isAvailable(_ codecName: String) -> Bool {
        (try? LibAVCodec.load()) != nil && bc_avcodec_find_encoder_by_name(codecName) != nil
    }

    public init(_ settings: EncoderSettings) throws {
        try LibAVCodec.load()
        guard let codec = bc_avcodec_find_encoder_by_name(settings.codecName) else {
            throw AVError("avcodec_find_encoder_by_name(\"\(settings.codecName)\"): no such encoder in this libavcodec",
                          code: bc_averror(ENOENT))
        }
        let supported = EncoderContext.supportedFormats(codecName: settings.codecName)
        let format: PixelFormat
        if let supported {
            if supported.contains(settings.sourceFormat) { format = settings.sourceFormat }
            else if supported.contains(.yuv420p) { format = .yuv420p }
            else if let first = supported.first { format = first }
            else { throw AVError("encoder \(settings.codecName) takes none of \(PixelFormat.allCases.map(\.rawValue))", code: bc_averror(EINVAL)) }
        } else {
            format = settings.sourceFormat == .yuyv422 ? .yuv420p : settings.sourceFormat
        }
        guard let context = bc_avcodec_alloc_context3(codec) else {
            throw AVError("avcodec_alloc_context3", code: bc_averror(ENOMEM))
        }
        self.context = context
        self.pixelFormat = format
        self.timeBase = settings.timeBase
        self.codecName = settings.codecName

        context.pointee.width = Int32(settings.width)
        context.pointee.height = Int32(settings.height)
        context.pointee.pix_fmt = format.av
        context.pointee.time_base = settings.timeBase.av
        context.pointee.framerate = AVRational(num: Int32(settings.framesPerSecond), den: 1)
        context.pointee.gop_size = Int32(settings.gopSize)
        context.pointee.keyint_min = Int32(settings.gopSize)
        context.pointee.max_b_frames = Int32(settings.maxBFrames)
        // 0: let the codec pick its thread count for the machine (ffmpeg's "-threads auto").
        context.pointee.thread_count = 0
        // MP4 wants SPS/PPS once in the sample description (avcC), not repeated in-band only.
        if settings.globalHeader { context.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        if settings.codecName.contains("264") {
            // Every GOP decodes on its own, so a segment can start at any keyframe.
            context.pointee.flags |= Int32(bitPattern: UInt32(AV_CODEC_FLAG_CLOSED_GOP))
        }
        if let bitrate = settings.bitrate {
            context.pointee.bit_rate = Int64(bitrate)
            context.pointee.rc_max_rate = Int64(bitrate)
            context.pointee.rc_buffer_size = Int32(clamping: bitrate * 2)
        }

        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        var entries = settings.options
        if let preset = settings.preset { entries.append(("preset", preset)) }
        if let tune = settings.tune { entries.append(("tune", tune)) }
        if let crf = settings.crf { entries.append(("crf", String(crf))) }
        if settings.codecName == "libx264" {
            // A scene cut would add keyframes inside a GOP and break one-fragment-per-second;
            // forced keyframes must be IDR so a segment can start on them.
            entries.append(("forced-idr", "1"))
            entries.append(("x264-params", "scenecut=0:open-gop=0"))
        }
        for (key, value) in entries { av_dict_set(&options, key, value, 0) }

        do {
            try avCheck(bc_avcodec_open2(context, codec, &options), "avcodec_open2(\(settings.codecName))")
            if av_dict_count(options) > 0 {
                var unused: [String] = []
                var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
                while let next = av_dict_get(options, "", entry, AV_DICT_IGNORE_SUFFIX) {
                    unused.append(String(cString: next.pointee.key))
                    entry = next
                }
                throw AVError("avcodec_open2(\(settings.codecName)): options not recognised: \(unused.joined(separator: ", "))",
                              code: bc_averror(EINVAL))
            }
            self.parameters = try CodecParameters(copying: context)
        } catch {
            bc_avcodec_free_context(&self.context)
            throw error
        }
    }

    deinit { bc_avcodec_free_context(&context) }

    /// avcodec_send_frame; `nil` starts draining. The frame's pts must already be in `timeBase`.
    public func send(_ frame: VideoFrame?, pts: Int64 = 0) throws {
        guard let frame else {
            try avCheck(bc_avcodec_send_frame(context, nil), "avcodec_send_frame(flush)")
            return
        }
        precondition(frame.pixelFormat == pixelFormat, "frame in \(frame.pixelFormat), encoder wants \(pixelFormat)")
        frame.frame.pointee.pts = pts
        frame.frame.pointee.pict_type = frame.forceKeyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        try avCheck(bc_avcodec_send_frame(context, frame.frame), "avcodec_send_frame")
    }

    /// avcodec_receive_packet: a packet, or that the encoder needs input, or that it is drained.
    public func receive() throws -> CodecResult<Packet> {
        let packet = try Packet()
        let status = bc_avcodec_receive_packet(context, packet.raw)
        if status == AVError.again { return .needsInput }
        if status == AVError.endOfFile { return .endOfStream }
        try avCheck(status, "avcodec_receive_packet")
        return .value(packet)
    }
}
