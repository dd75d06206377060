// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
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

/// Codec parameters (AVCodecParameters) handed from an encoder to a muxer. Owns its struct.
public final class CodecParameters {
    package let raw: UnsafeMutablePointer<AVCodecParameters>

    package convenience init(copying context: UnsafePointer<AVCodecContext>) throws {
        try self.init(allocating: ())
        try avCheck(avcodec_parameters_from_context(raw, context), "avcodec_parameters_from_context")
    }

    /// Empty parameters, for a copy to fill.
    package init(allocating: Void) throws {
        guard let raw = avcodec_parameters_alloc() else { throw AVError("avcodec_parameters_alloc", code: bc_averror(ENOMEM)) }
        self.raw = raw
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecParameters>? = raw
        avcodec_parameters_free(&pointer)
    }

    public var width: Int { Int(raw.pointee.width) }
    public var height: Int { Int(raw.pointee.height) }
    public var codecName: String { String(cString: avcodec_get_name(raw.pointee.codec_id)) }
    /// The decoder configuration (for H.264 in MP4, the avcC record with SPS and PPS).
    public var extradata: [UInt8] {
        guard let data = raw.pointee.extradata, raw.pointee.extradata_size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(raw.pointee.extradata_size)))
    }

    /// For H.264 without a decoder configuration (an encoder that puts SPS and PPS only in-band,
    /// as h264_v4l2m2m may): takes them from a keyframe in Annex B form (start codes, ITU-T H.264
    /// annex B) as the extradata, which libavformat's MP4 muxer turns into the avcC record. An
    /// MP4 written with an empty avcC does not play. Returns whether it set any; throws
    /// `AVError` when memory cannot be had.
    public func adoptParameterSets(fromKeyframe packet: [UInt8]) throws -> Bool {
        guard raw.pointee.codec_id == AV_CODEC_ID_H264, raw.pointee.extradata_size == 0 else { return false }
        let units = CodecParameters.annexBUnits(packet).filter { unit in
            let type = unit.first.map { $0 & 0x1F }
            return type == 7 || type == 8  // sequence and picture parameter sets
        }
        guard units.contains(where: { $0.first! & 0x1F == 7 }), units.contains(where: { $0.first! & 0x1F == 8 }) else { return false }
        let bytes = units.flatMap { [0, 0, 0, 1] + $0 }
        guard let buffer = av_mallocz(bytes.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) else {
            throw AVError("av_mallocz(extradata)", code: bc_averror(ENOMEM))
        }
        buffer.copyMemory(from: bytes, byteCount: bytes.count)
        raw.pointee.extradata = buffer.assumingMemoryBound(to: UInt8.self)
        raw.pointee.extradata_size = Int32(bytes.count)
        return true
    }

    /// The NAL units of an Annex B byte stream (between 00 00 01 / 00 00 00 01 start codes).
    public static func annexBUnits(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var starts: [(code: Int, payload: Int)] = []
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                let code = index > 0 && bytes[index - 1] == 0 ? index - 1 : index
                starts.append((code, index + 3))
                index += 3
            } else {
                index += 1
            }
        }
        return starts.enumerated().map { position, start in
            let end = position + 1 < starts.count ? starts[position + 1].code : bytes.count
            return bytes[start.payload..<max(start.payload, end)]
        }.filter { !$0.isEmpty }
    }
}

/// One compressed packet from the encoder. Owns its AVPacket.
public final class Packet {
    package let raw: UnsafeMutablePointer<AVPacket>

    init() throws {
        guard let raw = av_packet_alloc() else { throw AVError("av_packet_alloc", code: bc_averror(ENOMEM)) }
        self.raw = raw
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVPacket>? = raw
        av_packet_free(&pointer)
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
    /// in the keyframes — for tests of `CodecParameters.adoptParameterSets`.
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
        guard let codec = avcodec_find_encoder_by_name(codecName), var formats = codec.pointee.pix_fmts else { return nil }
        var result: [PixelFormat] = []
        while formats.pointee != AV_PIX_FMT_NONE {
            if let format = PixelFormat(av: formats.pointee) { result.append(format) }
            formats += 1
        }
        return result
    }

    /// True when this libavcodec has an encoder of that name.
    public static func isAvailable(_ codecName: String) -> Bool {
        avcodec_find_encoder_by_name(codecName) != nil
    }

    public init(_ settings: EncoderSettings) throws {
        guard let codec = avcodec_find_encoder_by_name(settings.codecName) else {
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
        guard let context = avcodec_alloc_context3(codec) else {
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
            try avCheck(avcodec_open2(context, codec, &options), "avcodec_open2(\(settings.codecName))")
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
            avcodec_free_context(&self.context)
            throw error
        }
    }

    deinit { avcodec_free_context(&context) }

    /// avcodec_send_frame; `nil` starts draining. The frame's pts must already be in `timeBase`.
    public func send(_ frame: VideoFrame?, pts: Int64 = 0) throws {
        guard let frame else {
            try avCheck(avcodec_send_frame(context, nil), "avcodec_send_frame(flush)")
            return
        }
        precondition(frame.pixelFormat == pixelFormat, "frame in \(frame.pixelFormat), encoder wants \(pixelFormat)")
        frame.frame.pointee.pts = pts
        frame.frame.pointee.pict_type = frame.forceKeyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        try avCheck(avcodec_send_frame(context, frame.frame), "avcodec_send_frame")
    }

    /// avcodec_receive_packet: a packet, or that the encoder needs input, or that it is drained.
    public func receive() throws -> CodecResult<Packet> {
        let packet = try Packet()
        let status = avcodec_receive_packet(context, packet.raw)
        if status == AVError.again { return .needsInput }
        if status == AVError.endOfFile { return .endOfStream }
        try avCheck(status, "avcodec_receive_packet")
        return .value(packet)
    }
}
