import Platform
import Testing
@testable import Controls
@testable import Policy

let second: Int64 = 1_000_000_000

@Suite("Buttons: debounce and gestures")
struct GestureTests {
    let ms: Int64 = 1_000_000

    @Test("a bouncing contact is one press and one release, the press taken at its first edge")
    func bouncing() {
        var debouncer = Debouncer(window: 30 * ms)
        var clean: [ButtonEdge] = []
        var level = false
        for (index, t) in [0, 2, 3, 5, 7, 9].map({ Int64($0) * ms }).enumerated() {
            level = index % 2 == 0
            clean += debouncer.feed(ButtonEdge(button: .record, pressed: level, timestamp: t))
        }
        // The last raw level (released) differs from what was taken: settled when the window ends.
        #expect(clean == [ButtonEdge(button: .record, pressed: true, timestamp: 0)])
        #expect(debouncer.settle(now: 20 * ms, level: { _ in false }).isEmpty)
        // A release is taken once the contact has stayed open for a window.
        #expect(debouncer.settle(now: 31 * ms, level: { _ in false }).isEmpty)
        #expect(debouncer.nextDeadline == 61 * ms)
        #expect(debouncer.settle(now: 61 * ms, level: { _ in false }) == [ButtonEdge(button: .record, pressed: false, timestamp: 30 * ms)])
        // A steady press through the window is not released.
        var steady = Debouncer(window: 30 * ms)
        _ = steady.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 0))
        _ = steady.feed(ButtonEdge(button: .mark, pressed: false, timestamp: 1 * ms))
        _ = steady.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 2 * ms))
        #expect(steady.settle(now: 40 * ms, level: { _ in true }).isEmpty)
    }

    @Test("bounces that outlast the window and read as releases do not end the press nor start another")
    func lateBounces() {
        // The v1 GPIO uAPI types an edge by the line's level when its interrupt thread runs, so a
        // burst handled late can arrive as releases while the contact ends up closed.
        var debouncer = Debouncer(window: 30 * ms)
        var clean = debouncer.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 0))
        clean += debouncer.settle(now: 30 * ms, level: { _ in true })
        for t in [35, 36, 38] as [Int64] { clean += debouncer.feed(ButtonEdge(button: .mark, pressed: false, timestamp: t * ms)) }
        clean += debouncer.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 40 * ms))
        clean += debouncer.settle(now: 80 * ms, level: { _ in true })
        #expect(clean == [ButtonEdge(button: .mark, pressed: true, timestamp: 0)])
        // A real release: open and staying open; taken at its first edge's time.
        clean += debouncer.feed(ButtonEdge(button: .mark, pressed: false, timestamp: 200 * ms))
        clean += debouncer.feed(ButtonEdge(button: .mark, pressed: false, timestamp: 204 * ms))
        #expect(debouncer.settle(now: 230 * ms, level: { _ in false }).isEmpty)
        #expect(debouncer.settle(now: 234 * ms, level: { _ in false }) == [ButtonEdge(button: .mark, pressed: false, timestamp: 200 * ms)])
    }

    @Test("a lost release edge: the level read when the burst's window ends ends the press; before a long press the line must really be held")
    func lostEdges() {
        // Press at 0, release at 35, press at 40, and no edge after, though the line reads
        // released from 41 ms (the v1 uAPI can lose the last edge of a burst).
        var debouncer = Debouncer(window: 30 * ms)
        var clean = debouncer.feed(ButtonEdge(button: .power, pressed: true, timestamp: 0))
        clean += debouncer.settle(now: 30 * ms, level: { _ in true })
        clean += debouncer.feed(ButtonEdge(button: .power, pressed: false, timestamp: 35 * ms))
        clean += debouncer.feed(ButtonEdge(button: .power, pressed: true, timestamp: 40 * ms))
        #expect(debouncer.nextDeadline == 70 * ms, "the re-closed contact's level is read again")
        clean += debouncer.settle(now: 70 * ms, level: { _ in false })
        clean += debouncer.settle(now: 100 * ms, level: { _ in false })
        #expect(clean == [ButtonEdge(button: .power, pressed: true, timestamp: 0), ButtonEdge(button: .power, pressed: false, timestamp: 70 * ms)])

        // No window left open, no edge at all for the release: the long press that falls due
        // checks the line first, and a line that reads released ends the press instead.
        var quiet = Debouncer(window: 30 * ms)
        var gestures = GestureRecognizer()
        for edge in quiet.feed(ButtonEdge(button: .power, pressed: true, timestamp: 0)) { _ = gestures.feed(edge) }
        #expect(quiet.settle(now: 30 * ms, level: { _ in true }).isEmpty)
        #expect(quiet.reconcile(now: 40 * ms, level: { _ in true }).isEmpty, "held: nothing to change")
        #expect(quiet.reconcile(now: 50 * ms, level: { _ in nil }).isEmpty, "a line that cannot be read changes nothing")
        #expect(gestures.longPressesDue(now: 2_999 * ms).isEmpty)
        let due = gestures.longPressesDue(now: 3_000 * ms)
        #expect(due == [.power])
        let released = quiet.reconcile(now: 3_000 * ms, held: due, level: { _ in false })
        #expect(released == [ButtonEdge(button: .power, pressed: false, timestamp: 3_000 * ms)])
        var events: [PolicyEvent] = []
        for edge in released { events += gestures.feed(edge) }
        events += gestures.tick(now: 3_000 * ms)
        #expect(events.count == 1, "no long press: \(events)")
        if case .button(.power, .release, let at)? = events.first { #expect(at == 3_000 * ms) } else { Issue.record("\(events)") }
        // The release opened a window like any edge (a bounce is not a new press); once it is
        // over, a press whose edge was lost is taken from the level too.
        #expect(quiet.settle(now: 3_030 * ms, level: { _ in false }).isEmpty)
        #expect(quiet.reconcile(now: 4_000 * ms, level: { _ in true }) == [ButtonEdge(button: .power, pressed: true, timestamp: 4_000 * ms)])
    }

    @Test("long press fires at 3 s held on the monotonic clock, whatever the wall clock does")
    func longPress() {
        var gestures = GestureRecognizer()
        _ = gestures.feed(ButtonEdge(button: .record, pressed: true, timestamp: 100 * ms))
        #expect(gestures.nextDeadline == 3_100 * ms)
        // The wall clock may jump by an hour here: nothing below reads it.
        #expect(gestures.tick(now: 3_099 * ms).isEmpty)
        let fired = gestures.tick(now: 3_100 * ms)
        guard case .button(.record, .longPress, let at) = fired.first else { Issue.record("no long press: \(fired)"); return }
        #expect(at == 3_100 * ms && fired.count == 1)
        #expect(gestures.tick(now: 5_000 * ms).isEmpty, "fires once per hold")
        #expect(gestures.nextDeadline == nil)
    }

    @Test("double press within 400 ms, and a chord of two buttons within 200 ms")
    func doubleAndChord() {
        var gestures = GestureRecognizer()
        _ = gestures.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 0))
        _ = gestures.feed(ButtonEdge(button: .mark, pressed: false, timestamp: 100 * ms))
        let second = gestures.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 350 * ms))
        #expect(second.count == 2)
        if case .button(.mark, .doublePress, _) = second[1] {} else { Issue.record("no double press: \(second)") }
        _ = gestures.feed(ButtonEdge(button: .mark, pressed: false, timestamp: 400 * ms))
        let late = gestures.feed(ButtonEdge(button: .mark, pressed: true, timestamp: 1_000 * ms))
        #expect(late.count == 1, "a third press 650 ms later is a new press")
        _ = gestures.feed(ButtonEdge(button: .record, pressed: true, timestamp: 1_150 * ms))
        let chord = gestures.feed(ButtonEdge(button: .power, pressed: true, timestamp: 1_180 * ms))
        #expect(chord.contains { if case .chord = $0 { return true } else { return false } })
    }
}
