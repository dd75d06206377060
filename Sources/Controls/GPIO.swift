import Glibc
import Policy
import Platform
import Wire

/// The output lines, by their names in the device tree (gpio-line-names).
public enum OutputLine: String, CaseIterable, Sendable {
    case recordLED = "REC_LED", statusLED = "STATUS_LED", buzzer = "BUZZER", haptic = "HAPTIC", powerHold = "PWR_HOLD"
}

/// Which GPIO implementation drives the controls (`controls.backend`).
public enum GPIOBackendKind: String, CaseIterable, Sendable {
    /// libgpiod: the device.
    case gpiod
    /// In memory: development, tests, the demo (driven through the control socket).
    case simulated
}

/// One of the eight control lines: a button or an output, by its device-tree name.
public enum ControlLine: Hashable, Sendable, CaseIterable {
    case button(Button)
    case output(OutputLine)

    public static var allCases: [ControlLine] { Button.allCases.map(ControlLine.button) + OutputLine.allCases.map(ControlLine.output) }

    /// REC_BTN, MARK_BTN, PWR_BTN, REC_LED, STATUS_LED, BUZZER, HAPTIC, PWR_HOLD.
    public var name: String {
        switch self {
        case .button(let button): return button.rawValue
        case .output(let output): return output.rawValue
        }
    }

    public init?(name: String) {
        guard let line = ControlLine.allCases.first(where: { $0.name == name }) else { return nil }
        self = line
    }
}

/// Where a board puts one of the control lines when its device tree does not name them
/// (`controls.lines`: "FUNCTION=CHIP:OFFSET", e.g. "REC_BTN=gpiochip0:17").
public struct LinePlacement: Equatable, Sendable {
    public var line: ControlLine
    public var chip: String
    public var offset: Int

    public init(line: ControlLine, chip: String, offset: Int) {
        self.line = line
        self.chip = chip
        self.offset = offset
    }

    /// Parses "FUNCTION=CHIP:OFFSET"; nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, let line = ControlLine(name: String(parts[0])) else { return nil }
        let place = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard place.count == 2, !place[0].isEmpty, let offset = Int(place[1]), offset >= 0 else { return nil }
        self.init(line: line, chip: String(place[0]), offset: offset)
    }
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

public struct GPIOError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A GPIO implementation behind which the controls stay the same: libgpiod 1.6 today
/// (`LibgpiodBackend`), libgpiod 2 later, and `SimulatedGPIO` for development and tests.
public protocol GPIOBackend: AnyObject, Sendable {
    /// Descriptors that become readable when edges are pending (the controls thread polls them).
    var eventDescriptors: [Int32] { get }
    /// Reads every pending edge without blocking.
    func readEdges() throws -> [ButtonEdge]
    /// Current logical level of a button (for the debouncer's settle check).
    func isPressed(_ button: Button) throws -> Bool
    func set(_ line: OutputLine, _ on: Bool) throws
    func close() throws
    /// Called on the controls thread whenever every edge read so far has been debounced and
    /// acted on and no debounce window is open. The simulator answers waiting presses with it.
    func edgesTaken()
}

extension GPIOBackend {
    public func edgesTaken() {}
}

/// A GPIO chip in memory: tests and `make demo` press and release buttons (from any thread) and
/// read back what the outputs did, with timestamps.
// Every member is read and written under `lock`.
public final class SimulatedGPIO: GPIOBackend, @unchecked Sendable {
    private let lock = ConditionLock()
    private var pending: [ButtonEdge] = []
    /// Edges made, edges the controls thread has read, edges it has taken (counts).
    private var queued = 0, read = 0, taken = 0
    private var levels: [Button: Bool] = [:]
    private var outputs: [OutputLine: Bool] = [:]
    /// Every output change: line, level, CLOCK_MONOTONIC ns.
    private var outputLog: [(line: OutputLine, on: Bool, at: Int64)] = []
    private let wake: WakeEvent

    public init() throws { wake = try WakeEvent() }

    public var eventDescriptors: [Int32] { [wake.fd] }

    /// A raw level change, as a contact makes it (bounces included), stamped now or at `at`.
    /// Returns the edge's number (1, 2, …), for `waitUntilTaken`.
    /// `levelAfter`: the line's level right after this edge, when a later edge is lost (the v1
    /// GPIO uAPI can lose the last edge of a burst), set in the same step.
    @discardableResult
    public func setLevel(_ button: Button, pressed: Bool, at: Int64? = nil, levelAfter: Bool? = nil) -> Int {
        let number = lock.withLock {
            levels[button] = levelAfter ?? pressed
            pending.append(ButtonEdge(button: button, pressed: pressed, timestamp: at ?? Clock.monotonicNanoseconds()))
            queued += 1
            return queued
        }
        wake.signal()
        return number
    }


    /// Closes the contact; with `waitUntilTaken`, returns once the controls thread has taken
    /// the edge (debounced it and acted on it), or after `timeout` ns. Returns whether it was taken.
    @discardableResult
    public func press(_ button: Button, waitUntilTaken: Bool = false, timeout: Int64 = 5_000_000_000) -> Bool {
        let number = setLevel(button, pressed: true)
        return waitUntilTaken ? self.waitUntilTaken(number, timeout: timeout) : false
    }

    /// Opens the contact; `waitUntilTaken` as for `press` (a release is taken once it has
    /// stayed open for the debounce window).
    @discardableResult
    public func release(_ button: Button, waitUntilTaken: Bool = false, timeout: Int64 = 5_000_000_000) -> Bool {
        let number = setLevel(button, pressed: false)
        return waitUntilTaken ? self.waitUntilTaken(number, timeout: timeout) : false
    }

    /// Waits until edge `number` has been taken by the controls thread (true), or `timeout` ns.
    public func waitUntilTaken(_ number: Int, timeout: Int64 = 5_000_000_000) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + timeout
        return lock.withLock {
            while taken < number {
                if !lock.wait(untilMonotonic: deadline) { return taken >= number }
            }
            return true
        }
    }

    public func readEdges() throws -> [ButtonEdge] {
        wake.reset()
        return lock.withLock {
            defer { pending.removeAll() }
            read = queued
            return pending
        }
    }

    public func edgesTaken() {
        lock.withLock {
            taken = read
            lock.broadcast()
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
