import Glibc
import Synchronization
import LibAV
import Capture
import Platform

/// What the pipeline reports as it runs (on the pipeline thread).
public enum RecorderEvent {
    case started(source: String, encoder: String)
    case recordingStarted(preEventPackets: Int, preEventSeconds: Double)
    case recordingStopped
    case segmentSealed(SegmentSummary)
    /// Pictures the source lost (camera sequence gaps, queue overflow).
    case framesDropped(count: Int, beforeSequence: UInt64)
    /// The camera vanished; what was recorded is sealed and the camera is being reopened.
    case cameraLost(reason: String)
    case cameraRestored(source: String)
    /// The camera's timestamps could not be trusted and its dequeue times are used (once a
    /// stream).
    case timestampsUntrusted(reason: String)
    case stopped(frames: Int)
    /// The first picture went through the whole pipeline: the camera is ready to record.
    case ready
}

/// The pipeline, wired: FrameSource → Overlay → VideoEncoder → PreEventBuffer → SegmentMuxer.
///
/// `run()` is the pipeline loop and blocks its thread until the source ends or `shutdown()` is
/// called. A camera that vanishes does not end it: the open segment is sealed, the camera is
/// reopened every `reopenInterval` until it is back, and recording goes on in a new segment. `startRecording`, `stopRecording` and `shutdown` may be called from any thread; they
/// take effect at the next picture.
// Commands from other threads go through the `commands` mutex; the counters other threads read are
// atomics; `onEvent` is set before `run()`; everything else belongs to the pipeline thread
// (`segments` is read by others only after that thread has ended).
public final class Recorder: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var deviceID: String
        public var officerID: String
        public var preEventSeconds: Int
        /// Memory cap for the pre-event buffer.
        public var preEventMaxBytes: Int
        public var segmentSeconds: Int
        public init(deviceID: String, officerID: String = "", preEventSeconds: Int = 30,
                    preEventMaxBytes: Int = 64 << 20, segmentSeconds: Int = 60) {
            self.deviceID = deviceID
            self.officerID = officerID
            self.preEventSeconds = preEventSeconds
            self.preEventMaxBytes = preEventMaxBytes
            self.segmentSeconds = segmentSeconds
        }
    }

    private enum Command {
        case startRecording, stopRecording
        case officer(String)
        case preEventBuffering(Bool)
    }

    public let configuration: Configuration
    private lazy var officer = configuration.officerID
    private let source: FrameSource
    private let overlay: Overlay?
    private let makeEncoder: (FrameFormat) throws -> VideoEncoder
    private var encoder: VideoEncoder!
    private let store: SegmentStore
    private var preEvent: PreEventBuffer
    private var segmentMuxer: SegmentMuxer?
    private var recording = false
    private var anchor = ClockAnchor.now()
    private let commands = Mutex<[Command]>([])
    private let shuttingDown = AtomicFlag()
    private let wake: WakeEvent
    /// How often a lost or missing camera is tried again at first (milliseconds); the interval
    /// doubles after each failed try, up to `maximumReopenInterval`.
    public var reopenInterval: Int32 = 250
    public var maximumReopenInterval: Int32 = 1_000
    private let heartbeatCounter = AtomicCounter()
    /// Grows while the pipeline thread makes progress: each picture, and each try at a missing
    /// camera. The watchdog is fed from it, so a stuck thread (not a missing camera) gets the
    /// daemon restarted.
    public var heartbeat: Int { heartbeatCounter.value }
    private let frameCounter = AtomicCounter()
    /// Pictures encoded so far (readable from any thread: the watchdog checks frames flow).
    public var framesEncoded: Int { frameCounter.value }
    private let preEventFill = AtomicCounter()
    /// Milliseconds of video in the pre-event buffer now (readable from any thread).
    public var preEventMilliseconds: Int { preEventFill.value }
    public private(set) var framesDropped = 0
    /// Gaps before pictures in the encoder, by the timestamp their packets will carry.
    private var dropsByPts: [Int64: Int] = [:]
    public var onEvent: @Sendable (RecorderEvent) -> Void = { _ in }

    /// `makeEncoder` is called once the source has started and its real format is known (a
    /// camera may agree to another size or layout than asked).
    public init(configuration: Configuration, source: FrameSource, overlay: Overlay?, store: SegmentStore,
                makeEncoder: @escaping (FrameFormat) throws -> VideoEncoder) {
        self.configuration = configuration
        self.source = source
        self.overlay = overlay
        self.makeEncoder = makeEncoder
        self.store = store
        self.preEvent = PreEventBuffer(seconds: configuration.preEventSeconds, maxBytes: configuration.preEventMaxBytes)
        // eventfd creation fails only when the process is out of descriptors: nothing would work.
        self.wake = try! WakeEvent()
    }

    public var isRecording: Bool { recording }
    /// Every segment sealed so far, in order.
    public private(set) var segments: [SegmentSummary] = []

    public func startRecording() { enqueue(.startRecording) }
    public func stopRecording() { enqueue(.stopRecording) }
    /// The officer for the caption and for segments opened from now on.
    public func setOfficer(_ officerID: String) { enqueue(.officer(officerID)) }
    /// Off duty nothing is kept, not even in memory: buffering off empties the buffer.
    public func setPreEventBuffering(_ enabled: Bool) { enqueue(.preEventBuffering(enabled)) }
    private var buffering = true

    /// Ends `run()`: the source is stopped, the encoder drained and the open segment sealed.
    public func shutdown() {
        shuttingDown.set()
        wake.signal()
        source.stop()
    }

    private func enqueue(_ command: Command) {
        commands.withLock { $0.append(command) }
    }

    private func takeCommands() -> [Command] {
        commands.withLock { commands in
            defer { commands.removeAll() }
            return commands
        }
    }

    /// The pipeline loop. Returns when the source ends or after `shutdown()`; the open segment
    /// is sealed either way. Throws the first failure of a stage, after sealing what it can.
    public func run() throws {
        do {
            try source.start()
        } catch {
            // A camera missing (or failing) at start is waited for, as a lost one is: the
            // daemon runs degraded and records as soon as it is there.
            onEvent(.cameraLost(reason: "camera not available at start: \(error)"))
            guard reopenSource() else {
                onEvent(.stopped(frames: 0))
                return
            }
            onEvent(.cameraRestored(source: source.name))
        }
        do {
            encoder = try makeEncoder(source.format)
        } catch {
            try? source.close()
            throw error
        }
        anchor = ClockAnchor.now()
        onEvent(.started(source: source.name, encoder: encoder.name))
        var failure: Error? = nil
        var sourceOpen = true
        do {
            while !shuttingDown.isSet {
                let captured: CapturedFrame?
                do {
                    captured = try source.nextFrame()
                } catch let error as FrameSourceLost {
                    sourceOpen = try recover(from: error)
                    continue
                }
                guard let captured else { break }
                try process(captured)
            }
            if sourceOpen { for packet in try encoder.flush() { try route(packet) } }
        } catch {
            failure = error
        }
        do { try segmentMuxer?.finish() } catch { failure = failure ?? error }
        if sourceOpen { do { try source.close() } catch { failure = failure ?? error } }
        onEvent(.stopped(frames: framesEncoded))
        if let failure { throw failure }
    }

    /// Seals what the lost camera gave, then reopens it until it is back (true) or the
    /// recorder shuts down (false). Segment numbers go on; the timeline restarts with the new
    /// encoder, anchored to the same clock.
    private func recover(from error: FrameSourceLost) throws -> Bool {
        onEvent(.cameraLost(reason: error.description))
        for packet in try encoder.flush() { try route(packet) }
        try segmentMuxer?.finish()
        segmentMuxer = nil
        _ = preEvent.drain()
        try? source.close()
        guard reopenSource() else { return false }
        encoder = try makeEncoder(source.format)
        onEvent(.cameraRestored(source: source.name))
        return true
    }

    /// Tries to start the source after `reopenInterval`, backing off to `maximumReopenInterval`,
    /// until it starts (true) or the recorder shuts down (false).
    private func reopenSource() -> Bool {
        var delay = reopenInterval
        while !shuttingDown.isSet {
            _ = heartbeatCounter.increment()
            var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 1, delay)
            if shuttingDown.isSet { break }
            do {
                try source.start()
                return true
            } catch {
                delay = min(delay * 2, max(maximumReopenInterval, reopenInterval))
            }
        }
        return false
    }

    private func process(_ captured: CapturedFrame) throws {
        for command in takeCommands() { try apply(command) }
        let frame = captured.frame
        if let note = captured.timestampNote { onEvent(.timestampsUntrusted(reason: note)) }
        if captured.droppedBefore > 0 {
            framesDropped += captured.droppedBefore
            onEvent(.framesDropped(count: captured.droppedBefore, beforeSequence: frame.sequence))
        }
        if segmentMuxer == nil {
            segmentMuxer = SegmentMuxer(configuration: .init(segmentSeconds: configuration.segmentSeconds,
                                                             deviceID: configuration.deviceID, officerID: officer,
                                                             firstSequence: store.nextSequence,
                                                             framesPerSecond: source.format.framesPerSecond),
                                  store: store, parameters: encoder.parameters, timeBase: encoder.timeBase,
                                  epochMonotonic: frame.captureNanoseconds, anchor: anchor)
            segmentMuxer?.onSegmentFinished = { [weak self] summary in
                self?.segments.append(summary)
                self?.onEvent(.segmentSealed(summary))
            }
        }
        overlay?.apply(to: frame, wallNanoseconds: anchor.wall(atMonotonic: frame.captureNanoseconds))
        let packets = try encoder.encode(frame)
        if captured.droppedBefore > 0 { dropsByPts[encoder.lastInputPts] = captured.droppedBefore }
        for packet in packets { try route(packet) }
        _ = heartbeatCounter.increment()
        if frameCounter.increment() == 1 { onEvent(.ready) }
    }

    private func apply(_ command: Command) throws {
        switch command {
        case .startRecording where !recording:
            recording = true
            let buffered = preEvent.drain()
            let seconds = Double((buffered.last.map { $0.pts + $0.duration } ?? 0) - (buffered.first?.pts ?? 0)) / 90_000
            if buffered.isEmpty { encoder.requestKeyframe() }
            for packet in buffered { try segmentMuxer?.write(packet) }
            onEvent(.recordingStarted(preEventPackets: buffered.count, preEventSeconds: seconds))
        case .stopRecording where recording:
            recording = false
            try segmentMuxer?.finish()
            onEvent(.recordingStopped)
        case .officer(let officerID):
            officer = officerID
            overlay?.officerID = officerID
            // Segments opened from now on carry the new officer.
            segmentMuxer?.configuration.officerID = officerID
        case .preEventBuffering(let enabled):
            buffering = enabled
            if !enabled { _ = preEvent.drain() }
        default:
            break
        }
    }

    private func route(_ packet: EncodedPacket) throws {
        // The gap before a picture travels with its packet (through the pre-event buffer too) to
        // the segment that holds it.
        var packet = packet
        packet.droppedBefore = dropsByPts.removeValue(forKey: packet.pts) ?? 0
        if recording {
            try segmentMuxer?.write(packet)
        } else if buffering {
            preEvent.append(packet)
        }
        preEventFill.store(Int(preEvent.duration / 90))
    }
}
