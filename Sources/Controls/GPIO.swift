import Glibc
import Pipeline
import Policy

/// The output lines, by their names in the device tree (gpio-line-names).
public enum OutputLine: String, CaseIterable, Sendable {
    case recordLED = "REC_LED", statusLED = "STATUS_LED", buzzer = "BUZZER", haptic = "HAPTIC", powerHold = "PWR_HOLD"
}

/// One change of a button's logical level (pressed = true, active-low already applied), with the
/// kernel's timestamp (CLOCK_MONOTONIC ns).
public struct ButtonEdge: Equatable, Sendable {
    public var button: Button
    public var pressed: Bool
    public var timestamp: Int64
    public init(button: Button, pressed: Bool, timestamp: Int64) {
        self.button = button
        self.pressed = pressed
        self.timestamp = timestamp
    }
}

public struct GPIOError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A GPIO implementation behind which the controls stay the same: libgpiod 1.6 today
/// (`LibgpiodBackend`), libgpiod 2 later, and `SimulatedGPIO` for development and tests.
public protocol GPIOBackend: AnyObject {
    /// Descriptors that become readable when edges are pending (the controls thread polls them).
    var eventDescriptors: [Int32] { get }
    /// Reads every pending edge without blocking.
    func readEdges() throws -> [ButtonEdge]
    /// Current logical level of a button (for the debouncer's settle check).
    func isPressed(_ button: Button) throws -> Bool
    func set(_ line: OutputLine, _ on: Bool) throws
    func close() throws
}

/// A GPIO chip in memory: tests and `make demo` press and release buttons (from any thread) and
/// read back what the outputs did, with timestamps.
public final class SimulatedGPIO: GPIOBackend {
    private let lock = ConditionLockPublic()
    private var pending: [ButtonEdge] = []
    private var levels: [Button: Bool] = [:]
    private var outputs: [OutputLine: Bool] = [:]
    /// Every output change: line, level, CLOCK_MONOTONIC ns.
    public private(set) var outputLog: [(line: OutputLine, on: Bool, at: Int64)] = []
    private let wake: WakeEvent

    public init() throws { wake = try WakeEvent() }

    public var eventDescriptors: [Int32] { [wake.fd] }

    /// A raw level change, as a contact makes it (bounces included), stamped now or at `at`.
    public func setLevel(_ button: Button, pressed: Bool, at: Int64? = nil) {
        lock.withLock {
            levels[button] = pressed
            pending.append(ButtonEdge(button: button, pressed: pressed, timestamp: at ?? Clock.monotonicNanoseconds()))
        }
        wake.signal()
    }

    public func press(_ button: Button) { setLevel(button, pressed: true) }
    public func release(_ button: Button) { setLevel(button, pressed: false) }

    public func readEdges() throws -> [ButtonEdge] {
        wake.reset()
        return lock.withLock {
            defer { pending.removeAll() }
            return pending
        }
    }

    public func isPressed(_ button: Button) throws -> Bool { lock.withLock { levels[button] ?? false } }

    public func set(_ line: OutputLine, _ on: Bool) throws {
        lock.withLock {
            if outputs[line] != on { outputLog.append((line, on, Clock.monotonicNanoseconds())) }
            outputs[line] = on
        }
    }

    public func output(_ line: OutputLine) -> Bool { lock.withLock { outputs[line] ?? false } }
    public func log() -> [(line: OutputLine, on: Bool, at: Int64)] { lock.withLock { outputLog } }

    public func close() throws {}
}

/// A mutex for classes outside the Pipeline module (its ConditionLock is internal).
public final class ConditionLockPublic {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    public init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
