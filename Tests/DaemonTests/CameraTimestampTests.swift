import Foundation
import Glibc
import Platform
import TestSupport
import Testing
@testable import Evidence

/// A daemon configuration in `directory` whose camera is the simulated V4L2 driver with
/// `settings` (TOML lines of `[camera]`); its path.
func simulatedCameraConfig(_ directory: String, _ settings: String) throws -> String {
    try DaemonTests.writeConfig(directory, DaemonTests.config(directory)
        .replacingOccurrences(of: "source = \"test-pattern\"", with: "source = \"simulated-v4l2\"\n" + settings))
}

/// bodycamd against a camera whose buffer timestamps cannot be trusted: the simulated V4L2 driver
/// (`camera.source = "simulated-v4l2"`) with each timestamp fault real drivers have.
@Suite("Camera timestamps through the daemon")
struct CameraTimestampTests {
    @Test("a driver whose timestamps stand still, are 0, are on another clock or step back: journaled once, and the segments keep the real timeline",
          arguments: ["frozen", "zero", "not-monotonic", "step-back"])
    func untrustedTimestamps(fault: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let config = try simulatedCameraConfig(directory.path, "simulate_timestamps = \"\(fault)\"")
        let socket = directory.path + "/control.sock", store = directory.path + "/store"
        let (process, errors) = try DaemonTests.launch(["--config", config, "--record-after", "0"])
        let started = Clock.monotonicNanoseconds()
        // Four one-second segments sealed: with the driver's times, a frozen or zero clock gives
        // one segment that never ends, and a step back a segment of a negative second.
        let reached = DaemonTests.waitForStatus(socket) { $0.state == "recording" && $0.segmentsSealed >= 4 }
        process.terminate()
        process.waitUntilExit()
        let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e9
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(reached != nil, "\(log)")
        #expect(process.terminationStatus == 0, "\(log)")

        let untrusted = DaemonTests.journal(store).filter { $0.kind == "camera_timestamps_untrusted" }
        #expect(untrusted.count == 1, "journaled once: \(untrusted.map(\.fields))")
        #expect(untrusted.first?.fields["reason"]?.string?.contains("the dequeue time is used instead") == true)
        let manifests = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".manifest") }.sorted()
        let bodies = try manifests.map { try Manifest.read(try readWholeFile(store + "/" + $0), what: $0).document.body }
        let durations = bodies.compactMap { $0["duration_us"]?.integer }
        #expect(durations.count == bodies.count && bodies.count >= 4)
        // Every segment a real length (one second, the last one whatever was left), and the
        // timeline no longer than the daemon ran: its last picture's display time (one frame,
        // 1/30 s) may run past the stop, and nothing else (a daemon that starts fast leaves
        // almost no time between its launch and its first picture).
        #expect(durations.dropLast().allSatisfy { (900_000...1_100_000).contains($0) }, "\(durations)")
        let total = Double(durations.reduce(0, +)) / 1e6
        #expect(total >= 3.5 && total <= elapsed + 1.0 / 30, "\(total) s of timeline in \(elapsed) s")
        #expect(try StoreVerifier.verify(store: store, authority: nil).isClean)
    }
}

/// bodycamd with a camera that cannot reach the configured rate.
@Suite("A camera below its configuration")
struct CameraBelowConfigurationTests {
    @Test("a camera whose top rate is below the configured one: journaled, a status alarm, and selftest warns with what it gives against what was configured")
    func belowConfiguration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let config = try simulatedCameraConfig(directory.path, "simulate_max_fps = 10")
        let socket = directory.path + "/control.sock", store = directory.path + "/store"
        let (process, errors) = try DaemonTests.launch(["--config", config])
        let status = DaemonTests.waitForStatus(socket) { $0.alarms.contains("camera below configuration") }
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status != nil, "\(log)")
        #expect(log.contains("CAMERA BELOW CONFIGURATION"), "\(log)")
        let records = DaemonTests.journal(store).filter { $0.kind == "camera_below_configuration" }
        #expect(records.count == 1)
        #expect(records.first?.fields["reason"]?.string?.contains("at 10 fps, less than the configured 320x240 at 30 fps") == true,
                "\(records.first?.fields ?? [:])")

        let ctl = URL(fileURLWithPath: DaemonTests.daemonPath).deletingLastPathComponent().appendingPathComponent("bodycamctl").path
        let selftest = try DaemonTests.run(ctl, ["selftest", "--config", config])
        let line = selftest.output.split(separator: "\n").first { $0.contains("camera") && !$0.contains("configuration ") } ?? ""
        #expect(line.hasPrefix("WARN") && line.contains("configured 320x240@30") && line.contains("BELOW CONFIGURATION"), "\(selftest.output)")
    }
}
