// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVFormat
import CAVUtil
import CShims
import CSwScale
import LibAV
import CAVFormatShims
import Glibc

/// One compressed picture as the demuxer gives it, with its bytes: what a stream copy moves from
/// one container to another without decoding. Times in the stream's time base.
public struct CompressedPacket: Sendable {
    public var data: [UInt8]
    public var pts: Int64
    public var dts: Int64
    public var duration: Int64
    public var isKeyframe: Bool

    public init(data: [UInt8], pts: Int64, dts: Int64, duration: Int64, isKeyframe: Bool) {
        self.data = data
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.isKeyframe = isKeyframe
    }
}

extension CodecParameters {
    /// A copy of a demuxed stream's parameters.
    convenience init(copying parameters: UnsafePointer<AVCodecParameters>) throws {
        try self.init(allocating: ())
        try avCheck(avcodec_parameters_copy(raw, parameters), "avcodec_parameters_copy")
    }

    /// Whether a decoder set up for `self` decodes a stream made with `other` too: the same codec,
    /// picture size and decoder configuration (avcC). Streams that differ cannot share one MP4
    /// track's sample description.
    public func describesSameStream(as other: CodecParameters) -> Bool {
        raw.pointee.codec_id == other.raw.pointee.codec_id && width == other.width && height == other.height
            && extradata == other.extradata
    }
}

/// Demuxes an MP4 (fragmented or not) held in memory, through a custom AVIOContext that reads
/// from the buffer: a decrypted segment is remuxed without its plaintext touching storage. Owns
/// its AVFormatContext, AVIOContext and packet; the calls run on the caller's thread.
public final class MemoryDemuxer {
    private final class Input {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
    }

    private let input: Input
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var streamIndex: Int32 = -1
    private let what: String

    /// The video stream's parameters, as the muxer of a copy needs them.
    public private(set) var parameters: CodecParameters!
    /// The video stream's time base: the unit of every packet's times.
    public private(set) var timeBase = Rational(1, 1)
    /// Container-level tags (creation_time, device_id, …) in the order the file gives them.
    public private(set) var metadata: [(String, String)] = []
    /// Why reading stopped before the end, if it did (a segment the power cut short ends in a
    /// torn fragment: what came before it stands).
    public private(set) var readError: AVError?

    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - what: names the file in errors.
    /// - Throws: `AVError` when libavformat cannot read it as a media file with a video stream.
    public init(bytes: [UInt8], what: String) throws {
        input = Input(bytes)
        self.what = what
        do {
            try open(seekable: true)
        } catch {
            // A fragmented MP4 cut inside a moof fails the seekable scan; read as a stream it
            // still yields every complete fragment before the cut (as MediaReader does).
            release()
            input.position = 0
            try open(seekable: false)
        }
    }

    deinit { release() }

    private func release() {
        avformat_close_input(&format)
        if io != nil {
            av_freep(&io!.pointee.buffer)
            avio_context_free(&io)
        }
        av_packet_free(&packet)
    }

    private func open(seekable: Bool) throws {
        let size: Int32 = 64 * 1024
        guard let buffer = av_malloc(Int(size)) else { throw AVError("av_malloc", code: bc_averror(ENOMEM)) }
        let opaque = Unmanaged.passUnretained(input).toOpaque()
        io = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), size, 0, opaque, { opaque, data, count in
            let input = Unmanaged<Input>.fromOpaque(opaque!).takeUnretainedValue()
            let available = min(Int(count), input.bytes.count - input.position)
            if available <= 0 { return bc_averror_eof() }
            input.bytes.withUnsafeBytes { source in
                UnsafeMutableRawPointer(data!).copyMemory(from: source.baseAddress! + input.position, byteCount: available)
            }
            input.position += available
            return Int32(available)
        }, nil, seekable ? { opaque, offset, whence in
            let input = Unmanaged<Input>.fromOpaque(opaque!).takeUnretainedValue()
            return memorySeek(offset: offset, whence: whence, position: &input.position, size: input.bytes.count, limit: Int64(input.bytes.count))
        } : nil)
        guard let io else {
            av_free(buffer)
            throw AVError("avio_alloc_context", code: bc_averror(ENOMEM))
        }
        if !seekable { io.pointee.seekable = 0 }
        format = avformat_alloc_context()
        guard let allocated = format else { throw AVError("avformat_alloc_context", code: bc_averror(ENOMEM)) }
        allocated.pointee.pb = io
        allocated.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        // On failure avformat_open_input frees the context and sets it to NULL; the AVIOContext
        // (custom) stays ours.
        try avCheck(avformat_open_input(&format, nil, nil, nil), "avformat_open_input(\(what))")
        guard let format else { throw AVError("avformat_open_input(\(what))", code: bc_averror(ENOMEM)) }
        try avCheck(avformat_find_stream_info(format, nil), "avformat_find_stream_info(\(what))")
        streamIndex = try avCheck(av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0), "av_find_best_stream(video) in \(what)")
        let stream = format.pointee.streams[Int(streamIndex)]!
        parameters = try CodecParameters(copying: stream.pointee.codecpar)
        timeBase = Rational(stream.pointee.time_base)
        metadata = dictionaryEntries(format.pointee.metadata)
        packet = av_packet_alloc()
        if packet == nil { throw AVError("av_packet_alloc", code: bc_averror(ENOMEM)) }
    }

    /// The next packet of the video stream, nil at the end (or where the data stops being
    /// readable: see `readError`).
    public func next() -> CompressedPacket? {
        guard let packet else { return nil }
        while true {
            av_packet_unref(packet)
            let status = av_read_frame(format, packet)
            if status == AVError.endOfFile { return nil }
            if status < 0 {
                readError = AVError("av_read_frame(\(what))", code: status)
                return nil
            }
            guard packet.pointee.stream_index == streamIndex else { continue }
            let data = packet.pointee.size > 0 ? Array(UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size))) : []
            return CompressedPacket(data: data, pts: packet.pointee.pts, dts: packet.pointee.dts, duration: packet.pointee.duration,
                                    isKeyframe: packet.pointee.flags & AV_PKT_FLAG_KEY != 0)
        }
    }
}

/// An AVIOContext seek callback over `size` bytes in memory (whence SEEK_SET, SEEK_CUR or
/// SEEK_END, AVSEEK_FORCE ignored; AVSEEK_SIZE asks the size): moves `position` and returns it, or
/// AVERROR(EINVAL) for a target before 0 or past `limit`.
func memorySeek(offset: Int64, whence: Int32, position: inout Int, size: Int, limit: Int64) -> Int64 {
    if whence & AVSEEK_SIZE != 0 { return Int64(size) }
    let base: Int64
    switch whence & ~AVSEEK_FORCE {
    case SEEK_SET: base = 0
    case SEEK_CUR: base = Int64(position)
    case SEEK_END: base = Int64(size)
    default: return Int64(bc_averror(EINVAL))
    }
    let (target, overflow) = base.addingReportingOverflow(offset)
    guard !overflow, target >= 0, target <= limit else { return Int64(bc_averror(EINVAL)) }
    position = Int(target)
    return target
}

/// The entries of an AVDictionary (metadata), in its order.
func dictionaryEntries(_ dictionary: OpaquePointer?) -> [(String, String)] {
    var entries: [(String, String)] = []
    var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
    while let next = av_dict_get(dictionary, "", entry, AV_DICT_IGNORE_SUFFIX) {
        entries.append((String(cString: next.pointee.key), String(cString: next.pointee.value)))
        entry = next
    }
    return entries
}

/// A chapter of an MP4 file: a named point on its timeline (a mark, a gap), in seconds.
public struct Chapter: Sendable, Equatable {
    public var title: String
    /// Seconds from the start of the file.
    public var startSeconds: Double
    public var endSeconds: Double

    public init(title: String, startSeconds: Double, endSeconds: Double) {
        self.title = title
        self.startSeconds = startSeconds
        self.endSeconds = endSeconds
    }
}

/// Writes a standard (not fragmented) MP4 with its index first (ISO/IEC 14496-12; the layout
/// every player reads, progressive download included), by libavformat's "mp4" muxer. A stream
/// copy: packets go in as they were encoded. Chapters are written as libavformat writes them for
/// MP4: Nero `chpl` entries in the moov's udta and a chapter text track.
///
/// Two outputs:
/// - `init(path:…)`: a file, with `movflags +faststart` (the samples first, then the moov moved
///   in front of them). libavformat writes `path` itself (its file protocol: faststart reopens the
///   file to move the index), so `path` must be in a folder nobody else can write, such as one
///   from `makePrivateFolder`.
/// - `init(reservingIndexBytes:…)`: memory, through a custom AVIOContext, with `moov_size` room
///   reserved after the ftyp for the index (the rest of the room becomes a `free` box): nothing is
///   written to storage. The room must hold the index (`indexBytesBound`), or `finish()` fails.
///
/// Owns its AVFormatContext, AVIOContext and packet; calls run on the caller's thread; `finish()`
/// closes the output, and a file writer released without it leaves a partial file for the
/// caller to remove.
public final class MP4FileMuxer {
    private final class Memory {
        var bytes: [UInt8] = []
        var position = 0
    }

    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var customIO: UnsafeMutablePointer<AVIOContext>?
    private let memory: Memory?
    private let inputTimeBase: AVRational
    private var streamTimeBase = AVRational(num: 1, den: 90000)
    private var finished = false
    /// The file written, or "(memory)".
    public let path: String

    /// A file at `path`.
    /// - Parameters:
    ///   - parameters: the stream's codec parameters (codec, size, avcC).
    ///   - timeBase: the time base of the packets that will be written.
    ///   - metadata: container-level tags; `creation_time` (ISO 8601 UTC) lands in mvhd, the rest
    ///     in udta (use_metadata_tags).
    /// - Throws: `AVError` (the file cannot be created, the parameters are refused).
    public init(path: String, parameters: CodecParameters, timeBase: Rational, metadata: [(String, String)]) throws {
        self.path = path
        memory = nil
        inputTimeBase = timeBase.av
        try open(parameters: parameters, timeBase: timeBase, metadata: metadata, movflags: "+faststart+use_metadata_tags", moovSize: nil)
    }

    /// In memory: `bytes` after `finish()`.
    public init(reservingIndexBytes: Int, parameters: CodecParameters, timeBase: Rational, metadata: [(String, String)]) throws {
        path = "(memory)"
        memory = Memory()
        inputTimeBase = timeBase.av
        try open(parameters: parameters, timeBase: timeBase, metadata: metadata, movflags: "+use_metadata_tags", moovSize: reservingIndexBytes)
    }

    /// Room enough for the index of `samples` pictures of which `keyframes` are keyframes, with
    /// `extradata` bytes of decoder configuration, `metadataBytes` of tags and `chapters`: every
    /// per-sample table at its widest (stsz 4, stts 8, ctts 8, stsc 12 and co64 8 with one chunk
    /// per sample, sdtp 1) plus the fixed boxes, generously.
    public static func indexBytesBound(samples: Int, keyframes: Int, extradata: Int, metadataBytes: Int, chapters: [Chapter]) -> Int {
        8192 + samples * 41 + keyframes * 4 + extradata + metadataBytes * 2 + chapters.reduce(0) { $0 + 64 + 2 * $1.title.utf8.count }
    }

    /// The whole MP4 written in memory (empty for a file).
    public var bytes: [UInt8] { memory?.bytes ?? [] }

    private func open(parameters: CodecParameters, timeBase: Rational, metadata: [(String, String)], movflags: String, moovSize: Int?) throws {
        packet = av_packet_alloc()
        guard packet != nil else { throw AVError("av_packet_alloc", code: bc_averror(ENOMEM)) }
        // "file:" first: a path with a colon in it is not taken for another protocol's URL.
        try avCheck(avformat_alloc_output_context2(&format, nil, "mp4", memory == nil ? "file:" + path : nil), "avformat_alloc_output_context2(mp4)")
        guard let format else { throw AVError("avformat_alloc_output_context2", code: bc_averror(ENOMEM)) }
        guard let stream = avformat_new_stream(format, nil) else { throw AVError("avformat_new_stream", code: bc_averror(ENOMEM)) }
        try avCheck(avcodec_parameters_copy(stream.pointee.codecpar, parameters.raw), "avcodec_parameters_copy")
        stream.pointee.codecpar.pointee.codec_tag = 0
        stream.pointee.time_base = timeBase.av
        for (key, value) in metadata { av_dict_set(&format.pointee.metadata, key, value, 0) }
        if let memory {
            let size: Int32 = 64 * 1024
            guard let buffer = av_malloc(Int(size)) else { throw AVError("av_malloc", code: bc_averror(ENOMEM)) }
            let opaque = Unmanaged.passUnretained(memory).toOpaque()
            customIO = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), size, 1, opaque, nil, { opaque, data, count in
                let memory = Unmanaged<Memory>.fromOpaque(opaque!).takeUnretainedValue()
                let count = Int(count)
                let end = memory.position + count
                if end > memory.bytes.count { memory.bytes.append(contentsOf: repeatElement(0, count: end - memory.bytes.count)) }
                memory.bytes.withUnsafeMutableBytes { target in
                    (target.baseAddress! + memory.position).copyMemory(from: data!, byteCount: count)
                }
                memory.position = end
                return Int32(count)
            }, { opaque, offset, whence in
                let memory = Unmanaged<Memory>.fromOpaque(opaque!).takeUnretainedValue()
                // A writer may seek back over what it wrote, not past 2 GiB.
                return memorySeek(offset: offset, whence: whence, position: &memory.position, size: memory.bytes.count, limit: Int64(Int32.max))
            })
            guard let customIO else {
                av_free(buffer)
                throw AVError("avio_alloc_context", code: bc_averror(ENOMEM))
            }
            format.pointee.pb = customIO
            format.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        } else {
            try avCheck(avio_open(&format.pointee.pb, "file:" + path, AVIO_FLAG_WRITE), "avio_open(\(path))")
        }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        av_dict_set(&options, "movflags", movflags, 0)
        if let moovSize { av_dict_set(&options, "moov_size", String(moovSize), 0) }
        try avCheck(avformat_write_header(format, &options), "avformat_write_header(\(path))")
        streamTimeBase = stream.pointee.time_base
    }

    deinit {
        if let format {
            if customIO == nil { avio_closep(&format.pointee.pb) } else { format.pointee.pb = nil }
            avformat_free_context(format)
        }
        if customIO != nil {
            av_freep(&customIO!.pointee.buffer)
            avio_context_free(&customIO)
        }
        av_packet_free(&packet)
    }

    /// av_write_frame for one packet (times in the time base given at init; decode times must
    /// rise).
    public func write(_ compressed: CompressedPacket) throws {
        precondition(!finished)
        guard let packet else { return }
        av_packet_unref(packet)
        try avCheck(av_new_packet(packet, Int32(compressed.data.count)), "av_new_packet")
        if !compressed.data.isEmpty {
            compressed.data.withUnsafeBufferPointer { packet.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        }
        packet.pointee.pts = compressed.pts
        packet.pointee.dts = compressed.dts
        packet.pointee.duration = compressed.duration
        packet.pointee.stream_index = 0
        packet.pointee.flags = compressed.isKeyframe ? AV_PKT_FLAG_KEY : 0
        av_packet_rescale_ts(packet, inputTimeBase, streamTimeBase)
        try avCheck(av_write_frame(format, packet), "av_write_frame(\(path))")
    }

    /// Adds the chapters, writes the index (in front of the samples) and closes the output.
    /// Call once. The caller makes a file durable (fsync) before it publishes it.
    public func finish(chapters: [Chapter] = []) throws {
        precondition(!finished)
        finished = true
        guard let format else { return }
        for (index, chapter) in chapters.enumerated() {
            let scale = 1000.0
            try avCheck(bc_av_add_chapter(format, Int64(index + 1), 1, Int32(scale), Int64((chapter.startSeconds * scale).rounded()),
                                          Int64((chapter.endSeconds * scale).rounded()), chapter.title), "add chapter")
        }
        try avCheck(av_write_trailer(format), "av_write_trailer(\(path))")
        if customIO != nil {
            avio_flush(customIO)
            if let customIO, customIO.pointee.error < 0 { throw AVError("avio_flush(\(path))", code: customIO.pointee.error) }
        } else {
            try avCheck(avio_closep(&format.pointee.pb), "avio_close(\(path))")
        }
    }
}
