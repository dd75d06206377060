import CShims
import Controls
import Evidence
import Glibc
import LibAV
import LibCrypto
import Pipeline
import Policy
import ServiceLifecycle
import Dispatch

/// bodycamd: the camera controller. Wires the recording pipeline into the evidence vault, the
/// buttons and indicators to the recording policy, and serves the control socket.

let usage = """
    usage: bodycamd [--config PATH] [--record-after SECONDS] [--duration SECONDS]

      --config PATH           configuration file (default /etc/bodycam/bodycam.toml)
      --record-after SECONDS  development: press record (as the button would) after this long
      --duration SECONDS      development: stop after this many seconds in all (a system stop)

    exit codes: 0 clean stop, 1 runtime failure, 64 usage error, 78 configuration error
    """

Log.bootstrap(program: "bodycamd")
let processStart = Clock.monotonicNanoseconds()
let notifier = SystemdNotifier()
var configPath = "/etc/bodycam/bodycam.toml"
var recordAfter: Double? = nil
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

// MARK: evidence

/// The supervisors' public keys in policy.supervisors (none when the folder is missing).
func trustedSupervisors() throws -> [Ed25519PublicKey] {
    let folder = configuration.policy.supervisors
    let keys = access(folder, F_OK) == 0 ? try TokenVerifier.loadSupervisors(folder: folder) : []
    if keys.isEmpty { Log.warning("no supervisor keys in \(folder): stop and duty tokens cannot be accepted") }
    return keys
}

let recorder: Recorder
let vault: EvidenceVault
let tokens: TokenVerifier
let devicePublicKey: Ed25519PublicKey
do {
    let identity = try DeviceIdentity.load(keyPath: configuration.deviceKeyPath, certificatePath: configuration.certificatePath,
                                           deviceID: configuration.deviceID)
    devicePublicKey = identity.key.publicKey
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

    tokens = TokenVerifier(deviceID: configuration.deviceID, supervisors: try trustedSupervisors(),
                           usedNonces: TokenVerifier.usedNonces(journal: vault.journal.takeRecordsAtOpen()))

    let source = try PipelineFactory.makeSource(configuration.camera)
    recorder = Recorder(configuration: .init(deviceID: configuration.deviceID,
                                             officerID: configuration.policy.onDutyAtStart ? configuration.officerID : "",
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

/// The last battery reading (the control thread writes it, the socket thread reads it).
final class BatteryReading: @unchecked Sendable {
    private let lock = ConditionLockPublic()
    private var percent: Int?
    var value: Int? { lock.withLock { percent } }
    func set(_ value: Int) { lock.withLock { percent = value } }
}
let batteryPercent = BatteryReading()

/// Journals an event; a journal that cannot be written is reported, never fatal to recording.
func audit(_ kind: String, _ fields: [String: JSONValue] = [:]) {
    do { try vault.journal.append(kind: kind, fields: fields) } catch { Log.error("audit journal: \(error)") }
}

// MARK: controls and policy

let gpio: GPIOBackend
let simulated: SimulatedGPIO?
do {
    gpio = try GPIOBackends.make(configuration.controls)
    simulated = gpio as? SimulatedGPIO
} catch {
    Log.error("controls: \(error)")
    audit("controls_failed", ["error": .string("\(error)")])
    exit(1)
}

let shuttingDown = AtomicFlag()
var shutdownReason = "end of source"

/// The policy's decisions, acted on.
final class DaemonEffects: PolicyEffects {
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
    func journal(_ kind: String, _ fields: [String: JSONValue]) { audit(kind, fields) }
    func powerOff() {
        shutdownReason = "power off"
        shuttingDown.set()
        recorder.shutdown()
    }
}

var policySettings = PolicySettings()
policySettings.stopPolicy = StopPolicy(rawValue: configuration.policy.stopPolicy) ?? .authorized
policySettings.allowOffDutyRecording = configuration.policy.allowOffDutyRecording
policySettings.reminderSeconds = configuration.policy.reminderSeconds
policySettings.lowBatteryPercent = configuration.policy.lowBatteryPercent
policySettings.criticalBatteryPercent = configuration.policy.criticalBatteryPercent

let effects = DaemonEffects()
let indicators = Indicators(backend: gpio)
indicators.onError = { Log.error("indicator: \($0)") }
let engine = PolicyEngine(policy: RecordingPolicy(settings: policySettings, onDuty: configuration.policy.onDutyAtStart,
                                                  officerID: configuration.officerID),
                          indicators: indicators, effects: effects)
if configuration.policy.onDutyAtStart { vault.dutyID = "" }
let controls: ControlsThread
do {
    controls = try ControlsThread(backend: gpio)
    controls.debouncer = Debouncer(window: Int64(configuration.controls.debounceMilliseconds) * 1_000_000)
    controls.gestures.longPress = Int64(configuration.controls.longPressMilliseconds) * 1_000_000
} catch {
    Log.error("controls: \(error)")
    exit(1)
}
func startControls() {
    controls.start(onEvent: { event in
        if case .button(let button, let gesture, _) = event, gesture != .release { Log.info("\(button.rawValue) \(gesture.rawValue)") }
        engine.handle(event)
    }, onError: { Log.error("controls: \($0)") })
}

// MARK: control socket

func base64Field(_ request: JSONValue, _ name: String) -> [UInt8]? { request[name]?.string.flatMap(Base64.decode) }

func handleRequest(_ request: JSONValue?, peer: Peer) -> JSONValue {
    let who = "control socket uid \(peer.uid) pid \(peer.pid)"
    guard let request, let command = request["cmd"]?.string else {
        audit("control_request", ["uid": .integer(Int64(peer.uid)), "pid": .integer(Int64(peer.pid)), "cmd": .string("?"), "accepted": .boolean(false)])
        return .object(["ok": .boolean(false), "error": .string("expected one JSON object with \"cmd\"")])
    }
    guard socketAccess.allows(command, peer: peer) else {
        audit("control_request", ["uid": .integer(Int64(peer.uid)), "pid": .integer(Int64(peer.pid)), "cmd": .string(command),
                                  "accepted": .boolean(false), "reason": .string("needs \(ControlAccess.required(for: command).rawValue)")])
        return .object(["ok": .boolean(false), "error": .string("permission denied: \(command) needs \(ControlAccess.required(for: command).rawValue)")])
    }
    audit("control_request", ["uid": .integer(Int64(peer.uid)), "pid": .integer(Int64(peer.pid)), "cmd": .string(command), "accepted": .boolean(true)])
    let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
    func outcome(_ actions: [PolicyAction]) -> JSONValue {
        let kinds = actions.compactMap { action -> String? in if case .journal(let kind, _) = action { return kind } else { return nil } }
        let refused = kinds.contains { $0.hasSuffix("_denied") || $0.hasSuffix("_refused") }
        return .object(["ok": .boolean(!refused), "decision": .array(kinds.map(JSONValue.string)), "state": .string(engine.state.rawValue)])
    }
    switch command {
    case "status":
        var free = statvfs()
        statvfs(configuration.storagePath, &free)
        let freeBytes = Int64(free.f_bavail) * Int64(free.f_frsize)
        let bytesPerSecond = Int64(configuration.encoder.bitrateKbps ?? 4000) * 125
        var clockError = 0
        let synced = bc_clock_sync_state(&clockError) == 1
        var alarms: [JSONValue] = []
        if storage.level != .ok { alarms.append(.string("storage \(storage.level.rawValue)")) }
        if let percent = batteryPercent.value, percent <= configuration.policy.lowBatteryPercent { alarms.append(.string("battery low")) }
        if !synced { alarms.append(.string("clock not synchronised")) }
        return .object(["ok": .boolean(true), "state": .string(engine.state.rawValue), "officer_id": .string(engine.officerID),
                        "duty_id": .string(engine.dutyID), "segments_sealed": .integer(Int64(vault.sealed.count)),
                        "next_sequence": .integer(Int64(vault.nextSequence)),
                        "last_seal_utc": .string(vault.sealed.last?.endUTC ?? ""),
                        "pre_event_ms": .integer(Int64(recorder.preEventMilliseconds)),
                        "frames": .integer(Int64(recorder.framesEncoded)),
                        "storage_free_bytes": .integer(freeBytes),
                        "hours_left": .integer(freeBytes / max(1, bytesPerSecond) / 3600),
                        "battery_percent": batteryPercent.value.map { .integer(Int64($0)) } ?? .null,
                        "clock_synced": .boolean(synced), "alarms": .array(alarms)])
    case "stop":
        guard let token = base64Field(request, "token") else { return .object(["ok": .boolean(false), "error": .string("stop needs \"token\" (base64)")]) }
        return outcome(engine.handle(.stopToken(tokens.check(token, expecting: .stop, now: now), source: who)))
    case "duty":
        guard let token = base64Field(request, "token") else { return .object(["ok": .boolean(false), "error": .string("duty needs \"token\" (base64)")]) }
        return outcome(engine.handle(.dutyToken(tokens.check(token, expecting: .duty, now: now), source: who)))
    case "mark":
        return outcome(engine.handle(.markRequest(label: String((request["label"]?.string ?? "").prefix(200)), source: who)))
    case "reload_supervisors":
        // The supervisors' keys (policy.supervisors) were changed by root: trust what is there now.
        do {
            let keys = try trustedSupervisors()
            let before = Set(tokens.supervisors.map { KeyFile.keyID($0.raw) })
            let after = keys.map { KeyFile.keyID($0.raw) }
            tokens.replaceSupervisors(keys)
            audit("supervisors_reloaded", ["key_ids": .array(after.sorted().map(JSONValue.string)),
                                           "added": .integer(Int64(Set(after).subtracting(before).count)),
                                           "removed": .integer(Int64(before.subtracting(after).count)), "source": .string(who)])
            Log.notice("supervisor keys reloaded: \(after.count) trusted")
            return .object(["ok": .boolean(true), "key_ids": .array(after.sorted().map(JSONValue.string))])
        } catch {
            audit("supervisors_reload_failed", ["error": .string("\(error)"), "source": .string(who)])
            return .object(["ok": .boolean(false), "error": .string("the supervisors' keys were not reloaded (the old ones stay trusted): \(error)")])
        }
    case "install_certificate":
        // A certificate the authority issued for this device's key (a first one, or a renewal).
        guard let bytes = base64Field(request, "certificate") else {
            return .object(["ok": .boolean(false), "error": .string("install_certificate needs \"certificate\" (base64)")])
        }
        let refuse = { (reason: String) -> JSONValue in
            audit("certificate_refused", ["reason": .string(reason), "source": .string(who)])
            return .object(["ok": .boolean(false), "error": .string(reason)])
        }
        guard let certificate = try? DeviceCertificate(document: SignedDocument.parse(bytes, expectedType: DeviceCertificate.type, what: "certificate")) else {
            return refuse("not a device certificate")
        }
        guard certificate.deviceKey == devicePublicKey else { return refuse("the certificate is for another key than this device's") }
        guard certificate.deviceID == configuration.deviceID else {
            return refuse("the certificate is for device \(certificate.deviceID), not \(configuration.deviceID)")
        }
        guard now <= certificate.notAfter else { return refuse("the certificate expired at \(certificate.notAfter)") }
        do {
            try writeFileAtomically(configuration.certificatePath, certificate.document.bytes)
            try writeFileAtomically(configuration.storagePath + "/device.certificate", certificate.document.bytes)
        } catch {
            return refuse("cannot write the certificate: \(error)")
        }
        let hash = Hex.encode(SHA256.hash(certificate.document.bytes))
        audit("certificate_installed", ["serial": .string(certificate.serial), "authority_key_id": .string(certificate.authorityKeyID),
                                        "not_after": .string(certificate.notAfter), "sha256": .string(hash), "source": .string(who)])
        Log.notice("certificate \(certificate.serial) installed; manifests are signed as provisioned from the next start")
        return .object(["ok": .boolean(true), "serial": .string(certificate.serial), "takes_effect": .string("at the next start of bodycamd")])
    case "sim":
        guard let simulated else { return .object(["ok": .boolean(false), "error": .string("controls.backend is not \"simulated\"")]) }
        if let name = request["button"]?.string, let button = Button(rawValue: name) {
            switch request["action"]?.string {
            case "press": simulated.press(button)
            case "release": simulated.release(button)
            case "click", "hold":
                let milliseconds = UInt32(request["ms"]?.integer ?? (request["action"]?.string == "hold" ? 3500 : 120))
                simulated.press(button)
                usleep(milliseconds * 1000)
                simulated.release(button)
            default: return .object(["ok": .boolean(false), "error": .string("action: press, release, click or hold")])
            }
            usleep(50_000)  // let the controls thread and the policy act before answering
            return .object(["ok": .boolean(true), "state": .string(engine.state.rawValue)])
        }
        if let percent = request["battery"]?.integer {
            batteryPercent.set(Int(percent))
            return outcome(engine.handle(.battery(percent: Int(percent))))
        }
        if let docked = request["dock"]?.boolean { return outcome(engine.handle(.dock(connected: docked))) }
        return .object(["ok": .boolean(false), "error": .string("sim: button+action, battery or dock")])
    default:
        return .object(["ok": .boolean(false), "error": .string("unknown command \(command)")])
    }
}

let socketAccess = ControlAccess(technicianGroupName: configuration.technicianGroup)
let socket: ControlSocket
do {
    socket = try ControlSocket(path: configuration.controlSocket)
} catch {
    Log.error("control socket: \(error)")
    exit(1)
}

// MARK: pipeline events

// Dropped frames are journaled summed, at most once a second (DropTally).
let drops = DropTally()
func reportDrops(_ summary: DropTally.Summary) {
    Log.warning("\(summary.frames) frames dropped in \(summary.gaps) gaps, before frames \(summary.firstBeforeFrame)–\(summary.lastBeforeFrame)")
    audit("frames_dropped", ["count": .integer(Int64(summary.frames)), "gaps": .integer(Int64(summary.gaps)),
                             "first_before_frame": .integer(Int64(summary.firstBeforeFrame)),
                             "before_frame": .integer(Int64(summary.lastBeforeFrame))])
}

recorder.onEvent = { event in
    switch event {
    case .started(let source, let encoder): Log.info("capturing from \(source), encoding with \(encoder)")
    case .recordingStarted(let packets, let seconds):
        Log.notice("recording started with \(packets) pre-event frames (\(formatDecimal(seconds, places: 1)) s)")
        notifier.status("recording, officer \(engine.officerID.isEmpty ? "-" : engine.officerID)")
    case .recordingStopped:
        Log.notice("recording stopped")
        notifier.status(engine.state.rawValue)
    case .segmentSealed(let summary):
        Log.info("segment \(summary.descriptor.sequence) sealed: \(summary.location), \(summary.frames) frames, \(summary.fragments) fragments")
    case .framesDropped(let count, let sequence):
        if let summary = drops.add(frames: count, beforeFrame: sequence, at: Clock.monotonicNanoseconds()) { reportDrops(summary) }
    case .cameraLost(let reason):
        Log.error("\(reason); segment sealed, reopening the camera")
        audit("camera_lost", ["reason": .string(reason)])
    case .cameraRestored(let source):
        Log.notice("camera back: \(source); recording goes on")
        audit("camera_restored", ["source": .string(source)])
    case .stopped(let frames): Log.info("pipeline stopped after \(frames) frames")
    case .ready:
        let seconds = Double(Clock.monotonicNanoseconds() - processStart) / 1e9
        Log.info("ready in \(formatDecimal(seconds, places: 3)) s: \(engine.state.rawValue)")
        notifier.ready(status: "\(engine.state.rawValue), device \(configuration.deviceID)")
    }
}

// MARK: control thread


func checkStorage() {
    do {
        guard let change = try storage.check() else { return }
        let free = "\(change.free >> 20) MiB free"
        switch change.level {
        case .ok: Log.notice("storage: \(free), alarm cleared")
        case .low: Log.warning("STORAGE LOW: \(free) (reserve \(storage.reserveBytes >> 20) MiB); recording goes on")
        case .critical: Log.error("STORAGE FULL: \(free) (floor \(storage.floorBytes >> 20) MiB); sealing and stopping")
        }
        audit("storage_alarm", ["level": .string(change.level.rawValue), "free_bytes": .integer(change.free)])
        engine.handle(.storage(critical: change.level == .critical, low: change.level != .ok))
    } catch {
        Log.error("storage check: \(error)")
    }
}

/// Wall clock minus monotonic clock: it changes only when the wall clock is stepped.
var clockOffset = Clock.wallNanoseconds() - Clock.monotonicNanoseconds()

/// Journals a step of the wall clock of more than a second; recordings keep their monotonic
/// timeline.
func checkClock() {
    let offset = Clock.wallNanoseconds() - Clock.monotonicNanoseconds()
    let step = offset - clockOffset
    if abs(step) > 1_000_000_000 {
        Log.warning("wall clock stepped by \(formatDecimal(Double(step) / 1e9, places: 3)) s")
        audit("clock_step", ["step_ms": .integer(step / 1_000_000)])
    }
    clockOffset = offset
}

func checkBattery() {
    guard !configuration.batteryPath.isEmpty else { return }
    guard let bytes = try? readWholeFile(configuration.batteryPath, limit: 64),
          let percent = Int(String(decoding: bytes, as: UTF8.self).filter { $0.isNumber }) else {
        Log.warning("battery: cannot read \(configuration.batteryPath)")
        return
    }
    batteryPercent.set(percent)
    engine.handle(.battery(percent: percent))
}

/// Starts recording after `--record-after` (as a press of the record button would), ends the run
/// after `--duration` or on SIGTERM/SIGINT (a system stop, journaled as such), and keeps time:
/// policy reminders, storage, clock and battery every 2 s, a journal checkpoint every minute.
/// SIGUSR1 is the pipeline telling it the run is over.
let start = Clock.monotonicNanoseconds()
let checkpointInterval: Int64 = 60_000_000_000
let housekeepingInterval: Int64 = 2_000_000_000
func housekeepingLoop() {
    checkStorage()
    var recordPressed = recordAfter == nil
    var nextCheckpoint = start + checkpointInterval
    var nextHousekeeping = start + housekeepingInterval
    var nextWatchdog = notifier.watchdogInterval.map { start + $0 }
    var framesAtLastPing = 0
    while true {
        let now = Clock.monotonicNanoseconds()
        var deadlines: [Int64] = [nextCheckpoint, nextHousekeeping]
        if let nextWatchdog { deadlines.append(nextWatchdog) }
        if let recordAfter, !recordPressed { deadlines.append(start + Int64(recordAfter * 1e9)) }
        if let duration { deadlines.append(start + Int64(duration * 1e9)) }
        if let policyDeadline = engine.nextDeadline { deadlines.append(policyDeadline) }
        let wait = max(0, deadlines.min()! - now)
        var timeout = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
        let signal = sigtimedwait(&controlSignals, nil, &timeout)
        if signal == SIGUSR1 { return }
        if signal == SIGTERM || signal == SIGINT {
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            Log.notice("\(name): shutting down, sealing the open segment")
            shutdownReason = name
            engine.handle(.systemShutdown(reason: name))
            recorder.shutdown()
            return
        }
        let current = Clock.monotonicNanoseconds()
        engine.handle(.tick)
        // The watchdog is fed only while pictures really flow: a stalled pipeline gets the
        // service restarted (and the stall is in the log and the journal).
        if let interval = notifier.watchdogInterval, let due = nextWatchdog, current >= due {
            let frames = recorder.framesEncoded
            if frames > framesAtLastPing {
                notifier.watchdog()
            } else {
                Log.error("no frame for \(interval * 2 / 1_000_000) ms: withholding the watchdog ping")
                audit("pipeline_stalled", ["frames": .integer(Int64(frames))])
            }
            framesAtLastPing = frames
            nextWatchdog = due + interval
        }
        if current >= nextHousekeeping {
            if let summary = drops.take(at: current) { reportDrops(summary) }
            checkStorage()
            checkClock()
            checkBattery()
            nextHousekeeping += housekeepingInterval
        }
        if current >= nextCheckpoint {
            audit("checkpoint", ["next_sequence": .integer(Int64(vault.nextSequence)), "state": .string(engine.state.rawValue)])
            nextCheckpoint += checkpointInterval
        }
        if let recordAfter, !recordPressed, current - start >= Int64(recordAfter * 1e9) {
            recordPressed = true
            engine.handle(.button(.record, .press, at: current))
        }
        if let duration, current - start >= Int64(duration * 1e9) {
            shutdownReason = "--duration"
            engine.handle(.systemShutdown(reason: "--duration"))
            recorder.shutdown()
            return
        }
        if shuttingDown.isSet { return }
    }
}

// MARK: services

/// The daemon's parts as swift-service-lifecycle services, in dependency order: the group starts
/// them in this order and shuts them down in the reverse one. The pipeline is last, so it is the
/// first to stop and seals the open segment while the controls, the socket and the journal still
/// work; the indicators and PWR_HOLD are first, so the power is released after everything else.
/// The group ends when the pipeline does: on SIGTERM, SIGINT or --duration (taken by the
/// housekeeping thread with sigtimedwait: the signals are blocked in every thread, so the group
/// itself watches none), on a power-off, at the end of the source or on a failure.
var status: Int32 = 0
var housekeeping: WorkerThread?
let services: [(name: String, service: Service)] = [
    ("indicators", ThreadService("indicators and power hold", stop: {
        if let summary = drops.take(at: Clock.monotonicNanoseconds()) { reportDrops(summary) }
        // A system stop (service stop, power-down sequence), not an officer's stop.
        audit("shutdown", ["reason": .string(shutdownReason), "segments": .integer(Int64(recorder.segments.count))])
        let segments = recorder.segments
        Log.info("\(segments.count) segments, \(segments.reduce(0) { $0 + $1.frames }) frames recorded in \(configuration.storagePath)")
        indicators.close()
        // Last of all: everything is sealed and journaled, so the power may go.
        if shutdownReason == "power off" {
            Log.notice("releasing PWR_HOLD")
            indicators.holdPower(false)
        }
        try? gpio.close()
    })),
    ("control socket", ThreadService("control socket", start: { socket.start(handler: handleRequest) }, stop: { socket.stop() })),
    ("controls", ThreadService("controls", start: { startControls() }, stop: { controls.stop() })),
    ("housekeeping", ThreadService("housekeeping", start: { housekeeping = WorkerThread(name: "control", housekeepingLoop) }, stop: {
        // SIGUSR1 ends the housekeeping loop (it waits in sigtimedwait).
        kill(getpid(), SIGUSR1)
        housekeeping?.join()
    })),
    ("pipeline", PipelineService(run: {
        do {
            try recorder.run()
        } catch {
            Log.error("\(error)")
            audit("pipeline_failed", ["error": .string("\(error)")])
            status = 1
        }
        notifier.stopping("sealing and stopping")
    }, shutdown: {
        shuttingDown.set()
        recorder.shutdown()
    })),
]
let group = ServiceGroup(configuration: ServiceGroupConfiguration(
    services: services.map { .init(service: $0.service, successTerminationBehavior: .gracefullyShutdownGroup,
                                   failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name) },
    logger: Log.logger))
// The main thread waits; the group runs on the cooperative pool, the parts on their own threads.
let finished = DispatchSemaphore(value: 0)
Task {
    do { try await group.run() } catch {
        Log.error("services: \(error)")
        status = 1
    }
    finished.signal()
}
finished.wait()
exit(status)
