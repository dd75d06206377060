import CGPIOD
import Glibc
import Policy
import Platform
import Wire

/// Where a function's line is: by its name (gpio-line-names in the device tree, found on any
/// chip) or by chip and offset from the board profile.
public struct LineSpec: Equatable, Sendable {
    public enum Bias: String, CaseIterable, Sendable { case asIs = "as-is", disabled, pullUp = "pull-up", pullDown = "pull-down" }
    public var name: String
    public var chip: String?
    public var offset: Int?
    public var activeLow: Bool
    public var bias: Bias

    public init(name: String, chip: String? = nil, offset: Int? = nil, activeLow: Bool = false, bias: Bias = .asIs) {
        self.name = name
        self.chip = chip
        self.offset = offset
        self.activeLow = activeLow
        self.bias = bias
    }

    var flags: Int32 {
        var flags: Int32 = 0
        if activeLow { flags |= Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) }
        switch bias {
        case .asIs: break
        case .disabled: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
        case .pullUp: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
        case .pullDown: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
        }
        return flags
    }
}

/// libgpiod 1.6 (Debian 12). Each line is requested once at start and kept: inputs for both
/// edges (gpiod_line_request_both_edges_events_flags) with active-low and bias from the profile,
/// outputs (gpiod_line_request_output_flags). Edges are read with gpiod_line_event_read_multiple
/// into a reusable buffer; their timestamps are the kernel's (CLOCK_MONOTONIC for the v1 uAPI
/// since Linux 5.7). libgpiod 1.6 has no debounce setting, so debouncing is done in software
/// (`Debouncer`). Every handle is released in `close()`.
// libgpiod line handles are used by two threads, never the same line by both: the controls
// thread reads the input lines' events, the indicators set the output lines. The handles are
// made in init and released in close()/deinit by the owner once both threads are joined.
public final class LibgpiodBackend: GPIOBackend, @unchecked Sendable {
    private struct Requested {
        let line: OpaquePointer
        /// The chip we opened for a chip+offset line (lines found by name own theirs).
        let chip: OpaquePointer?
    }
    private var inputs: [Button: Requested] = [:]
    private var outputs: [OutputLine: Requested] = [:]
    private var buffer = [gpiod_line_event](repeating: gpiod_line_event(), count: 16)
    private var closed = false
    public static let consumer = "bodycamd"

    public init(inputs inputSpecs: [Button: LineSpec], outputs outputSpecs: [OutputLine: LineSpec]) throws {
        do {
            for (button, spec) in inputSpecs {
                let requested = try LibgpiodBackend.find(spec)
                inputs[button] = requested
                if gpiod_line_request_both_edges_events_flags(requested.line, LibgpiodBackend.consumer, spec.flags) < 0 {
                    throw GPIOError("\(spec.name): requesting edge events failed: \(String(cString: strerror(errno))) (is the line in use?)")
                }
            }
            for (line, spec) in outputSpecs {
                let requested = try LibgpiodBackend.find(spec)
                outputs[line] = requested
                // The power-hold line starts asserted: releasing it would cut the board's power.
                let initial: Int32 = line == .powerHold ? 1 : 0
                if gpiod_line_request_output_flags(requested.line, LibgpiodBackend.consumer, spec.flags, initial) < 0 {
                    throw GPIOError("\(spec.name): requesting the output failed: \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            try? close()
            throw error
        }
    }

    /// A backend dropped without `close()` still releases its lines and chips (in `close()`'s
    /// order: PWR_HOLD last).
    deinit { try? close() }

    private static func find(_ spec: LineSpec) throws -> Requested {
        if let chipName = spec.chip, let offset = spec.offset {
            guard let chip = gpiod_chip_open_lookup(chipName) else {
                throw GPIOError("\(spec.name): GPIO chip \(chipName) not found: \(String(cString: strerror(errno)))")
            }
            guard let line = gpiod_chip_get_line(chip, UInt32(offset)) else {
                gpiod_chip_close(chip)
                throw GPIOError("\(spec.name): \(chipName) has no line \(offset)")
            }
            return Requested(line: line, chip: chip)
        }
        guard let line = gpiod_line_find(spec.name) else {
            throw GPIOError("GPIO line \(spec.name) not found on any chip (check gpio-line-names in the device tree, or give chip and offset)")
        }
        return Requested(line: line, chip: nil)
    }

    public var eventDescriptors: [Int32] { inputs.values.map { gpiod_line_event_get_fd($0.line) } }

    public func readEdges() throws -> [ButtonEdge] {
        var edges: [ButtonEdge] = []
        for (button, requested) in inputs {
            var ready = [pollfd(fd: gpiod_line_event_get_fd(requested.line), events: Int16(POLLIN), revents: 0)]
            guard poll(&ready, 1, 0) > 0 else { continue }
            let count = gpiod_line_event_read_multiple(requested.line, &buffer, UInt32(buffer.count))
            if count < 0 { throw GPIOError("\(button.rawValue): reading edge events failed: \(String(cString: strerror(errno)))") }
            for event in buffer.prefix(Int(count)) {
                edges.append(ButtonEdge(button: button, pressed: event.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE),
                                        timestamp: Int64(event.ts.tv_sec) * 1_000_000_000 + Int64(event.ts.tv_nsec)))
            }
        }
        return edges.sorted { $0.timestamp < $1.timestamp }
    }

    public func isPressed(_ button: Button) throws -> Bool {
        guard let requested = inputs[button] else { return false }
        let value = gpiod_line_get_value(requested.line)
        if value < 0 { throw GPIOError("\(button.rawValue): reading the level failed: \(String(cString: strerror(errno)))") }
        return value == 1
    }

    public func set(_ line: OutputLine, _ on: Bool) throws {
        guard let requested = outputs[line] else { return }  // a board without that output
        if gpiod_line_set_value(requested.line, on ? 1 : 0) < 0 {
            throw GPIOError("\(line.rawValue): setting the output failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Releases every line and closes the chips. PWR_HOLD is released last, and only here.
    public func close() throws {
        guard !closed else { return }
        closed = true
        let all = Array(inputs.values) + outputs.filter { $0.key != .powerHold }.map(\.value) + (outputs[.powerHold].map { [$0] } ?? [])
        for requested in all {
            gpiod_line_release(requested.line)
            if let chip = requested.chip { gpiod_chip_close(chip) } else { gpiod_line_close_chip(requested.line) }
        }
        inputs.removeAll()
        outputs.removeAll()
    }
}
