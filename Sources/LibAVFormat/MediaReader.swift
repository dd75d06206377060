// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVFormat
import CAVUtil
import CShims
import CSwScale
import LibAV
import CAVFormatShims

/// What the demuxer says about one compressed packet.
public struct DemuxedPacket: Sendable {
    public var pts: Int64
    public var dts: Int64
    public var duration: Int64
    public var isKeyframe: Bool
    /// Byte offset of the packet's data in the file (-1 when unknown).
    public var position: Int64
    public var size: Int
}

/// Opens a media file with libavformat and decodes its best video stream with libavcodec: for
/// verification, probing and tests. Owns its AVFormatContext, AVCodecContext, packet and frame.
public final class MediaReader {
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var streamIndex: Int32 = -1
    private var draining = false

    public let path: String
    public private(set) var codecName = ""
    public private(set) var width = 0
    public private(set) var height = 0
    public private(set) var timeBase = Rational(1, 1)
    public private(set) var containerName = ""
    /// Container-level tags (creation_time, device_id, …).
    public private(set) var metadata: [String: String] = [:]
    /// How many video streams the file holds (the reader reads the best one).
    public private(set) var videoStreams = 0
    /// The decoder configuration (for H.264 in MP4: the avcC record).
    public private(set) var extradata: [UInt8] = []
    /// The file's chapters (an export's marks and gaps), in file order.
    public private(set) var chapters: [Chapter] = []
    /// Packets the decoder rejected (corrupt data); counted, not thrown, so a damaged file still
    /// yields what can be decoded.
    public private(set) var decodeErrors = 0
    /// Why reading stopped before the end of the file, if it did.
    public private(set) var readError: AVError?

    public init(path: String) throws {
        self.path = path
        var status = avformat_open_input(&format, path, nil, nil)
        if status < 0 {
            // A fragmented MP4 cut inside a moof fails the seekable header scan; read as a
            // stream (the file protocol's "seekable" = 0), it still yields every complete
            // fragment before the cut.
            var options: OpaquePointer? = nil
            av_dict_set(&options, "seekable", "0", 0)
            let retry = avformat_open_input(&format, path, nil, &options)
            av_dict_free(&options)
            if retry >= 0 { status = retry }
        }
        try avCheck(status, "avformat_open_input(\(path))")
        try avCheck(avformat_find_stream_info(format, nil), "avformat_find_stream_info(\(path))")
        guard let format else { throw AVError("avformat_open_input", code: bc_averror(ENOMEM)) }
        streamIndex = try avCheck(av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0), "av_find_best_stream(video) in \(path)")
        videoStreams = (0..<Int(format.pointee.nb_streams)).filter { format.pointee.streams[$0]?.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO }.count
        let stream = format.pointee.streams[Int(streamIndex)]!
        let parameters = stream.pointee.codecpar!
        codecName = String(cString: avcodec_get_name(parameters.pointee.codec_id))
        if let data = parameters.pointee.extradata, parameters.pointee.extradata_size > 0 {
            extradata = Array(UnsafeBufferPointer(start: data, count: Int(parameters.pointee.extradata_size)))
        }
        width = Int(parameters.pointee.width)
        height = Int(parameters.pointee.height)
        timeBase = Rational(stream.pointee.time_base)
        containerName = String(cString: format.pointee.iformat.pointee.name)
        for (key, value) in dictionaryEntries(format.pointee.metadata) { metadata[key] = value }
        for index in 0..<Int(format.pointee.nb_chapters) {
            guard let chapter = format.pointee.chapters[index] else { continue }
            let base = chapter.pointee.time_base
            func seconds(_ value: Int64) -> Double { Double(value) * Double(base.num) / Double(max(base.den, 1)) }
            let title = av_dict_get(chapter.pointee.metadata, "title", nil, 0).map { String(cString: $0.pointee.value) } ?? ""
            chapters.append(Chapter(title: title, startSeconds: seconds(chapter.pointee.start), endSeconds: seconds(chapter.pointee.end)))
        }

        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw AVError("avcodec_find_decoder(\(codecName))", code: bc_averror(ENOENT))
        }
        decoder = avcodec_alloc_context3(codec)
        packet = av_packet_alloc()
        frame = av_frame_alloc()
        guard let decoder, packet != nil, frame != nil else { throw AVError("av*_alloc", code: bc_averror(ENOMEM)) }
        try avCheck(avcodec_parameters_to_context(decoder, parameters), "avcodec_parameters_to_context")
        decoder.pointee.thread_count = 1
        try avCheck(avcodec_open2(decoder, codec, nil), "avcodec_open2(\(codecName) decoder)")
    }

    deinit {
        avcodec_free_context(&decoder)
        avformat_close_input(&format)
        av_packet_free(&packet)
        av_frame_free(&frame)
    }

    /// Reads the next packet of the video stream (av_read_frame) without decoding it; nil at the
    /// end of the file, or where the data stops being readable (a file cut short mid-fragment:
    /// see `readError`).
    public func nextPacket() throws -> DemuxedPacket? {
        while true {
            av_packet_unref(packet)
            let status = av_read_frame(format, packet)
            if status == AVError.endOfFile { return nil }
            if status < 0 {
                // Damaged or cut-off data: what came before stands; the rest cannot be read.
                readError = AVError("av_read_frame(\(path))", code: status)
                return nil
            }
            guard let packet, packet.pointee.stream_index == streamIndex else { continue }
            return DemuxedPacket(pts: packet.pointee.pts, dts: packet.pointee.dts, duration: packet.pointee.duration,
                                 isKeyframe: packet.pointee.flags & AV_PKT_FLAG_KEY != 0,
                                 position: packet.pointee.pos, size: Int(packet.pointee.size))
        }
    }

    /// The next packet of the video stream with its bytes, as stored (for H.264 in MP4: NAL
    /// units each behind its length); nil at the end or where the data stops being readable.
    public func nextPacketBytes() throws -> (packet: DemuxedPacket, bytes: [UInt8])? {
        guard let demuxed = try nextPacket(), let packet else { return nil }
        let bytes = packet.pointee.size > 0 ? Array(UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size))) : []
        return (demuxed, bytes)
    }

    /// Decodes the whole stream, calling `body` with each packet as demuxed and each picture as
    /// decoded (in presentation order). Returns the number of pictures.
    @discardableResult
    public func decodeAll(packet onPacket: (DemuxedPacket) -> Void = { _ in },
                          frame onFrame: (VideoFrame) throws -> Void = { _ in }) throws -> Int {
        var pictures = 0
        while let demuxed = try nextPacket() {
            onPacket(demuxed)
            if avcodec_send_packet(decoder, packet) < 0 { decodeErrors += 1 }
            pictures += try receiveFrames(onFrame)
        }
        _ = avcodec_send_packet(decoder, nil)
        pictures += try receiveFrames(onFrame)
        return pictures
    }

    private func receiveFrames(_ onFrame: (VideoFrame) throws -> Void) throws -> Int {
        var count = 0
        while true {
            let status = avcodec_receive_frame(decoder, frame)
            if status == AVError.again || status == AVError.endOfFile { return count }
            if status < 0 { decodeErrors += 1; return count }
            count += 1
            defer { av_frame_unref(frame) }
            guard let format = PixelFormat(av: AVPixelFormat(frame!.pointee.format)) ?? (frame!.pointee.format == AV_PIX_FMT_YUVJ420P.rawValue ? .yuv420p : nil),
                  let clone = av_frame_clone(frame) else { continue }
            try onFrame(VideoFrame(taking: clone, pixelFormat: format))
        }
    }
}
