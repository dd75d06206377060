import Controls
import Evidence
import Glibc
import LibAV
import Synchronization
import LibCrypto
import Pipeline
import Platform
import Policy
import Wire

/// Measurements for `make bench` that need the project's own code in a loop. Each prints
/// `BENCH <name> <value> <unit>` lines; scripts/bench.sh puts them beside the reference tools.
///
///   bodycam-bench seal MIB              STREAM sealing of MIB MiB in 16 KiB chunks, in memory
///   bodycam-bench verify COUNT FOLDER   a store of COUNT sealed segments, then one verify of it
///   bodycam-bench decrypt MIB FOLDER    a MIB MiB segment, then read + decrypt + SHA-256 of it
///   bodycam-bench latency PRESSES       record and mark presses through the simulated GPIO, the
///                                       controls thread and the policy: from the edge's
///                                       timestamp to the red LED, the recording state and the mark
///   bodycam-bench stall SECONDS MS FOLDER  a simulated 30 fps camera recorded into a sealing store
///                                       whose every sync stalls MS: pictures lost, queue peak
///   bodycam-bench signing SECONDS       ONVIF Media Signing's bit rate and CPU cost at 4 Mb/s, 720p30
///   bodycam-bench frames FILE           each picture's presentation time and burned-in frame number
///   bodycam-bench label FILE.pgm        the frame number burned into a grey picture (the browser check's)

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Clock.monotonicNanoseconds()
    try body()
    return Double(Clock.monotonicNanoseconds() - start) / 1e9
}

func emit(_ name: String, _ value: Double, _ unit: String) { print("BENCH \(name) \(formatDecimal(value, places: 3)) \(unit)") }

func vault(_ folder: String, office: X25519PrivateKey) throws -> EvidenceVault {
    try EvidenceVault(configuration: .init(directory: folder, deviceID: "BC-BENCH", recipients: [office.publicKey],
                                           deviceKey: try Ed25519PrivateKey(), provisioned: false))
}

func descriptor(_ sequence: UInt64) -> SegmentDescriptor {
    SegmentDescriptor(sequence: sequence, deviceID: "BC-BENCH", officerID: "", startWallNanoseconds: Clock.wallNanoseconds(),
                      codec: "h264", width: 1920, height: 1080, framesPerSecond: 30)
}

/// The effects a latency run needs: when recording started, when a mark was taken.
final class TimedEffects: PolicyEffects, Sendable {
    let times = Mutex<(started: Int64?, marked: Int64?)>((nil, nil))
    func startRecording() { times.withLock { $0.started = Clock.monotonicNanoseconds() } }
    func stopRecording() {}
    func setDuty(officerID: String, dutyID: String) {}
    func clearDuty() {}
    func preEventBuffering(_ enabled: Bool) {}
    func mark(label: String, source: String, at: Int64) { times.withLock { $0.marked = Clock.monotonicNanoseconds() } }
    func journal(_ kind: String, _ fields: [String: JSONValue]) {}
    func powerOff() {}
}

/// Worst and median latencies of `presses` record presses (each on a fresh rig, so each starts
/// a recording) and mark presses, in microseconds.
func latency(presses: Int) throws {
    var record: [Int64] = [], mark: [Int64] = []
    for _ in 0..<presses {
        let gpio = try SimulatedGPIO()
        let indicators = Indicators(backend: gpio)
        let effects = TimedEffects()
        let engine = PolicyEngine(policy: RecordingPolicy(settings: PolicySettings(), onDuty: true), indicators: indicators, effects: effects)
        let controls = try ControlsThread(backend: gpio)
        controls.start(onEvent: { engine.handle($0) }, onError: { writeStandardError("bench: controls: \($0)") })
        let pressedAt = Clock.monotonicNanoseconds()
        guard gpio.waitUntilTaken(gpio.setLevel(.record, pressed: true, at: pressedAt)),
              let ledAt = gpio.log().last(where: { $0.line == .recordLED && $0.on })?.at,
              let startedAt = effects.times.withLock({ $0.started }) else { throw GPIOError("the record press was not acted on") }
        record.append(max(ledAt, startedAt) - pressedAt)
        let markedAt = Clock.monotonicNanoseconds()
        guard gpio.waitUntilTaken(gpio.setLevel(.mark, pressed: true, at: markedAt)),
              let taken = effects.times.withLock({ $0.marked }) else { throw GPIOError("the mark press was not acted on") }
        mark.append(taken - markedAt)
        controls.stop()
        indicators.close()
    }
    for (name, values) in [("record_button_to_led", record), ("mark_button_to_mark", mark)] {
        let sorted = values.sorted()
        emit("\(name)_median_us", Double(sorted[sorted.count / 2]) / 1000, "µs")
        emit("\(name)_worst_us", Double(sorted.last!) / 1000, "µs")
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch (arguments.first, arguments.count) {
    case ("ingest", 6), ("ingest", 7):
        guard let cameras = Int(arguments[5]), cameras > 0 else { throw SystemError.file(path: arguments[5], call: "a number of cameras", errno: EINVAL) }
        let segments = arguments.count == 7 ? Int(arguments[6]) ?? 0 : 10
        guard segments > 0 else { throw SystemError.file(path: arguments[6], call: "a number of segments", errno: EINVAL) }
        try ingest(url: arguments[1], certificates: arguments[2], ca: arguments[3], store: arguments[4], cameras: cameras, segmentCount: segments)
    case ("seal", 2):
        let mebibytes = Int(arguments[1]) ?? 256
        var block = try randomBytes(16 << 10)
        let sealer = try StreamSealer(header: .object(["bench": .boolean(true)]), dataKey: try SecretBytes.random(count: 32))
        let count = mebibytes * 64
        var sink = 0
        let elapsed = try seconds {
            // In place, as SealingSink seals each fragment (the block is re-sealed each round).
            try block.withUnsafeMutableBytes { buffer in
                for _ in 0..<count { sink &+= try sealer.sealInPlace(buffer, frames: 0, ticks: 0, last: false).tag.count + buffer.count }
            }
        }
        precondition(sink > 0)
        emit("seal_16k_mb_s", Double(count * block.count) / elapsed / 1e6, "MB/s")
    case ("verify", 3):
        let count = Int(arguments[1]) ?? 1000
        let office = try X25519PrivateKey()
        let store = try vault(arguments[2], office: office)
        let fragment = try randomBytes(4096)
        for sequence in 1...UInt64(count) {
            let sink = try store.makeSink(for: descriptor(sequence))
            try fragment.withUnsafeBytes { try sink.write($0) }
            try sink.fragmentComplete(frames: 30, duration: 90_000)
            _ = try sink.finish()
        }
        var report: VerificationReport? = nil
        let elapsed = try seconds { report = try StoreVerifier.verify(store: arguments[2], authority: nil) }
        guard let report, report.isClean, report.segments == count else {
            writeStandardError("bench: the store did not verify clean: \(report?.problems.prefix(3).map(\.message) ?? [])")
            exit(1)
        }
        emit("verify_\(count)_s", elapsed, "s")
    case ("decrypt", 3):
        let mebibytes = Int(arguments[1]) ?? 64
        let office = try X25519PrivateKey()
        let store = try vault(arguments[2], office: office)
        let sink = try store.makeSink(for: descriptor(1))
        let fragment = try randomBytes(1 << 20)
        for _ in 0..<mebibytes {
            try fragment.withUnsafeBytes { try sink.write($0) }
            try sink.fragmentComplete(frames: 30, duration: 90_000)
        }
        let path = try sink.finish()
        var digest: [UInt8] = []
        let elapsed = try seconds {
            let bytes = try readWholeFile(path)
            let plain = try SealedSegmentLayout(bytes, what: path).decrypt(bytes, identity: office, allowUnsealed: false, what: path)
            digest = try SHA256.hash(plain)
        }
        precondition(digest.count == 32)
        emit("decrypt_hash_mb_s", Double(mebibytes << 20) / elapsed / 1e6, "MB/s")
    case ("latency", 2):
        try latency(presses: Int(arguments[1]) ?? 20)
    case ("stall", 4):
        try storageStall(seconds: Int(arguments[1]) ?? 20, stallMilliseconds: Int(arguments[2]) ?? 500, folder: arguments[3])
    case ("signing", 2):
        try signingOverhead(seconds: Int(arguments[1]) ?? 30)
    case ("frames", 2):
        LibAVLogging.setQuiet(true)
        try printFrameLabels(path: arguments[1])
    case ("label", 2):
        try printPictureLabel(path: arguments[1])
    default:
        writeStandardError("usage: bodycam-bench seal MIB | verify COUNT FOLDER | decrypt MIB FOLDER | latency PRESSES | stall SECONDS MS FOLDER | ingest URL CERTS CA STORE CAMERAS [SEGMENTS] | signing SECONDS | frames FILE | label FILE.pgm")
        exit(64)
    }
} catch {
    writeStandardError("bench: \(error)")
    exit(1)
}
