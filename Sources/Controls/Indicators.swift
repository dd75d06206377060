import Glibc
import Synchronization
import Policy
import Platform
import Wire

/// Plays light, sound and vibration patterns on the output lines. A steady level is set at once
/// on the caller's thread (the red LED must follow the record press within milliseconds);
/// timed patterns run on an "indicators" thread that sleeps until the next step or until a new
/// pattern arrives (a condition variable, no polling). Every level is written under the one
/// lock, so a step a pattern computed can never land after a steady level set since (a GPIO
/// write is one ioctl).
public final class Indicators: Sendable {
    /// One step of a pattern: a level held for a time.
    struct Step { var on: Bool; var nanoseconds: Int64 }
    struct Program {
        var steps: [Step]
        var repeats: Bool
        var index = 0
        var stepEndsAt: Int64
    }

    /// What the callers and the indicators thread share.
    // `programs` and `stopped` are read and written, and the backend written to, only under
    // `lock`; `onError` is set once, before any pattern plays (Daemon.init).
    private final class Core: @unchecked Sendable {
        let backend: GPIOBackend
        let lock = ConditionLock()
        var programs: [OutputLine: Program] = [:]
        var stopped = false
        var onError: @Sendable (Error) -> Void = { _ in }

        init(backend: GPIOBackend) { self.backend = backend }

        /// Only under `lock`.
        func write(_ line: OutputLine, _ on: Bool) {
            do { try backend.set(line, on) } catch { onError(error) }
        }

        /// The indicators thread: plays every due step, then sleeps until the next one.
        func run() {
            lock.withLock {
                while !stopped {
                    let now = Clock.monotonicNanoseconds()
                    for (line, var program) in programs where now >= program.stepEndsAt {
                        program.index += 1
                        if program.index == program.steps.count {
                            if !program.repeats {
                                programs[line] = nil
                                write(line, false)
                                continue
                            }
                            program.index = 0
                        }
                        let step = program.steps[program.index]
                        program.stepEndsAt += step.nanoseconds
                        if program.stepEndsAt < now { program.stepEndsAt = now + step.nanoseconds }
                        programs[line] = program
                        write(line, step.on)
                    }
                    if let next = programs.values.map(\.stepEndsAt).min() {
                        _ = lock.wait(untilMonotonic: next)
                    } else {
                        lock.wait()
                    }
                }
            }
        }
    }

    private let core: Core
    private let thread: Mutex<WorkerThread?>

    /// Output failures, reported to the caller's log (an indicator must never stop recording).
    /// Set before any pattern plays; called on the thread that wrote the level.
    public var onError: @Sendable (Error) -> Void {
        get { core.lock.withLock { core.onError } }
        set { core.lock.withLock { core.onError = newValue } }
    }

    public init(backend: GPIOBackend) {
        let core = Core(backend: backend)
        self.core = core
        thread = Mutex(WorkerThread(name: "indicators") { core.run() })
    }

    /// Ends the patterns and joins the indicators thread (the levels stay as they are).
    public func close() {
        core.lock.withLock {
            core.stopped = true
            core.lock.broadcast()
        }
        let worker = thread.withLock { thread -> WorkerThread? in
            defer { thread = nil }
            return thread
        }
        worker?.join()
    }

    /// Dropped without `close()` (a start-up that failed later): the thread is still ended.
    deinit { close() }

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
            core.lock.withLock {
                core.programs[line] = nil
                core.write(line, pattern == .on)
            }
        }
    }

    public func play(_ sound: Sound) { start(.buzzer, Indicators.steps(sound), repeats: false) }
    public func vibrate(_ vibration: Vibration) { start(.haptic, Indicators.steps(vibration), repeats: false) }
    public func holdPower(_ hold: Bool) { core.lock.withLock { core.write(.powerHold, hold) } }

    /// Whether a timed pattern is playing on `line` (tests: a steady level ends one).
    package func isPlayingPattern(_ line: OutputLine) -> Bool { core.lock.withLock { core.programs[line] != nil } }

    private func start(_ line: OutputLine, _ steps: [Step], repeats: Bool) {
        guard let first = steps.first else { return }
        core.lock.withLock {
            core.write(line, first.on)
            core.programs[line] = Program(steps: steps, repeats: repeats, stepEndsAt: Clock.monotonicNanoseconds() + first.nanoseconds)
            core.lock.broadcast()
        }
    }
}
