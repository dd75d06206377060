import LibAV
import Platform

/// Muxes, seals and makes segments durable on a thread of its own, behind a queue bounded in
/// seconds and bytes, so that a storage stall (an SD card that takes hundreds of milliseconds
/// over a flush, a full journal) never holds up capture and encoding.
///
/// The pipeline thread `submit`s in order: a timeline (a new encoder's parameters), packets,
/// officer changes and segment ends; the writer thread hands them to a `SegmentMuxer` on the
/// store. Whenever it has caught up (nothing queued) it makes what it has written durable
/// (fdatasync), so a writer that fell behind a stall syncs once for everything it sealed since:
/// storage that is slow per flush still keeps up with the camera. What a power cut loses is
/// what is queued or written but not yet synced: the fragment in flight while storage keeps
/// up, and the length of the stall while it does not (docs/ARCHITECTURE.md, "Storage stalls").
///
/// The bound is for the pipeline to act on (`fill`, `Recorder`'s shedding): `submit` never
/// blocks and never refuses. A failure of the store is kept (`failure`), what is queued after it
/// is discarded, and the open segment's muxer is given up.
// Every member below `lock` is guarded by it; `muxer`, `officer` and `unsynced` belong to the
// writer thread; `onSealed` is set before `start()`.
public final class SegmentWriter: @unchecked Sendable {
    /// What opens a run of segments from one encoder.
    public struct Timeline {
        public var configuration: SegmentMuxer.Configuration
        public var parameters: VideoStreamParameters
        public var timeBase: Rational
        /// Capture time (CLOCK_MONOTONIC ns) of packet pts 0.
        public var epochMonotonic: Int64
        public var anchor: ClockAnchor

        public init(configuration: SegmentMuxer.Configuration, parameters: VideoStreamParameters, timeBase: Rational,
                    epochMonotonic: Int64, anchor: ClockAnchor) {
            self.configuration = configuration
            self.parameters = parameters
            self.timeBase = timeBase
            self.epochMonotonic = epochMonotonic
            self.anchor = anchor
        }
    }

    public enum Item {
        case timeline(Timeline)
        /// `live` packets count toward the bound; pre-event packets (already held in memory by
        /// the pre-event buffer, under its own bounds) do not.
        case packet(EncodedPacket, live: Bool)
        case officer(String)
        /// A reading of the wall clock (`SegmentMuxer.updateClock`).
        case clock(ClockReading)
        /// Seals the open segment (a stop, a lost camera, the end).
        case finishSegment
    }

    /// How much live video the queue holds: 90 kHz ticks of packet durations, and bytes.
    public struct Fill: Equatable, Sendable {
        public var ticks: Int64 = 0
        public var bytes = 0
        public init(ticks: Int64 = 0, bytes: Int = 0) {
            self.ticks = ticks
            self.bytes = bytes
        }
        public var milliseconds: Int { Int(ticks / 90) }
    }

    private let store: SegmentStore
    private let lock = ConditionLock()
    private var items: [Item] = []
    private var head = 0
    private var queued = Fill()
    private var peakFill = Fill()
    private var closed = false
    /// Threads waiting in `wait(untilMonotonic:)` (the pipeline in `waitForRoom`, a test or a
    /// status reader): the writer wakes them as it takes items. A count, not a flag: one waiter
    /// leaving must not leave another unwoken.
    private var waiters = 0
    private var storedFailure: Error?
    private var thread: WorkerThread?

    private var muxer: SegmentMuxer?
    /// The last step of sealing each segment (`SegmentMuxer.finisher`), in order, on a thread
    /// of its own ("bodycam-sealer"): at most `maximumPendingSeals` wait, then the writer does.
    private let seals = BoundedQueue<Seal>(capacity: SegmentWriter.maximumPendingSeals, policy: .block)
    private var sealer: WorkerThread?
    public static let maximumPendingSeals = 8
    private struct Seal: @unchecked Sendable {
        // Made on the writer thread, run once on the sealer's.
        let run: () throws -> Void
    }
    private var lastReading: ClockReading?
    private var unsynced = false
    /// Called on the writer thread with each segment once it is sealed and durable.
    public var onSealed: (SegmentSummary) -> Void = { _ in }

    public init(store: SegmentStore) {
        self.store = store
    }

    /// Starts the writer thread.
    public func start() {
        sealer = WorkerThread(name: "bodycam-sealer") { [self] in
            while let seal = seals.pop() {
                if failure != nil { continue }
                do {
                    try seal.run()
                } catch {
                    fail(error)
                }
            }
        }
        thread = WorkerThread(name: "bodycam-writer") { [self] in
            while let item = take() {
                process(item)
            }
            finishAfterFailure()
        }
    }

    /// Queues an item; never blocks on storage (only on the queue's lock).
    public func submit(_ item: Item) {
        lock.withLock {
            guard !closed, storedFailure == nil else { return }
            if case .packet(let packet, true) = item {
                queued.ticks += packet.duration
                queued.bytes += packet.data.count
                peakFill.ticks = max(peakFill.ticks, queued.ticks)
                peakFill.bytes = max(peakFill.bytes, queued.bytes)
            }
            items.append(item)
            lock.broadcast()
        }
    }

    /// Blocks until less than `ticks` and `bytes` of live video are queued (or the writer has
    /// failed): for sources that are not live, which can wait for storage.
    public func waitForRoom(ticks: Int64, bytes: Int) {
        _ = wait(untilMonotonic: nil) { $0.ticks < ticks && $0.bytes < bytes }
    }

    /// Blocks until `condition` holds for the live video queued, the writer has failed, or
    /// CLOCK_MONOTONIC reaches `deadline` (ns; nil: no deadline). True when the condition holds.
    public func wait(untilMonotonic deadline: Int64?, _ condition: (Fill) -> Bool) -> Bool {
        lock.withLock {
            waiters += 1
            defer { waiters -= 1 }
            while storedFailure == nil && !condition(queued) {
                if let deadline {
                    if !lock.wait(untilMonotonic: deadline) { return condition(queued) }
                } else {
                    lock.wait()
                }
            }
            return condition(queued)
        }
    }

    /// Live video queued now (any thread).
    public var fill: Fill { lock.withLock { queued } }
    /// The most live video the queue has held (any thread).
    public var peak: Fill { lock.withLock { peakFill } }
    /// The store's first failure, if any (any thread).
    public var failure: Error? { lock.withLock { storedFailure } }

    /// Waits until everything queued is written and the open segment sealed, then ends the
    /// thread. Call once, after the last `submit`.
    public func close() {
        submit(.finishSegment)
        lock.withLock {
            closed = true
            lock.broadcast()
        }
        thread?.join()
        thread = nil
        seals.close()
        sealer?.join()
        sealer = nil
    }

    private enum Work {
        case item(Item)
        case sync
    }

    /// The next item; blocks while the queue is empty, but once caught up with data written and
    /// not yet durable it first syncs it (outside the lock). nil once closed and drained.
    private func take() -> Item? {
        while true {
            let work: Work? = lock.withLock {
                while head == items.count {
                    if unsynced && storedFailure == nil { return .sync }
                    if closed { return nil }
                    lock.wait()
                }
                let item = items[head]
                head += 1
                if case .packet(let packet, true) = item {
                    queued.ticks -= packet.duration
                    queued.bytes -= packet.data.count
                    if waiters > 0 { lock.broadcast() }
                }
                // The consumed front is dropped now and then, not on every item.
                if head >= 256 && head * 2 >= items.count {
                    items.removeFirst(head)
                    head = 0
                }
                return .item(item)
            }
            switch work {
            case nil: return nil
            case .item(let item): return item
            case .sync:
                attempt { try muxer?.makeDurable() }
                unsynced = false
            }
        }
    }

    private func process(_ item: Item) {
        if lock.withLock({ storedFailure != nil }) { return }
        attempt {
            switch item {
            case .timeline(let timeline):
                try muxer?.finish()
                var configuration = timeline.configuration
                configuration.firstSequence = store.nextSequence
                let made = SegmentMuxer(configuration: configuration, store: store, parameters: timeline.parameters,
                                        timeBase: timeline.timeBase, epochMonotonic: timeline.epochMonotonic, anchor: timeline.anchor)
                made.syncsEachFragment = false
                made.finisher = { [seals] run in seals.push(Seal(run: run)) }
                made.onSegmentFinished = { [weak self] in self?.onSealed($0) }
                if var reading = lastReading {
                    reading.stepped = false
                    made.updateClock(reading)
                }
                muxer = made
            case .packet(let packet, _):
                try muxer?.write(packet)
                if muxer?.needsDurability == true { unsynced = true }
            case .officer(let officerID):
                muxer?.configuration.officerID = officerID
            case .clock(let reading):
                lastReading = reading
                muxer?.updateClock(reading)
            case .finishSegment:
                try muxer?.finish()
                unsynced = false
            }
        }
    }

    /// Runs `body`; its failure is kept and ends the writing.
    private func attempt(_ body: () throws -> Void) {
        do {
            try body()
        } catch {
            fail(error)
            muxer?.abandon(because: error)
        }
    }

    /// Keeps the first failure (any thread); what is queued can no longer be written: it is let
    /// go, not held.
    private func fail(_ error: Error) {
        lock.withLock {
            if storedFailure == nil { storedFailure = error }
            items.removeAll()
            head = 0
            queued = Fill()
            lock.broadcast()
        }
    }

    /// After a failure the open segment's muxer is released (its partial file stays for recovery).
    private func finishAfterFailure() {
        if let failure { muxer?.abandon(because: failure) }
        muxer = nil
    }
}
