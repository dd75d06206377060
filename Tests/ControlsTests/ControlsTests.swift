import Platform
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
        usleep(1_000)
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

    @Test("from the button's kernel timestamp to the red LED and to the recording state: at most 20 ms")
    func recordLatency() throws {
        var worst: Int64 = 0
        for _ in 0..<5 {
            let (gpio, controls, engine, effects, indicators) = try rig()
            let pressedAt = Clock.monotonicNanoseconds()
            gpio.setLevel(.record, pressed: true, at: pressedAt)
            #expect(waitUntil { gpio.output(.recordLED) && engine.state == .recording })
            let ledAt = gpio.log().last { $0.line == .recordLED && $0.on }?.at ?? .max
            let stateAt = effects.lock.withLock { effects.started.last ?? .max }
            worst = max(worst, ledAt - pressedAt, stateAt - pressedAt)
            controls.stop()
            indicators.close()
        }
        #expect(worst <= 20_000_000, "worst latency \(worst / 1000) µs")
        print("LATENCY record_button_to_led_worst_us \(worst / 1000)")
    }

    @Test("a bouncing record contact starts one recording; a refused stop press vibrates; PWR_HOLD stays up")
    func bounceAndRefusals() throws {
        let (gpio, controls, engine, effects, indicators) = try rig()
        defer { controls.stop(); indicators.close() }
        #expect(gpio.output(.powerHold))
        let t = Clock.monotonicNanoseconds()
        for (index, offset) in [0, 1, 2, 4, 5, 7].enumerated() {
            gpio.setLevel(.record, pressed: index % 2 == 0, at: t + Int64(offset) * 1_000_000)
        }
        #expect(waitUntil { engine.state == .recording })
        usleep(100_000)
        #expect(effects.lock.withLock { effects.started.count } == 1, "one press, however the contact bounced")
        gpio.setLevel(.record, pressed: false)
        usleep(60_000)
        gpio.press(.record)
        #expect(waitUntil { effects.lock.withLock { effects.journal.contains("stop_denied") } })
        #expect(waitUntil { gpio.log().contains { $0.line == .haptic && $0.on } })
        gpio.release(.record)
        usleep(60_000)
        gpio.press(.power)
        #expect(waitUntil { effects.lock.withLock { effects.journal.contains("power_off_denied") } })
        gpio.release(.power)
        #expect(gpio.output(.powerHold) && engine.state == .recording)
    }

    @Test("a mark press is marked and journaled within 50 ms, with the kernel timestamp")
    func markLatency() throws {
        let (gpio, controls, _, effects, indicators) = try rig()
        defer { controls.stop(); indicators.close() }
        let pressedAt = Clock.monotonicNanoseconds()
        gpio.setLevel(.mark, pressed: true, at: pressedAt)
        #expect(waitUntil(0.05) { effects.lock.withLock { effects.journal.contains("mark") } })
        #expect(effects.lock.withLock { effects.marks.first?.2 } == pressedAt)
    }

    @Test("timed patterns: the standby flash repeats, a sound ends with the buzzer off")
    func patterns() throws {
        let gpio = try SimulatedGPIO()
        let indicators = Indicators(backend: gpio)
        defer { indicators.close() }
        indicators.show(.status, .alarm)   // 150 ms on, 150 ms off
        indicators.play(.stop)             // 120 on, 80 off, 250 on
        usleep(700_000)
        let status = gpio.log().filter { $0.line == .statusLED }
        #expect(status.count >= 4, "\(status.map(\.on))")
        let buzzer = gpio.log().filter { $0.line == .buzzer }.map(\.on)
        #expect(buzzer == [true, false, true, false])
        indicators.show(.status, .off)
        usleep(400_000)
        #expect(!gpio.output(.statusLED))
        let count = gpio.log().filter { $0.line == .statusLED }.count
        usleep(400_000)
        #expect(gpio.log().filter { $0.line == .statusLED }.count == count, "a steady level stops the blinking")
    }
}
