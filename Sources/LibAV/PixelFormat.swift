// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVUtil
import CShims
import CSwScale

/// The raw picture layouts the pipeline handles. Each maps to one AVPixelFormat and one V4L2
/// fourcc; the mapping lives here and in the V4L2 module, nowhere else.
public enum PixelFormat: String, CaseIterable, Sendable {
    /// Packed 4:2:2, Y0 U Y1 V (V4L2 YUYV): what most USB and CSI cameras deliver.
    case yuyv422
    /// Semi-planar 4:2:0: a Y plane, then interleaved U/V (V4L2 NV12): common on ARM ISPs.
    case nv12
    /// Planar 4:2:0 (V4L2 YU12, "I420"): what libx264 takes natively.
    case yuv420p

    package var av: AVPixelFormat {
        switch self {
        case .yuyv422: return AV_PIX_FMT_YUYV422
        case .nv12: return AV_PIX_FMT_NV12
        case .yuv420p: return AV_PIX_FMT_YUV420P
        }
    }

    package init?(av: AVPixelFormat) {
        guard let match = PixelFormat.allCases.first(where: { $0.av == av }) else { return nil }
        self = match
    }

    /// Bytes in one tightly packed picture (no row padding), as in a rawvideo file.
    public func frameSize(width: Int, height: Int) -> Int {
        switch self {
        case .yuyv422: return width * height * 2
        case .nv12, .yuv420p: return width * height + 2 * (((width + 1) / 2) * ((height + 1) / 2))
        }
    }

    public var planeCount: Int {
        switch self {
        case .yuyv422: return 1
        case .nv12: return 2
        case .yuv420p: return 3
        }
    }
}
