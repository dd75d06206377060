import LibAV
import Platform

/// A synthetic camera: colour bars with a box sweeping across them, the frame number and the
/// wall-clock time drawn in the middle, so a viewer sees time pass. Any size and rate; paced in
/// real time (a camera stand-in) or as fast as the consumer takes frames (tests, benchmarks).
public final class TestPatternSource: FrameSource {
    public let format: FrameFormat
    public let pacing: Pacing
    public var isLive: Bool { pacing == .realTime }
    public var name: String { "test-pattern \(format.pixelFormat) \(format.width)x\(format.height)@\(format.framesPerSecond) \(pacing.rawValue)" }
    /// Stop after this many frames (nil: run until stopped).
    public let frameLimit: Int?

    private let pool: FramePool
    private var background: VideoFrame?
    private var index: UInt64 = 0
    private var startMonotonic: Int64 = 0
    private var anchor = ClockAnchor.now()
    private let stopped = AtomicFlag()

    public init(format: FrameFormat, pacing: Pacing = .realTime, frameLimit: Int? = nil) throws {
        precondition(format.framesPerSecond > 0 && format.width >= 16 && format.height >= 16)
        self.format = format
        self.pacing = pacing
        self.frameLimit = frameLimit
        self.pool = try FramePool(width: format.width, height: format.height, pixelFormat: format.pixelFormat)
    }

    public func start() throws {
        let bars = try pool.makeFrame()
        let colors: [(Int, Int, Int)] = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0),
                                         (191, 0, 191), (191, 0, 0), (0, 0, 191)]
        let barWidth = (format.width + colors.count - 1) / colors.count
        for (i, rgb) in colors.enumerated() {
            Painter.fill(bars, x: i * barWidth, y: 0, width: barWidth, height: format.height,
                         color: YUVColor(red: rgb.0, green: rgb.1, blue: rgb.2))
        }
        Painter.fill(bars, x: 0, y: format.height * 3 / 4, width: format.width, height: format.height - format.height * 3 / 4,
                     color: YUVColor(y: 40, u: 128, v: 128))
        background = bars
        index = 0
        stopped.clear()
        anchor = ClockAnchor.now()
        startMonotonic = anchor.monotonicNanoseconds
    }

    public func nextFrame() throws -> CapturedFrame? {
        guard let background else { preconditionFailure("nextFrame() before start()") }
        if stopped.isSet { return nil }
        if let frameLimit, index >= UInt64(frameLimit) { return nil }
        let due = startMonotonic + Int64(index) * 1_000_000_000 / Int64(format.framesPerSecond)
        if pacing == .realTime {
            Clock.sleep(untilMonotonic: due)
            if stopped.isSet { return nil }
        }
        let frame = try pool.makeFrame()
        Painter.copy(background, into: frame)
        // A box sweeping left to right, one picture width every four seconds.
        let box = max(8, format.height / 6) & ~1
        let travel = max(1, format.width - box)
        let cycle = UInt64(format.framesPerSecond * 4)
        let position = Int(index % cycle) * travel / Int(cycle)
        Painter.fill(frame, x: position & ~1, y: format.height / 2 - box / 2, width: box, height: box, color: .white)
        let label = TestPatternSource.label(frameIndex: index, wallNanoseconds: anchor.wall(atMonotonic: due))
        let origin = TestPatternSource.labelOrigin(format: format, length: label.count)
        Painter.drawText(label, into: frame, x: origin.x, y: origin.y, scale: origin.scale)
        frame.sequence = index
        frame.captureNanoseconds = due
        index += 1
        return CapturedFrame(frame: frame)
    }

    /// The caption drawn in the middle of frame `frameIndex`.
    public static func label(frameIndex: UInt64, wallNanoseconds: Int64) -> String {
        let digits = String(frameIndex)
        let padded = digits.count >= 6 ? digits : String(repeating: "0", count: 6 - digits.count) + digits
        return "FRAME \(padded)  \(Clock.overlayTimestamp(wallNanoseconds: wallNanoseconds))"
    }

    /// Where the caption starts and its font scale, so a reader can find it again.
    public static func labelOrigin(format: FrameFormat, length: Int) -> (x: Int, y: Int, scale: Int) {
        let scale = max(1, format.height / 240)
        let textWidth = length * BitmapFont.cellWidth * scale
        return (max(0, (format.width - textWidth) / 2) & ~1, (format.height * 3 / 4 + scale * 2) & ~1, scale)
    }

    /// The frame number the pattern burned into `frame` (read back with the bitmap font from the
    /// luma plane), or nil where no caption reads: what tests and the export's browser check use to
    /// tell which picture a decoder or player shows.
    public static func frameNumber(in frame: VideoFrame) -> Int? {
        let format = FrameFormat(width: frame.width, height: frame.height, pixelFormat: frame.pixelFormat, framesPerSecond: 30)
        let origin = labelOrigin(format: format, length: label(frameIndex: 0, wallNanoseconds: 0).count)
        let text = String(Painter.readText(from: frame, x: origin.x, y: origin.y, scale: origin.scale, count: 12).map { $0 ?? "~" })
        return text.hasPrefix("FRAME ") ? Int(text.dropFirst(6)) : nil
    }

    public func stop() { stopped.set() }

    public func close() throws { background = nil }
}
