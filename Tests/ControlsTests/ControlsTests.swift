import Platform
import TestSupport
import Wire
import Glibc
import Testing
@testable import Controls

@testable import Policy

/// Records what the policy asked of the pipeline, with timestamps.
// Every member is read and written under `lock`.
final class RecordingEffects: PolicyEffects, @unchecked Sendable {
    let lock = ConditionLock()
    var started: [Int64] = []
    var stopped = 0
    var marks: [(String, String, Int64)] = []
    var journal: [String] = []
    var poweredOff = false
    func startRecording() { lock.withLock { started.append(Clock.monotonicNanoseconds()) } }
    func stopRecording() { lock.withLock { stopped += 1 } }
    func setDuty(officerID: String, dutyID: String) {}
    func clearDuty() {}
    func preEventBuffering(_ enabled: Bool) {}
    func mark(label: String, source: String, at: Int64) { lock.withLock { marks.append((label, source, at)) } }
    func journal(_ kind: String, _ fields: [String: JSONValue]) { lock.withLock { journal.append(kind) } }
    func powerOff() { lock.withLock { poweredOff = true } }
}

func waitUntil(_ seconds: Double = 2, _ condition: () -> Bool) -> Bool {
    let deadline = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
    while Clock.monotonicNanoseconds() < deadline {
        if condition() { return true }
        Clock.sleep(untilMonotonic: Clock.monotonicNanoseconds() + 1_000_000)
    }
    return condition()
}

@Suite("Controls with the simulated GPIO backend")
struct ControlsTests {
    func rig(onDuty: Bool = true) throws -> (SimulatedGPIO, ControlsThread, PolicyEngine, RecordingEffects, Indicators) {
        let gpio = try SimulatedGPIO()
        let indicators = Indicators(backend: gpio)
        let effects = RecordingEffects()
        let engine = PolicyEngine(policy: RecordingPolicy(settings: PolicySettings(), onDuty: onDuty), indicators: indicators, effects: effects)
        let controls = try ControlsThread(backend: gpio)
        controls.start(onEvent: { engine.handle($0) }, onError: { Issue.record("controls: \($0)") })
        return (gpio, controls, engine, effects, indicators)
    }

    @Test("a record press lights the red LED and starts recording, each after the button's kernel timestamp")
    func recordPress() throws {
        let (gpio, controls, engine, effects, indicators) = try rig()
        defer { controls.stop(); indicators.close() }
        let pressedAt = Clock.monotonicNanoseconds()
        #expect(gpio.waitUntilTaken(gpio.setLevel(.record, pressed: true, at: pressedAt)))
        #expect(gpio.output(.recordLED) && engine.state == .recording)
        let ledAt = try #require(gpio.log().last { $0.line == .recordLED && $0.on }?.at)
        let stateAt = try #require(effects.lock.withLock { effects.started.last })
        #expect(ledAt >= pressedAt && stateAt >= pressedAt)
        // How soon is `make bench`'s figure (record_button_to_led_us), not a test's.
    }

    @Test("a bouncing record contact starts one recording; a refused stop press vibrates; PWR_HOLD stays up")
    func bounceAndRefusals() throws {
        let (gpio, controls, engine, effects, indicators) = try rig()
        defer { controls.stop(); indicators.close() }
        #expect(gpio.output(.powerHold))
        let t = Clock.monotonicNanoseconds()
        var last = 0
        for (index, offset) in [0, 1, 2, 4, 5, 7].enumerated() {
            last = gpio.setLevel(.record, pressed: index % 2 == 0, at: t + Int64(offset) * 1_000_000)
        }
        // Taken: every bounce read, the debounce window over, the press acted on.
        #expect(gpio.waitUntilTaken(last))
        #expect(engine.state == .recording)
        #expect(effects.lock.withLock { effects.started.count } == 1, "one press, however the contact bounced")
        #expect(gpio.release(.record, waitUntilTaken: true))
        #expect(gpio.press(.record, waitUntilTaken: true))
        #expect(effects.lock.withLock { effects.journal.contains("stop_denied") })
        #expect(waitUntil { gpio.log().contains { $0.line == .haptic && $0.on } })
        #expect(gpio.release(.record, waitUntilTaken: true))
        #expect(gpio.press(.power, waitUntilTaken: true))
        #expect(effects.lock.withLock { effects.journal.contains("power_off_denied") })
        #expect(gpio.release(.power, waitUntilTaken: true))
        #expect(gpio.output(.powerHold) && engine.state == .recording)
    }

    @Test("off duty, a power press whose release edge is lost: the line's level ends the press, so no long press powers the camera off")
    func lostReleaseEdge() throws {
        let gpio = try SimulatedGPIO()
        let indicators = Indicators(backend: gpio)
        let effects = RecordingEffects()
        let engine = PolicyEngine(policy: RecordingPolicy(settings: PolicySettings(), onDuty: false), indicators: indicators, effects: effects)
        let controls = try ControlsThread(backend: gpio)
        let events = Locked<[PolicyEvent]>([])
        controls.start(onEvent: { event in
            events.withLock { $0.append(event) }
            engine.handle(event)
        }, onError: { Issue.record("controls: \($0)") })
        defer { controls.stop(); indicators.close() }
        let ms: Int64 = 1_000_000, t = Clock.monotonicNanoseconds()
        gpio.setLevel(.power, pressed: true, at: t)
        gpio.setLevel(.power, pressed: false, at: t + 35 * ms)
        // Released at once after the last press, and that release's edge lost.
        let last = gpio.setLevel(.power, pressed: true, at: t + 40 * ms, levelAfter: false)
        // Taken once the thread has debounced every edge and no window is open: by then the
        // level has been read and the release taken (without it, a long press at 3 s).
        #expect(gpio.waitUntilTaken(last))
        let seen = events.current
        #expect(seen.contains { if case .button(.power, .release, _) = $0 { true } else { false } }, "\(seen)")
        #expect(!seen.contains { if case .button(_, .longPress, _) = $0 { true } else { false } })
        #expect(effects.lock.withLock { !effects.poweredOff && !effects.journal.contains("power_off") })
        #expect(gpio.output(.powerHold))
    }

    @Test("a mark press is marked and journaled with the kernel timestamp")
    func markPress() throws {
        let (gpio, controls, _, effects, indicators) = try rig()
        defer { controls.stop(); indicators.close() }
        let pressedAt = Clock.monotonicNanoseconds()
        #expect(gpio.waitUntilTaken(gpio.setLevel(.mark, pressed: true, at: pressedAt)))
        #expect(effects.lock.withLock { effects.journal.contains("mark") })
        #expect(effects.lock.withLock { effects.marks.first?.2 } == pressedAt)
    }

    @Test("timed patterns: the alarm flash repeats, a sound ends with the buzzer off, a steady level ends the flashing")
    func patterns() throws {
        let gpio = try SimulatedGPIO()
        let indicators = Indicators(backend: gpio)
        defer { indicators.close() }
        indicators.show(.status, .alarm)   // 150 ms on, 150 ms off
        indicators.play(.stop)             // 120 on, 80 off, 250 on
        #expect(waitUntil(5) { gpio.log().filter { $0.line == .statusLED }.count >= 4 }, "the alarm flashes on and off, twice")
        #expect(waitUntil(5) { gpio.log().filter { $0.line == .buzzer }.count >= 4 })
        #expect(gpio.log().filter { $0.line == .buzzer }.map(\.on) == [true, false, true, false])
        #expect(!indicators.isPlayingPattern(.buzzer), "a sound plays once")
        indicators.show(.status, .off)
        #expect(!gpio.output(.statusLED))
        #expect(!indicators.isPlayingPattern(.statusLED), "a steady level ends the flashing")
    }
}

@Suite("libgpiod backend on failure paths")
struct LibgpiodFailureTests {
    @Test("lines that are not there: a GPIOError naming the line or chip, and nothing held (many times over)")
    func missingLines() throws {
        let before = openDescriptorCount()
        for _ in 0..<100 {
            #expect(throws: GPIOError.self) {
                _ = try LibgpiodBackend(inputs: [.record: LineSpec(name: "BODYCAM_TEST_NO_SUCH_LINE")], outputs: [:])
            }
            #expect {
                _ = try LibgpiodBackend(inputs: [:], outputs: [.recordLED: LineSpec(name: "REC_LED", chip: "gpiochip-bodycam-test-none", offset: 3)])
            } throws: { error in
                "\(error)".contains("gpiochip-bodycam-test-none not found")
            }
        }
        #expect(openDescriptorCount() - before < 25)
    }
}
