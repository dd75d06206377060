// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVCodecShims
import CAVUtil
import CShims
import CSwScale

/// Decodes self-contained compressed pictures (MJPEG from a USB camera) into raw pictures of
/// one pixel format, converting with libswscale from whatever the decoder produces
/// (yuvj422p for most cameras). Owns its AVCodecContext, packet, frame and SwsContext.
// Used by one thread at a time: made on the caller's, then used only on the capture thread.
public final class PictureDecoder: @unchecked Sendable {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var decoded: UnsafeMutablePointer<AVFrame>?
    private var scaler: OpaquePointer?
    private var scalerSource: Int32 = -1
    private let pool: FramePool
    public let codecName: String

    public init(codecName: String, width: Int, height: Int, output: PixelFormat) throws {
        // First: a throw once every stored property is set runs deinit, whose libavcodec calls
        // need the library.
        try LibAVCodec.load()
        self.codecName = codecName
        pool = try FramePool(width: width, height: height, pixelFormat: output)
        guard let codec = bc_avcodec_find_decoder_by_name(codecName) else {
            throw AVError("avcodec_find_decoder_by_name(\"\(codecName)\"): no such decoder", code: bc_averror(ENOENT))
        }
        context = bc_avcodec_alloc_context3(codec)
        packet = bc_av_packet_alloc()
        decoded = av_frame_alloc()
        guard let context, packet != nil, decoded != nil else { throw AVError("av*_alloc", code: bc_averror(ENOMEM)) }
        context.pointee.thread_count = 1  // one picture in, one out, no frame delay; its messages on this thread
        bc_av_log_install()
        // libavcodec conceals damage by default (a cut JPEG's missing rows are left from the last
        // picture): for evidence a damaged picture must fail instead, so every check it has is
        // on and any error it finds aborts the picture.
        context.pointee.err_recognition |= AV_EF_CRCCHECK | AV_EF_BITSTREAM | AV_EF_BUFFER | AV_EF_EXPLODE | AV_EF_CAREFUL | AV_EF_COMPLIANT | AV_EF_AGGRESSIVE
        try avCheck(bc_avcodec_open2(context, codec, nil), "avcodec_open2(\(codecName) decoder)")
    }

    deinit {
        sws_freeContext(scaler)
        bc_avcodec_free_context(&context)
        bc_av_packet_free(&packet)
        av_frame_free(&decoded)
    }

    /// Decodes one complete compressed picture. Throws on corrupt data or a size other than
    /// the one given at init.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws -> VideoFrame {
        guard let packet, let decoded else { preconditionFailure() }
        bc_av_packet_unref(packet)
        try avCheck(bc_av_new_packet(packet, Int32(bytes.count)), "av_new_packet")
        if let base = bytes.baseAddress, bytes.count > 0 { packet.pointee.data.update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count) }
        var message = [CChar](repeating: 0, count: 160)
        _ = bc_av_log_take(&message, message.count)
        try avCheck(bc_avcodec_send_packet(context, packet), "avcodec_send_packet(\(codecName))")
        try avCheck(bc_avcodec_receive_frame(context, decoded), "avcodec_receive_frame(\(codecName))")
        defer { av_frame_unref(decoded) }
        // Damage the decoder concealed but reported ("bad vlc", "error count", "EOI missing").
        let problems = bc_av_log_take(&message, message.count)
        if problems > 0 {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw AVError("\(codecName) picture is damaged: \(text)", code: bc_averror(EINVAL))
        }
        if decoded.pointee.decode_error_flags != 0 {
            throw AVError("\(codecName) picture decoded with errors (flags \(decoded.pointee.decode_error_flags))", code: bc_averror(EINVAL))
        }
        guard Int(decoded.pointee.width) == pool.width, Int(decoded.pointee.height) == pool.height else {
            throw AVError("\(codecName) picture is \(decoded.pointee.width)x\(decoded.pointee.height), expected \(pool.width)x\(pool.height)",
                          code: bc_averror(EINVAL))
        }
        if scaler == nil || scalerSource != decoded.pointee.format {
            sws_freeContext(scaler)
            scaler = sws_getContext(Int32(pool.width), Int32(pool.height), AVPixelFormat(decoded.pointee.format),
                                    Int32(pool.width), Int32(pool.height), pool.pixelFormat.av, SWS_BICUBIC, nil, nil, nil)
            scalerSource = decoded.pointee.format
            guard scaler != nil else { throw AVError("sws_getContext(\(codecName) picture → \(pool.pixelFormat))", code: bc_averror(EINVAL)) }
        }
        let output = try pool.makeFrame()
        try avCheck(sws_scale_frame(scaler, output.frame, decoded), "sws_scale_frame(\(codecName) picture → \(pool.pixelFormat))")
        return output
    }
}
