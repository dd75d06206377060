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

    init(recorder: Recorder, vault: EvidenceVault, run: RunState) {
        self.recorder = recorder
        self.vault = vault
        self.run = run
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
    /// A journal that cannot be written is reported, never fatal to recording.
    func journal(_ kind: String, _ fields: [String: JSONValue]) {
        do { try vault.journal.append(kind: kind, fields: fields) } catch { Log.error("audit journal: \(error)") }
    }
    func powerOff() {
        run.shutdownReason = "power off"
        run.shuttingDown.set()
        recorder.shutdown()
    }
}
