// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVUtil
import CShims
import CSwScale

/// Converts pictures between pixel formats at the same size (sws_scale_frame). Only built when
/// the camera's format differs from the encoder's.
public final class PixelConverter {
    private let context: OpaquePointer
    private let pool: FramePool
    public let source: PixelFormat
    public let destination: PixelFormat

    public init(width: Int, height: Int, from source: PixelFormat, to destination: PixelFormat) throws {
        // The C handle is acquired last: a throw before full initialisation does not run deinit,
        // so nothing may be held that only deinit would free.
        self.pool = try FramePool(width: width, height: height, pixelFormat: destination)
        // Bicubic is what ffmpeg's own format conversion uses, so quality matches the reference.
        guard let context = sws_getContext(Int32(width), Int32(height), source.av,
                                           Int32(width), Int32(height), destination.av,
                                           SWS_BICUBIC, nil, nil, nil) else {
            throw AVError("sws_getContext(\(source) → \(destination))", code: bc_averror(EINVAL))
        }
        self.context = context
        self.source = source
        self.destination = destination
    }

    deinit { sws_freeContext(context) }

    /// A new frame in the destination format carrying the input's timing and flags.
    public func convert(_ input: VideoFrame) throws -> VideoFrame {
        precondition(input.pixelFormat == source)
        let output = try pool.makeFrame()
        try avCheck(sws_scale_frame(context, output.frame, input.frame), "sws_scale_frame(\(source) → \(destination))")
        output.sequence = input.sequence
        output.captureNanoseconds = input.captureNanoseconds
        output.forceKeyframe = input.forceKeyframe
        return output
    }
}
