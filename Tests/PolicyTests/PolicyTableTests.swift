import Foundation
import Testing
@testable import Policy
import Wire

let second: Int64 = 1_000_000_000

func kinds(_ actions: [PolicyAction]) -> [String] {
    actions.compactMap { if case .journal(let kind, _) = $0 { return kind } else { return nil } }
}

/// A checked token as the `Tokens` module hands it to the policy (signatures are that module's
/// tests; the policy only sees grants and refusals).
enum Grant {
    nonisolated(unsafe) static var counter = 0
    static func make(_ action: String) -> Result<TokenGrant, TokenRefusal> {
        counter += 1
        return .success(TokenGrant(action: action, issuer: "sgt-1", nonce: String(counter), officerID: "OFC-7", dutyID: "D-42"))
    }
}

/// docs/POLICY.md's table, row by row, against the state machine.
enum PolicyTable {
    /// Puts a policy in `state` (off-duty, standby, recording) under `stopPolicy`.
    static func policy(_ state: String, _ stopPolicy: StopPolicy) -> RecordingPolicy {
        var settings = PolicySettings()
        settings.stopPolicy = stopPolicy
        var policy = RecordingPolicy(settings: settings)
        if state != "off-duty" {
            _ = policy.handle(.dutyToken(Grant.make("start"), source: "t"), now: 0)
        }
        if state == "recording" { _ = policy.handle(.button(.record, .press, at: 0), now: 0) }
        return policy
    }

    static let events = ["REC press", "REC long press", "MARK press", "PWR press", "PWR long press", "stop token", "refused stop token",
                         "duty start token", "duty end token", "dock in", "battery low", "battery critical", "storage low", "storage full",
                         "system stop", "reminder due", "resume on duty", "resume recording"]

    /// Journal kinds and the state after `event`.
    static func outcome(state: String, stopPolicy: StopPolicy, event: String) -> (journal: String, next: String) {
        var policy = policy(state, stopPolicy)
        let now: Int64 = 1_000 * second
        let policyEvent: PolicyEvent
        switch event {
        case "REC press": policyEvent = .button(.record, .press, at: now)
        case "REC long press": policyEvent = .button(.record, .longPress, at: now)
        case "MARK press": policyEvent = .button(.mark, .press, at: now)
        case "PWR press": policyEvent = .button(.power, .press, at: now)
        case "PWR long press": policyEvent = .button(.power, .longPress, at: now)
        case "stop token": policyEvent = .stopToken(Grant.make("stop"), source: "t")
        case "refused stop token": policyEvent = .stopToken(.failure(.expired), source: "t")
        case "duty start token": policyEvent = .dutyToken(Grant.make("start"), source: "t")
        case "duty end token": policyEvent = .dutyToken(Grant.make("end"), source: "t")
        case "dock in": policyEvent = .dock(connected: true)
        case "battery low": policyEvent = .battery(percent: 10)
        case "battery critical": policyEvent = .battery(percent: 2)
        case "storage low": policyEvent = .storage(critical: false, low: true)
        case "storage full": policyEvent = .storage(critical: true, low: true)
        case "system stop": policyEvent = .systemShutdown(reason: "SIGTERM")
        case "reminder due": policyEvent = .tick
        case "resume on duty": policyEvent = .resume(officerID: "OFC-7", dutyID: "D-42", recording: false, fields: [:])
        case "resume recording": policyEvent = .resume(officerID: "OFC-7", dutyID: "D-42", recording: true, fields: [:])
        default: preconditionFailure(event)
        }
        let actions = policy.handle(policyEvent, now: event == "reminder due" ? 1_000_000 * second : now)
        let journal = kinds(actions).joined(separator: ", ")
        return (journal.isEmpty ? "—" : journal, policy.state.rawValue)
    }

    struct Row: Equatable { var stopPolicy: String; var state: String; var event: String; var journal: String; var next: String }

    static func rows(markdown: String) -> [Row] {
        markdown.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 7, StopPolicy(rawValue: cells[1]) != nil else { return nil }
            return Row(stopPolicy: cells[1], state: cells[2], event: cells[3], journal: cells[4].replacingOccurrences(of: "`", with: ""), next: cells[5])
        }
    }
}

@Suite("docs/POLICY.md")
struct PolicyTableTests {
    @Test("the duty and recording a journal leaves open: only an authorised end closes them, a system stop or a crash does not")
    func resumeState() {
        func state(_ records: [(String, [String: JSONValue])]) -> ResumeState {
            var state = ResumeState()
            for (kind, fields) in records { state.observe(kind: kind, fields: fields) }
            return state
        }
        let duty: (String, [String: JSONValue]) = ("duty_started", ["officer_id": .string("OFC-7"), "duty_id": .string("D-42")])
        let started: (String, [String: JSONValue]) = ("recording_started", [:])
        #expect(state([duty, started]) == {
            var expected = ResumeState()
            expected.observe(kind: "duty_resumed", fields: ["officer_id": .string("OFC-7"), "duty_id": .string("D-42")])
            expected.observe(kind: "recording_resumed", fields: [:])
            return expected
        }())
        let crashed = state([duty, started])
        #expect(crashed.onDuty && crashed.recording && crashed.officerID == "OFC-7" && crashed.dutyID == "D-42")
        let rebooted = state([duty, started, ("recording_stopped", ["source": .string("system stop")]), ("policy_started", ["state": .string("off-duty")])])
        #expect(rebooted.onDuty && rebooted.recording, "an OS shutdown ends neither")
        let stopped = state([duty, started, ("recording_stopped", ["source": .string("control socket uid 0 pid 1"), "authorized": .boolean(true)])])
        #expect(stopped.onDuty && !stopped.recording, "an authorised stop ends the recording, not the duty")
        #expect(!state([duty, started, ("recording_stopped", ["source": .string("end of duty")]), ("duty_ended", [:])]).onDuty)
        let development = state([("policy_started", ["state": .string("standby")]), started])
        #expect(development.onDuty && development.recording, "started on duty by configuration")
        #expect(!state([("policy_started", ["state": .string("off-duty")]), started]).recording, "no recording without a duty")
    }

    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/POLICY.md").path

    @Test("every row of the table is what the state machine does, and every state × event of the authorized policy has a row")
    func tableMatchesCode() throws {
        let rows = PolicyTable.rows(markdown: try String(contentsOfFile: Self.docs, encoding: .utf8))
        #expect(rows.count >= 48)
        for row in rows {
            let outcome = PolicyTable.outcome(state: row.state, stopPolicy: StopPolicy(rawValue: row.stopPolicy)!, event: row.event)
            #expect(outcome.journal == row.journal && outcome.next == row.next,
                    "\(row.stopPolicy) / \(row.state) / \(row.event): the code journals \(outcome.journal) and goes to \(outcome.next)")
        }
        for state in ["off-duty", "standby", "recording"] {
            for event in PolicyTable.events {
                #expect(rows.contains { $0.stopPolicy == "authorized" && $0.state == state && $0.event == event }, "no row for \(state) / \(event)")
            }
        }
    }
}

