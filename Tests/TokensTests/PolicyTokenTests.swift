@testable import Evidence
import LibCrypto
import Testing
import Platform
import Tokens
import Wire
@testable import Policy

let second: Int64 = 1_000_000_000

func kinds(_ actions: [PolicyAction]) -> [String] {
    actions.compactMap { if case .journal(let kind, _) = $0 { return kind } else { return nil } }
}

func fields(_ actions: [PolicyAction], _ kind: String) -> [String: JSONValue]? {
    for action in actions { if case .journal(kind, let fields) = action { return fields } }
    return nil
}

struct Supervisor {
    let key = try! Ed25519PrivateKey()
    func token(_ kind: AuthorizationToken.Kind = .stop, device: String = "BC-1", minutes: Int = 10, action: String = "stop",
               now: Int64 = Clock.wallNanoseconds()) -> [UInt8] {
        try! AuthorizationToken.issue(kind, deviceID: device, issuer: "sgt-1", key: key, minutes: minutes, action: action,
                                      officerID: "OFC-7", dutyID: "D-42", now: now).document.bytes
    }
}

func nowUTC() -> String { Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()) }

@Suite("Recording policy")
struct PolicyTests {
    let supervisor = Supervisor()

    func onDuty(_ settings: PolicySettings = PolicySettings()) -> (RecordingPolicy, TokenVerifier) {
        let verifier = TokenVerifier(deviceID: "BC-1", supervisors: [supervisor.key.publicKey])
        var policy = RecordingPolicy(settings: settings)
        let actions = policy.handle(.dutyToken(verifier.grant(supervisor.token(.duty, action: "start"), expecting: .duty, now: nowUTC()), source: "test"), now: 0)
        #expect(kinds(actions) == ["duty_started"])
        #expect(policy.state == .standby && policy.officerID == "OFC-7" && policy.dutyID == "D-42")
        return (policy, verifier)
    }

    @Test("off duty: a record press is refused, journaled and answered with the refusal vibration")
    func offDutyRefuses() {
        var policy = RecordingPolicy(settings: PolicySettings())
        let actions = policy.handle(.button(.record, .press, at: 0), now: 1)
        #expect(actions.contains(.vibrate(.denied)) && !actions.contains(.startRecording))
        #expect(kinds(actions) == ["record_refused"])
        var allowed = PolicySettings()
        allowed.allowOffDutyRecording = true
        var permissive = RecordingPolicy(settings: allowed)
        #expect(permissive.handle(.button(.record, .press, at: 0), now: 1).contains(.startRecording))
    }

    @Test("on duty, a record press starts recording with the red LED, a tone and a vibration; the latency is journaled")
    func recordStarts() {
        var (policy, _) = onDuty()
        let actions = policy.handle(.button(.record, .press, at: 5 * second), now: 5 * second + 3_000_000)
        #expect(Array(actions.prefix(4)) == [.startRecording, .light(.record, .on), .sound(.start), .vibrate(.start)])
        #expect(fields(actions, "recording_started")?["latency_us"] == .integer(3000))
        #expect(policy.state == .recording)
    }

    @Test("authorized: presses do not stop; invalid, expired, replayed and foreign tokens are refused; a valid token stops")
    func authorizedStop() {
        var (policy, verifier) = onDuty()
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        for gesture in [Gesture.press, .longPress] {
            let actions = policy.handle(.button(.record, gesture, at: second), now: second)
            #expect(kinds(actions) == ["stop_denied"] && actions.contains(.vibrate(.denied)) && policy.state == .recording)
        }
        let stranger = Supervisor()
        let bad: [([UInt8], TokenRefusal)] = [
            (stranger.token(), .unknownSigner),
            (supervisor.token(device: "BC-2"), .wrongDevice),
            (supervisor.token(now: Clock.wallNanoseconds() - 3_600 * second), .expired),
            (supervisor.token(now: Clock.wallNanoseconds() + 3_600 * second), .notYetValid),
            (Array("bodycam-stop-token/1\n{}\nAAAA\n".utf8), .malformed),
            (supervisor.token(.duty, action: "end"), .wrongKind),
        ]
        for (token, refusal) in bad {
            let result = verifier.grant(token, expecting: .stop, now: nowUTC())
            #expect(result == .failure(refusal))
            let actions = policy.handle(.stopToken(result, source: "socket"), now: 2 * second)
            #expect(kinds(actions) == ["stop_denied"] && policy.state == .recording)
            #expect(fields(actions, "stop_denied")?["reason"] == .string("token \(refusal.rawValue)"))
        }
        let good = supervisor.token()
        let accepted = policy.handle(.stopToken(verifier.grant(good, expecting: .stop, now: nowUTC()), source: "socket"), now: 3 * second)
        #expect(accepted.contains(.stopRecording) && accepted.contains(.light(.record, .off)) && accepted.contains(.sound(.stop)))
        #expect(kinds(accepted) == ["recording_stopped"] && policy.state == .standby)
        _ = policy.handle(.button(.record, .press, at: 4 * second), now: 4 * second)
        let replay = verifier.grant(good, expecting: .stop, now: nowUTC())
        #expect(replay == .failure(.replayed))
        #expect(kinds(policy.handle(.stopToken(replay, source: "socket"), now: 5 * second)) == ["stop_denied"])
    }

    @Test("a clock that cannot be trusted fails toward recording: a duty token outside its validity is taken and flagged, a stop token is refused naming the clock")
    func untrustedClock() {
        let verifier = TokenVerifier(deviceID: "BC-1", supervisors: [supervisor.key.publicKey])
        // The board booted in 1970: every real token is "not yet valid" by its clock.
        let boot = Clock.iso8601(wallNanoseconds: 5 * second)
        let duty = supervisor.token(.duty, action: "start")
        #expect(verifier.grant(duty, expecting: .duty, now: boot) == .failure(.notYetValid), "a trusted clock would refuse it")
        guard case .success(let grant) = verifier.grant(duty, expecting: .duty, now: boot, clockTrusted: false) else {
            Issue.record("the duty token was refused")
            return
        }
        #expect(grant.clockUnchecked)
        var policy = RecordingPolicy(settings: PolicySettings())
        let actions = policy.handle(.dutyToken(.success(grant), source: "test"), now: 0)
        #expect(policy.state == .standby && fields(actions, "duty_started")?["clock_unchecked"] == .boolean(true))
        #expect(verifier.grant(supervisor.token(), expecting: .stop, now: boot, clockTrusted: false) == .failure(.clockUntrusted))
        // Inside its validity, an untrusted clock takes a stop token as any clock would.
        guard case .success(let stop) = verifier.grant(supervisor.token(), expecting: .stop, now: nowUTC(), clockTrusted: false) else {
            Issue.record("a valid stop token was refused")
            return
        }
        #expect(!stop.clockUnchecked)
    }

    @Test("replays are refused across restarts: used nonces come back from the journal")
    func replayAcrossRestart() throws {
        let token = supervisor.token()
        let first = TokenVerifier(deviceID: "BC-1", supervisors: [supervisor.key.publicKey])
        guard case .success(let accepted) = first.grant(token, expecting: .stop, now: nowUTC()) else { Issue.record("refused"); return }
        let record = JournalRecord(sequence: 1, utc: "", monotonicNanoseconds: 0, kind: "recording_stopped", fields: ["nonce": .string(accepted.nonce)],
                                   previous: "", hash: [], line: 1)
        let restarted = TokenVerifier(deviceID: "BC-1", supervisors: [supervisor.key.publicKey], usedNonces: Set([record].compactMap(TokenVerifier.usedNonce(in:))))
        #expect(restarted.grant(token, expecting: .stop, now: nowUTC()) == .failure(.replayed))
    }

    @Test("long-press-confirm: hold 3 s, then a press within 5 s stops; after the window a press is refused again")
    func longPressConfirm() {
        var settings = PolicySettings()
        settings.stopPolicy = .longPressConfirm
        var (policy, _) = onDuty(settings)
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        #expect(kinds(policy.handle(.button(.record, .press, at: second), now: second)) == ["stop_denied"])
        let held = policy.handle(.button(.record, .longPress, at: 10 * second), now: 10 * second)
        #expect(held.contains(.vibrate(.confirm)) && kinds(held) == ["stop_confirm_requested"])
        #expect(policy.nextDeadline == 15 * second)
        #expect(kinds(policy.handle(.tick, now: 16 * second)) == ["stop_confirm_expired"])
        #expect(kinds(policy.handle(.button(.record, .press, at: 16 * second), now: 16 * second)) == ["stop_denied"])
        _ = policy.handle(.button(.record, .longPress, at: 20 * second), now: 20 * second)
        let confirmed = policy.handle(.button(.record, .press, at: 24 * second), now: 24 * second)
        #expect(confirmed.contains(.stopRecording) && fields(confirmed, "recording_stopped")?["source"] == .string("long-press-confirm"))
    }

    @Test("never: neither presses nor tokens stop; the end of duty does")
    func neverStops() {
        var settings = PolicySettings()
        settings.stopPolicy = .never
        var (policy, verifier) = onDuty(settings)
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        #expect(kinds(policy.handle(.stopToken(verifier.grant(supervisor.token(), expecting: .stop, now: nowUTC()), source: "socket"), now: second)) == ["stop_denied"])
        let docked = policy.handle(.dock(connected: true), now: 2 * second)
        #expect(docked.contains(.stopRecording) && kinds(docked) == ["recording_stopped", "duty_ended"] && policy.state == .offDuty)
    }

    @Test("the power button is refused on duty and while recording (power held); off duty a long press powers off")
    func powerButton() {
        var (policy, verifier) = onDuty()
        for state in ["standby", "recording"] {
            if state == "recording" { _ = policy.handle(.button(.record, .press, at: 0), now: 0) }
            for gesture in [Gesture.press, .longPress] {
                let actions = policy.handle(.button(.power, gesture, at: second), now: second)
                #expect(actions.contains(.holdPower(true)) && actions.contains(.vibrate(.denied)) && !actions.contains(.powerOff), "\(state) \(gesture)")
                #expect(fields(actions, "power_off_denied")?["state"] == .string(state))
            }
        }
        _ = policy.handle(.dutyToken(verifier.grant(supervisor.token(.duty, action: "end"), expecting: .duty, now: nowUTC()), source: "socket"), now: 2 * second)
        #expect(policy.state == .offDuty)
        #expect(policy.handle(.button(.power, .press, at: 3 * second), now: 3 * second).isEmpty)
        let off = policy.handle(.button(.power, .longPress, at: 4 * second), now: 4 * second)
        #expect(off.last == .powerOff && !off.contains(.holdPower(false)) && policy.state == .shuttingDown)
        #expect(policy.handle(.button(.record, .press, at: 5 * second), now: 5 * second).isEmpty, "nothing after shutdown")
    }

    @Test("critical battery seals and powers off, journaled; low battery raises the alarm once")
    func battery() {
        var (policy, _) = onDuty()
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        let low = policy.handle(.battery(percent: 14), now: second)
        #expect(low.contains(.light(.status, .alarm)) && kinds(low) == ["battery_low"])
        #expect(policy.handle(.battery(percent: 12), now: second).isEmpty)
        let critical = policy.handle(.battery(percent: 3), now: 2 * second)
        #expect(kinds(critical) == ["battery_critical", "recording_stopped"])
        #expect(critical.contains(.stopRecording) && critical.contains(.powerOff) && policy.state == .shuttingDown)
    }

    @Test("marks are added and journaled in every state, with the button's timestamp")
    func marks() {
        var (policy, _) = onDuty()
        let actions = policy.handle(.button(.mark, .press, at: 77), now: 80)
        #expect(actions.first == .mark(label: "", source: "button", at: 77) && kinds(actions) == ["mark"])
        let labelled = policy.handle(.markRequest(label: "search of vehicle", source: "control socket uid 0"), now: 90)
        #expect(labelled.first == .mark(label: "search of vehicle", source: "control socket uid 0", at: 90))
    }

    @Test("reminders every reminder_seconds while recording; a system stop seals without counting as an officer's stop")
    func remindersAndSystemStop() {
        var (policy, _) = onDuty()
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        #expect(policy.handle(.tick, now: 119 * second).isEmpty)
        #expect(policy.handle(.tick, now: 120 * second) == [.sound(.start), .vibrate(.start)])
        #expect(policy.nextDeadline == 240 * second)
        let stop = policy.handle(.systemShutdown(reason: "SIGTERM"), now: 130 * second)
        #expect(fields(stop, "recording_stopped")?["source"] == .string("system stop") && policy.state == .shuttingDown)
    }

    @Test("storage at the floor stops recording; the status light shows the alarm")
    func storageFloor() {
        var (policy, _) = onDuty()
        _ = policy.handle(.button(.record, .press, at: 0), now: 0)
        let low = policy.handle(.storage(critical: false, low: true), now: second)
        #expect(low == [.light(.status, .alarm), .sound(.alarm)])
        let full = policy.handle(.storage(critical: true, low: true), now: 2 * second)
        #expect(full.contains(.stopRecording) && fields(full, "recording_stopped")?["source"] == .string("storage floor"))
    }
}
