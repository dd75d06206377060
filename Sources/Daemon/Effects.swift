import Controls
import Evidence
import Pipeline
import Platform
import Policy
import Wire

/// The policy's decisions, acted on: the recorder, the vault, the run's end. Called by the
/// `PolicyEngine` under its lock, from whichever thread brought the event (controls, socket,
/// housekeeping).
final class DaemonEffects: PolicyEffects, Sendable {
    let recorder: Recorder
    let vault: EvidenceVault
    let run: RunState
    let refusals: RefusalLimiter

    init(recorder: Recorder, vault: EvidenceVault, run: RunState, refusals: RefusalLimiter) {
        self.recorder = recorder
        self.vault = vault
        self.run = run
        self.refusals = refusals
    }

    func startRecording() { recorder.startRecording() }
    func stopRecording() { recorder.stopRecording() }
    func setDuty(officerID: String, dutyID: String) {
        recorder.setOfficer(officerID)
        vault.dutyID = dutyID
    }
    func clearDuty() {
        recorder.setOfficer("")
        vault.dutyID = ""
    }
    func preEventBuffering(_ enabled: Bool) { recorder.setPreEventBuffering(enabled) }
    func mark(label: String, source: String, at: Int64) {
        let utc = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds() - (Clock.monotonicNanoseconds() - at))
        vault.addMark(label: label, source: source, at: at, utc: utc)
    }
    /// Journals a record. A refusal the policy made of a control-socket peer's request (a denied
    /// stop or duty token) goes through the peer's `RefusalLimiter` share, like the socket's own
    /// refusals. A journal that cannot be written is reported, never fatal to recording.
    func journal(_ kind: String, _ fields: [String: JSONValue]) {
        if kind.hasSuffix("_denied") || kind.hasSuffix("_refused"), let uid = DaemonEffects.socketPeerUID(fields["source"]?.string) {
            journalRefusal(uid: uid, kind: kind, fields: fields, command: kind, reason: fields["reason"]?.string ?? kind)
            return
        }
        append(kind, fields)
    }

    private func append(_ kind: String, _ fields: [String: JSONValue]) {
        do { try vault.journal.append(kind: kind, fields: fields) } catch { Log.error("audit journal: \(error)") }
    }

    /// Journals a refusal of a request from `uid` in full, or counts it when that uid has had its
    /// share of full records this window; a window that ended is journaled as its summary.
    func journalRefusal(uid: UInt32, kind: String, fields: [String: JSONValue], command: String, reason: String) {
        let decision = refusals.admit(uid: uid, command: bounded(command), reason: bounded(reason, limit: 160), at: Clock.monotonicNanoseconds())
        if let ended = decision.ended { journalSummary(ended) }
        if decision.journal { append(kind, fields) }
    }

    /// One record for the refusals of a uid that were counted, not journaled one by one.
    func journalSummary(_ summary: RefusalLimiter.Summary) {
        Log.warning("control socket: \(summary.suppressed) more requests from uid \(summary.uid) refused")
        append("control_refusals_summarised", ["uid": .integer(Int64(summary.uid)), "count": .integer(Int64(summary.suppressed)),
                                               "window_start_mono_ns": .integer(summary.windowStart),
                                               "last_cmd": .string(summary.lastCommand), "last_reason": .string(summary.lastReason)])
    }

    /// The uid in a control-socket request's `source` ("control socket uid N pid P").
    static func socketPeerUID(_ source: String?) -> UInt32? {
        guard let source, source.hasPrefix(controlSocketSource) else { return nil }
        return UInt32(source.dropFirst(controlSocketSource.count).prefix { $0 != " " })
    }
    static let controlSocketSource = "control socket uid "
    func powerOff() {
        run.shutdownReason = "power off"
        run.shuttingDown.set()
        recorder.shutdown()
    }
}
