import LibAV
import Capture
import Platform

/// A finished segment.
public struct SegmentSummary: Equatable, Sendable {
    public var descriptor: SegmentDescriptor
    public var location: String
    public var frames: Int
    /// Fragments (= GOPs) written.
    public var fragments: Int
    /// Stream time of the first picture, ticks of the pipeline clock.
    public var firstPts: Int64
    /// Ticks covered, first picture to the end of the last.
    public var duration: Int64
    /// Camera frames missing between its first picture and the end of its last (sequence gaps).
    public var framesDropped = 0
    /// `framesDropped` is (in part) estimated: the driver's sequence numbers could not be trusted.
    public var framesDroppedEstimated = false
    /// The wall clock over the segment.
    public var clock: SegmentClock? = nil
}

/// Cuts the packet stream into segments: standalone fragmented MP4 files of about
/// `segmentSeconds` each, every one opening on a keyframe, one fragment per GOP. Explicit
/// states, as in GStreamer's splitmuxsink: a segment opens on a keyframe and closes just before
/// the first keyframe at or past its length (within a picture), so no picture is lost or
/// written twice.
public final class SegmentMuxer {
    public struct Configuration: Sendable {
        public var segmentSeconds: Int
        public var deviceID: String
        public var officerID: String
        public var firstSequence: UInt64
        public var framesPerSecond: Int
        /// The longest a fragment runs, ms: a GOP longer than this is written as several
        /// fragments (the later ones begin with a picture that is not a keyframe), so that what a
        /// power cut can take — the fragment in flight — stays well under a second whatever the
        /// GOP. 1000: one fragment per GOP of a second.
        public var maximumFragmentMilliseconds: Int = 1000
        public init(segmentSeconds: Int, deviceID: String, officerID: String, firstSequence: UInt64 = 1, framesPerSecond: Int = 0) {
            self.segmentSeconds = segmentSeconds
            self.framesPerSecond = framesPerSecond
            self.deviceID = deviceID
            self.officerID = officerID
            self.firstSequence = firstSequence
        }
    }

    private struct OpenSegment {
        var descriptor: SegmentDescriptor
        var sink: SegmentSink
        var muxer: FragmentedMP4Writer
        var firstPts: Int64
        var firstDts: Int64
        var endPts: Int64
        var frames: Int
        var framesDropped = 0
        var framesDroppedEstimated = false
        var clock: SegmentClock
        var fragments: Int
        /// Pictures and start of the fragment being written.
        var fragmentFrames: Int
        var fragmentStartPts: Int64
    }

    private enum State {
        case idle
        case open(OpenSegment)
    }

    /// Changes apply to segments opened afterwards.
    public var configuration: Configuration
    private let store: SegmentStore
    private var parameters: VideoStreamParameters
    private let timeBase: Rational
    private var anchor: ClockAnchor
    /// The latest clock reading (`updateClock`); nil until the first.
    private var reading: ClockReading?
    /// A clock step was seen: the open segment closes at the next keyframe.
    private var cutPending = false
    private let epochMonotonic: Int64
    private var state = State.idle
    /// Sequence number the next segment will get.
    public private(set) var nextSequence: UInt64
    /// Packets refused because no segment was open and they were not keyframes.
    public private(set) var skippedPackets = 0
    /// Segments sealed so far (without a `finisher`; with one, see `onSegmentFinished`).
    public private(set) var completed: [SegmentSummary] = []
    /// Runs the last step of sealing a segment (the sink's `finish`: its final sync, rename and
    /// manifest, which on slow storage take seconds) elsewhere, in order, so that the next
    /// segment's fragments need not wait for it. nil: at once, on the calling thread.
    public var finisher: ((@escaping () throws -> Void) -> Void)?
    /// Called each time a segment is sealed: on the muxing thread, or the finisher's.
    public var onSegmentFinished: ((SegmentSummary) -> Void)?
    /// Each fragment is made durable (fdatasync) as it completes. A `SegmentWriter` clears this
    /// and calls `makeDurable()` whenever it has caught up, so one sync covers every fragment
    /// sealed during a storage stall.
    public var syncsEachFragment = true
    /// Fragments have been written since the last `makeDurable()`.
    public private(set) var needsDurability = false

    /// - Parameters:
    ///   - epochMonotonic: capture time (CLOCK_MONOTONIC ns) of packet pts 0.
    ///   - anchor: maps capture time to wall time for names and creation_time, until the first
    ///     `updateClock`.
    public init(configuration: Configuration, store: SegmentStore, parameters: VideoStreamParameters, timeBase: Rational,
                epochMonotonic: Int64, anchor: ClockAnchor) {
        precondition(configuration.segmentSeconds > 0)
        precondition(timeBase.numerator == 1, "packet times are ticks of 1/timescale (the MP4 track's)")
        self.configuration = configuration
        self.store = store
        self.parameters = parameters
        self.timeBase = timeBase
        self.epochMonotonic = epochMonotonic
        self.anchor = anchor
        self.nextSequence = configuration.firstSequence
    }

    public var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    private var segmentTicks: Int64 { Int64(configuration.segmentSeconds) * Int64(timeBase.denominator) / Int64(timeBase.numerator) }
    private var fragmentTicks: Int64 {
        Int64(configuration.maximumFragmentMilliseconds) * Int64(timeBase.denominator) / Int64(timeBase.numerator) / 1000
    }

    /// A new reading of the wall clock (every second, and at a step): segments opened from now on
    /// take its anchor; the open one keeps the anchor it was opened with and folds the reading
    /// into its clock state. A step closes the open segment at the next keyframe, so that no
    /// segment spans one.
    public func updateClock(_ reading: ClockReading) {
        anchor = reading.anchor
        self.reading = reading
        update { $0.clock.fold(reading) }
        if reading.stepped && isOpen { cutPending = true }
    }

    /// Wall-clock time of a packet timestamp.
    public func wallNanoseconds(pts: Int64) -> Int64 {
        anchor.wall(atMonotonic: monotonicNanoseconds(pts: pts))
    }

    /// Capture time (CLOCK_MONOTONIC) of a packet timestamp.
    public func monotonicNanoseconds(pts: Int64) -> Int64 {
        epochMonotonic + pts * 1_000_000_000 * Int64(timeBase.numerator) / Int64(timeBase.denominator)
    }

    public func write(_ packet: EncodedPacket) throws {
        // An encoder's empty packet holds no picture (libavformat's muxer skipped them too).
        guard !packet.data.isEmpty else { return }
        switch state {
        case .idle:
            guard packet.isKeyframe else {
                skippedPackets += 1
                return
            }
            state = .open(try open(startingWith: packet))
            try append(packet, first: true)
        case .open(let segment):
            if packet.isKeyframe {
                // Within a picture of the length counts as at it: the encoder forces a keyframe
                // one second less half a picture after the last (VideoEncoder's keyframeDue), so
                // capture-time jitter at the segment's two ends (up to half a picture each) would
                // otherwise make a segment of N seconds miss its cut by a few milliseconds and run
                // to N + 1.
                // A keyframe that only closes a stopping recording stays in its segment (two
                // pictures, not a segment of their own), unless the clock stepped.
                if cutPending || (!packet.closesRecording && packet.pts - segment.firstPts >= segmentTicks - max(0, packet.duration)) {
                    if cutPending { update { $0.clock.cutByStep = true } }
                    try finish()
                    state = .open(try open(startingWith: packet))
                    try append(packet, first: true)
                    return
                } else {
                    try completeFragment(segment, before: packet)
                }
            } else if segment.fragmentFrames > 0, packet.pts + max(0, packet.duration) - segment.fragmentStartPts > fragmentTicks {
                // This picture would end past the bound: the fragment ends before it.
                try completeFragment(segment, before: packet)
            }
            try append(packet)
        }
    }

    /// Ends the fragment being written just before `packet`, and makes it durable.
    private func completeFragment(_ segment: OpenSegment, before packet: EncodedPacket) throws {
        try segment.muxer.flushFragment()
        try segment.sink.fragmentComplete(frames: segment.fragmentFrames, duration: packet.pts - segment.fragmentStartPts)
        try fragmentWritten(segment.sink)
        update {
            $0.fragments += 1
            $0.fragmentFrames = 0
            $0.fragmentStartPts = packet.pts
        }
    }

    private func update(_ body: (inout OpenSegment) -> Void) {
        guard case .open(var segment) = state else { return }
        body(&segment)
        state = .open(segment)
    }

    /// A segment's first picture opens it: a gap before it lies before the segment.
    private func append(_ packet: EncodedPacket, first: Bool = false) throws {
        guard case .open(let segment) = state else { return }
        try packet.data.withUnsafeBytes {
            try segment.muxer.write($0, pts: packet.pts - segment.firstDts, dts: packet.dts - segment.firstDts,
                                    duration: packet.duration, isKeyframe: packet.isKeyframe)
        }
        update {
            $0.frames += 1
            $0.fragmentFrames += 1
            $0.endPts = max($0.endPts, packet.pts + packet.duration)
            if !first { $0.framesDropped += packet.droppedBefore }
            if packet.dropsEstimated { $0.framesDroppedEstimated = true }
        }
    }

    private func open(startingWith packet: EncodedPacket) throws -> OpenSegment {
        let descriptor = SegmentDescriptor(sequence: nextSequence, deviceID: configuration.deviceID,
                                           officerID: configuration.officerID,
                                           startWallNanoseconds: wallNanoseconds(pts: packet.pts),
                                           startMonotonicNanoseconds: monotonicNanoseconds(pts: packet.pts),
                                           codec: parameters.codecName, width: parameters.width, height: parameters.height,
                                           framesPerSecond: configuration.framesPerSecond)
        // An encoder that gave no parameter sets out of band (h264_v4l2m2m may not): they come from
        // this keyframe, before the moov is written.
        _ = parameters.adoptParameterSets(fromKeyframe: packet.data)
        let sink = try store.makeSink(for: descriptor)
        let metadata = [
            ("creation_time", Clock.iso8601(wallNanoseconds: descriptor.startWallNanoseconds)),
            ("device_id", descriptor.deviceID),
            ("officer_id", descriptor.officerID),
            ("segment_sequence", String(descriptor.sequence)),
            ("title", "bodycam \(descriptor.deviceID) segment \(descriptor.sequence)"),
        ]
        let track = VideoTrackDescription(width: parameters.width, height: parameters.height,
                                          decoderConfiguration: parameters.extradata,
                                          timescale: Int(timeBase.denominator))
        let muxer = try FragmentedMP4Writer(track: track, creationWallNanoseconds: descriptor.startWallNanoseconds,
                                            metadata: metadata) { bytes in
            try sink.write(bytes)
        }
        // The moov alone is the first durable unit: a segment that dies right here still opens.
        // Synced at once even behind a write queue: a file whose header never reached storage
        // cannot be recovered, and would read as a deleted segment.
        do {
            try sink.fragmentComplete(frames: 0, duration: 0)
            try sink.makeDurable()
        } catch {
            muxer.abandon(because: error)
            throw error
        }
        nextSequence += 1
        cutPending = false
        let clock = SegmentClock(starting: reading ?? {
            let sync = ClockSync.read()
            return ClockReading(anchor: anchor, synchronised: sync.synchronised, estimatedErrorMicroseconds: sync.estimatedErrorMicroseconds,
                                plausible: descriptor.startWallNanoseconds >= Clock.earliestPlausibleWallNanoseconds)
        }())
        return OpenSegment(descriptor: descriptor, sink: sink, muxer: muxer, firstPts: packet.pts, firstDts: packet.dts,
                           endPts: packet.pts, frames: 0, clock: clock, fragments: 0, fragmentFrames: 0, fragmentStartPts: packet.pts)
    }

    private func fragmentWritten(_ sink: SegmentSink) throws {
        if syncsEachFragment {
            try sink.makeDurable()
        } else {
            needsDurability = true
        }
    }

    /// Makes every fragment written so far durable (see `syncsEachFragment`).
    public func makeDurable() throws {
        guard needsDurability, case .open(let segment) = state else { return }
        try segment.sink.makeDurable()
        needsDurability = false
    }

    /// Gives the open segment up after a failure of its store: nothing more is written to it,
    /// and its partial file stays for recovery.
    public func abandon(because error: Error) {
        guard case .open(let segment) = state else { return }
        state = .idle
        segment.muxer.abandon(because: error)
    }

    /// Seals the open segment, if any (end of recording, shutdown, or a cut).
    public func finish() throws {
        guard case .open(let segment) = state else { return }
        state = .idle
        needsDurability = false
        try segment.muxer.finish()
        try segment.sink.fragmentComplete(frames: segment.fragmentFrames, duration: segment.endPts - segment.fragmentStartPts)
        segment.sink.noteDropped(frames: segment.framesDropped, estimated: segment.framesDroppedEstimated)
        segment.sink.noteClock(segment.clock)
        let summary = SegmentSummary(descriptor: segment.descriptor, location: "", frames: segment.frames,
                                     fragments: segment.fragments + 1, firstPts: segment.firstPts,
                                     duration: segment.endPts - segment.firstPts, framesDropped: segment.framesDropped,
                                     framesDroppedEstimated: segment.framesDroppedEstimated, clock: segment.clock)
        let sink = segment.sink
        let report = onSegmentFinished
        guard let finisher else {
            var sealed = summary
            sealed.location = try sink.finish()
            completed.append(sealed)
            report?(sealed)
            return
        }
        finisher {
            var sealed = summary
            sealed.location = try sink.finish()
            report?(sealed)
        }
    }
}
