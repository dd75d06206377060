import Glibc
import Synchronization
import LibAV
import Capture
import Platform

/// A stage between the encoder and the pre-event buffer (ONVIF Media Signing: docs/EXPORT.md):
/// sees every encoded packet in order, on the pipeline thread, and may change its bytes (insert
/// NAL units). A packet it fails on goes on with what the stage did to it before it failed:
/// recording never waits for it.
public protocol PacketStage: AnyObject {
    func process(_ packet: inout EncodedPacket) throws
    /// How many packets, from the first keyframe after a stop on, a stopping recording keeps so
    /// that what the stage adds about the pictures before the stop is in it (media signing: 2,
    /// the IDR that closes the last GOP and the access unit after it, which carries that GOP's
    /// SEI). The recorder asks the encoder for that keyframe at once. 0 (the default): a
    /// recording stops at the command.
    var closingPackets: Int { get }
}

extension PacketStage {
    public var closingPackets: Int { 0 }
}

/// What the pipeline reports as it runs. Events are delivered in order on a thread of their
/// own, never on the pipeline or writer thread, so a slow handler (a journal on stalled
/// storage) never holds up capture.
public enum RecorderEvent: Sendable {
    case started(source: String, encoder: String)
    case recordingStarted(preEventPackets: Int, preEventSeconds: Double)
    case recordingStopped
    case segmentSealed(SegmentSummary)
    /// Pictures the source lost (camera sequence gaps, queue overflow).
    case framesDropped(count: Int, beforeSequence: UInt64)
    /// The camera vanished; what was recorded is sealed and the camera is being reopened.
    case cameraLost(reason: String)
    case cameraRestored(source: String)
    /// A try at the missing camera failed otherwise than the one before (a device that appears
    /// but cannot be opened, for one): why.
    case cameraStillMissing(reason: String)
    /// The camera's timestamps could not be trusted and its dequeue times are used (once a
    /// stream).
    case timestampsUntrusted(reason: String)
    /// The camera's sequence numbers could not be trusted, and frames missing are estimated
    /// from here (once a stream).
    case sequencesUntrusted(reason: String)
    /// The camera (opened or reopened) gives less than configured (`FrameSource.shortfall`):
    /// what it gives; nil when it gives all (after one that did not).
    case cameraBelowConfiguration(reason: String?)
    /// The write queue reached its bound (storage far slower than the camera for seconds):
    /// from here packets are let go, until the queue has drained below half its bound and a
    /// keyframe resumes the recording.
    case storageBacklogFull(queued: SegmentWriter.Fill)
    /// Recording into storage resumed after a backlog: `framesLost` pictures were let go over
    /// `milliseconds`.
    case storageBacklogCleared(framesLost: Int, milliseconds: Int)
    /// The packet stage (media signing) failed on a packet, which goes on unsigned: why (once
    /// until it works again).
    case packetStageFailed(reason: String)
    /// The wall clock stepped by a second or more (NTP, the RTC, an operator): the open
    /// segment is cut at the next picture, and segments, names and the caption follow the new
    /// clock. `from` and `to` are the anchors before and after, at the moment it was seen;
    /// `segmentCut` whether a recording's segment was cut for it.
    case clockStepped(from: ClockAnchor, to: ClockAnchor, segmentCut: Bool)
    /// The wall clock is before the earliest time this software can run at (a board without a
    /// battery-backed clock at first boot): recording goes on, flagged (once until it is right).
    case clockImplausible(wallNanoseconds: Int64)
    /// Events the handler was too slow for and that were let go (the event queue is bounded).
    case eventsLost(count: Int)
    case stopped(frames: Int)
    /// The first picture went through the whole pipeline: the camera is ready to record.
    case ready
}

/// The pipeline, wired: FrameSource → Overlay → VideoEncoder → PreEventBuffer → SegmentWriter
/// (SegmentMuxer → store, on the writer thread).
///
/// `run()` is the pipeline loop and blocks its thread until the source ends or `shutdown()` is
/// called. A camera that vanishes does not end it: the open segment is sealed, the camera is
/// reopened every `reopenInterval` until it is back, and recording goes on in a new segment.
/// `startRecording`, `stopRecording` and `shutdown` may be called from any thread; they take
/// effect at the next picture.
///
/// Storage never holds up capture: packets go to the `SegmentWriter`'s queue. When storage is
/// so slow for so long that the queue reaches `writeQueueSeconds` or `writeQueueMaxBytes` of
/// live video, the newest packets are let go (the queue already holds older footage, which is
/// written first), counted as dropped frames of the segment and reported
/// (`storageBacklogFull`, `storageBacklogCleared`); recording resumes at a keyframe once the
/// queue has drained below half its bound. Capture is never blocked. (A source that is not live,
/// a file read as fast as it goes, waits for room instead: it loses nothing by waiting.)
// Commands from other threads go through the `commands` mutex; the counters other threads read are
// atomics; `segments` is behind a mutex (the writer thread adds to it); `onEvent` is set before
// `run()`; everything else belongs to the pipeline thread.
public final class Recorder: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var deviceID: String
        public var officerID: String
        public var preEventSeconds: Int
        /// Memory cap for the pre-event buffer.
        public var preEventMaxBytes: Int
        public var segmentSeconds: Int
        /// The write queue's bound: seconds of live video waiting for storage, and bytes.
        public var writeQueueSeconds: Int
        public var writeQueueMaxBytes: Int
        /// The longest a fragment (the unit made durable) runs, ms (`SegmentMuxer.Configuration`):
        /// half a second, so that a power cut takes at most that and the time to seal it, well
        /// inside the one second the procedure allows, even when load delays the sync.
        public var fragmentMilliseconds = 500
        public init(deviceID: String, officerID: String = "", preEventSeconds: Int = 30,
                    preEventMaxBytes: Int = 64 << 20, segmentSeconds: Int = 60,
                    writeQueueSeconds: Int = 10, writeQueueMaxBytes: Int = 32 << 20) {
            precondition(writeQueueSeconds > 0 && writeQueueMaxBytes > 0)
            self.deviceID = deviceID
            self.officerID = officerID
            self.preEventSeconds = preEventSeconds
            self.preEventMaxBytes = preEventMaxBytes
            self.segmentSeconds = segmentSeconds
            self.writeQueueSeconds = writeQueueSeconds
            self.writeQueueMaxBytes = writeQueueMaxBytes
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
    private let writer: SegmentWriter
    /// A timeline (this encoder's segments) was handed to the writer.
    private var timelineOpen = false
    private var preEvent: PreEventBuffer
    private var recording = false
    /// While the write queue is at its bound: since when, pictures let go, whether a keyframe
    /// was asked for to resume on.
    private var shedding: (since: Int64, frames: Int, keyframeRequested: Bool)?
    private let framesShedCounter = AtomicCounter()
    /// Pictures encoded but let go because the write queue was at its bound (any thread).
    public var framesShed: Int { framesShedCounter.value }
    /// Live video waiting for storage now, and the most there has been (any thread).
    public var writeQueueFill: SegmentWriter.Fill { writer.fill }
    public var writeQueuePeak: SegmentWriter.Fill { writer.peak }
    /// Blocks until `condition` holds for the write queue's live video, or CLOCK_MONOTONIC
    /// reaches `deadline` (ns): true when it holds. Any thread (the tests wait on it).
    public func waitForWriteQueue(untilMonotonic deadline: Int64, _ condition: (SegmentWriter.Fill) -> Bool) -> Bool {
        writer.wait(untilMonotonic: deadline, condition)
    }
    private let events = BoundedQueue<RecorderEvent>(capacity: 4096, policy: .dropOldest)
    private var anchor = ClockAnchor.now()
    /// The wall clock (CLOCK_REALTIME, ns): a seam for tests, which step a clock of their own
    /// instead of the machine's. Called on the pipeline thread; set before `run()`.
    public var wallClock: @Sendable () -> Int64 = { Clock.wallNanoseconds() }
    /// The last clock reading handed to the writer; nil before the first picture.
    private var clockReading: ClockReading?
    private var implausibleReported = false
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
    private var dropsByPts: [Int64: (count: Int, estimated: Bool)] = [:]
    public var onEvent: @Sendable (RecorderEvent) -> Void = { _ in }
    /// Set before `run()`.
    public var packetStage: PacketStage?
    private var packetStageFailing = false

    /// `makeEncoder` is called once the source has started and its real format is known (a
    /// camera may agree to another size or layout than asked).
    public init(configuration: Configuration, source: FrameSource, overlay: Overlay?, store: SegmentStore,
                makeEncoder: @escaping (FrameFormat) throws -> VideoEncoder) {
        self.configuration = configuration
        self.source = source
        self.overlay = overlay
        self.makeEncoder = makeEncoder
        self.writer = SegmentWriter(store: store)
        self.preEvent = PreEventBuffer(seconds: configuration.preEventSeconds, maxBytes: configuration.preEventMaxBytes)
        // eventfd creation fails only when the process is out of descriptors: nothing would work.
        self.wake = try! WakeEvent()
    }

    public var isRecording: Bool { recording }
    private let sealed = Mutex<[SegmentSummary]>([])
    /// Every segment sealed so far, in order (any thread).
    public var segments: [SegmentSummary] { sealed.withLock { $0 } }

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

    /// The pipeline loop. Returns when the source ends or after `shutdown()`, once the open
    /// segment is sealed and every event delivered. Throws the first failure of a stage (the
    /// store's included), after sealing what it can.
    public func run() throws {
        let handler = onEvent
        let relay = WorkerThread(name: "bodycam-events") { [events] in
            while let event = events.pop() {
                let lost = events.takeDropped()
                if lost > 0 { handler(.eventsLost(count: lost)) }
                handler(event)
            }
        }
        writer.onSealed = { [weak self] summary in
            self?.sealed.withLock { $0.append(summary) }
            self?.emit(.segmentSealed(summary))
        }
        writer.start()
        var failure: Error? = nil
        do { try capture() } catch { failure = error }
        writer.close()
        if failure == nil { failure = writer.failure }
        emit(.stopped(frames: framesEncoded))
        events.close()
        relay.join()
        if let failure { throw failure }
    }

    private func emit(_ event: RecorderEvent) {
        events.push(event)
    }

    private func capture() throws {
        do {
            try source.start()
        } catch {
            // A camera missing (or failing) at start is waited for, as a lost one is: the
            // daemon runs degraded and records as soon as it is there.
            emit(.cameraLost(reason: "camera not available at start: \(error)"))
            guard reopenSource() else { return }
            emit(.cameraRestored(source: source.name))
        }
        do {
            encoder = try makeEncoder(source.format)
        } catch {
            try? source.close()
            throw error
        }
        anchor = ClockAnchor(monotonicNanoseconds: Clock.monotonicNanoseconds(), wallNanoseconds: wallClock())
        emit(.started(source: source.name, encoder: encoder.name))
        if let shortfall = source.shortfall { emit(.cameraBelowConfiguration(reason: shortfall)) }
        var failure: Error? = nil
        var sourceOpen = true
        do {
            while !shuttingDown.isSet {
                if let error = writer.failure { throw error }
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
        writer.submit(.finishSegment)
        if sourceOpen { do { try source.close() } catch { failure = failure ?? error } }
        if let failure { throw failure }
    }

    /// Seals what the lost camera gave, then reopens it until it is back (true) or the
    /// recorder shuts down (false). Segment numbers go on; the timeline restarts with the new
    /// encoder, anchored to the same clock.
    private func recover(from error: FrameSourceLost) throws -> Bool {
        emit(.cameraLost(reason: error.description))
        for packet in try encoder.flush() { try route(packet) }
        // A stop that was closing ends here: the new camera's pictures are not this recording's.
        if closing != nil { finishRecording() } else { writer.submit(.finishSegment) }
        timelineOpen = false
        _ = preEvent.drain()
        try? source.close()
        guard reopenSource() else { return false }
        encoder = try makeEncoder(source.format)
        emit(.cameraRestored(source: source.name))
        emit(.cameraBelowConfiguration(reason: source.shortfall))
        return true
    }

    /// Tries to start the source after `reopenInterval`, backing off to `maximumReopenInterval`,
    /// until it starts (true) or the recorder shuts down (false).
    private func reopenSource() -> Bool {
        var delay = reopenInterval
        var lastReason = ""
        while !shuttingDown.isSet {
            _ = heartbeatCounter.increment()
            var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 1, delay)
            if shuttingDown.isSet { break }
            do {
                try source.start()
                return true
            } catch {
                let reason = "\(error)"
                if reason != lastReason {
                    emit(.cameraStillMissing(reason: reason))
                    lastReason = reason
                }
                delay = min(delay * 2, max(maximumReopenInterval, reopenInterval))
            }
        }
        return false
    }

    private func process(_ captured: CapturedFrame) throws {
        for command in takeCommands() { try apply(command) }
        let frame = captured.frame
        if let note = captured.timestampNote { emit(.timestampsUntrusted(reason: note)) }
        if let note = captured.sequenceNote { emit(.sequencesUntrusted(reason: note)) }
        switch captured.delivery {
        case .below(let reason)?: emit(.cameraBelowConfiguration(reason: reason))
        case .met?: emit(.cameraBelowConfiguration(reason: nil))
        case nil: break
        }
        if captured.droppedBefore > 0 {
            framesDropped += captured.droppedBefore
            emit(.framesDropped(count: captured.droppedBefore, beforeSequence: frame.sequence))
        }
        watchClock()
        if !timelineOpen {
            // The writer numbers the segments on from its store.
            var segments = SegmentMuxer.Configuration(segmentSeconds: configuration.segmentSeconds, deviceID: configuration.deviceID,
                                                      officerID: officer, framesPerSecond: source.format.framesPerSecond)
            segments.maximumFragmentMilliseconds = configuration.fragmentMilliseconds
            writer.submit(.timeline(.init(configuration: segments,
                                          parameters: encoder.parameters, timeBase: encoder.timeBase,
                                          epochMonotonic: frame.captureNanoseconds, anchor: anchor)))
            timelineOpen = true
        }
        overlay?.apply(to: frame, wallNanoseconds: anchor.wall(atMonotonic: frame.captureNanoseconds))
        let packets = try encoder.encode(frame)
        if captured.droppedBefore > 0 || captured.dropsEstimated {
            dropsByPts[encoder.lastInputPts] = (captured.droppedBefore, captured.dropsEstimated)
        }
        for packet in packets { try route(packet) }
        _ = heartbeatCounter.increment()
        if frameCounter.increment() == 1 { emit(.ready) }
    }

    /// Each picture: a step of the wall clock (a second or more against the last reading) is
    /// seen at once, journaled, and cuts the recording's segment at this picture (a keyframe);
    /// otherwise the clock is read again once a second (re-anchoring absorbs NTP's slewing).
    /// Two clock_gettime calls a picture, one adjtimex a second.
    private func watchClock() {
        let now = ClockAnchor(monotonicNanoseconds: Clock.monotonicNanoseconds(), wallNanoseconds: wallClock())
        guard let last = clockReading else {
            takeReading(now, stepped: false)
            return
        }
        if abs(now.offset - last.anchor.offset) >= 1_000_000_000 {
            emit(.clockStepped(from: ClockAnchor(monotonicNanoseconds: now.monotonicNanoseconds, wallNanoseconds: last.anchor.wall(atMonotonic: now.monotonicNanoseconds)),
                               to: now, segmentCut: recording))
            if recording { encoder.requestKeyframe() }
            takeReading(now, stepped: true)
        } else if now.monotonicNanoseconds - last.anchor.monotonicNanoseconds >= 1_000_000_000 {
            takeReading(now, stepped: false)
        }
    }

    private func takeReading(_ now: ClockAnchor, stepped: Bool) {
        let reading = ClockReading(anchor: now, sync: ClockSync.read(), stepped: stepped)
        if !reading.plausible && !implausibleReported { emit(.clockImplausible(wallNanoseconds: now.wallNanoseconds)) }
        implausibleReported = !reading.plausible
        clockReading = reading
        anchor = now
        writer.submit(.clock(reading))
    }

    private func apply(_ command: Command) throws {
        switch command {
        case .startRecording where !recording:
            recording = true
            let buffered = preEvent.drain()
            let seconds = Double((buffered.last.map { $0.pts + $0.duration } ?? 0) - (buffered.first?.pts ?? 0)) / 90_000
            // Nothing buffered: the recording opens on the next picture, made a keyframe.
            if buffered.isEmpty { encoder.requestKeyframe() }
            for packet in buffered { writer.submit(.packet(packet, live: false)) }
            emit(.recordingStarted(preEventPackets: buffered.count, preEventSeconds: seconds))
        case .startRecording where closing != nil:
            // Started again before the stop had closed: one recording, nothing cut.
            closing = nil
        case .stopRecording where recording && closing == nil:
            if let packetStage, packetStage.closingPackets > 0, !packetStageFailing {
                // Recording goes on until the stage's closing packets are in (about two
                // pictures); a keyframe that never comes ends it two seconds of pictures after
                // the stop.
                closing = Closing(keyframeSeen: false, packetsLeft: packetStage.closingPackets, firstPts: nil)
                encoder.requestKeyframe()
            } else {
                finishRecording()
            }
        case .officer(let officerID):
            officer = officerID
            overlay?.officerID = officerID
            // Segments opened from now on carry the new officer.
            writer.submit(.officer(officerID))
        case .preEventBuffering(let enabled):
            buffering = enabled
            if !enabled { _ = preEvent.drain() }
        default:
            break
        }
    }

    private func finishRecording() {
        recording = false
        closing = nil
        writer.submit(.finishSegment)
        emit(.recordingStopped)
    }

    /// A stop waiting for the packet stage's closing packets (see `PacketStage.closingPackets`).
    private struct Closing {
        var keyframeSeen: Bool
        var packetsLeft: Int
        /// The first packet's time after the stop (90 kHz).
        var firstPts: Int64?
    }
    private var closing: Closing?
    /// How long a stop waits at most for its closing packets, in capture time of the pictures
    /// that come meanwhile (90 kHz): two seconds. (Capture time, not the wall: the same for a
    /// camera, and a stalled pipeline thread does not end it early.)
    static let closingTicks: Int64 = 2 * 90_000

    /// Counts a packet of a stopping recording (`written`: it went to the writer, not let go
    /// for a full write queue); the recording stops once the closing packets are written, or
    /// two seconds of pictures after the stop.
    private func advanceClosing(_ packet: EncodedPacket, written: Bool) {
        guard var state = closing else { return }
        if written {
            if packet.isKeyframe { state.keyframeSeen = true }
            if state.keyframeSeen { state.packetsLeft -= 1 }
        }
        let first = state.firstPts ?? packet.pts
        state.firstPts = first
        closing = state
        if state.packetsLeft <= 0 || packet.pts - first >= Recorder.closingTicks { finishRecording() }
    }

    private func route(_ packet: EncodedPacket) throws {
        // The gap before a picture travels with its packet (through the pre-event buffer too) to
        // the segment that holds it.
        var packet = packet
        if let packetStage {
            do {
                try packetStage.process(&packet)
                packetStageFailing = false
            } catch {
                if !packetStageFailing { emit(.packetStageFailed(reason: "\(error)")) }
                packetStageFailing = true
            }
        }
        let drops = dropsByPts.removeValue(forKey: packet.pts)
        packet.droppedBefore = drops?.count ?? 0
        packet.dropsEstimated = drops?.estimated ?? false
        if recording {
            // Only the keyframe a stop asked for is kept in the stopping segment (a clock step
            // still cuts at it).
            packet.closesRecording = packet.isKeyframe && closing?.keyframeSeen == false
            let written = admit(&packet)
            if written { writer.submit(.packet(packet, live: true)) }
            if closing != nil { advanceClosing(packet, written: written) }
        } else if buffering {
            preEvent.append(packet)
        }
        preEventFill.store(Int(preEvent.duration / 90))
    }

    /// Whether a live packet goes to the writer, or is let go because the write queue is at its
    /// bound (see the type's documentation); a source that is not live waits for room instead. Pictures let go are added to the gap before the
    /// packet that resumes the recording, so the segment counts them as dropped.
    private func admit(_ packet: inout EncodedPacket) -> Bool {
        let limitTicks = Int64(configuration.writeQueueSeconds) * 90_000
        let limitBytes = configuration.writeQueueMaxBytes
        guard source.isLive else {
            // A file or a pattern read as fast as it goes loses nothing by waiting.
            writer.waitForRoom(ticks: limitTicks, bytes: limitBytes)
            return true
        }
        let fill = writer.fill
        guard var shed = shedding else {
            if fill.ticks < limitTicks && fill.bytes < limitBytes { return true }
            shedding = (since: Clock.monotonicNanoseconds(), frames: 1, keyframeRequested: false)
            _ = framesShedCounter.increment()
            emit(.storageBacklogFull(queued: fill))
            return false
        }
        if fill.ticks < limitTicks / 2 && fill.bytes < limitBytes / 2 {
            if packet.isKeyframe {
                packet.droppedBefore += shed.frames
                shedding = nil
                emit(.storageBacklogCleared(framesLost: shed.frames,
                                            milliseconds: Int((Clock.monotonicNanoseconds() - shed.since) / 1_000_000)))
                return true
            }
            if !shed.keyframeRequested {
                encoder.requestKeyframe()
                shed.keyframeRequested = true
            }
        }
        shed.frames += 1
        _ = framesShedCounter.increment()
        shedding = shed
        return false
    }
}
