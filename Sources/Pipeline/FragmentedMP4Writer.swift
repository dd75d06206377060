import H264
import LibAV

/// What the MP4 header says of the one H.264 video track.
public struct VideoTrackDescription: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// The decoder configuration: an `AVCDecoderConfigurationRecord` (avcC, ISO/IEC 14496-15
    /// 5.3.3.1) as is, or the sequence and picture parameter sets in Annex B form (start codes),
    /// which the writer turns into one.
    public var decoderConfiguration: [UInt8]
    /// Ticks a second of every timestamp given to the writer (90,000: the pipeline's clock).
    public var timescale: Int

    public init(width: Int, height: Int, decoderConfiguration: [UInt8], timescale: Int) {
        self.width = width
        self.height = height
        self.decoderConfiguration = decoderConfiguration
        self.timescale = timescale
    }
}

/// Why the fragmented MP4 writer refused its input.
public struct MP4WriterError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes a fragmented MP4 file (ISO/IEC 14496-12, the `iso5` brand) of one H.264 track: the
/// header (`ftyp`, then a `moov` with empty sample tables, `mvex` and the container's tags) at
/// once, then one `moof` + `mdat` fragment per `flushFragment()`, and at `finish()` the last
/// fragment and an `mfra` index of the fragments that open with a keyframe. Every byte goes to
/// `output`, in order; the caller decides where (the sealing sink). This is the layout
/// libavformat's mp4 muxer gives with `empty_moov+frag_custom+default_base_moof+use_metadata_tags`,
/// which the recorder used before: players, libavformat's demuxer and the live view's
/// `FragmentedMP4` read the two alike.
///
/// Hand-written, not libavformat: the recording path writes only this one layout, and linking
/// libavformat on the camera loads Debian's whole demuxer and protocol chain (about 40 shared
/// libraries, 9 MiB resident) for it. Reading, exports and stream copies keep libavformat
/// (`LibAVFormat`).
///
/// Samples come in Annex B form (start codes, as x264 and the V4L2 encoders emit them) and are
/// stored with 4-byte lengths, as `avcC` declares. Timestamps are in the track's timescale,
/// counted from the segment's first decode time. Not thread-safe: one thread drives it.
/// A failure of `output` is sticky: that error is thrown by every later call, and nothing more
/// is written.
public final class FragmentedMP4Writer {
    public typealias Output = (UnsafeRawBufferPointer) throws -> Void

    private struct Sample {
        var data: [UInt8]
        var pts: Int64
        var dts: Int64
        var duration: Int64
        var isKeyframe: Bool
    }

    /// A fragment that opens with a keyframe, for the `mfra` index.
    private struct RandomAccessPoint {
        /// The keyframe's presentation time (tfra's `time`).
        var time: Int64
        var moofOffset: Int
    }

    private let output: Output
    private var pending: [Sample] = []
    /// The decode time of the last sample written, in any fragment.
    private var lastDecodeTime: Int64?
    private var bytesWritten = 0
    private var fragmentNumber: UInt32 = 0
    private var randomAccessPoints: [RandomAccessPoint] = []
    private var failure: Error?
    private var finished = false

    /// Writes the header. Throws `MP4WriterError` for a track it cannot describe, or `output`'s
    /// own error.
    /// - Parameters:
    ///   - creationWallNanoseconds: wall time (ns since 1970) for `mvhd`, `tkhd` and `mdhd`.
    ///   - metadata: the container's tags (key, UTF-8 value), in `udta/meta` with `mdta` keys.
    public init(track: VideoTrackDescription, creationWallNanoseconds: Int64, metadata: [(String, String)],
                output: @escaping Output) throws {
        self.output = output
        guard track.timescale > 0, track.timescale <= Int(UInt32.max), (1...0xFFFF).contains(track.width), (1...0xFFFF).contains(track.height) else {
            throw MP4WriterError("a video track of \(track.width)x\(track.height) at \(track.timescale) ticks a second cannot be described")
        }
        // An encoder that gave no parameter sets at all: 'avc3', whose samples carry them in-band
        // (ISO/IEC 14496-15 5.4.2.1), so that what is recorded is kept and can be decoded.
        let configuration = try AVCDecoderConfiguration.record(from: track.decoderConfiguration)
        let sampleEntry = configuration == nil ? "avc3" : "avc1"
        var header = BoxBuilder()
        header.box("ftyp") {
            $0.fourCC("iso5")
            $0.u32(512)
            for brand in ["iso5", "iso6", "mp41"] { $0.fourCC(brand) }
        }
        // Seconds since 1904-01-01 (ISO/IEC 14496-12 8.2.2), the earliest for a wall clock before it.
        let created = UInt32(clamping: max(0, creationWallNanoseconds / 1_000_000_000 + 2_082_844_800))
        header.box("moov") { moov in
            moov.fullBox("mvhd", version: 0, flags: 0) {
                $0.u32(created); $0.u32(created)
                $0.u32(1000); $0.u32(0)  // timescale, duration (fragmented: in the fragments)
                $0.u32(0x0001_0000); $0.u16(0x0100); $0.zeros(10)  // rate 1.0, volume 1.0
                $0.matrix()
                $0.zeros(24)
                $0.u32(2)  // next_track_ID
            }
            moov.box("trak") { trak in
                trak.fullBox("tkhd", version: 0, flags: 3) {  // enabled, in the movie
                    $0.u32(created); $0.u32(created)
                    $0.u32(1); $0.u32(0); $0.u32(0)  // track_ID, reserved, duration
                    $0.zeros(8); $0.u16(0); $0.u16(0); $0.u16(0); $0.u16(0)  // layer, group, volume
                    $0.matrix()
                    $0.u32(UInt32(track.width) << 16); $0.u32(UInt32(track.height) << 16)
                }
                trak.box("mdia") { mdia in
                    mdia.fullBox("mdhd", version: 0, flags: 0) {
                        $0.u32(created); $0.u32(created)
                        $0.u32(UInt32(track.timescale)); $0.u32(0)
                        $0.u16(0x55C4); $0.u16(0)  // language "und"
                    }
                    mdia.fullBox("hdlr", version: 0, flags: 0) {
                        $0.u32(0); $0.fourCC("vide"); $0.zeros(12); $0.string("VideoHandler")
                    }
                    mdia.box("minf") { minf in
                        minf.fullBox("vmhd", version: 0, flags: 1) { $0.zeros(8) }
                        minf.box("dinf") { dinf in
                            dinf.fullBox("dref", version: 0, flags: 0) {
                                $0.u32(1)
                                $0.fullBox("url ", version: 0, flags: 1) { _ in }  // the media is in this file
                            }
                        }
                        minf.box("stbl") { stbl in
                            stbl.fullBox("stsd", version: 0, flags: 0) { stsd in
                                stsd.u32(1)
                                stsd.box(sampleEntry) {
                                    $0.zeros(6); $0.u16(1)  // data_reference_index
                                    $0.zeros(16)
                                    $0.u16(UInt16(track.width)); $0.u16(UInt16(track.height))
                                    $0.u32(0x0048_0000); $0.u32(0x0048_0000)  // 72 dpi
                                    $0.u32(0); $0.u16(1)  // frame_count
                                    $0.zeros(32)  // compressorname
                                    $0.u16(0x0018); $0.u16(0xFFFF)  // depth, pre_defined -1
                                    $0.box("avcC") { $0.append(configuration ?? AVCDecoderConfiguration.empty) }
                                    $0.box("pasp") { $0.u32(1); $0.u32(1) }
                                }
                            }
                            // No samples here: they are all in the fragments.
                            for type in ["stts", "stsc", "stco"] { stbl.fullBox(type, version: 0, flags: 0) { $0.u32(0) } }
                            stbl.fullBox("stsz", version: 0, flags: 0) { $0.u32(0); $0.u32(0) }
                        }
                    }
                }
            }
            moov.box("mvex") { mvex in
                mvex.fullBox("trex", version: 0, flags: 0) {
                    $0.u32(1); $0.u32(1)  // track_ID, default_sample_description_index
                    $0.u32(0); $0.u32(0); $0.u32(0)
                }
            }
            if !metadata.isEmpty {
                moov.box("udta") { udta in
                    udta.fullBox("meta", version: 0, flags: 0) { meta in
                        meta.fullBox("hdlr", version: 0, flags: 0) { $0.u32(0); $0.fourCC("mdta"); $0.zeros(12); $0.u8(0) }
                        meta.fullBox("keys", version: 0, flags: 0) { keys in
                            keys.u32(UInt32(metadata.count))
                            for (key, _) in metadata { keys.box("mdta") { $0.append(Array(key.utf8)) } }
                        }
                        meta.box("ilst") { ilst in
                            for (index, (_, value)) in metadata.enumerated() {
                                ilst.box(UInt32(index + 1)) {
                                    $0.box("data") { $0.u32(1); $0.u32(0); $0.append(Array(value.utf8)) }  // UTF-8, no locale
                                }
                            }
                        }
                    }
                }
            }
        }
        try emit(header.bytes)
    }

    /// Gives the file up after a failure outside the writer (the sink could not make the header
    /// durable, say): nothing more is written.
    public func abandon(because error: Error) {
        if failure == nil { failure = error }
    }

    /// Adds one sample (an access unit) to the fragment being built. Nothing is written until
    /// `flushFragment()` or `finish()`. Throws `MP4WriterError` for an empty sample, a decode
    /// time that does not follow the last one's, or a composition offset no trun can hold.
    public func write(_ bytes: UnsafeRawBufferPointer, pts: Int64, dts: Int64, duration: Int64, isKeyframe: Bool) throws {
        precondition(!finished)
        if let failure { throw failure }
        let data = AVCDecoderConfiguration.lengthPrefixed(Array(bytes))
        guard !data.isEmpty else { throw MP4WriterError("an empty sample at decode time \(dts)") }
        guard dts >= 0, lastDecodeTime.map({ dts > $0 }) ?? true else {
            throw MP4WriterError("decode time \(dts) does not follow the last sample's")
        }
        let (offset, overflow) = pts.subtractingReportingOverflow(dts)
        guard !overflow, Int64(Int32.min)...Int64(Int32.max) ~= offset else {
            throw MP4WriterError("presentation time \(pts) is too far from decode time \(dts)")
        }
        lastDecodeTime = dts
        pending.append(Sample(data: data, pts: pts, dts: dts, duration: max(1, duration), isKeyframe: isKeyframe))
    }

    /// Writes the samples given since the last fragment as one `moof` + `mdat`. On return every
    /// byte given to `output` belongs to a complete fragment. Nothing is written when there are
    /// no samples.
    public func flushFragment() throws {
        precondition(!finished)
        if let failure { throw failure }
        try writeFragment()
    }

    /// Writes the last fragment and the `mfra` index. Call once.
    public func finish() throws {
        precondition(!finished)
        finished = true
        if let failure { throw failure }
        try writeFragment()
        var index = BoxBuilder()
        index.box("mfra") { mfra in
            mfra.fullBox("tfra", version: 1, flags: 0) {
                $0.u32(1); $0.u32(0)  // track_ID; traf, trun and sample numbers of one byte each
                $0.u32(UInt32(randomAccessPoints.count))
                for point in randomAccessPoints {
                    $0.u64(UInt64(max(0, point.time))); $0.u64(UInt64(point.moofOffset))
                    $0.u8(1); $0.u8(1); $0.u8(1)
                }
            }
            mfra.fullBox("mfro", version: 0, flags: 0) { $0.u32(0) }
        }
        // mfro's field is the size of the whole mfra, its last four bytes.
        index.patchU32(at: index.bytes.count - 4, UInt32(index.bytes.count))
        try emit(index.bytes)
    }

    // sample_depends_on 2 (an I picture); sample_depends_on 1 and sample_is_non_sync_sample.
    private static let syncSampleFlags: UInt32 = 0x0200_0000
    private static let otherSampleFlags: UInt32 = 0x0101_0000

    private func writeFragment() throws {
        guard let first = pending.first else { return }
        let samples = pending
        let payload = samples.reduce(0) { $0 + $1.data.count }
        guard payload <= Int(UInt32.max) - 8 else {
            let error = MP4WriterError("a fragment of \(payload) bytes does not fit an mdat")
            failure = error
            throw error
        }
        pending = []
        fragmentNumber += 1
        let reordered = samples.contains { $0.pts != $0.dts }
        // One flag for the first sample when no later one is a keyframe (each fragment opens a
        // GOP or continues one), else flags for every sample.
        let flagsEach = samples.dropFirst().contains { $0.isKeyframe }
        var trunFlags: UInt32 = 0x1 | 0x100 | 0x200  // data_offset, durations, sizes
        trunFlags |= flagsEach ? 0x400 : 0x4
        if reordered { trunFlags |= 0x800 }
        let moofStart = bytesWritten
        var moof = BoxBuilder()
        var dataOffsetAt = 0
        moof.box("moof") { moof in
            moof.fullBox("mfhd", version: 0, flags: 0) { $0.u32(fragmentNumber) }
            moof.box("traf") { traf in
                // default-base-is-moof, default_sample_flags.
                traf.fullBox("tfhd", version: 0, flags: 0x02_0020) { $0.u32(1); $0.u32(Self.otherSampleFlags) }
                traf.fullBox("tfdt", version: 1, flags: 0) { $0.u64(UInt64(first.dts)) }
                // Version 1: signed composition offsets.
                traf.fullBox("trun", version: reordered ? 1 : 0, flags: trunFlags) { trun in
                    trun.u32(UInt32(samples.count))
                    dataOffsetAt = trun.bytes.count
                    trun.u32(0)
                    if !flagsEach { trun.u32(first.isKeyframe ? Self.syncSampleFlags : Self.otherSampleFlags) }
                    for (position, sample) in samples.enumerated() {
                        // A sample lasts until the next one's decode time; the last, its own duration.
                        let duration = position + 1 < samples.count ? samples[position + 1].dts - sample.dts : sample.duration
                        trun.u32(UInt32(clamping: duration))
                        trun.u32(UInt32(sample.data.count))
                        if flagsEach { trun.u32(sample.isKeyframe ? Self.syncSampleFlags : Self.otherSampleFlags) }
                        if reordered { trun.u32(UInt32(bitPattern: Int32(sample.pts - sample.dts))) }  // in range: write()
                    }
                }
            }
        }
        // The samples start just past the moof and the mdat's header.
        moof.patchU32(at: dataOffsetAt, UInt32(moof.bytes.count + 8))
        var fragment = moof.bytes
        fragment.reserveCapacity(fragment.count + 8 + payload)
        fragment += BoxBuilder.header(size: 8 + payload, type: "mdat")
        for sample in samples { fragment += sample.data }
        try emit(fragment)
        if first.isKeyframe { randomAccessPoints.append(RandomAccessPoint(time: first.pts, moofOffset: moofStart)) }
    }

    private func emit(_ bytes: [UInt8]) throws {
        do {
            try bytes.withUnsafeBytes { try output($0) }
            bytesWritten += bytes.count
        } catch {
            failure = error
            throw error
        }
    }
}

/// The H.264 decoder configuration record (ISO/IEC 14496-15 5.3.3.1) and sample framing.
public enum AVCDecoderConfiguration {
    /// An avcC without parameter sets (profile and level unknown), for 'avc3'.
    public static let empty: [UInt8] = [1, 0, 0, 0, 0xFF, 0xE0, 0]

    /// The avcC record for `configuration`: itself when it already is one (it starts with
    /// version 1), else built from the Annex B SPS, PPS and SPS extension NAL units in it; nil
    /// when it holds no SPS or no PPS. Throws `MP4WriterError` for more parameter sets, or
    /// longer ones, than the record can list.
    public static func record(from configuration: [UInt8]) throws -> [UInt8]? {
        if configuration.first == 1 { return configuration }
        let units = H264Units.annexB(configuration).map(Array.init)
        let sets = units.filter { $0.first.map { $0 & 0x1F == 7 } ?? false }
        let pictureSets = units.filter { $0.first.map { $0 & 0x1F == 8 } ?? false }
        let extensions = units.filter { $0.first.map { $0 & 0x1F == 13 } ?? false }
        guard let sps = sets.first, sps.count >= 4, !pictureSets.isEmpty else { return nil }
        guard sets.count <= 31, pictureSets.count <= 255, (sets + pictureSets + extensions).allSatisfy({ $0.count <= 0xFFFF }) else {
            throw MP4WriterError("the decoder configuration holds \(sets.count) SPS and \(pictureSets.count) PPS, or one over 65,535 bytes: more than avcC lists")
        }
        var record: [UInt8] = [1, sps[1], sps[2], sps[3], 0xFF, 0xE0 | UInt8(sets.count)]  // 4-byte lengths
        for set in sets { record += [UInt8(set.count >> 8), UInt8(set.count & 0xFF)] + set }
        record.append(UInt8(pictureSets.count))
        for set in pictureSets { record += [UInt8(set.count >> 8), UInt8(set.count & 0xFF)] + set }
        // The High profiles add the chroma format and bit depths (5.3.3.1.2).
        if ![66, 77, 88].contains(sps[1]), let format = SequenceParameterSet.chromaFormat(sps) {
            record += [0xFC | format.chromaFormat, 0xF8 | format.lumaBitDepthMinus8, 0xF8 | format.chromaBitDepthMinus8,
                       UInt8(min(extensions.count, 255))]
            for set in extensions.prefix(255) { record += [UInt8(set.count >> 8), UInt8(set.count & 0xFF)] + set }
        }
        return record
    }

    /// An access unit in Annex B form as MP4 stores it: each NAL unit after a 4-byte length.
    /// Bytes without a start code are taken to be length-prefixed already.
    public static func lengthPrefixed(_ accessUnit: [UInt8]) -> [UInt8] {
        let startsWithCode = accessUnit.starts(with: [0, 0, 1]) || accessUnit.starts(with: [0, 0, 0, 1])
        guard startsWithCode else { return accessUnit }
        var sample: [UInt8] = []
        sample.reserveCapacity(accessUnit.count + 16)
        for unit in H264Units.annexB(accessUnit) {
            let length = UInt32(unit.count)
            sample += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            sample += unit
        }
        return sample
    }
}

/// The little of an H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1) that avcC repeats.
enum SequenceParameterSet {
    struct ChromaFormat: Equatable {
        var chromaFormat: UInt8
        var lumaBitDepthMinus8: UInt8
        var chromaBitDepthMinus8: UInt8
    }

    /// chroma_format_idc and the bit depths of an SPS NAL unit (header byte first); 4:2:0 at 8
    /// bits for the profiles that cannot signal them; nil when the unit is cut short.
    static func chromaFormat(_ unit: [UInt8]) -> ChromaFormat? {
        // The RBSP: the unit without its header and emulation prevention bytes (00 00 03).
        var rbsp: [UInt8] = []
        var zeros = 0
        for byte in unit.dropFirst() {
            if zeros >= 2, byte == 3 { zeros = 0; continue }
            zeros = byte == 0 ? zeros + 1 : 0
            rbsp.append(byte)
        }
        var reader = BitReader(rbsp)
        guard let profile = reader.bits(8), reader.bits(16) != nil, reader.unsignedExpGolomb() != nil else { return nil }
        guard [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(profile) else {
            return ChromaFormat(chromaFormat: 1, lumaBitDepthMinus8: 0, chromaBitDepthMinus8: 0)
        }
        guard let chroma = reader.unsignedExpGolomb(), chroma <= 3 else { return nil }
        if chroma == 3 { guard reader.bits(1) != nil else { return nil } }  // separate_colour_plane_flag
        guard let luma = reader.unsignedExpGolomb(), luma <= 6, let chromaDepth = reader.unsignedExpGolomb(), chromaDepth <= 6 else { return nil }
        return ChromaFormat(chromaFormat: UInt8(chroma), lumaBitDepthMinus8: UInt8(luma), chromaBitDepthMinus8: UInt8(chromaDepth))
    }

    struct BitReader {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func bits(_ count: Int) -> Int? {
            guard position + count <= bytes.count * 8 else { return nil }
            var value = 0
            for _ in 0..<count {
                value = value << 1 | Int(bytes[position >> 3] >> (7 - UInt8(position & 7)) & 1)
                position += 1
            }
            return value
        }

        /// ue(v), 9.1; nil past the end or beyond 31 leading zeros.
        mutating func unsignedExpGolomb() -> Int? {
            var zeros = 0
            while true {
                guard let bit = bits(1) else { return nil }
                if bit == 1 { break }
                zeros += 1
                if zeros > 31 { return nil }
            }
            guard let rest = bits(zeros) else { return nil }
            return (1 << zeros) - 1 + rest
        }
    }
}

/// Big-endian bytes and nested ISO BMFF boxes whose sizes are filled in when they close.
struct BoxBuilder {
    var bytes: [UInt8] = []

    static func header(size: Int, type: String) -> [UInt8] {
        [UInt8(size >> 24 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)] + Array(type.utf8)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    mutating func u32(_ value: UInt32) { bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    mutating func u64(_ value: UInt64) { u32(UInt32(value >> 32)); u32(UInt32(value & 0xFFFF_FFFF)) }
    mutating func zeros(_ count: Int) { bytes += [UInt8](repeating: 0, count: count) }
    mutating func append(_ more: [UInt8]) { bytes += more }
    mutating func fourCC(_ code: String) { bytes += Array(code.utf8.prefix(4)) }
    /// A NUL-terminated UTF-8 string.
    mutating func string(_ text: String) { bytes += Array(text.utf8) + [0] }
    /// The unity matrix of mvhd and tkhd (16.16 and 2.30 fixed point).
    mutating func matrix() {
        for value: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { u32(value) }
    }

    mutating func patchU32(at offset: Int, _ value: UInt32) {
        bytes[offset] = UInt8(value >> 24)
        bytes[offset + 1] = UInt8(value >> 16 & 0xFF)
        bytes[offset + 2] = UInt8(value >> 8 & 0xFF)
        bytes[offset + 3] = UInt8(value & 0xFF)
    }

    mutating func box(_ type: String, _ body: (inout BoxBuilder) -> Void) {
        box(type.utf8.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }, body)
    }

    /// A box whose type is a number (the items of an `ilst` with `mdta` keys: 1-based key indices).
    mutating func box(_ type: UInt32, _ body: (inout BoxBuilder) -> Void) {
        let start = bytes.count
        u32(0)
        u32(type)
        body(&self)
        patchU32(at: start, UInt32(bytes.count - start))
    }

    mutating func fullBox(_ type: String, version: UInt8, flags: UInt32, _ body: (inout BoxBuilder) -> Void) {
        box(type) {
            $0.u8(version)
            $0.bytes += [UInt8(flags >> 16 & 0xFF), UInt8(flags >> 8 & 0xFF), UInt8(flags & 0xFF)]
            body(&$0)
        }
    }
}
