import Glibc
import Synchronization
import Policy
import Platform
import Wire

/// What the policy's decisions act on: the pipeline, the vault, the power supply.
public protocol PolicyEffects: AnyObject, Sendable {
    func startRecording()
    func stopRecording()
    func setDuty(officerID: String, dutyID: String)
    func clearDuty()
    func preEventBuffering(_ enabled: Bool)
    func mark(label: String, source: String, at: Int64)
    func journal(_ kind: String, _ fields: [String: JSONValue])
    func powerOff()
}

/// Runs the `RecordingPolicy`: one event at a time (a mutex, since events come from the controls
/// thread, the control socket and the daemon's timers), each decision's actions done in order —
/// pipeline and indicators first, the journal record last (it waits for fdatasync).
public final class PolicyEngine: Sendable {
    private let policy: Mutex<RecordingPolicy>
    private let indicators: Indicators
    private unowned let effects: PolicyEffects

    public init(policy: RecordingPolicy, indicators: Indicators, effects: PolicyEffects) {
        self.indicators = indicators
        self.effects = effects
        let start = policy.startActions()
        self.policy = Mutex(policy)
        self.policy.withLock { _ in perform(start) }
    }

    public var state: PolicyState { policy.withLock { $0.state } }
    public var officerID: String { policy.withLock { $0.officerID } }
    public var dutyID: String { policy.withLock { $0.dutyID } }
    public var nextDeadline: Int64? { policy.withLock { $0.nextDeadline } }

    /// Decides on `event` and performs the actions, under the lock: events from the controls
    /// thread, the control socket and housekeeping are taken one at a time, in order.
    @discardableResult
    public func handle(_ event: PolicyEvent) -> [PolicyAction] {
        policy.withLock { policy in
            let actions = policy.handle(event, now: Clock.monotonicNanoseconds())
            perform(actions)
            return actions
        }
    }

    private func perform(_ actions: [PolicyAction]) {
        for action in actions {
            switch action {
            case .startRecording: effects.startRecording()
            case .stopRecording: effects.stopRecording()
            case .setDuty(let officer, let duty): effects.setDuty(officerID: officer, dutyID: duty)
            case .clearDuty: effects.clearDuty()
            case .preEventBuffering(let enabled): effects.preEventBuffering(enabled)
            case .light(let light, let pattern): indicators.show(light, pattern)
            case .sound(let sound): indicators.play(sound)
            case .vibrate(let vibration): indicators.vibrate(vibration)
            case .holdPower(let hold): indicators.holdPower(hold)
            case .powerOff: effects.powerOff()
            case .mark(let label, let source, let at): effects.mark(label: label, source: source, at: at)
            case .journal(let kind, let fields): effects.journal(kind, fields)
            }
        }
    }
}
