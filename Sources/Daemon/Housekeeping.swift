import CShims
import Evidence
import Glibc
import Platform
import Synchronization

/// The daemon's clock-keeping thread ("housekeeping"): `--record-after` and `--duration`, the
/// policy's reminders and confirm windows, storage, clock and battery checks every 2 s, dropped
/// frames, a journal checkpoint every minute. It sleeps in poll(2) until the next deadline or
/// until `stop()` signals its eventfd; it never touches the pipeline's state, only asks the
/// recorder and the policy engine.
///
/// Beside it, the watchdog's own thread ("watchdog") pings systemd every half `WatchdogSec`
/// while the pipeline thread makes progress, and does nothing else: housekeeping writes journal
/// records, each waiting on its fdatasync, and deletes files, so storage that stalls for seconds
/// holds it up, and must not get a recording daemon killed. (A stalled pipeline still does: the
/// ping is withheld, and housekeeping journals the stall.)
final class Housekeeping: Sendable {
    let wake: WakeEvent
    private let threads = Mutex<[WorkerThread]>([])
    /// Checks at which the watchdog thread found the pipeline without progress, not yet
    /// journaled: the frames encoded then, oldest first.
    private let stalls = Mutex<[Int]>([])
    /// Wall clock minus monotonic clock at the last check: it changes only when the wall clock
    /// is stepped.
    private let clockOffset = Mutex<Int64>(Clock.wallNanoseconds() - Clock.monotonicNanoseconds())

    static let checkpointInterval: Int64 = 60_000_000_000
    static let interval: Int64 = 2_000_000_000

    init() throws { wake = try WakeEvent() }

    /// Starts the housekeeping thread, and the watchdog's when there is one (`watchdog` nil:
    /// systemd asked for no watchdog).
    func start(_ body: @escaping @Sendable () -> Void, watchdog: (@Sendable () -> Void)?) {
        threads.withLock { threads in
            threads.append(WorkerThread(name: "housekeeping", body))
            if let watchdog { threads.append(WorkerThread(name: "watchdog", watchdog)) }
        }
    }

    func stop() {
        wake.signal()
        let workers = threads.withLock { threads -> [WorkerThread] in
            defer { threads = [] }
            return threads
        }
        for worker in workers { worker.join() }
    }

    /// The watchdog thread found no progress (`frames` encoded so far); housekeeping journals it.
    func noteStall(frames: Int) { stalls.withLock { $0.append(frames) } }
    /// The stalls not yet journaled.
    func takeStalls() -> [Int] {
        stalls.withLock { stalls in
            defer { stalls = [] }
            return stalls
        }
    }

    /// Waits until CLOCK_MONOTONIC reaches `deadline` or `stop()` is called (true).
    func wait(until deadline: Int64) -> Bool {
        let milliseconds = max(0, (deadline - Clock.monotonicNanoseconds() + 999_999) / 1_000_000)
        var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 1, Int32(min(milliseconds, Int64(Int32.max))))
        return ready > 0
    }

    /// The wall clock's step since the last call, in nanoseconds: of `anchor` (a step the
    /// pipeline saw first), or of the clock now. Either way the step is counted once.
    func clockStep(to anchor: ClockAnchor = .now()) -> Int64 {
        clockOffset.withLock { last in
            defer { last = anchor.offset }
            return anchor.offset - last
        }
    }
}

extension Daemon {
    func checkStorage() {
        do {
            guard let change = try storage.check() else { return }
            let free = "\(change.free >> 20) MiB free"
            switch change.level {
            case .ok: Log.notice("storage: \(free), alarm cleared")
            case .low: Log.warning("STORAGE LOW: \(free) (reserve \(storage.reserveBytes >> 20) MiB); recording goes on")
            case .critical: Log.error("STORAGE FULL: \(free) (floor \(storage.floorBytes >> 20) MiB); sealing and stopping")
            }
            audit("storage_alarm", ["level": .string(change.level.rawValue), "free_bytes": .integer(change.free)])
            engine.handle(.storage(critical: change.level == .critical, low: change.level != .ok))

        } catch {
            Log.error("storage check: \(error)")
        }
    }

    /// Journals a step of the wall clock of a second or more that the pipeline has not (with the
    /// camera missing, or between two of its readings); docs/POLICY.md, "Clock".
    func checkClock() {
        reportClockStep(to: .now(), cut: false)
    }

    /// One `clock_step` record per step, whoever sees it first: the step, and the wall time
    /// before and after it at one monotonic instant. (Whether a segment was cut for it is the
    /// manifest's `cut_by_clock_step`: the 2 s check may see a step first.)
    func reportClockStep(to anchor: ClockAnchor, cut: Bool) {
        let step = housekeeping.clockStep(to: anchor)
        guard abs(step) >= 1_000_000_000 else { return }
        let before = anchor.wallNanoseconds - step
        Log.warning("the wall clock stepped by \(formatDecimal(Double(step) / 1e9, places: 3)) s "
                    + "(\(Clock.iso8601(wallNanoseconds: before)) → \(Clock.iso8601(wallNanoseconds: anchor.wallNanoseconds)))"
                    + (cut ? "; the open segment is cut here" : ""))
        audit("clock_step", ["step_ms": .integer(step / 1_000_000), "monotonic_ns": .integer(anchor.monotonicNanoseconds),
                             "previous_utc": .string(Clock.iso8601(wallNanoseconds: before)),
                             "new_utc": .string(Clock.iso8601(wallNanoseconds: anchor.wallNanoseconds)),
                             "boot_id": .string(kernelBootID)])
    }

    func checkBattery() {
        guard !configuration.batteryPath.isEmpty else { return }
        guard let bytes = try? readWholeFile(configuration.batteryPath, limit: 64),
              let percent = Int(String(decoding: bytes, as: UTF8.self).filter { $0.isNumber }) else {
            Log.warning("battery: cannot read \(configuration.batteryPath)")
            return
        }
        runState.batteryPercent = percent
        engine.handle(.battery(percent: percent))
    }

    /// The watchdog thread's loop (see `Housekeeping`): every `interval` (half WatchdogSec, ns)
    /// a ping while the pipeline thread made progress since the last check: pictures, or tries
    /// at a missing camera. A stuck thread gets the service restarted (the stall is in the log,
    /// and housekeeping journals it); a missing camera or slow storage does not.
    func watchdogLoop(interval: Int64) {
        var due = Clock.monotonicNanoseconds() + interval
        var heartbeatAtLastCheck = recorder.heartbeat
        while true {
            if housekeeping.wait(until: due) { return }
            if runState.shuttingDown.isSet {
                // A stop has begun (a power-off, --duration, a signal): the drain and the seal
                // make no pictures and may wait seconds on storage. systemd is told, which ends
                // its watchdog for this run (TimeoutStopSec bounds the stop instead), within
                // half WatchdogSec of the last ping.
                notifier.stopping("sealing and stopping")
                return
            }
            let beat = recorder.heartbeat
            if beat > heartbeatAtLastCheck {
                notifier.watchdog()
            } else {
                Log.error("the pipeline made no progress for \(interval / 1_000_000) ms: withholding the watchdog ping")
                housekeeping.noteStall(frames: recorder.framesEncoded)
            }
            heartbeatAtLastCheck = beat
            due += interval
        }
    }

    /// The housekeeping thread's loop (see `Housekeeping`).
    func housekeepingLoop() {
        let start = processStart
        checkStorage()
        let recordAt = options.recordAfterSeconds.map { start + Int64($0 * 1e9) }
        let endAt = options.durationSeconds.map { start + Int64($0 * 1e9) }
        var recordPressed = recordAt == nil
        var nextCheckpoint = start + Housekeeping.checkpointInterval
        var nextCheck = start + Housekeeping.interval
        while !runState.shuttingDown.isSet {
            var deadlines: [Int64] = [nextCheckpoint, nextCheck]
            if let recordAt, !recordPressed { deadlines.append(recordAt) }
            if let endAt { deadlines.append(endAt) }
            if let policyDeadline = engine.nextDeadline { deadlines.append(policyDeadline) }
            if housekeeping.wait(until: deadlines.min()!) { return }
            let now = Clock.monotonicNanoseconds()
            engine.handle(.tick)
            for frames in housekeeping.takeStalls() { audit("pipeline_stalled", ["frames": .integer(Int64(frames))]) }
            if now >= nextCheck {
                if let summary = drops.take() { reportDrops(summary) }
                for summary in refusals.takeEnded(at: now) { effects.journalSummary(summary) }
                checkStorage()
                // What the office holds and the retention setting (or storage) lets go.
                releaseAcknowledged()
                checkClock()
                checkBattery()
                nextCheck += Housekeeping.interval
            }
            if now >= nextCheckpoint {
                audit("checkpoint", ["next_sequence": .integer(Int64(vault.nextSequence)), "state": .string(engine.state.rawValue)])
                nextCheckpoint += Housekeeping.checkpointInterval
            }
            if let recordAt, !recordPressed, now >= recordAt {
                recordPressed = true
                // A recording resumed at start needs no press (one would be a refused stop).
                if engine.state != .recording { engine.handle(.button(.record, .press, at: now)) }
            }
            if let endAt, now >= endAt {
                Log.notice("--duration reached: shutting down, sealing the open segment")
                systemStop(reason: "--duration")
                return
            }
        }
    }
}
