import Policy
import Platform
import Wire

/// Software debounce. A press is taken on its leading edge (no added latency), then the contact
/// is left alone for `window`; when the window ends, a level that differs from the one taken is
/// taken too (a release that bounced). A release is taken only once the contact has stayed open
/// for `window`: an edge that reads as a release inside a burst of bounces (the v1 GPIO uAPI
/// reports the line's level when its interrupt thread runs, not the edge's own direction) must
/// not end the press and start another.
public struct Debouncer: Sendable {
    public let window: Int64
    private var accepted: [Button: (pressed: Bool, at: Int64)] = [:]
    private var quietUntil: [Button: Int64] = [:]
    /// A release waiting for the contact to stay open: when it began.
    private var releasingSince: [Button: Int64] = [:]

    public init(window: Int64 = 30_000_000) { self.window = window }

    /// A raw edge in; the clean edges it yields (none while bouncing).
    public mutating func feed(_ edge: ButtonEdge) -> [ButtonEdge] {
        let button = edge.button
        if releasingSince[button] != nil {
            if edge.pressed {
                // Closed again before it settled open: still the same press, and its level is
                // read again when this window ends (the last edge of a burst can be lost).
                releasingSince[button] = nil
                quietUntil[button] = edge.timestamp + window
            } else {
                quietUntil[button] = edge.timestamp + window
            }
            return []
        }
        let last = accepted[button]?.pressed ?? false
        if let until = quietUntil[button], edge.timestamp < until { return [] }
        guard edge.pressed != last else { return [] }
        quietUntil[button] = edge.timestamp + window
        if !edge.pressed {
            releasingSince[button] = edge.timestamp
            return []
        }
        accepted[button] = (true, edge.timestamp)
        return [edge]
    }

    /// Takes the lines' real levels where they differ from what was taken: for every button
    /// with no window open (a burst is over), and for those in `held` whatever their windows
    /// (a long press is about to be declared, and it needs the line really held). The v1 GPIO
    /// uAPI can lose or mistype the last edge of a burst, so edges alone can leave a press that
    /// ended long ago. `level` nil: the line could not be read, and nothing is changed for it.
    public mutating func reconcile(now: Int64, held: Set<Button> = [], level: (Button) -> Bool?) -> [ButtonEdge] {
        var edges: [ButtonEdge] = []
        for button in Set(accepted.keys).union(held) {
            let open = quietUntil[button] != nil || releasingSince[button] != nil
            guard !open || held.contains(button), let current = level(button) else { continue }
            let taken = accepted[button]?.pressed ?? false
            guard current != taken else { continue }
            let since = releasingSince.removeValue(forKey: button)
            if current {
                accepted[button] = (true, now)
                quietUntil[button] = now + window
                edges.append(ButtonEdge(button: button, pressed: true, timestamp: now))
            } else {
                // A window as for any edge taken: a bounce of the opening contact is not a press.
                quietUntil[button] = now + window
                accepted[button] = (false, since ?? now)
                edges.append(ButtonEdge(button: button, pressed: false, timestamp: since ?? now))
            }
        }
        return edges
    }

    /// The earliest end of a quiet window (for the controls thread's timeout).
    public var nextDeadline: Int64? { quietUntil.values.min() }

    /// Ends quiet windows that are over, comparing the settled level with what was taken.
    public mutating func settle(now: Int64, level: (Button) -> Bool) -> [ButtonEdge] {
        var edges: [ButtonEdge] = []
        for (button, until) in quietUntil where now >= until {
            quietUntil[button] = nil
            let current = level(button)
            let taken = accepted[button]?.pressed ?? false
            if let since = releasingSince.removeValue(forKey: button) {
                if !current && taken {
                    accepted[button] = (false, since)
                    edges.append(ButtonEdge(button: button, pressed: false, timestamp: since))
                }
                continue
            }
            guard current != taken else { continue }
            if current {
                accepted[button] = (true, until)
                quietUntil[button] = now + window
                edges.append(ButtonEdge(button: button, pressed: true, timestamp: until))
            } else {
                // Opened during the press's window: a release once it stays open.
                releasingSince[button] = until
                quietUntil[button] = now + window
            }
        }
        return edges
    }
}

/// Turns clean edges into gestures: press (at once), release, long press (held `longPress`),
/// double press (two presses within `doubleWindow`), chord (a second button pressed within
/// `chordWindow` of the first, both held). Times are CLOCK_MONOTONIC, so a wall-clock step
/// changes nothing.
public struct GestureRecognizer: Sendable {
    public var longPress: Int64 = 3_000_000_000
    public var doubleWindow: Int64 = 400_000_000
    public var chordWindow: Int64 = 200_000_000
    private var downAt: [Button: Int64] = [:]
    private var longFired: Set<Button> = []
    private var lastPress: [Button: Int64] = [:]

    public init() {}

    public mutating func feed(_ edge: ButtonEdge) -> [PolicyEvent] {
        let button = edge.button
        guard edge.pressed else {
            downAt[button] = nil
            longFired.remove(button)
            return [.button(button, .release, at: edge.timestamp)]
        }
        var events: [PolicyEvent] = [.button(button, .press, at: edge.timestamp)]
        if let previous = lastPress[button], edge.timestamp - previous <= doubleWindow {
            events.append(.button(button, .doublePress, at: edge.timestamp))
            lastPress[button] = nil
        } else {
            lastPress[button] = edge.timestamp
        }
        for (other, at) in downAt where other != button && edge.timestamp - at <= chordWindow {
            events.append(.chord(other, button, at: edge.timestamp))
        }
        downAt[button] = edge.timestamp
        return events
    }

    public var nextDeadline: Int64? {
        downAt.filter { !longFired.contains($0.key) }.map { $0.value + longPress }.min()
    }

    /// Buttons whose long press is due at `now` (the controls thread checks their lines first).
    public func longPressesDue(now: Int64) -> Set<Button> {
        Set(downAt.filter { !longFired.contains($0.key) && now - $0.value >= longPress }.keys)
    }

    /// Long presses whose time has come.
    public mutating func tick(now: Int64) -> [PolicyEvent] {
        var events: [PolicyEvent] = []
        for (button, at) in downAt where !longFired.contains(button) && now - at >= longPress {
            longFired.insert(button)
            events.append(.button(button, .longPress, at: at + longPress))
        }
        return events
    }
}
