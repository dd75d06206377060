import LibAV
import Platform
import V4L2

/// A V4L2 camera as a `FrameSource`. A capture thread of its own runs the poll/DQBUF/QBUF loop
/// (woken for stop by an eventfd), copies each buffer into a pooled picture and hands it over a
/// bounded queue; the driver gets its buffer back at once. Losses are counted where they happen:
/// a picture that is corrupt or does not decode, and the oldest picture when the queue
/// overflows, add to the count carried by the next picture; the driver's sequence gaps count
/// what it lost itself (`DropCounter`).
/// A device that vanishes surfaces as `FrameSourceLost` from `nextFrame`; `close()` and
/// `start()` again reopen it. MJPEG cameras are decoded (libavcodec) on the capture thread into
/// I420; a picture that does not decode counts as dropped.
public final class V4L2FrameSource: FrameSource {
    public let isLive = true
    public let settings: V4L2Settings
    public private(set) var format: FrameFormat
    public private(set) var name: String
    private let system: V4L2System
    private var capture: V4L2Capture?
    private var thread: WorkerThread?
    private var queue: BoundedQueue<Result<CapturedFrame, Error>>?
    /// Counts the frames missing before each picture handed out (restarts with each stream).
    private var drops = DropCounter(framesPerSecond: 30)
    /// Watches the rate the camera really delivers (restarts with each stream).
    private var rate = RateMonitor(configured: 30)
    /// Capture time over which the delivered rate is judged (ns).
    var rateWindow: Int64 = 10_000_000_000
    private let wake: WakeEvent

    public static let supportedFormats: [V4L2PixelFormat] = [.yuyv, .nv12, .yu12, .mjpeg]
    public private(set) var shortfall: String?

    public init(settings: V4L2Settings, system: V4L2System = LinuxV4L2()) throws {
        self.settings = settings
        self.system = system
        self.wake = try WakeEvent()
        format = FrameFormat(width: settings.width, height: settings.height, pixelFormat: .yuyv422, framesPerSecond: settings.framesPerSecond)
        name = "v4l2 \(settings.devicePath)"
    }

    /// The layout pictures are delivered in for a camera format.
    static func pixelFormat(_ format: V4L2PixelFormat) -> PixelFormat {
        switch format {
        case .yuyv: return .yuyv422
        case .nv12: return .nv12
        case .yu12: return .yuv420p
        case .mjpeg: return .yuv420p  // after decoding
        }
    }

    public func start() throws {
        precondition(capture == nil, "start() twice without close()")
        let capture = try V4L2Capture(settings, system: system)
        let decoder: PictureDecoder?
        let pool: FramePool
        do {
            let pixelFormat = V4L2FrameSource.pixelFormat(capture.format.pixelFormat)
            let rate = capture.format.framesPerSecond > 0 ? Int(capture.format.framesPerSecond.rounded()) : settings.framesPerSecond
            format = FrameFormat(width: capture.format.width, height: capture.format.height, pixelFormat: pixelFormat, framesPerSecond: rate)
            name = "v4l2 \(settings.devicePath) (\(capture.driver)) \(capture.format.pixelFormat.rawValue) \(format.width)x\(format.height)@\(rate)"
            pool = try FramePool(width: format.width, height: format.height, pixelFormat: pixelFormat)
            decoder = capture.format.pixelFormat == .mjpeg
                ? try PictureDecoder(codecName: "mjpeg", width: format.width, height: format.height, output: pixelFormat) : nil
            try capture.start()
        } catch {
            try? capture.close()
            throw error
        }
        self.capture = capture
        shortfall = capture.format.shortfall
        wake.reset()
        drops = DropCounter(framesPerSecond: format.framesPerSecond)
        // A mode already short of the configuration is alarmed once, from `shortfall`.
        rate = RateMonitor(configured: shortfall == nil ? settings.framesPerSecond : 0, window: rateWindow)
        // A picture the queue lets go is one lost, with whatever was lost before it.
        let queue = BoundedQueue<Result<CapturedFrame, Error>>(capacity: max(2, settings.bufferCount), policy: .dropOldest) { discarded, next in
            guard case .success(let lost) = discarded, case .success(var following) = next else { return }
            following.droppedBefore += lost.droppedBefore + 1
            next = .success(following)
        }
        self.queue = queue
        let wakeFD = wake.fd
        let frameFormat = format
        let bytesPerLine = capture.format.bytesPerLine
        thread = WorkerThread(name: "v4l2-capture") {
            V4L2FrameSource.captureLoop(capture: capture, pool: pool, decoder: decoder, queue: queue, wakeFD: wakeFD,
                                        format: frameFormat, bytesPerLine: bytesPerLine)
        }
    }

    /// Runs on the capture thread until stopped or the device fails.
    private static func captureLoop(capture: V4L2Capture, pool: FramePool, decoder: PictureDecoder?,
                                    queue: BoundedQueue<Result<CapturedFrame, Error>>,
                                    wakeFD: Int32, format: FrameFormat, bytesPerLine: Int) {
        var clock = CaptureClock()
        // Pictures rejected here since the last one handed over.
        var rejected = 0
        do {
            while let buffer = try capture.dequeue(wakeFD: wakeFD) {
                let expected = decoder == nil ? min(format.pixelFormat.frameSize(width: format.width, height: format.height),
                                                    bytesPerLine * format.height) : 1
                var picture: VideoFrame? = nil
                if !buffer.isCorrupt && buffer.bytes.count >= expected {
                    if let decoder {
                        picture = try? decoder.decode(buffer.bytes)
                    } else {
                        picture = try pool.makeFrame()
                        copy(buffer.bytes, bytesPerLine: bytesPerLine, into: picture!)
                    }
                }
                try capture.requeue(buffer)
                // A corrupt picture is not passed on: counted as lost before the next one.
                guard let frame = picture else {
                    rejected += 1
                    continue
                }
                frame.sequence = UInt64(buffer.sequence)
                let (time, note, fromDriver) = clock.captureTime(stamped: buffer.timestampNanoseconds, monotonic: buffer.isMonotonic,
                                                                 dequeued: buffer.dequeuedNanoseconds)
                frame.captureNanoseconds = time
                var captured = CapturedFrame(frame: frame, droppedBefore: rejected, timestampNote: note)
                captured.captureTimeFromSource = fromDriver
                rejected = 0
                queue.push(.success(captured))
            }
        } catch {
            queue.push(.failure(error))
        }
        queue.close()
    }

    /// Copies a driver buffer (rows `bytesPerLine` apart, planes back to back) into a picture.
    static func copy(_ bytes: UnsafeRawBufferPointer, bytesPerLine: Int, into frame: VideoFrame) {
        var offset = 0
        for plane in 0..<frame.pixelFormat.planeCount {
            // Chroma rows of planar I420 are half as wide as luma rows, NV12's are as wide.
            let sourceStride = frame.pixelFormat == .yuv420p && plane > 0 ? bytesPerLine / 2 : bytesPerLine
            let rowBytes = frame.planeRowBytes(plane)
            frame.withPlane(plane) { destination, stride in
                for row in 0..<frame.planeHeight(plane) where offset + row * sourceStride + rowBytes <= bytes.count {
                    (destination.baseAddress! + row * stride).copyMemory(from: bytes.baseAddress! + offset + row * sourceStride, byteCount: rowBytes)
                }
            }
            offset += sourceStride * frame.planeHeight(plane)
        }
    }

    /// The next picture, with how many the camera gave that will never come (`DropCounter`).
    public func nextFrame() throws -> CapturedFrame? {
        guard let queue else { preconditionFailure("nextFrame() before start()") }
        let next: CapturedFrame?
        do {
            next = try queue.pop()?.get()
        } catch let error as V4L2Error {
            if case .deviceLost = error { throw FrameSourceLost(reason: error.description) }
            throw error
        }
        guard var captured = next else { return nil }
        let lostHere = captured.droppedBefore
        let counted = drops.count(sequence: captured.frame.sequence, time: captured.frame.captureNanoseconds,
                                  timeFromDriver: captured.captureTimeFromSource, lostHere: lostHere)
        captured.droppedBefore = counted.dropped
        captured.dropsEstimated = counted.estimated
        captured.sequenceNote = counted.note
        // Frames the camera produced: an estimated count is itself derived from the rate (a camera
        // slowed by low light would read as one dropping frames), so then only what was counted
        // here stands for frames it really made.
        captured.delivery = rate.note(time: captured.frame.captureNanoseconds, frames: 1 + (counted.estimated ? lostHere : counted.dropped))
        return captured
    }

    public func stop() { wake.signal() }

    /// Stops the capture thread, then STREAMOFF, munmap and close.
    public func close() throws {
        wake.signal()
        queue?.close()
        thread?.join()
        thread = nil
        queue = nil
        defer { capture = nil }
        try capture?.close()
    }
}

/// Checks a driver's buffer timestamps instead of trusting them. A timestamp is used when its
/// flags say CLOCK_MONOTONIC, it is not 0, it runs forward from the last one, it lies after the
/// last capture time used, and it lies within `maximumLatency` before the buffer was dequeued;
/// otherwise the dequeue time stands in for it (kept strictly increasing). So a driver whose
/// clock repeats, stalls, steps back or runs on another clock still gives a sane timeline. The
/// first replacement of a stream carries its reason, once.
struct CaptureClock {
    /// How long before its dequeue a buffer may have been stamped (a starved capture thread
    /// dequeues late; a driver on another clock is off by far more).
    static let maximumLatency: Int64 = 2_000_000_000
    private var lastStamped: Int64?
    private var lastUsed: Int64?
    private var noted = false

    /// The capture time to use, why the driver's was replaced (once a stream), and whether it is
    /// the driver's.
    mutating func captureTime(stamped: Int64, monotonic: Bool, dequeued: Int64) -> (Int64, String?, Bool) {
        var reason: String? = nil
        if !monotonic {
            reason = "the driver's timestamps are not on CLOCK_MONOTONIC"
        } else if stamped <= 0 {
            reason = "the driver's timestamps are missing (0)"
        } else if let last = lastStamped, stamped <= last {
            reason = stamped == last ? "the driver's timestamps repeat" : "the driver's timestamps run backwards"
        } else if stamped > dequeued {
            reason = "the driver's timestamps lie in the future"
        } else if dequeued - stamped > CaptureClock.maximumLatency {
            reason = "the driver's timestamps lie more than 2 s before the buffers are dequeued"
        } else if let last = lastUsed, stamped <= last {
            reason = "the driver's timestamps stepped back"
        }
        lastStamped = stamped
        var time = reason == nil ? stamped : dequeued
        if let last = lastUsed, time <= last { time = last + 1 }
        lastUsed = time
        guard let reason else { return (time, nil, true) }
        guard !noted else { return (time, nil, false) }
        noted = true
        return (time, reason + "; the dequeue time is used instead", false)
    }
}

/// Judges the rate a camera really delivers against the configured one, over windows of capture
/// time: frames it produced (pictures handed over, and those counted as dropped after it
/// produced them) per second. Below 90 % of the configured rate for a window is `.below` (a UVC
/// camera lengthening its exposure in low light halves its rate); at 95 % or more again, `.met`.
struct RateMonitor {
    /// fps; 0: not watched.
    let configured: Int
    let window: Int64
    private var start: Int64?
    private var frames = 0
    private(set) var below = false

    init(configured: Int, window: Int64 = 10_000_000_000) {
        self.configured = configured
        self.window = window
    }

    /// One picture at capture time `time` standing for `frames` produced: a change, if this
    /// picture ends a window that changes the verdict.
    mutating func note(time: Int64, frames produced: Int) -> DeliveryChange? {
        guard configured > 0 else { return nil }
        guard let start, time > start else {
            self.start = time
            frames = 0
            return nil
        }
        frames += produced
        let elapsed = time - start
        guard elapsed >= window else { return nil }
        let delivered = Double(frames) * 1e9 / Double(elapsed)
        self.start = time
        frames = 0
        if !below && delivered < 0.9 * Double(configured) {
            below = true
            let text = (delivered * 10).rounded() / 10
            return .below("the camera delivered \(text) fps over the last \(window / 1_000_000_000) s, less than the configured \(configured) fps")
        }
        if below && delivered >= 0.95 * Double(configured) {
            below = false
            return .met
        }
        return nil
    }
}

/// Counts the camera frames that never came before each picture, and does not take one driver
/// field on trust. While the driver's sequence numbers advance, a gap in them is the count (it
/// covers the driver's own drops, and the pictures this source let go, whose numbers were used
/// too); what the source counted itself is the floor. Some drivers leave `sequence` at 0 or
/// repeat it: once a sequence number fails to advance, the stream's counts are estimated
/// instead, from the gap between the driver's capture times against the negotiated rate (a gap
/// of N frame periods is N - 1 frames missing), and are marked estimated. Where the capture times
/// are not the driver's either (the dequeue time stood in), only what this source let go is
/// counted, still marked estimated.
struct DropCounter {
    /// The negotiated frame period (ns).
    let period: Int64
    private var lastSequence: UInt64?
    private var lastTime: Int64?
    private var lastTimeFromDriver = false
    private(set) var sequencesTrusted = true

    init(framesPerSecond: Int) { period = 1_000_000_000 / Int64(max(1, framesPerSecond)) }

    /// For one picture: frames missing before it, whether that is an estimate, and (once) why the
    /// sequence numbers stopped being trusted.
    mutating func count(sequence: UInt64, time: Int64, timeFromDriver: Bool, lostHere: Int) -> (dropped: Int, estimated: Bool, note: String?) {
        var note: String? = nil
        var sequenceGap = 0
        if let last = lastSequence {
            if sequence > last {
                sequenceGap = Int(sequence - last - 1)
            } else if sequencesTrusted {
                sequencesTrusted = false
                note = "the driver's sequence numbers do not advance (\(sequence) after \(last)); "
                    + "frames missing are estimated from capture times and the negotiated rate"
            }
        }
        var timeGap = 0
        if timeFromDriver && lastTimeFromDriver, let lastTime, time > lastTime {
            timeGap = max(0, Int((Double(time - lastTime) / Double(period)).rounded()) - 1)
        }
        lastSequence = sequence
        lastTime = time
        lastTimeFromDriver = timeFromDriver
        if sequencesTrusted { return (max(sequenceGap, lostHere), false, note) }
        return (max(timeGap, lostHere), true, note)
    }
}
