// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVFormat
import CAVUtil
import CShims
import CSwScale

/// A fragmented MP4 writer (libavformat "mp4" with empty_moov + frag_custom) that hands every
/// byte to `output` through a custom AVIOContext instead of a file: the caller decides where the
/// bytes go (plain file, encrypting sink). One fragment is cut each time `flushFragment()` is
/// called. Owns its AVFormatContext and AVIOContext; `finish()` writes the trailer and must be
/// called before the muxer is released.
public final class FragmentedMP4Muxer {
    public typealias Output = (UnsafeRawBufferPointer) throws -> Void

    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private let output: Output
    private let inputTimeBase: AVRational
    private var streamTimeBase = AVRational(num: 1, den: 90000)
    /// First error thrown by `output`: libavformat only sees EIO, the caller gets this back.
    private var outputError: Error?
    /// Sticky: once a write failed the file is unusable and every later call fails the same way.
    private var failure: Error?
    private var finished = false

    /// - Parameters:
    ///   - parameters: the encoder's codec parameters (size, codec, avcC).
    ///   - timeBase: time base of the packets that will be written.
    ///   - metadata: container-level tags; `creation_time` (ISO 8601 UTC) lands in mvhd.
    public init(parameters: CodecParameters, timeBase: Rational, metadata: [(String, String)],
                output: @escaping Output) throws {
        self.output = output
        self.inputTimeBase = timeBase.av
        guard let packet = av_packet_alloc() else { throw AVError("av_packet_alloc", code: bc_averror(ENOMEM)) }
        self.packet = packet
        do {
            try open(parameters: parameters, timeBase: timeBase, metadata: metadata)
        } catch {
            failure = error  // deinit releases what open() made
            throw error
        }
    }

    private func open(parameters: CodecParameters, timeBase: Rational, metadata: [(String, String)]) throws {
        var format: UnsafeMutablePointer<AVFormatContext>? = nil
        try avCheck(avformat_alloc_output_context2(&format, nil, "mp4", nil), "avformat_alloc_output_context2(mp4)")
        self.format = format
        guard let format else { throw AVError("avformat_alloc_output_context2", code: bc_averror(ENOMEM)) }

        let bufferSize: Int32 = 64 * 1024
        guard let buffer = av_malloc(Int(bufferSize)) else { throw AVError("av_malloc", code: bc_averror(ENOMEM)) }
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        // write_packet runs on the thread that calls write/flushFragment/finish.
        io = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), bufferSize, 1, opaque, nil, { opaque, data, size in
            let muxer = Unmanaged<FragmentedMP4Muxer>.fromOpaque(opaque!).takeUnretainedValue()
            return muxer.deliver(UnsafeRawBufferPointer(start: data, count: Int(size)))
        }, nil)
        guard let io else {
            av_free(buffer)
            throw AVError("avio_alloc_context", code: bc_averror(ENOMEM))
        }
        format.pointee.pb = io
        format.pointee.flags |= AVFMT_FLAG_CUSTOM_IO

        guard let stream = avformat_new_stream(format, nil) else { throw AVError("avformat_new_stream", code: bc_averror(ENOMEM)) }
        try avCheck(avcodec_parameters_copy(stream.pointee.codecpar, parameters.raw), "avcodec_parameters_copy")
        stream.pointee.codecpar.pointee.codec_tag = 0
        stream.pointee.time_base = timeBase.av
        for (key, value) in metadata { av_dict_set(&format.pointee.metadata, key, value, 0) }

        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        // empty_moov: the moov goes out first, with no samples, so every later byte is a
        // self-contained moof+mdat fragment; frag_custom: we decide where fragments end (one per
        // GOP). use_metadata_tags keeps custom keys such as device_id.
        av_dict_set(&options, "movflags", "+empty_moov+frag_custom+default_base_moof+use_metadata_tags", 0)
        try run("avformat_write_header(mp4)") { avformat_write_header(format, &options) }
        streamTimeBase = stream.pointee.time_base
        try flushIO("avformat_write_header")
    }

    /// Gives the file up after a failure outside the muxer (the sink could not make the header
    /// durable, say): nothing more is written, and releasing it is not a forgotten `finish()`.
    public func abandon(because error: Error) {
        if failure == nil { failure = error }
    }

    deinit {
        assert(finished || failure != nil, "FragmentedMP4Muxer released without finish()")
        release()
    }

    private func release() {
        if let format {
            if format.pointee.pb != nil { format.pointee.pb = nil }
            avformat_free_context(format)
            self.format = nil
        }
        if io != nil {
            av_freep(&io!.pointee.buffer)
            avio_context_free(&io)
        }
        var packet: UnsafeMutablePointer<AVPacket>? = self.packet
        av_packet_free(&packet)
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        if outputError != nil { return bc_averror(EIO) }
        do {
            try output(bytes)
            return Int32(bytes.count)
        } catch {
            outputError = error
            return bc_averror(EIO)
        }
    }

    /// Maps a libav failure to the sink's own error when the sink caused it, and makes it sticky.
    private func run(_ operation: String, _ body: () -> Int32) throws {
        if let failure { throw failure }
        let status = body()
        var error: Error? = nil
        if let outputError { error = outputError }
        else if status < 0 { error = AVError(operation, code: status) }
        else if let io, io.pointee.error < 0 { error = AVError(operation, code: io.pointee.error) }
        if let error {
            failure = error
            throw error
        }
    }

    private func flushIO(_ operation: String) throws {
        try run("\(operation) (avio_flush)") {
            avio_flush(io)
            return 0
        }
    }

    /// av_write_frame for one packet; timestamps in the time base given at init.
    public func write(_ bytes: UnsafeRawBufferPointer, pts: Int64, dts: Int64, duration: Int64, isKeyframe: Bool) throws {
        precondition(!finished)
        try run("av_new_packet") {
            av_packet_unref(packet)
            let status = av_new_packet(packet, Int32(bytes.count))
            if status >= 0, bytes.count > 0 { packet.pointee.data.update(from: bytes.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count) }
            return status
        }
        packet.pointee.pts = pts
        packet.pointee.dts = dts
        packet.pointee.duration = duration
        packet.pointee.stream_index = 0
        packet.pointee.flags = isKeyframe ? AV_PKT_FLAG_KEY : 0
        av_packet_rescale_ts(packet, inputTimeBase, streamTimeBase)
        try run("av_write_frame") { av_write_frame(format, packet) }
    }

    /// Ends the current fragment: av_write_frame(NULL) makes the mp4 muxer emit moof+mdat for
    /// what it holds, and avio_flush pushes it out to `output`. On return, every byte given to
    /// `output` so far belongs to a complete fragment.
    public func flushFragment() throws {
        precondition(!finished)
        try run("av_write_frame(flush fragment)") { av_write_frame(format, nil) }
        try flushIO("flush fragment")
    }

    /// Writes the last fragment and the trailer (mfra index) and flushes. Call once.
    public func finish() throws {
        precondition(!finished)
        finished = true
        try run("av_write_trailer") { av_write_trailer(format) }
        try flushIO("av_write_trailer")
    }
}
