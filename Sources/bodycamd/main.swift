import Glibc
import LibAV
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
do {
    let source = try PipelineFactory.makeSource(configuration.camera)
    let store = try PlainFileStore(directory: configuration.storagePath)
    recorder = Recorder(configuration: .init(deviceID: configuration.deviceID, officerID: configuration.officerID,
                                             preEventSeconds: configuration.preEventSeconds,
                                             preEventMaxBytes: configuration.preEventMaxBytes,
                                             segmentSeconds: configuration.segmentSeconds),
                        source: source, overlay: PipelineFactory.makeOverlay(configuration), store: store,
                        makeEncoder: { try LibAVVideoEncoder(settings: configuration.encoder, format: $0) })
} catch {
    Log.error("start-up: \(error)")
    exit(1)
}

recorder.onEvent = { event in
    switch event {
    case .started(let source, let encoder): Log.info("capturing from \(source), encoding with \(encoder)")
    case .recordingStarted(let packets, let seconds):
        Log.notice("recording started with \(packets) pre-event frames (\(formatDecimal(seconds, places: 1)) s)")
    case .recordingStopped: Log.notice("recording stopped")
    case .segmentSealed(let summary):
        Log.info("segment \(summary.descriptor.sequence) sealed: \(summary.location), \(summary.frames) frames, \(summary.fragments) fragments")
    case .framesDropped(let count, let sequence): Log.warning("\(count) frames dropped before frame \(sequence)")
    case .cameraLost(let reason): Log.error("\(reason); segment sealed, reopening the camera")
    case .cameraRestored(let source): Log.notice("camera back: \(source); recording goes on")
    case .stopped(let frames): Log.info("pipeline stopped after \(frames) frames")
    }
}

/// Control thread: starts recording after `--record-after`, ends the run after `--duration` or
/// on SIGTERM/SIGINT. SIGUSR1 is the pipeline telling it the run is over.
let start = Clock.monotonicNanoseconds()
let control = WorkerThread(name: "control") {
    var recordingRequested = false
    if recordAfter == 0 {
        recorder.startRecording()
        recordingRequested = true
    }
    while true {
        let now = Clock.monotonicNanoseconds()
        var deadlines: [Int64] = []
        if !recordingRequested { deadlines.append(start + Int64(recordAfter * 1e9)) }
        if let duration { deadlines.append(start + Int64(duration * 1e9)) }
        var signal: Int32
        if let next = deadlines.min() {
            let wait = max(0, next - now)
            var timeout = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
            signal = sigtimedwait(&controlSignals, nil, &timeout)
        } else {
            signal = sigwaitinfo(&controlSignals, nil)
        }
        if signal == SIGUSR1 { return }
        if signal == SIGTERM || signal == SIGINT {
            Log.notice("\(signal == SIGTERM ? "SIGTERM" : "SIGINT"): shutting down, sealing the open segment")
            recorder.shutdown()
            return
        }
        let elapsed = Clock.monotonicNanoseconds() - start
        if !recordingRequested && elapsed >= Int64(recordAfter * 1e9) {
            recorder.startRecording()
            recordingRequested = true
        }
        if let duration, elapsed >= Int64(duration * 1e9) {
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
    status = 1
}
kill(getpid(), SIGUSR1)
control.join()
let segments = recorder.segments
Log.info("\(segments.count) segments, \(segments.reduce(0) { $0 + $1.frames }) frames recorded in \(configuration.storagePath)")
exit(status)
