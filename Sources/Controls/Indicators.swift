import Glibc
import Policy
import Platform
import Wire

/// Plays light, sound and vibration patterns on the output lines. A steady level is set at once
/// on the caller's thread (the red LED must follow the record press within milliseconds);
/// timed patterns run on an "indicators" thread that sleeps until the next step or until a new
/// pattern arrives (a condition variable, no polling).
// `programs` and `stopped` are read and written under `lock`; `onError` is set once, before
// any pattern plays; `thread` is written by init and by `close()`.
public final class Indicators: @unchecked Sendable {
    /// One step of a pattern: a level held for a time.
    struct Step { var on: Bool; var nanoseconds: Int64 }
    struct Program {
        var steps: [Step]
        var repeats: Bool
        var index = 0
        var stepEndsAt: Int64
    }

    private let backend: GPIOBackend
    private let lock = ConditionLock()
    private var programs: [OutputLine: Program] = [:]
    private var stopped = false
    private var thread: WorkerThread?
    /// Output failures, reported to the caller's log (an indicator must never stop recording).
    public var onError: @Sendable (Error) -> Void = { _ in }

    public init(backend: GPIOBackend) {
        self.backend = backend
        thread = WorkerThread(name: "indicators") { [unowned self] in self.run() }
    }

    public func close() {
        lock.withLock {
            stopped = true
            lock.broadcast()
        }
        thread?.join()
        thread = nil
    }

    static func milliseconds(_ pairs: [(Bool, Int64)]) -> [Step] { pairs.map { Step(on: $0.0, nanoseconds: $0.1 * 1_000_000) } }

    static func steps(_ pattern: LightPattern) -> (steps: [Step], repeats: Bool)? {
        switch pattern {
        case .off, .on: return nil
        case .standby: return (milliseconds([(true, 100), (false, 1900)]), true)
        case .alarm: return (milliseconds([(true, 150), (false, 150)]), true)
        }
    }

    static func steps(_ sound: Sound) -> [Step] {
        switch sound {
        case .start: return milliseconds([(true, 150)])
        case .stop: return milliseconds([(true, 120), (false, 80), (true, 250)])
        case .alarm: return milliseconds([(true, 80), (false, 80), (true, 80), (false, 80), (true, 80)])
        }
    }

    static func steps(_ vibration: Vibration) -> [Step] {
        switch vibration {
        case .start: return milliseconds([(true, 200)])
        case .denied: return milliseconds([(true, 400), (false, 200), (true, 400)])
        case .confirm: return milliseconds([(true, 100), (false, 100), (true, 100), (false, 100), (true, 100)])
        case .stop: return milliseconds([(true, 300)])
        }
    }

    public static func line(_ light: Light) -> OutputLine { light == .record ? .recordLED : .statusLED }

    public func show(_ light: Light, _ pattern: LightPattern) {
        let line = Indicators.line(light)
        if let program = Indicators.steps(pattern) {
            start(line, program.steps, repeats: program.repeats)
        } else {
            cancel(line)
            write(line, pattern == .on)
        }
    }

    public func play(_ sound: Sound) { start(.buzzer, Indicators.steps(sound), repeats: false) }
    public func vibrate(_ vibration: Vibration) { start(.haptic, Indicators.steps(vibration), repeats: false) }
    public func holdPower(_ hold: Bool) { write(.powerHold, hold) }

    private func write(_ line: OutputLine, _ on: Bool) {
        do { try backend.set(line, on) } catch { onError(error) }
    }

    /// Whether a timed pattern is playing on `line` (tests: a steady level ends one).
    package func isPlayingPattern(_ line: OutputLine) -> Bool { lock.withLock { programs[line] != nil } }

    private func cancel(_ line: OutputLine) {
        lock.withLock { programs[line] = nil }
    }

    private func start(_ line: OutputLine, _ steps: [Step], repeats: Bool) {
        guard let first = steps.first else { return }
        write(line, first.on)
        lock.withLock {
            programs[line] = Program(steps: steps, repeats: repeats, stepEndsAt: Clock.monotonicNanoseconds() + first.nanoseconds)
            lock.broadcast()
        }
    }

    private func run() {
        // The levels are written outside the lock, so a slow GPIO write never holds up a caller.
        while let writes = nextWrites() {
            for (line, on) in writes { write(line, on) }
        }
    }

    /// Waits (under the lock) until some pattern has a step due; its writes, or nil once closed.
    private func nextWrites() -> [(OutputLine, Bool)]? {
        lock.withLock {
            while !stopped {
                let now = Clock.monotonicNanoseconds()
                var writes: [(OutputLine, Bool)] = []
                for (line, var program) in programs where now >= program.stepEndsAt {
                    program.index += 1
                    if program.index == program.steps.count {
                        if !program.repeats {
                            programs[line] = nil
                            writes.append((line, false))
                            continue
                        }
                        program.index = 0
                    }
                    let step = program.steps[program.index]
                    program.stepEndsAt += step.nanoseconds
                    if program.stepEndsAt < now { program.stepEndsAt = now + step.nanoseconds }
                    programs[line] = program
                    writes.append((line, step.on))
                }
                if !writes.isEmpty { return writes }
                if let next = programs.values.map(\.stepEndsAt).min() {
                    _ = lock.wait(untilMonotonic: next)
                } else {
                    lock.wait()
                }
            }
            return nil
        }
    }
}
