import Capture
import Platform
/// Sums dropped camera frames so they are reported at most once per `interval`: a pipeline that
/// cannot keep up drops a frame every few, and one journal record (signed, made durable) per drop
/// would add load exactly when there is none to spare. Thread-safe: drops arrive on the
/// pipeline's thread, the remainder is taken by the control thread.
public final class DropTally: @unchecked Sendable {
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

    private let lock = ConditionLock()
    private var pending: Summary?
    private var lastReport: Int64?
    public let interval: Int64

    public init(intervalNanoseconds: Int64 = 1_000_000_000) {
        interval = intervalNanoseconds
    }

    /// Adds a gap; returns what to report now, when the last report is at least `interval` old.
    public func add(frames: Int, beforeFrame: UInt64, at now: Int64) -> Summary? {
        lock.withLock {
            if var summary = pending {
                summary.frames += frames
                summary.gaps += 1
                summary.lastBeforeFrame = beforeFrame
                pending = summary
            } else {
                pending = Summary(frames: frames, gaps: 1, firstBeforeFrame: beforeFrame, lastBeforeFrame: beforeFrame)
            }
            if let lastReport, now - lastReport < interval { return nil }
            lastReport = now
            defer { pending = nil }
            return pending
        }
    }

    /// What has not been reported yet (at housekeeping and at shutdown).
    public func take(at now: Int64) -> Summary? {
        lock.withLock {
            guard let summary = pending else { return nil }
            pending = nil
            lastReport = now
            return summary
        }
    }
}
