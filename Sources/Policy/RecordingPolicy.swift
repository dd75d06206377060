import Wire

/// The officer's buttons.
public enum Button: String, CaseIterable, Sendable {
    case record = "REC_BTN", mark = "MARK_BTN", power = "PWR_BTN"
}

/// What a button did, as the gesture recogniser reports it.
public enum Gesture: String, Sendable {
    case press, longPress = "long-press", doublePress = "double-press", release
}

/// The lights, sounds and vibrations that tell the officer and the citizens what is happening.
public enum Light: String, Sendable { case record = "REC_LED", status = "STATUS_LED" }

public enum LightPattern: String, Equatable, Sendable {
    case off, on
    /// Standby on duty: a short flash every 2 s.
    case standby
    /// Low storage or low battery: fast blinking.
    case alarm
}

public enum Sound: String, Equatable, Sendable {
    /// Recording started (and the periodic reminder): one short tone.
    case start
    /// Recording stopped: two falling tones.
    case stop
    /// An alarm (storage, battery): three fast tones.
    case alarm
}

public enum Vibration: String, Equatable, Sendable {
    /// Recording started or reminded: one short pulse.
    case start
    /// A refusal (denied stop, denied power-off, refused record): two long pulses.
    case denied
    /// Long press seen, confirm with a second press: three short pulses.
    case confirm
    case stop
}

/// How a recording may be stopped by the wearer.
public enum StopPolicy: String, CaseIterable, Sendable {
    /// Only a supervisor's stop token or the end of duty stops a recording.
    case authorized
    /// Pilots: hold record 3 s, then press it again within 5 s; audited.
    case longPressConfirm = "long-press-confirm"
    /// Nothing but the end of duty (or a system stop) ends a recording.
    case never
}

public enum PolicyState: String, CaseIterable, Sendable {
    case offDuty = "off-duty", standby, recording, shuttingDown = "shutting-down"
}

/// A supervisor's token after its signature, device, validity and nonce were checked (the
/// `Tokens` module does that): what the policy needs of it.
public struct TokenGrant: Equatable, Sendable {
    /// "stop", or for duty tokens "start" or "end".
    public var action: String
    public var issuer: String
    public var nonce: String
    /// Duty tokens only; empty otherwise.
    public var officerID: String
    public var dutyID: String
    /// A duty token taken although the device's clock, which cannot be trusted, put it outside
    /// its validity (docs/POLICY.md, "An untrusted clock"): journaled as such.
    public var clockUnchecked: Bool

    public init(action: String, issuer: String, nonce: String, officerID: String = "", dutyID: String = "", clockUnchecked: Bool = false) {
        self.action = action
        self.issuer = issuer
        self.nonce = nonce
        self.officerID = officerID
        self.dutyID = dutyID
        self.clockUnchecked = clockUnchecked
    }
}

/// Why a token was refused (the raw value is what the journal and the control socket say).
public enum TokenRefusal: String, Error, Equatable, Sendable {
    case malformed = "malformed"
    case unknownSigner = "not signed by a supervisor this device trusts"
    case wrongDevice = "issued for another device"
    case notYetValid = "not yet valid"
    case expired = "expired"
    case replayed = "already used (replay)"
    case wrongKind = "the wrong kind of token"
    /// Outside its validity by a clock that is not synchronised: a stop needs a clock that can
    /// be trusted.
    case clockUntrusted = "outside its validity by this device's clock, which is not synchronised"
}

public enum PolicyEvent: Sendable {
    /// A gesture; `at` is the kernel's event timestamp (CLOCK_MONOTONIC ns).
    case button(Button, Gesture, at: Int64)
    case chord(Button, Button, at: Int64)
    case stopToken(Result<TokenGrant, TokenRefusal>, source: String)
    case dutyToken(Result<TokenGrant, TokenRefusal>, source: String)
    /// The camera was put in (true) or taken out of (false) its dock.
    case dock(connected: Bool)
    case battery(percent: Int)
    case storage(critical: Bool, low: Bool)
    case markRequest(label: String, source: String)
    /// The system is going down (SIGTERM, power-down sequence): not an officer's stop.
    case systemShutdown(reason: String)
    /// At start: the last run ended on duty (and recording, when `recording`) without an
    /// authorised end (a crash, a kill, the watchdog, a power loss, an OS shutdown), so the duty
    /// goes on. `fields` say why and how long the gap was (`ResumeState`).
    case resume(officerID: String, dutyID: String, recording: Bool, fields: [String: JSONValue])
    /// Time passing (reminders, confirm windows).
    case tick
}

public enum PolicyAction: Equatable, Sendable {
    case startRecording
    case stopRecording
    case setDuty(officerID: String, dutyID: String)
    case clearDuty
    /// Pre-event buffering: on duty only (no footage is kept off duty, not even in memory).
    case preEventBuffering(Bool)
    case light(Light, LightPattern)
    case sound(Sound)
    case vibrate(Vibration)
    /// Keep the power-hold line asserted (it is released only by the daemon, last, after a
    /// `powerOff` has sealed everything).
    case holdPower(Bool)
    /// Seal, journal, and power the board off.
    case powerOff
    case mark(label: String, source: String, at: Int64)
    case journal(String, [String: JSONValue])
}

public struct PolicySettings: Equatable, Sendable {
    public var stopPolicy: StopPolicy = .authorized
    public var allowOffDutyRecording = false
    public var reminderSeconds = 120
    public var confirmWindowSeconds = 5
    public var lowBatteryPercent = 15
    public var criticalBatteryPercent = 3
    public init() {}
}

/// The recording policy: an explicit state machine. It takes gestures, tokens, dock, power,
/// battery and storage events and time (monotonic), and answers with actions for the pipeline
/// and the indicators; every decision includes its journal record. docs/POLICY.md is its table.
public struct RecordingPolicy: Sendable {
    public let settings: PolicySettings
    public private(set) var state: PolicyState
    public private(set) var officerID = ""
    public private(set) var dutyID = ""
    private var confirmUntil: Int64? = nil
    private var nextReminder: Int64? = nil
    private var batteryLow = false
    private var storageLow = false
    private var storageFull = false

    /// `onDuty` starts in standby with the given officer (development and test rigs, where no
    /// duty token is presented); a device in service starts off duty.
    public init(settings: PolicySettings, onDuty: Bool = false, officerID: String = "") {
        self.settings = settings
        self.state = onDuty ? .standby : .offDuty
        self.officerID = onDuty ? officerID : ""
    }

    /// Actions to take at start: power held, lights as the state says.
    public func startActions() -> [PolicyAction] {
        [.holdPower(true), .light(.record, .off), .light(.status, state == .offDuty ? .off : .standby),
         .preEventBuffering(state != .offDuty), .journal("policy_started", ["state": .string(state.rawValue), "stop_policy": .string(settings.stopPolicy.rawValue)])]
    }

    /// The earliest monotonic time at which `tick` has something to do.
    public var nextDeadline: Int64? {
        [confirmUntil, nextReminder].compactMap { $0 }.min()
    }

    private func denied(_ kind: String, _ reason: String, _ extra: [String: JSONValue] = [:]) -> [PolicyAction] {
        var fields = extra
        fields["reason"] = .string(reason)
        fields["state"] = .string(state.rawValue)
        return [.vibrate(.denied), .journal(kind, fields)]
    }

    private mutating func startRecording(source: String, at: Int64, now: Int64) -> [PolicyAction] {
        state = .recording
        nextReminder = now + Int64(settings.reminderSeconds) * 1_000_000_000
        return [.startRecording, .light(.record, .on), .sound(.start), .vibrate(.start),
                .journal("recording_started", ["source": .string(source), "officer_id": .string(officerID), "duty_id": .string(dutyID),
                                               "latency_us": .integer(max(0, now - at) / 1_000)])]
    }

    private mutating func stopRecording(_ fields: [String: JSONValue], next: PolicyState) -> [PolicyAction] {
        state = next
        confirmUntil = nil
        nextReminder = nil
        return [.stopRecording, .light(.record, .off), .sound(.stop), .vibrate(.stop), .journal("recording_stopped", fields)]
    }

    private mutating func endDuty(source: String) -> [PolicyAction] {
        var actions: [PolicyAction] = []
        if state == .recording { actions += stopRecording(["source": .string("end of duty"), "via": .string(source)], next: .offDuty) }
        let fields: [String: JSONValue] = ["officer_id": .string(officerID), "duty_id": .string(dutyID), "source": .string(source)]
        state = .offDuty
        officerID = ""
        dutyID = ""
        return actions + [.clearDuty, .preEventBuffering(false), .light(.status, .off), .journal("duty_ended", fields)]
    }

    /// Handles one event at monotonic time `now`.
    public mutating func handle(_ event: PolicyEvent, now: Int64) -> [PolicyAction] {
        if state == .shuttingDown { return [] }
        switch event {
        case .button(.record, .press, _) where storageFull && state != .recording:
            return denied("record_refused", "storage full")
        case .button(.record, .press, let at):
            switch state {
            case .offDuty:
                if settings.allowOffDutyRecording { return startRecording(source: "button (off duty, allowed by setting)", at: at, now: now) }
                return denied("record_refused", "off duty")
            case .standby:
                return startRecording(source: "button", at: at, now: now)
            case .recording:
                if settings.stopPolicy == .longPressConfirm, let until = confirmUntil, now <= until {
                    return stopRecording(["source": .string("long-press-confirm")], next: .standby)
                }
                let reason = settings.stopPolicy == .never ? "stop_policy is never" : "a stop needs a supervisor's token or the end of duty"
                return denied("stop_denied", reason, ["source": .string("button")])
            case .shuttingDown:
                return []
            }
        case .button(.record, .longPress, _):
            guard state == .recording else { return [] }
            if settings.stopPolicy == .longPressConfirm {
                confirmUntil = now + Int64(settings.confirmWindowSeconds) * 1_000_000_000
                return [.vibrate(.confirm), .journal("stop_confirm_requested", ["window_s": .integer(Int64(settings.confirmWindowSeconds))])]
            }
            return denied("stop_denied", settings.stopPolicy == .never ? "stop_policy is never" : "a stop needs a supervisor's token or the end of duty",
                          ["source": .string("button long press")])
        case .button(.power, let gesture, _) where gesture == .press || gesture == .longPress:
            if state == .recording || state == .standby {
                return [.holdPower(true)] + denied("power_off_denied", state == .recording ? "recording" : "on duty", ["gesture": .string(gesture.rawValue)])
            }
            guard gesture == .longPress else { return [] }
            state = .shuttingDown
            return [.journal("power_off", ["source": .string("power button")]), .powerOff]
        case .button(.mark, .press, let at):
            return [.mark(label: "", source: "button", at: at), .vibrate(.start),
                    .journal("mark", ["source": .string("button"), "label": .string(""), "recording": .boolean(state == .recording)])]
        case .button, .chord:
            return []
        case .markRequest(let label, let source):
            return [.mark(label: label, source: source, at: now),
                    .journal("mark", ["source": .string(source), "label": .string(label), "recording": .boolean(state == .recording)])]
        case .stopToken(.failure(let refusal), let source):
            return denied("stop_denied", "token \(refusal.rawValue)", ["source": .string(source)])
        case .stopToken(.success(let token), let source):
            let fields: [String: JSONValue] = ["source": .string(source), "issuer": .string(token.issuer), "nonce": .string(token.nonce)]
            guard state == .recording else { return [.journal("stop_token_unused", fields.merging(["state": .string(state.rawValue)]) { a, _ in a })] }
            guard settings.stopPolicy != .never else { return denied("stop_denied", "stop_policy is never", fields) }
            return stopRecording(fields.merging(["authorized": .boolean(true)]) { a, _ in a }, next: .standby)
        case .dutyToken(.failure(let refusal), let source):
            return denied("duty_refused", "token \(refusal.rawValue)", ["source": .string(source)])
        case .dutyToken(.success(let token), let source):
            if token.action == "end" {
                guard state != .offDuty else { return [.journal("duty_token_unused", ["nonce": .string(token.nonce), "action": .string("end")])] }
                return endDuty(source: "token from \(token.issuer)") + [.journal("duty_token", ["nonce": .string(token.nonce), "source": .string(source)])]
            }
            guard state == .offDuty else {
                return denied("duty_refused", "already on duty \(dutyID)", ["nonce": .string(token.nonce), "source": .string(source)])
            }
            state = .standby
            officerID = token.officerID
            dutyID = token.dutyID
            return [.setDuty(officerID: officerID, dutyID: dutyID), .preEventBuffering(true), .light(.status, .standby),
                    .journal("duty_started", ["officer_id": .string(officerID), "duty_id": .string(dutyID), "issuer": .string(token.issuer),
                                              "nonce": .string(token.nonce), "source": .string(source),
                                              "clock_unchecked": .boolean(token.clockUnchecked)])]
        case .dock(let connected):
            guard connected, state != .offDuty else { return [.journal("dock", ["connected": .boolean(connected)])] }
            return endDuty(source: "dock")
        case .battery(let percent):
            if percent <= settings.criticalBatteryPercent {
                var actions: [PolicyAction] = [.journal("battery_critical", ["percent": .integer(Int64(percent))])]
                if state == .recording { actions += stopRecording(["source": .string("critical battery")], next: .shuttingDown) }
                state = .shuttingDown
                return actions + [.powerOff]
            }
            let low = percent <= settings.lowBatteryPercent
            defer { batteryLow = low }
            if low && !batteryLow { return [.light(.status, .alarm), .sound(.alarm), .journal("battery_low", ["percent": .integer(Int64(percent))])] }
            if !low && batteryLow && !storageLow { return [.light(.status, state == .offDuty ? .off : .standby)] }
            return []
        case .storage(let critical, let low):
            var actions: [PolicyAction] = []
            if low != storageLow || critical {
                actions.append(.light(.status, low || critical ? .alarm : (batteryLow ? .alarm : state == .offDuty ? .off : .standby)))
                if low && !storageLow { actions.append(.sound(.alarm)) }
            }
            storageLow = low || critical
            storageFull = critical
            if critical && state == .recording { actions += stopRecording(["source": .string("storage floor")], next: .standby) }
            return actions
        case .resume(let officer, let duty, let recording, let fields):
            var actions: [PolicyAction] = []
            if state == .offDuty {
                state = .standby
                officerID = officer
                dutyID = duty
                actions += [.setDuty(officerID: officerID, dutyID: dutyID), .preEventBuffering(true), .light(.status, .standby),
                            .journal("duty_resumed", fields.merging(["officer_id": .string(officer), "duty_id": .string(duty)]) { a, _ in a })]
            }
            if recording && state == .standby && !storageFull {
                state = .recording
                nextReminder = now + Int64(settings.reminderSeconds) * 1_000_000_000
                actions += [.startRecording, .light(.record, .on), .sound(.start), .vibrate(.start),
                            .journal("recording_resumed", fields.merging(["officer_id": .string(officerID), "duty_id": .string(dutyID)]) { a, _ in a })]
            }
            return actions
        case .systemShutdown(let reason):
            var actions: [PolicyAction] = []
            if state == .recording { actions += stopRecording(["source": .string("system stop"), "reason": .string(reason)], next: .shuttingDown) }
            state = .shuttingDown
            return actions
        case .tick:
            var actions: [PolicyAction] = []
            if let until = confirmUntil, now > until {
                confirmUntil = nil
                actions.append(.journal("stop_confirm_expired", [:]))
            }
            if state == .recording, let reminder = nextReminder, now >= reminder {
                nextReminder = reminder + Int64(settings.reminderSeconds) * 1_000_000_000
                actions += [.sound(.start), .vibrate(.start)]
            }
            return actions
        }
    }
}

/// The duty and recording a journal leaves open, read from its records in order: a duty is
/// open from `duty_started` (or `duty_resumed`) until `duty_ended`; recording is wanted from
/// `recording_started` (or `recording_resumed`) until a `recording_stopped` other than a system
/// stop (an OS shutdown does not end a recording: the next start resumes it). Whatever else
/// ended a run (a crash, a kill, the watchdog, a power loss) leaves both as they were. A device
/// started on duty by configuration (`policy_started` in standby) has its duty open too.
public struct ResumeState: Equatable, Sendable {
    public private(set) var onDuty = false
    public private(set) var recording = false
    public private(set) var officerID = ""
    public private(set) var dutyID = ""

    public init() {}

    /// The record kinds that change it.
    public static let kinds: Set<String> = ["duty_started", "duty_resumed", "duty_ended", "recording_started", "recording_resumed",
                                            "recording_stopped", "policy_started"]

    public mutating func observe(kind: String, fields: [String: JSONValue]) {
        switch kind {
        case "duty_started", "duty_resumed":
            onDuty = true
            recording = false
            officerID = fields["officer_id"]?.string ?? ""
            dutyID = fields["duty_id"]?.string ?? ""
        case "duty_ended":
            self = ResumeState()
        case "recording_started", "recording_resumed":
            recording = onDuty
        case "recording_stopped":
            recording = recording && fields["source"]?.string == "system stop"
        case "policy_started" where fields["state"]?.string == "standby":
            // Started on duty by configuration (development rigs): the duty is open; what was
            // being recorded is left as it was (a start cut short must not forget it).
            onDuty = true
        default:
            break
        }
    }
}
