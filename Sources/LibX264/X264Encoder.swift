import CX264

/// An error from libx264: the call that failed and what it was given. libx264 reports only
/// "failed" (a negative return or NULL), and prints its reason through its own log.
public struct X264Error: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public init(_ operation: String) { self.operation = operation }
    public var description: String { "libx264: \(operation) failed" }
}

/// The 8-bit 4:2:0 layouts libx264 takes as they are.
public enum X264InputLayout: Sendable, Equatable {
    /// Y, U and V planes (I420).
    case i420
    /// A Y plane, then one of interleaved U and V (NV12).
    case nv12

    var colorspace: Int32 { self == .i420 ? X264_CSP_I420 : X264_CSP_NV12 }
    /// Planes a picture in this layout has.
    public var planeCount: Int { self == .i420 ? 3 : 2 }
}

/// How to open libx264, in its own terms (x264_param_t; x264 --fullhelp documents each).
public struct X264Settings: Sendable, Equatable {
    public var input: X264InputLayout
    public var width: Int
    public var height: Int
    /// The nominal rate, for rate control's per-frame budget when timestamps are irregular.
    public var framesPerSecond: Int
    /// Timestamps are ticks of 1/`timescale` seconds (90 000 for MPEG's clock).
    public var timescale: Int
    /// x264's preset ("ultrafast" … "placebo") and tune ("zerolatency", …, or nil).
    public var preset: String
    public var tune: String?
    /// Average bit rate in kb/s (ABR, with a VBV of `vbvMaxKbps` over `vbvBufferKbits`), or nil
    /// for constant quality at `crf`.
    public var bitrateKbps: Int?
    public var vbvMaxKbps: Int?
    public var vbvBufferKbits: Int?
    public var crf: Double?
    /// Largest distance between IDR pictures, in frames (a backstop: the caller forces IDRs).
    public var keyintFrames: Int
    public var bFrames: Int
    /// True: SPS and PPS once, from `headers()` (for an MP4 avcC); false: before every IDR in-band.
    public var globalHeader: Bool

    public init(input: X264InputLayout, width: Int, height: Int, framesPerSecond: Int, timescale: Int, preset: String, tune: String?,
                bitrateKbps: Int?, vbvMaxKbps: Int?, vbvBufferKbits: Int?, crf: Double?,
                keyintFrames: Int, bFrames: Int, globalHeader: Bool) {
        self.input = input
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.timescale = timescale
        self.preset = preset
        self.tune = tune
        self.bitrateKbps = bitrateKbps
        self.vbvMaxKbps = vbvMaxKbps
        self.vbvBufferKbits = vbvBufferKbits
        self.crf = crf
        self.keyintFrames = keyintFrames
        self.bFrames = bFrames
        self.globalHeader = globalHeader
    }
}

/// One picture out of libx264: its NAL units in Annex B form (start codes of 4 bytes, or 3 for
/// a picture's later slices), in the encoder's timescale.
public struct X264Packet: Sendable, Equatable {
    public var data: [UInt8]
    public var pts: Int64
    public var dts: Int64
    public var isKeyframe: Bool
}

/// An open libx264 encoder (x264_encoder_open / _encode / _close) for 8-bit 4:2:0 input.
/// Not thread-safe: one thread drives it; libx264 runs its own worker threads inside.
public final class X264Encoder {
    private let handle: OpaquePointer
    public let settings: X264Settings
    /// The stream's SPS and PPS, Annex B (empty with `globalHeader` false).
    public let parameterSets: [UInt8]
    /// libx264's SEI naming its version and options, put before the first picture's NAL units
    /// as libavcodec does, so the stream says what made it.
    private var versionSEI: [UInt8]

    public init(_ settings: X264Settings) throws {
        var param = x264_param_t()
        let presetStatus = settings.tune.map { tune in
            x264_param_default_preset(&param, settings.preset, tune)
        } ?? x264_param_default_preset(&param, settings.preset, nil)
        guard presetStatus == 0 else {
            throw X264Error("x264_param_default_preset(\"\(settings.preset)\", \"\(settings.tune ?? "")\"): no such preset or tune")
        }
        guard settings.width > 0, settings.height > 0, settings.width % 2 == 0, settings.height % 2 == 0,
              settings.framesPerSecond > 0, settings.timescale > 0, settings.keyintFrames > 0 else {
            throw X264Error("x264_encoder_open(\(settings.width)x\(settings.height) at \(settings.framesPerSecond) fps, timescale \(settings.timescale), keyint \(settings.keyintFrames)): 4:2:0 needs even sizes, and every count must be positive")
        }
        param.i_log_level = X264_LOG_WARNING
        param.i_csp = settings.input.colorspace
        param.i_width = Int32(settings.width)
        param.i_height = Int32(settings.height)
        param.i_fps_num = UInt32(settings.framesPerSecond)
        param.i_fps_den = 1
        param.i_timebase_num = 1
        param.i_timebase_den = UInt32(settings.timescale)
        // 0: x264 picks its thread count for the machine (as libavcodec's "threads auto").
        param.i_threads = X264_THREADS_AUTO
        if let bitrate = settings.bitrateKbps {
            param.rc.i_rc_method = X264_RC_ABR
            param.rc.i_bitrate = Int32(bitrate)
            param.rc.i_vbv_max_bitrate = Int32(settings.vbvMaxKbps ?? 0)
            param.rc.i_vbv_buffer_size = Int32(settings.vbvBufferKbits ?? 0)
        } else {
            param.rc.i_rc_method = X264_RC_CRF
            param.rc.f_rf_constant = Float(settings.crf ?? 23)
        }
        param.i_keyint_max = Int32(settings.keyintFrames)
        param.i_keyint_min = Int32(settings.keyintFrames)
        // A scene cut would put an I picture inside a GOP and break one fragment per second;
        // closed GOPs let a segment start at any keyframe.
        param.i_scenecut_threshold = 0
        param.b_open_gop = 0
        param.i_bframe = Int32(settings.bFrames)
        param.b_repeat_headers = settings.globalHeader ? 0 : 1
        param.b_annexb = 1

        guard let handle = bc_x264_encoder_open(&param) else {
            throw X264Error("x264_encoder_open(\(settings.width)x\(settings.height), preset \(settings.preset))")
        }
        self.handle = handle
        self.settings = settings
        var sets: [UInt8] = []
        var sei: [UInt8] = []
        if settings.globalHeader {
            var nals: UnsafeMutablePointer<x264_nal_t>? = nil
            var count: Int32 = 0
            guard x264_encoder_headers(handle, &nals, &count) >= 0, let nals else {
                x264_encoder_close(handle)
                throw X264Error("x264_encoder_headers")
            }
            for nal in UnsafeBufferPointer(start: nals, count: Int(count)) {
                let bytes = UnsafeBufferPointer(start: nal.p_payload, count: Int(nal.i_payload))
                if nal.i_type == Int32(NAL_SEI.rawValue) { sei += bytes } else { sets += bytes }
            }
        }
        parameterSets = sets
        versionSEI = sei
    }

    deinit { x264_encoder_close(handle) }

    /// Encodes one picture given as its planes in the settings' layout (base address and bytes
    /// per row each)
    /// at `pts` (ticks of the timescale, strictly increasing); `idr` makes it an IDR picture.
    /// libx264 copies the planes before it returns. Returns the packet it has ready, if any
    /// (with B-frames or frame threads, a later call returns this picture's).
    public func encode(planes: [(UnsafeRawPointer, Int)], pts: Int64, idr: Bool) throws -> X264Packet? {
        precondition(planes.count == settings.input.planeCount, "\(settings.input): \(settings.input.planeCount) planes")
        var picture = x264_picture_t()
        x264_picture_init(&picture)
        picture.i_type = idr ? X264_TYPE_IDR : X264_TYPE_AUTO
        picture.i_pts = pts
        picture.img.i_csp = settings.input.colorspace
        picture.img.i_plane = Int32(planes.count)
        withUnsafeMutableBytes(of: &picture.img.plane) { slots in
            let pointers = slots.bindMemory(to: UnsafeMutablePointer<UInt8>?.self)
            for (index, plane) in planes.enumerated() { pointers[index] = UnsafeMutablePointer(mutating: plane.0.assumingMemoryBound(to: UInt8.self)) }
        }
        withUnsafeMutableBytes(of: &picture.img.i_stride) { slots in
            let strides = slots.bindMemory(to: Int32.self)
            for (index, plane) in planes.enumerated() { strides[index] = Int32(plane.1) }
        }
        return try run(&picture, "x264_encoder_encode(pts \(pts))")
    }

    /// Pictures libx264 still holds (B-frames, frame threads).
    public var delayedFrames: Int { Int(x264_encoder_delayed_frames(handle)) }

    /// The next held picture's packet at the end of the stream; nil once none is held. A call
    /// that gives nothing while pictures are still held (a frame thread that had none) is
    /// passed over, as x264's own example does.
    public func flush() throws -> X264Packet? {
        while delayedFrames > 0 {
            if let packet = try run(nil, "x264_encoder_encode(flush)") { return packet }
        }
        return nil
    }

    private func run(_ input: UnsafeMutablePointer<x264_picture_t>?, _ operation: @autoclosure () -> String) throws -> X264Packet? {
        var output = x264_picture_t()
        var nals: UnsafeMutablePointer<x264_nal_t>? = nil
        var count: Int32 = 0
        let size = x264_encoder_encode(handle, &nals, &count, input, &output)
        guard size >= 0 else { throw X264Error(operation()) }
        guard size > 0, let nals, count > 0 else { return nil }
        // With b_annexb, the NAL units of one picture lie back to back from the first payload
        // (x264.h: "the payloads of all output NALs are guaranteed to be sequential in memory").
        var data = versionSEI
        versionSEI = []
        data += UnsafeBufferPointer(start: nals[0].p_payload, count: Int(size))
        return X264Packet(data: data, pts: output.i_pts, dts: output.i_dts, isKeyframe: output.b_keyframe != 0)
    }
}
