import Pipeline
import Capture
import Platform
import TestSupport
import Testing

@Suite("Dropped-frame tally")
struct DropTallyTests {
    @Test("drops are reported summed, at most once per interval, and the remainder is taken at housekeeping")
    func summed() {
        let tally = DropTally(intervalNanoseconds: 1_000)
        // The first gap is reported at once.
        #expect(tally.add(frames: 2, beforeFrame: 10, at: 0) == .init(frames: 2, gaps: 1, firstBeforeFrame: 10, lastBeforeFrame: 10))
        // Within the interval: held and summed.
        #expect(tally.add(frames: 1, beforeFrame: 14, at: 300) == nil)
        #expect(tally.add(frames: 3, beforeFrame: 20, at: 600) == nil)
        // The interval is over: all three since the last report, in one.
        #expect(tally.add(frames: 1, beforeFrame: 25, at: 1_000) == .init(frames: 5, gaps: 3, firstBeforeFrame: 14, lastBeforeFrame: 25))
        #expect(tally.add(frames: 4, beforeFrame: 30, at: 1_500) == nil)
        #expect(tally.take(at: 1_600) == .init(frames: 4, gaps: 1, firstBeforeFrame: 30, lastBeforeFrame: 30))
        #expect(tally.take(at: 1_700) == nil)
        // A take counts as a report: the next gap waits for the interval again.
        #expect(tally.add(frames: 1, beforeFrame: 40, at: 2_000) == nil)
        #expect(tally.add(frames: 1, beforeFrame: 41, at: 2_600) == .init(frames: 2, gaps: 2, firstBeforeFrame: 40, lastBeforeFrame: 41))
    }
}
