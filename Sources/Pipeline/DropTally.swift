import Synchronization

import Capture
import Platform
/// Sums dropped camera frames until the housekeeping thread takes them, every 2 s, as one journal
/// record: a pipeline that cannot keep up drops a frame every few, and one journal record (signed,
/// made durable) per drop would add load exactly when there is none to spare. Whoever adds never
/// writes: on storage that takes seconds over each sync (an SD card stalling on its flushes) an
/// adder that journaled would fall behind the drops it reports, and hold up whatever else it
/// carries (the recorder's events) by that much; the taker writes at most one record per take,
/// however long each takes. Thread-safe: drops arrive on the recorder's event thread, the sum is
/// taken by the housekeeping thread and at shutdown.
public final class DropTally: Sendable {
    public struct Summary: Equatable, Sendable {
        /// Frames lost in all.
        public var frames: Int
        /// Gaps they came in.
        public var gaps: Int
        /// The frame numbers after the first and the last gap.
        public var firstBeforeFrame: UInt64
        public var lastBeforeFrame: UInt64

        public init(frames: Int, gaps: Int, firstBeforeFrame: UInt64, lastBeforeFrame: UInt64) {
            self.frames = frames
            self.gaps = gaps
            self.firstBeforeFrame = firstBeforeFrame
            self.lastBeforeFrame = lastBeforeFrame
        }
    }

    private let pending = Mutex<Summary?>(nil)

    public init() {}

    /// Adds a gap of `frames` lost before frame number `beforeFrame`.
    public func add(frames: Int, beforeFrame: UInt64) {
        pending.withLock { pending in
            if var summary = pending {
                summary.frames += frames
                summary.gaps += 1
                summary.lastBeforeFrame = beforeFrame
                pending = summary
            } else {
                pending = Summary(frames: frames, gaps: 1, firstBeforeFrame: beforeFrame, lastBeforeFrame: beforeFrame)
            }
        }
    }

    /// Everything added since the last take, summed; nil when nothing was.
    public func take() -> Summary? {
        pending.withLock { pending in
            defer { pending = nil }
            return pending
        }
    }
}
