import LibAV
import Platform

/// Size, layout and nominal rate of the pictures a source delivers.
public struct FrameFormat: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixelFormat: PixelFormat
    public var framesPerSecond: Int

    public init(width: Int, height: Int, pixelFormat: PixelFormat, framesPerSecond: Int) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.framesPerSecond = framesPerSecond
    }
}

/// One picture from a source, with how many pictures were lost just before it.
public struct CapturedFrame: Sendable {
    public var frame: VideoFrame
    /// Frames the source missed before this one: the driver's sequence gaps, and what the
    /// source itself let go (pictures that did not decode, its hand-over queue's overflow).
    public var droppedBefore: Int
    /// `droppedBefore` is estimated from capture times and the negotiated rate: the driver's
    /// sequence numbers cannot be trusted (docs/ARCHITECTURE.md, "Dropped frames"). Set on
    /// every picture from then on, a count of 0 included.
    public var dropsEstimated = false
    /// Set on the first picture of a stream whose capture time the source could not trust and
    /// replaced (docs/ARCHITECTURE.md, "Capture time"): why.
    public var timestampNote: String?
    /// Set on the first picture of a stream whose sequence numbers the source stopped trusting:
    /// why.
    public var sequenceNote: String?
    /// The capture time is the driver's own (false: the dequeue time stands in for it).
    public var captureTimeFromSource = true
    /// Set on the picture at which the rate the camera really delivers fell below the configured
    /// one (`.below`, with what it delivers) or came back to it (`.met`).
    public var delivery: DeliveryChange?

    public init(frame: VideoFrame, droppedBefore: Int = 0, timestampNote: String? = nil) {
        self.frame = frame
        self.droppedBefore = droppedBefore
        self.timestampNote = timestampNote
    }
}

/// A change in whether a camera delivers the configured rate (docs/ARCHITECTURE.md, "Camera modes").
public enum DeliveryChange: Equatable, Sendable {
    case below(String)
    case met
}

/// The first stage: raw pictures in capture order, stamped with CLOCK_MONOTONIC capture time.
///
/// `start`, `nextFrame` and `close` are called from the one pipeline thread; `stop` may be called
/// from any thread and makes a blocked `nextFrame` return nil.
public protocol FrameSource: AnyObject {
    var format: FrameFormat { get }
    /// A short description for logs: "v4l2 /dev/video0 (uvcvideo) YUYV 1280x720@30".
    var name: String { get }
    /// Pictures come at the camera's pace whether or not they are taken (a camera, a paced
    /// pattern): a pipeline that falls behind loses them, so it must never wait. A source that
    /// is not live (a file read as fast as it goes) simply waits for the pipeline.
    var isLive: Bool { get }
    func start() throws
    /// The next picture; blocks until it is due or captured. nil when the source has ended
    /// (end of file) or `stop` was called. Throws `FrameSourceLost` when the device is gone,
    /// other errors when it fails.
    func nextFrame() throws -> CapturedFrame?
    func stop()
    /// Releases the device or file. The source can be started again after `close`.
    func close() throws
    /// After `start`: set when the source gives less than was configured (a smaller picture, a
    /// lower rate): what it gives, against what was asked.
    var shortfall: String? { get }
}

extension FrameSource {
    public var shortfall: String? { nil }
}

/// The camera is gone (unplugged, driver unbound, a USB reset): thrown by `nextFrame`. The
/// pipeline seals what it has and reopens the source (`close()`, then `start()`) until the
/// device is back. Source-neutral, so the pipeline needs no knowledge of V4L2.
public struct FrameSourceLost: Error, CustomStringConvertible, Sendable {
    /// What the source saw, naming the device ("/dev/video0: VIDIOC_DQBUF: No such device").
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Sources whose pictures are synthetic either keep real time or run as fast as the consumer.
public enum Pacing: String, CaseIterable, Sendable {
    case realTime = "real-time"
    case asFastAsPossible = "fast"
}
