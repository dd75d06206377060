import Pipeline
import Testing

@Suite("Dropped-frame tally")
struct DropTallyTests {
    @Test("drops are summed until taken; a take empties the tally")
    func summed() {
        let tally = DropTally()
        #expect(tally.take() == nil)
        tally.add(frames: 2, beforeFrame: 10)
        tally.add(frames: 1, beforeFrame: 14)
        tally.add(frames: 3, beforeFrame: 20)
        #expect(tally.take() == .init(frames: 6, gaps: 3, firstBeforeFrame: 10, lastBeforeFrame: 20))
        #expect(tally.take() == nil)
        tally.add(frames: 4, beforeFrame: 30)
        #expect(tally.take() == .init(frames: 4, gaps: 1, firstBeforeFrame: 30, lastBeforeFrame: 30))
    }

    @Test("adders on many threads lose no drop")
    func concurrent() async {
        let tally = DropTally()
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for gap in 0..<1000 { tally.add(frames: 1 + gap % 3, beforeFrame: UInt64(thread * 1000 + gap)) }
                }
            }
        }
        let summary = tally.take()
        #expect(summary?.gaps == 4000)
        #expect(summary?.frames == 4 * (0..<1000).reduce(0) { $0 + 1 + $1 % 3 })
    }
}
