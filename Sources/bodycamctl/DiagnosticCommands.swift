import ArgumentParser
import Controls
import Evidence
import Foundation
import LibAV
import LibCrypto
import Pipeline
import Policy
import V4L2
import Daemon
import Configuration
import ControlProtocol
import Capture
import Tokens
import Platform
import Wire

struct ConfigOption: ParsableArguments {
    @Option(help: "The daemon's configuration file.") var config = "/etc/bodycam/bodycam.toml"

    func load() throws -> BodycamConfiguration {
        do { return try BodycamConfiguration.load(path: config) } catch { throw BodycamCtl.failure("configuration: \(error)") }
    }
}

struct Camera: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cameras: list them, show formats, take a still.", subcommands: [List.self, Formats.self, Snapshot.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every V4L2 node, with driver, card and whether it captures.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            let nodes = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter { $0.hasPrefix("video") }.sorted()
            var entries: [CameraNode] = []
            for node in nodes {
                do {
                    let info = try V4L2Capture.describe("/dev/" + node)
                    entries.append(CameraNode(path: info.path, driver: info.driver, card: info.card, capture: info.isCapture, formats: info.formats))
                } catch {
                    entries.append(CameraNode(path: "/dev/" + node, error: "\(error)"))
                }
            }
            if global.json { try printJSON(entries); return }
            if entries.isEmpty { print("no V4L2 devices (/dev/video*)") }
            for entry in entries {
                if let error = entry.error { print("\(entry.path): \(error)"); continue }
                print("\(entry.path): \(entry.card ?? "?") (\(entry.driver ?? "?"))"
                      + (entry.capture == true ? ", capture: \((entry.formats ?? []).joined(separator: " "))" : ", not a capture node"))
            }
        }
    }

    struct Formats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The capture formats of one camera.", discussion: "Exit 1: not a capture device; 2: cannot open.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The device node or udev symlink.") var device = "/dev/bodycam/camera"
        func run() throws {
            let info = try orExit2 { try V4L2Capture.describe(device) }
            if global.json { try printJSON(CameraNode(path: info.path, driver: info.driver, card: info.card, capture: info.isCapture, formats: info.formats)) }
            else { print("\(info.path): \(info.card) (\(info.driver)): \(info.isCapture ? info.formats.joined(separator: " ") : "not a capture device")") }
            if !info.isCapture { throw ExitCode(1) }
        }
    }

    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A still image (JPEG) from the configured camera, in the configured mode.",
            discussion: "The camera must be free: stop bodycamd first (a busy camera is reported as such). Exit 0: written; 2: failed.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOption: ConfigOption
        @Option(help: "Where to write the JPEG.") var out: String
        func run() throws {
            let configuration = try configOption.load()
            LibAVLogging.setQuiet(true)
            try orExit2 {
                var camera = configuration.camera
                camera.pacing = .asFastAsPossible
                let source = try StageFactory.makeSource(camera, frameLimit: 10)
                try source.start()
                defer { try? source.close() }
                var last: VideoFrame? = nil
                // Let exposure settle: the fifth picture.
                for _ in 0..<5 { if let frame = try source.nextFrame()?.frame { last = frame } }
                guard let frame = last else { throw BodycamCtl.failure("the camera delivered no picture") }
                let picture = frame.pixelFormat == .yuv420p ? frame
                    : try PixelConverter(width: frame.width, height: frame.height, from: frame.pixelFormat, to: .yuv420p).convert(frame)
                let encoder = try EncoderContext(EncoderSettings(codecName: "mjpeg", width: frame.width, height: frame.height, framesPerSecond: 1,
                                                                 sourceFormat: .yuv420p, timeBase: Rational(1, 1), gopSize: 1,
                                                                 options: [("color_range", "jpeg")]))
                try encoder.send(picture)
                try encoder.send(nil)
                guard case .value(let packet) = try encoder.receive() else { throw BodycamCtl.failure("the JPEG encoder gave nothing") }
                try writeFileAtomically(out, packet.bytes, mode: 0o640)
                if global.json { try printJSON(SnapshotResult(file: out, width: frame.width, height: frame.height, source: source.name)) }
                else { print("\(out): \(frame.width)x\(frame.height) from \(source.name)") }
            }
        }
    }
}

struct GPIO: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpio", abstract: "GPIO chips and lines.",
                                                    subcommands: [List.self, Watch.self, TestOutputs.self])

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the buttons' edges and gestures (debounced, with the kernel's timestamps) as they happen.",
            discussion: "Uses the configured lines; run with bodycamd stopped (it holds them). Exit 0 after --seconds; 2: lines unavailable.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOption: ConfigOption
        @Option(help: "How long to watch.") var seconds = 30
        func run() throws {
            let configuration = try configOption.load()
            let backend = try orExit2 { try StageFactory.makeGPIO(configuration.controls, outputs: []) }
            defer { try? backend.close() }
            let thread = try orExit2 { try ControlsThread(backend: backend) }
            thread.debouncer = Debouncer(window: Int64(configuration.controls.debounceMilliseconds) * 1_000_000)
            thread.gestures.longPress = Int64(configuration.controls.longPressMilliseconds) * 1_000_000
            let start = Clock.monotonicNanoseconds()
            let json = global.json
            thread.start(onEvent: { event in
                // Seconds since the watch began, to the millisecond.
                let seconds = { (at: Int64) in Double((at - start) / 1_000_000) / 1000 }
                let when = { (at: Int64) in formatDecimal(seconds(at), places: 3) }
                switch event {
                case .button(let button, let gesture, let at):
                    if json { try? printJSONLine(GestureLine(button: button.rawValue, gesture: gesture.rawValue, t: seconds(at))) }
                    else { print("\(when(at)) s\t\(button.rawValue)\t\(gesture.rawValue)") }
                case .chord(let a, let b, let at):
                    if json { try? printJSONLine(GestureLine(chord: [a.rawValue, b.rawValue], t: seconds(at))) }
                    else { print("\(when(at)) s\tchord \(a.rawValue)+\(b.rawValue)") }
                default: break
                }
                fflush(nil)  // every output stream: the watcher reads line by line
            }, onError: { FileHandle.standardError.write(Data("bodycamctl: \($0)\n".utf8)) })
            // Said once the lines are held (edges from here on are seen): on standard error with
            // --json, so that a script can wait for it.
            let watching = "watching \(Button.allCases.map(\.rawValue).joined(separator: ", ")) for \(seconds) s (\(configuration.controls.backend))"
            if global.json { FileHandle.standardError.write(Data((watching + "\n").utf8)) } else { print(watching) }
            fflush(nil)
            sleep(UInt32(max(0, seconds)))
            thread.stop()
        }
    }

    struct TestOutputs: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch each output on for half a second in turn: REC_LED, STATUS_LED, BUZZER, HAPTIC (PWR_HOLD is left alone).",
            discussion: "Run with bodycamd stopped. Exit 0; 2: lines unavailable.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOption: ConfigOption
        func run() throws {
            let configuration = try configOption.load()
            let lines: [OutputLine] = [.recordLED, .statusLED, .buzzer, .haptic]
            let backend = try orExit2 { try StageFactory.makeGPIO(configuration.controls, outputs: lines) }
            defer { try? backend.close() }
            for line in lines {
                try orExit2 {
                    try backend.set(line, true)
                    usleep(500_000)
                    try backend.set(line, false)
                }
                if global.json { try printJSONLine(OutputTestLine(line: line.rawValue, ok: true)) } else { print("\(line.rawValue): on 0.5 s, off") }
                usleep(200_000)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every GPIO chip and its named lines, with who holds them.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Unnamed lines too.") var all = false
        func run() throws {
            let chips = GPIOInventory.chips()
            if global.json {
                try printJSON(chips.map { chip in
                    ChipListing(chip: chip.name, label: chip.label, lines: chip.lines.filter { all || !$0.name.isEmpty }.map {
                        ChipListing.Line(offset: $0.offset, name: $0.name, consumer: $0.consumer, output: $0.isOutput)
                    })
                })
                return
            }
            if chips.isEmpty { print("no GPIO chips (/dev/gpiochip*)") }
            for chip in chips {
                print("\(chip.name) [\(chip.label)] \(chip.lines.count) lines")
                for line in chip.lines where all || !line.name.isEmpty {
                    print("  \(line.offset)\t\(line.name.isEmpty ? "-" : line.name)\t\(line.isOutput ? "output" : "input")\t\(line.consumer.isEmpty ? "free" : "held by \(line.consumer)")")
                }
            }
        }
    }
}

/// `bodycamctl selftest`: the checks a technician runs before handing a camera out.
struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the device offline: camera, encoder, storage, keys, GPIO lines, clock, journal.",
        discussion: "One PASS/WARN/FAIL line per check, with the reason. Run with bodycamd stopped (the camera and GPIO lines are then free). Exit 0: no FAIL; 1: a check failed; 2: usage error.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOption: ConfigOption

    enum Verdict: String { case pass = "PASS", warn = "WARN", fail = "FAIL" }

    func run() throws {
        let configuration = try configOption.load()
        LibAVLogging.setQuiet(true)
        var results: [(String, Verdict, String)] = []
        var cameraFormat: FrameFormat? = nil
        results.append(("configuration", .pass, "\(configOption.config) (board \(configuration.board.isEmpty ? "-" : configuration.board))"))
        do {
            var camera = configuration.camera
            camera.pacing = .asFastAsPossible
            let source = try StageFactory.makeSource(camera, frameLimit: 30)
            try source.start()
            defer { try? source.close() }
            var frames = 0, dropped = 0
            let start = Clock.monotonicNanoseconds()
            while frames < 15, let captured = try source.nextFrame() { frames += 1; dropped += captured.droppedBefore }
            let seconds = Double(Clock.monotonicNanoseconds() - start) / 1e9
            cameraFormat = source.format
            let configured = "configured \(camera.width)x\(camera.height)@\(camera.framesPerSecond)"
            results.append(("camera", frames < 15 ? .fail : source.shortfall != nil ? .warn : .pass,
                            "\(source.name) (\(configured)): \(frames) frames in \(formatDecimal(seconds, places: 2)) s, \(dropped) dropped"
                                + (source.shortfall.map { "; BELOW CONFIGURATION: \($0)" } ?? "")))
        } catch {
            results.append(("camera", .fail, "\(error)"))
        }
        if let format = cameraFormat {
            do {
                let encoder = try makeVideoEncoder(settings: configuration.encoder, format: format)
                results.append(("encoder", .pass, encoder.name))
            } catch {
                results.append(("encoder", .fail, "\(error)"))
            }
        } else {
            results.append(("encoder", .warn, "not tried: no camera format"))
        }
        do {
            let probe = configuration.storagePath + "/.selftest-\(getpid())"
            try FileManager.default.createDirectory(atPath: configuration.storagePath, withIntermediateDirectories: true)
            try writeFileAtomically(probe, Array(repeating: 0x55, count: 65_536))
            unlink(probe)
            let free = try freeSpace(configuration.storagePath)
            results.append(("storage", .pass, "\(configuration.storagePath) writable, fsync works"))
            results.append(("free space", free < configuration.storageFloorBytes ? .fail : free < configuration.storageReserveBytes ? .warn : .pass,
                            "\(free >> 20) MiB free (reserve \(configuration.storageReserveBytes >> 20), floor \(configuration.storageFloorBytes >> 20))"))
        } catch {
            results.append(("storage", .fail, "\(error)"))
        }
        if access(configuration.deviceKeyPath, F_OK) != 0 {
            results.append(("device key", .fail, "none at \(configuration.deviceKeyPath): bodycamctl keys provision"))
        } else {
            do {
                let key = try KeyFile.readSigningKey(configuration.deviceKeyPath)
                if access(configuration.certificatePath, F_OK) != 0 {
                    results.append(("device key", .warn, "UNPROVISIONED: key \(key.publicKey.keyID) has no certificate at \(configuration.certificatePath)"))
                } else {
                    let certificate = try DeviceCertificate.read(configuration.certificatePath)
                    let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
                    let good = certificate.deviceKey == key.publicKey && certificate.deviceID == configuration.deviceID && certificate.isValid(at: now)
                    results.append(("device key", good ? .pass : .fail,
                                    "key \(key.publicKey.keyID), certificate for \(certificate.deviceID) valid \(certificate.notBefore) to \(certificate.notAfter)"
                                    + (good ? "" : ": does not match this key, device id or time")))
                }
            } catch {
                results.append(("device key", .fail, "\(error)"))
            }
        }
        do {
            guard !configuration.recipientPaths.isEmpty else { throw BodycamCtl.failure("evidence.recipients is empty") }
            let ids = try configuration.recipientPaths.map { try KeyFile.readRecipient($0).keyID }
            results.append(("recipients", .pass, ids.joined(separator: ", ")))
        } catch {
            results.append(("recipients", .fail, "\(error)"))
        }
        if configuration.controls.backend == .simulated {
            results.append(("GPIO lines", .warn, "controls.backend is \"simulated\": no real buttons"))
        } else {
            let missing = (Button.allCases.map(\.rawValue) + OutputLine.allCases.map(\.rawValue)).compactMap { name -> String? in
                if case .failure(let error) = GPIOInventory.locate(LineSpec(name: name)) { return error.description } else { return nil }
            }
            results.append(("GPIO lines", missing.isEmpty ? .pass : .fail, missing.isEmpty ? "all eight found" : missing.joined(separator: "; ")))
        }
        let clock = ClockSync.read()
        results.append(("clock", clock.synchronised ? .pass : .warn,
                        clock.synchronised ? "synchronised, estimated error \(clock.estimatedErrorMicroseconds) µs" : "not synchronised"))
        let journalPath = configuration.storagePath + "/" + EvidenceVault.journalName
        if access(journalPath, F_OK) == 0 {
            let key = try? KeyFile.readVerifyingKey(configuration.storagePath + "/device.pub")
            let parsed = AuditJournal.parse((try? readWholeFile(journalPath)) ?? [], key: key)
            results.append(("journal", parsed.problems.isEmpty ? .pass : .fail,
                            parsed.problems.isEmpty ? "\(parsed.records.count) records, chain intact" : parsed.problems.map { "line \($0.line): \($0.message)" }.joined(separator: "; ")))
        } else {
            results.append(("journal", .warn, "no journal yet at \(journalPath)"))
        }

        if global.json {
            try printJSON(results.map { CheckResult(check: $0.0, verdict: $0.1.rawValue, reason: $0.2) })
        } else {
            for (name, verdict, reason) in results { print("\(verdict.rawValue) \(name): \(reason)") }
        }
        if results.contains(where: { $0.1 == .fail }) { throw ExitCode(1) }
    }
}
