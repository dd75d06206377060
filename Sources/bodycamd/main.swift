import Evidence
import Glibc
import LibAV
import LibCrypto
import Pipeline

/// bodycamd: the camera controller. Until the controls and policy land, recording is started
/// by `--record-after` (seconds of standby first, filling the pre-event buffer) and the run ends
/// after `--duration` seconds, at the end of a raw-file source, or on SIGTERM/SIGINT; the open
/// segment is always sealed.

let usage = """
    usage: bodycamd [--config PATH] [--record-after SECONDS] [--duration SECONDS]

      --config PATH           configuration file (default /etc/bodycam/bodycam.toml)
      --record-after SECONDS  stay in standby (pre-event buffering) this long, then record (default 0)
      --duration SECONDS      stop after this many seconds in all (default: run until SIGTERM)

    exit codes: 0 clean stop, 1 runtime failure, 64 usage error, 78 configuration error
    """

Log.program = "bodycamd"
var configPath = "/etc/bodycam/bodycam.toml"
var recordAfter = 0.0
var duration: Double? = nil

var arguments = CommandLine.arguments.dropFirst()
func fail(usage message: String) -> Never {
    Log.error(message)
    fputs(usage + "\n", stderr)
    exit(64)
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--help", "-h":
        print(usage)
        exit(0)
    case "--config":
        guard let value = arguments.popFirst() else { fail(usage: "--config needs a path") }
        configPath = value
    case "--record-after", "--duration":
        guard let text = arguments.popFirst(), let value = Double(text), value >= 0, value < 1e7 else {
            fail(usage: "\(argument) needs a number of seconds")
        }
        if argument == "--duration" { duration = value } else { recordAfter = value }
    default:
        fail(usage: "unknown argument \(argument)")
    }
}

let configuration: BodycamConfiguration
do {
    configuration = try BodycamConfiguration.load(path: configPath)
} catch {
    Log.error("configuration: \(error)")
    exit(78)
}
LibAVLogging.setQuiet(true)

// Signals are taken synchronously by the control thread (sigtimedwait), never by a handler:
// block them here, before any thread exists, so every thread inherits the mask.
var controlSignals = sigset_t()
sigemptyset(&controlSignals)
for signal in [SIGTERM, SIGINT, SIGUSR1] { sigaddset(&controlSignals, signal) }
pthread_sigmask(SIG_BLOCK, &controlSignals, nil)

let recorder: Recorder
let vault: EvidenceVault
do {
    let identity = try DeviceIdentity.load(keyPath: configuration.deviceKeyPath, certificatePath: configuration.certificatePath,
                                           deviceID: configuration.deviceID)
    if let reason = identity.unprovisionedReason {
        Log.warning("UNPROVISIONED DEVICE: \(reason). Recording goes on; every manifest is flagged unprovisioned.")
    }
    guard !configuration.recipientPaths.isEmpty else {
        Log.error("evidence.recipients is empty: footage cannot be sealed to anyone, so nothing is recorded")
        exit(78)
    }
    let recipients = try configuration.recipientPaths.map { try KeyFile.readRecipient($0) }
    vault = try EvidenceVault(configuration: .init(directory: configuration.storagePath, deviceID: configuration.deviceID,
                                                   recipients: recipients, deviceKey: identity.key, provisioned: identity.isProvisioned))
    if let certificate = identity.certificate, access(configuration.storagePath + "/device.certificate", F_OK) != 0 {
        try writeFileAtomically(configuration.storagePath + "/device.certificate", certificate.document.bytes)
    }
    try vault.journal.append(kind: "boot", fields: ["device_id": .string(configuration.deviceID), "provisioned": .boolean(identity.isProvisioned),
                                                     "software": .string(vault.configuration.software)])
    let recovery = try vault.recover()
    for name in recovery.recovered { Log.notice("recovered \(name) after an unclean stop") }
    for name in recovery.unrecoverable { Log.warning("\(name) holds no complete chunk; left in place and journaled") }
    let source = try PipelineFactory.makeSource(configuration.camera)
    recorder = Recorder(configuration: .init(deviceID: configuration.deviceID, officerID: configuration.officerID,
                                             preEventSeconds: configuration.preEventSeconds,
                                             preEventMaxBytes: configuration.preEventMaxBytes,
                                             segmentSeconds: configuration.segmentSeconds),
                        source: source, overlay: PipelineFactory.makeOverlay(configuration), store: vault,
                        makeEncoder: { try LibAVVideoEncoder(settings: configuration.encoder, format: $0) })
} catch {
    Log.error("start-up: \(error)")
    exit(1)
}

let storage = StorageMonitor(path: configuration.storagePath, reserveBytes: configuration.storageReserveBytes,
                             floorBytes: configuration.storageFloorBytes)

/// Journals an event; a journal that cannot be written is reported, never fatal to recording.
func audit(_ kind: String, _ fields: [String: JSONValue] = [:]) {
    do { try vault.journal.append(kind: kind, fields: fields) } catch { Log.error("audit journal: \(error)") }
}

recorder.onEvent = { event in
    switch event {
    case .started(let source, let encoder): Log.info("capturing from \(source), encoding with \(encoder)")
    case .recordingStarted(let packets, let seconds):
        Log.notice("recording started with \(packets) pre-event frames (\(formatDecimal(seconds, places: 1)) s)")
        audit("recording_started", ["pre_event_frames": .integer(Int64(packets))])
    case .recordingStopped:
        Log.notice("recording stopped")
        audit("recording_stopped")
    case .segmentSealed(let summary):
        Log.info("segment \(summary.descriptor.sequence) sealed: \(summary.location), \(summary.frames) frames, \(summary.fragments) fragments")
    case .framesDropped(let count, let sequence):
        Log.warning("\(count) frames dropped before frame \(sequence)")
        audit("frames_dropped", ["count": .integer(Int64(count)), "before_frame": .integer(Int64(sequence))])
    case .cameraLost(let reason):
        Log.error("\(reason); segment sealed, reopening the camera")
        audit("camera_lost", ["reason": .string(reason)])
    case .cameraRestored(let source):
        Log.notice("camera back: \(source); recording goes on")
        audit("camera_restored", ["source": .string(source)])
    case .stopped(let frames): Log.info("pipeline stopped after \(frames) frames")
    }
}

/// Control thread: starts recording after `--record-after`, ends the run after `--duration` or
/// on SIGTERM/SIGINT, and writes a journal checkpoint every minute (so a cut journal tail is
/// noticed). SIGUSR1 is the pipeline telling it the run is over.
let checkpointInterval: Int64 = 60_000_000_000
var shutdownReason = "end of source"
let start = Clock.monotonicNanoseconds()
let storageInterval: Int64 = 2_000_000_000
/// Wall clock minus monotonic clock: it changes only when the wall clock is stepped.
var clockOffset = Clock.wallNanoseconds() - Clock.monotonicNanoseconds()

/// Journals a step of the wall clock (NTP correction, manual set) of more than a second; the
/// recording's own timeline is monotonic and unaffected.
func checkClock() {
    let offset = Clock.wallNanoseconds() - Clock.monotonicNanoseconds()
    let step = offset - clockOffset
    if abs(step) > 1_000_000_000 {
        Log.warning("wall clock stepped by \(formatDecimal(Double(step) / 1e9, places: 3)) s")
        audit("clock_step", ["step_ms": .integer(step / 1_000_000)])
    }
    clockOffset = offset
}
/// Measures free space; journals and logs each change of level; at the floor, stops recording.
/// Returns false while recording must not run.
func checkStorage() -> Bool {
    do {
        if let change = try storage.check() {
            let free = "\(change.free >> 20) MiB free"
            switch change.level {
            case .ok: Log.notice("storage: \(free), alarm cleared")
            case .low: Log.warning("STORAGE LOW: \(free) (reserve \(storage.reserveBytes >> 20) MiB); recording goes on")
            case .critical: Log.error("STORAGE FULL: \(free) (floor \(storage.floorBytes >> 20) MiB); sealing and stopping")
            }
            audit("storage_alarm", ["level": .string(change.level.rawValue), "free_bytes": .integer(change.free)])
            if change.level == .critical { recorder.stopRecording() }
        }
    } catch {
        Log.error("storage check: \(error)")
    }
    return storage.level != .critical
}

let control = WorkerThread(name: "control") {
    var recordingRequested = false
    if recordAfter == 0 {
        if checkStorage() { recorder.startRecording() }
        recordingRequested = true
    }
    var nextCheckpoint = start + checkpointInterval
    var nextStorageCheck = start + storageInterval
    while true {
        let now = Clock.monotonicNanoseconds()
        var deadlines: [Int64] = [nextCheckpoint, nextStorageCheck]
        if !recordingRequested { deadlines.append(start + Int64(recordAfter * 1e9)) }
        if let duration { deadlines.append(start + Int64(duration * 1e9)) }
        let wait = max(0, deadlines.min()! - now)
        var timeout = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
        let signal = sigtimedwait(&controlSignals, nil, &timeout)
        if signal == SIGUSR1 { return }
        if signal == SIGTERM || signal == SIGINT {
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            Log.notice("\(name): shutting down, sealing the open segment")
            shutdownReason = name
            recorder.shutdown()
            return
        }
        if Clock.monotonicNanoseconds() >= nextStorageCheck {
            _ = checkStorage()
            checkClock()
            nextStorageCheck += storageInterval
        }
        if Clock.monotonicNanoseconds() >= nextCheckpoint {
            audit("checkpoint", ["next_sequence": .integer(Int64(vault.nextSequence))])
            nextCheckpoint += checkpointInterval
        }
        let elapsed = Clock.monotonicNanoseconds() - start
        if !recordingRequested && elapsed >= Int64(recordAfter * 1e9) {
            if checkStorage() { recorder.startRecording() }
            recordingRequested = true
        }
        if let duration, elapsed >= Int64(duration * 1e9) {
            shutdownReason = "--duration"
            recorder.shutdown()
            return
        }
    }
}

var status: Int32 = 0
do {
    try recorder.run()
} catch {
    Log.error("\(error)")
    audit("pipeline_failed", ["error": .string("\(error)")])
    status = 1
}
kill(getpid(), SIGUSR1)
control.join()
// A system stop (service stop, power-down sequence), not an officer's stop.
audit("shutdown", ["reason": .string(shutdownReason), "segments": .integer(Int64(recorder.segments.count))])
let segments = recorder.segments
Log.info("\(segments.count) segments, \(segments.reduce(0) { $0 + $1.frames }) frames recorded in \(configuration.storagePath)")
exit(status)
