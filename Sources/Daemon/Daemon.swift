import Capture
import Configuration
import Controls
import Evidence
import Glibc
import LibAV
import LibCrypto
import Pipeline
import Platform
import Policy
import ServiceLifecycle
import Synchronization
import Tokens
import UnixSignals
import Wire

/// How `bodycamd` was asked to run.
public struct DaemonOptions: Sendable {
    /// The configuration file (docs/CONFIGURATION.md).
    public var configPath: String
    /// Development: press record (as the button would) this many seconds after start.
    public var recordAfterSeconds: Double?
    /// Development: a system stop this many seconds after start.
    public var durationSeconds: Double?

    public init(configPath: String = "/etc/bodycam/bodycam.toml", recordAfterSeconds: Double? = nil, durationSeconds: Double? = nil) {
        self.configPath = configPath
        self.recordAfterSeconds = recordAfterSeconds
        self.durationSeconds = durationSeconds
    }
}

extension DaemonOptions {
    /// bodycamd's usage text (`--help`).
    public static let usage = """
        USAGE: bodycamd [--config <path>] [--record-after <seconds>] [--duration <seconds>]

        The body-worn camera's controller: capture, sealing, buttons and the recording policy.

        OPTIONS:
          --config <path>           The configuration file (default /etc/bodycam/bodycam.toml).
          --record-after <seconds>  Development: press record (as the button would) after this long.
          --duration <seconds>      Development: a system stop after this many seconds in all.
          -h, --help                This text.

        EXIT CODES: 0 clean stop, 1 runtime failure, 64 usage error, 78 configuration error.
        """

    /// A usage mistake, named (exit 64, EX_USAGE).
    public struct UsageError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Reads bodycamd's arguments (without the program name); nil for `--help`. Options take their
    /// value as the next argument or after `=`. Throws `UsageError` naming the mistake.
    public static func parse(_ arguments: [String]) throws -> DaemonOptions? {
        var options = DaemonOptions()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            let (name, inline) = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init).pair
            func value() throws -> String {
                guard let text = inline ?? rest.popFirst(), !text.isEmpty else { throw UsageError(description: "\(name) needs a value") }
                return text
            }
            func seconds() throws -> Double {
                let text = try value()
                guard let seconds = Double(text), (0..<1e7).contains(seconds) else {
                    throw UsageError(description: "\(name) needs a number of seconds (0 to 10,000,000), not \"\(text)\"")
                }
                return seconds
            }
            switch name {
            case "-h", "--help": return nil
            case "--config": options.configPath = try value()
            case "--record-after": options.recordAfterSeconds = try seconds()
            case "--duration": options.durationSeconds = try seconds()
            default: throw UsageError(description: "unknown argument \(argument)")
            }
        }
        return options
    }
}

extension Array where Element == String {
    /// The first element and, when there is one, the second.
    fileprivate var pair: (String, String?) { (self.first ?? "", count > 1 ? self[1] : nil) }
}

/// Why the daemon could not start, with the exit status it ends with (sysexits(3)).
public enum DaemonStartError: Error, CustomStringConvertible {
    /// The configuration cannot be used (exit 78, EX_CONFIG).
    case configuration(String)
    /// Something the configuration names cannot be opened (exit 1).
    case startup(String)

    public var exitStatus: Int32 {
        switch self {
        case .configuration: return 78
        case .startup: return 1
        }
    }

    public var description: String {
        switch self {
        case .configuration(let message): return "configuration: \(message)"
        case .startup(let message): return "start-up: \(message)"
        }
    }
}

/// What the daemon's threads share about how the run ends.
final class RunState: Sendable {
    private struct State {
        var shutdownReason = "end of source"
        var exitStatus: Int32 = 0
        var battery: Int?
        var cameraMissing = false
        var storageBacklog = false
        var cameraShort = false
    }
    private let state = Mutex(State())
    /// Set once the run is ending (a power-off, a system stop): the housekeeping thread stops.
    let shuttingDown = AtomicFlag()

    var shutdownReason: String {
        get { state.withLock { $0.shutdownReason } }
        set { state.withLock { $0.shutdownReason = newValue } }
    }
    var exitStatus: Int32 { state.withLock { $0.exitStatus } }
    func fail() { state.withLock { $0.exitStatus = 1 } }
    /// The camera is lost or was missing at start: the pipeline is trying it again.
    var cameraMissing: Bool {
        get { state.withLock { $0.cameraMissing } }
        set { state.withLock { $0.cameraMissing = newValue } }
    }
    /// The camera gives less than configured (a smaller picture or a lower rate).
    var cameraBelowConfiguration: Bool {
        get { state.withLock { $0.cameraShort } }
        set { state.withLock { $0.cameraShort = newValue } }
    }
    /// The write queue is at its bound: pictures are being let go for storage.
    var storageBacklog: Bool {
        get { state.withLock { $0.storageBacklog } }
        set { state.withLock { $0.storageBacklog = newValue } }
    }
    /// The last battery reading, percent (housekeeping writes it, the socket reads it).
    var batteryPercent: Int? {
        get { state.withLock { $0.battery } }
        set { state.withLock { $0.battery = newValue } }
    }
}

/// bodycamd as a library: start-up (configuration, identity, vault, recovery, pipeline,
/// controls, policy, socket) in `init`, then `run()` runs the parts as a `ServiceGroup` until a
/// system stop, a power-off, the end of the source or a failure. The executable only parses
/// its arguments and calls these two.
public final class Daemon: Sendable {
    public let configuration: BodycamConfiguration
    let options: DaemonOptions
    let processStart: Int64
    let notifier: SystemdNotifier
    let recorder: Recorder
    let vault: EvidenceVault
    let tokens: TokenVerifier
    let devicePublicKey: Ed25519PublicKey
    let storage: StorageMonitor
    let gpio: GPIOBackend
    let simulated: SimulatedGPIO?
    let indicators: Indicators
    let engine: PolicyEngine
    let effects: DaemonEffects
    let controls: ControlsThread
    let socket: ControlSocket
    let socketAccess: ControlAccess
    let drops = DropTally()
    let refusals = RefusalLimiter()
    let runState = RunState()
    /// Set when this start had to replace a lost device key: an alarm until the key is certified.
    let identityAlarm: String?
    let housekeeping: Housekeeping
    /// The uplink to the office (nil: `[uplink] office` is not set).
    let uplink: UplinkLoop?

    /// Starts everything but the threads. Throws `DaemonStartError`; what it could open before
    /// failing is closed by its owners.
    public init(options: DaemonOptions, processStart: Int64 = Clock.monotonicNanoseconds()) throws {
        self.options = options
        self.processStart = processStart
        notifier = SystemdNotifier()
        do {
            configuration = try BodycamConfiguration.load(path: options.configPath)
        } catch {
            throw DaemonStartError.configuration("\(error)")
        }
        let configuration = self.configuration
        guard !configuration.recipientPaths.isEmpty else {
            throw DaemonStartError.configuration("evidence.recipients is empty: footage cannot be sealed to anyone, so nothing is recorded")
        }
        LibAVLogging.setQuiet(true)
        // The duty and recording the journal leaves open (read as it is opened).
        var resumeAtStart = ResumeState()
        do {
            // A key missing where a store already holds evidence signed by one was lost (or
            // taken): the replacement is made, but never silently (docs/POLICY.md).
            let keyWasMissing = access(configuration.deviceKeyPath, F_OK) != 0
            let identity = try DeviceIdentity.load(keyPath: configuration.deviceKeyPath, certificatePath: configuration.certificatePath,
                                                   deviceID: configuration.deviceID)
            devicePublicKey = identity.key.publicKey
            if let reason = identity.unprovisionedReason {
                Log.warning("UNPROVISIONED DEVICE: \(reason). Recording goes on; every manifest is flagged unprovisioned.")
            }
            let recipients = try configuration.recipientPaths.map { try KeyFile.readRecipient($0) }
            var usedNonces: Set<String> = []
            var previousKeyID = EvidenceVault.storedDeviceKey(configuration.storagePath)?.keyID
            vault = try EvidenceVault(configuration: .init(directory: configuration.storagePath, deviceID: configuration.deviceID,
                                                           recipients: recipients, deviceKey: identity.key, provisioned: identity.isProvisioned),
                                      journalInterest: .init(kinds: ResumeState.kinds.union([EvidenceVault.keyReplacedKind]),
                                                             members: [TokenVerifier.nonceMember]),
                                      visitJournal: { record in
                                          if let nonce = TokenVerifier.usedNonce(in: record) { usedNonces.insert(nonce) }
                                          if ResumeState.kinds.contains(record.kind) { resumeAtStart.observe(kind: record.kind, fields: record.fields) }
                                          if record.kind == EvidenceVault.keyReplacedKind, let id = record.fields["new_key_id"]?.string { previousKeyID = id }
                                      })
            // Any key other than the store's (a lost one replaced now, or at a start that then
            // failed) is a change of identity, journaled and alarmed whenever it is first seen.
            if let previousKeyID, previousKeyID != identity.key.publicKey.keyID {
                identityAlarm = "device key replaced"
                Log.error("DEVICE KEY REPLACED: the store's evidence is signed by key \(previousKeyID), \(configuration.deviceKeyPath) "
                          + (keyWasMissing ? "was missing. " : "holds another. ")
                          + "A new key \(identity.key.publicKey.keyID) signs from now on (journaled); recording goes on, sealed to the office as before. "
                          + "Have the authority certify the new key.")
                try vault.journal.append(kind: EvidenceVault.keyReplacedKind, fields: [
                    "new_key": .string(Base64.encode(identity.key.publicKey.raw)), "new_key_id": .string(identity.key.publicKey.keyID),
                    "previous_key_id": .string(previousKeyID), "next_sequence": .integer(Int64(vault.nextSequence)),
                    "reason": .string(keyWasMissing ? "\(configuration.deviceKeyPath) was missing at start"
                                                    : "\(configuration.deviceKeyPath) is not the key the store's evidence is signed by"),
                ])
            } else {
                identityAlarm = nil
            }
            if let certificate = identity.certificate, access(configuration.storagePath + "/device.certificate", F_OK) != 0 {
                try writeFileAtomically(configuration.storagePath + "/device.certificate", certificate.document.bytes)
            }
            try vault.journal.append(kind: "boot", fields: vault.journal.previousRunFields.merging([
                "device_id": .string(configuration.deviceID), "boot_id": .string(kernelBootID),
                "provisioned": .boolean(identity.isProvisioned), "software": .string(vault.configuration.software),
            ]) { $1 })
            let recovery = try vault.recover()
            for name in recovery.recovered { Log.notice("recovered \(name) after an unclean stop") }
            for name in recovery.unrecoverable { Log.warning("\(name) holds no complete chunk; left in place and journaled") }
            for name in recovery.setAside { Log.error("STORE DAMAGE: a file that cannot be a segment of this store was set aside as \(name) (journaled)") }

            tokens = TokenVerifier(deviceID: configuration.deviceID, supervisors: try Daemon.trustedSupervisors(configuration),
                                   usedNonces: usedNonces)
            let source = try StageFactory.makeSource(configuration.camera)
            let encoderSettings = configuration.encoder
            recorder = Recorder(configuration: .init(deviceID: configuration.deviceID,
                                                     officerID: configuration.policy.onDutyAtStart ? configuration.officerID : "",
                                                     preEventSeconds: configuration.preEventSeconds,
                                                     preEventMaxBytes: configuration.preEventMaxBytes,
                                                     segmentSeconds: configuration.segmentSeconds,
                                                     writeQueueSeconds: configuration.writeQueueSeconds,
                                                     writeQueueMaxBytes: configuration.writeQueueMaxBytes),
                                source: source, overlay: StageFactory.makeOverlay(configuration), store: vault,
                                makeEncoder: { try makeVideoEncoder(settings: encoderSettings, format: $0) })
            recorder.packetStage = try StageFactory.makeMediaSigner(configuration, software: vault.configuration.software)
        } catch {
            throw DaemonStartError.startup("\(error)")
        }
        storage = StorageMonitor(path: configuration.storagePath, reserveBytes: configuration.storageReserveBytes,
                                 floorBytes: configuration.storageFloorBytes)
        let vault = self.vault
        do {
            gpio = try StageFactory.makeGPIO(configuration.controls)
            controls = try ControlsThread(backend: gpio)
        } catch {
            _ = try? vault.journal.append(kind: "controls_failed", fields: ["error": .string("\(error)")])
            throw DaemonStartError.startup("controls: \(error)")
        }
        simulated = gpio as? SimulatedGPIO
        controls.debouncer = Debouncer(window: Int64(configuration.controls.debounceMilliseconds) * 1_000_000)
        controls.gestures.longPress = Int64(configuration.controls.longPressMilliseconds) * 1_000_000

        var policySettings = PolicySettings()
        policySettings.stopPolicy = configuration.policy.stopPolicy
        policySettings.allowOffDutyRecording = configuration.policy.allowOffDutyRecording
        policySettings.reminderSeconds = configuration.policy.reminderSeconds
        policySettings.lowBatteryPercent = configuration.policy.lowBatteryPercent
        policySettings.criticalBatteryPercent = configuration.policy.criticalBatteryPercent
        // What can still fail comes before the indicators (their thread starts at once) and the
        // policy (which lights them).
        socketAccess = ControlAccess(technicianGroupName: configuration.technicianGroup)
        do {
            socket = try ControlSocket(path: configuration.controlSocket)
            housekeeping = try Housekeeping()
            uplink = configuration.uplink.enabled ? try UplinkLoop(settings: configuration.uplink) : nil
        } catch {
            _ = try? vault.journal.append(kind: "control_socket_failed", fields: ["error": .string("\(error)")])
            throw DaemonStartError.startup("control socket: \(error)")
        }
        effects = DaemonEffects(recorder: recorder, vault: vault, run: runState, refusals: refusals)
        indicators = Indicators(backend: gpio)
        indicators.onError = { Log.error("indicator: \($0)") }
        engine = PolicyEngine(policy: RecordingPolicy(settings: policySettings, onDuty: configuration.policy.onDutyAtStart,
                                                      officerID: configuration.officerID),
                              indicators: indicators, effects: effects)
        if configuration.policy.onDutyAtStart { vault.dutyID = "" }
        recorder.onEvent = { [unowned self] event in self.pipelineEvent(event) }
        if resumeAtStart.onDuty { resumeDuty(resumeAtStart) }
    }

    /// The previous run ended during a duty without an authorised end (docs/POLICY.md,
    /// "Restarts"): the duty goes on, and the recording if one was running, journaled with how the
    /// run ended and how long the gap was.
    func resumeDuty(_ resume: ResumeState) {
        var fields: [String: JSONValue] = [:]
        let last = vault.journal.lastRecordAtOpen
        if let last, last.kind == AuditJournal.finalKind {
            fields["previous_end"] = .string("system stop (\(last.fields["reason"]?.string ?? "?"))")
        } else {
            fields["previous_end"] = .string("unclean (a crash, a kill, the watchdog or a power loss)")
        }
        if let last, let then = ClockParse.nanoseconds(iso8601: last.utc) {
            fields["gap_ms"] = .integer(max(0, Clock.wallNanoseconds() - then) / 1_000_000)
        }
        Log.notice("resuming the duty \(resume.dutyID.isEmpty ? "" : resume.dutyID + " ")\(resume.recording ? "and the recording " : "")"
                   + "after the last run ended: \(fields["previous_end"]?.string ?? "?")")
        engine.handle(.resume(officerID: resume.officerID, dutyID: resume.dutyID, recording: resume.recording, fields: fields))
    }

    /// The supervisors' public keys in policy.supervisors (none when the folder is missing).
    static func trustedSupervisors(_ configuration: BodycamConfiguration) throws -> [Ed25519PublicKey] {
        let folder = configuration.policy.supervisors
        let keys = access(folder, F_OK) == 0 ? try TokenVerifier.loadSupervisors(folder: folder) : []
        if keys.isEmpty { Log.warning("no supervisor keys in \(folder): stop and duty tokens cannot be accepted") }
        return keys
    }

    /// Journals an event; a journal that cannot be written is reported, never fatal to recording.
    func audit(_ kind: String, _ fields: [String: JSONValue] = [:]) {
        effects.journal(kind, fields)
    }

    /// Dropped frames, journaled summed (by housekeeping on its checks every 2 s, and at shutdown; `DropTally`).
    func reportDrops(_ summary: DropTally.Summary) {
        Log.warning("\(summary.frames) frames dropped in \(summary.gaps) gaps, before frames \(summary.firstBeforeFrame)–\(summary.lastBeforeFrame)")
        audit("frames_dropped", ["count": .integer(Int64(summary.frames)), "gaps": .integer(Int64(summary.gaps)),
                                 "first_before_frame": .integer(Int64(summary.firstBeforeFrame)),
                                 "before_frame": .integer(Int64(summary.lastBeforeFrame))])
    }

    /// The recorder's events, in order, on the recorder's event thread (never the pipeline's:
    /// a journal append that waits on stalled storage holds up no picture).
    func pipelineEvent(_ event: RecorderEvent) {
        switch event {
        case .started(let source, let encoder): Log.info("capturing from \(source), encoding with \(encoder)")
        case .recordingStarted(let packets, let seconds):
            Log.notice("recording started with \(packets) pre-event frames (\(formatDecimal(seconds, places: 1)) s)")
            notifier.status("recording, officer \(engine.officerID.isEmpty ? "-" : engine.officerID)")
            // Heartbeats come every `live_check_seconds` now (live view starts within it).
            uplink?.recording.set()
            uplink?.wake.signal()
        case .recordingStopped:
            uplink?.recording.clear()
            Log.notice("recording stopped")
            notifier.status(engine.state.rawValue)
        case .segmentSealed(let summary):
            Log.info("segment \(summary.descriptor.sequence) sealed: \(summary.location), \(summary.frames) frames, \(summary.fragments) fragments")
            uplink?.wake.signal()
        case .framesDropped(let count, let sequence):
            drops.add(frames: count, beforeFrame: sequence)
        case .cameraLost(let reason):
            Log.error("CAMERA MISSING: \(reason); what was recorded is sealed; trying the camera again")
            audit("camera_lost", ["reason": .string(bounded(reason, limit: 200))])
            runState.cameraMissing = true
            // Running degraded is running: systemd is told so (a later first picture says READY again).
            notifier.ready(status: "degraded: camera missing, device \(configuration.deviceID)")
        case .timestampsUntrusted(let reason):
            Log.warning("camera timestamps: \(reason)")
            audit("camera_timestamps_untrusted", ["reason": .string(reason)])
        case .cameraBelowConfiguration(let reason):
            if let reason {
                Log.error("CAMERA BELOW CONFIGURATION: \(reason)")
                audit("camera_below_configuration", ["reason": .string(bounded(reason, limit: 400))])
            } else if runState.cameraBelowConfiguration {
                audit("camera_configuration_met", [:])
            }
            runState.cameraBelowConfiguration = reason != nil
        case .sequencesUntrusted(let reason):
            Log.warning("camera sequence numbers: \(reason)")
            audit("camera_sequence_untrusted", ["reason": .string(reason)])
        case .cameraStillMissing(let reason):
            Log.warning("camera still missing: \(reason)")
        case .cameraRestored(let source):
            Log.notice("camera back: \(source); recording goes on")
            audit("camera_restored", ["source": .string(source)])
            runState.cameraMissing = false
        case .storageBacklogFull(let queued):
            Log.error("STORAGE TOO SLOW: \(queued.milliseconds) ms of video (\(queued.bytes) bytes) wait for storage; "
                      + "the newest pictures are let go until it catches up")
            runState.storageBacklog = true
            audit("storage_backlog_full", ["queued_ms": .integer(Int64(queued.milliseconds)), "queued_bytes": .integer(Int64(queued.bytes)),
                                           "limit_ms": .integer(Int64(configuration.writeQueueSeconds) * 1000),
                                           "limit_bytes": .integer(Int64(configuration.writeQueueMaxBytes))])
        case .storageBacklogCleared(let lost, let milliseconds):
            Log.notice("storage caught up: \(lost) pictures let go over \(milliseconds) ms; recording goes on")
            runState.storageBacklog = false
            audit("storage_backlog_cleared", ["frames_lost": .integer(Int64(lost)), "duration_ms": .integer(Int64(milliseconds))])
        case .packetStageFailed(let reason):
            Log.error("MEDIA SIGNING FAILED: \(reason); pictures are recorded unsigned until it works again")
            audit("media_signing_failed", ["error": .string(reason)])
        case .clockStepped(_, let to, let cut):
            reportClockStep(to: to, cut: cut)
        case .clockImplausible(let wall):
            Log.error("CLOCK IMPLAUSIBLE: \(Clock.iso8601(wallNanoseconds: wall)) is before this software was written; "
                      + "recording goes on, flagged, until the clock is set")
            audit("clock_implausible", ["utc_seen": .string(Clock.iso8601(wallNanoseconds: wall))])
        case .eventsLost(let count):
            Log.error("\(count) pipeline events were let go: their handler fell behind")
            audit("pipeline_events_lost", ["count": .integer(Int64(count))])
        case .stopped(let frames): Log.info("pipeline stopped after \(frames) frames")
        case .ready:
            let seconds = Double(Clock.monotonicNanoseconds() - processStart) / 1e9
            Log.info("ready in \(formatDecimal(seconds, places: 3)) s: \(engine.state.rawValue)")
            notifier.ready(status: "\(engine.state.rawValue), device \(configuration.deviceID)")
        }
    }

    /// A system stop (SIGTERM, SIGINT, --duration): journaled as such by the policy, then the
    /// pipeline seals the open segment and ends, which ends the group.
    func systemStop(reason: String) {
        runState.shutdownReason = reason
        engine.handle(.systemShutdown(reason: reason))
        runState.shuttingDown.set()
        recorder.shutdown()
    }

    /// The signals that stop the daemon (SIGTERM, SIGINT). Make it first thing, before the
    /// daemon: from then on those signals are taken, and kept for `run(signals:)`.
    public static func trapSignals() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sigterm, .sigint)
    }

    /// Runs the parts until the pipeline ends; returns the exit status (0 clean, 1 a failure).
    public func run(signals: UnixSignalsSequence) async -> Int32 {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services(signals: signals).map { .init(service: $0.service, successTerminationBehavior: .gracefullyShutdownGroup,
                                             failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name) },
            logger: Log.logger))
        do {
            try await group.run()
        } catch {
            Log.error("services: \(error)")
            runState.fail()
        }
        return runState.exitStatus
    }
}
