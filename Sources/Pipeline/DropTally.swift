import Synchronization

import Capture
import Platform
/// Sums dropped camera frames so they are reported at most once per `interval`: a pipeline that
/// cannot keep up drops a frame every few, and one journal record (signed, made durable) per drop
/// would add load exactly when there is none to spare. Thread-safe: drops arrive on the
/// pipeline's thread, the remainder is taken by the housekeeping thread and at shutdown.
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

    private struct State {
        var pending: Summary?
        var lastReport: Int64?
    }
    private let state = Mutex(State())
    public let interval: Int64

    public init(intervalNanoseconds: Int64 = 1_000_000_000) {
        interval = intervalNanoseconds
    }

    /// Adds a gap; returns what to report now, when the last report is at least `interval` old.
    public func add(frames: Int, beforeFrame: UInt64, at now: Int64) -> Summary? {
        state.withLock { state in
            if var summary = state.pending {
                summary.frames += frames
                summary.gaps += 1
                summary.lastBeforeFrame = beforeFrame
                state.pending = summary
            } else {
                state.pending = Summary(frames: frames, gaps: 1, firstBeforeFrame: beforeFrame, lastBeforeFrame: beforeFrame)
            }
            if let lastReport = state.lastReport, now - lastReport < interval { return nil }
            state.lastReport = now
            defer { state.pending = nil }
            return state.pending
        }
    }

    /// What has not been reported yet (at housekeeping and at shutdown).
    public func take(at now: Int64) -> Summary? {
        state.withLock { state in
            guard let summary = state.pending else { return nil }
            state.pending = nil
            state.lastReport = now
            return summary
        }
    }
}
