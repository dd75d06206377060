import Foundation
import Testing
@testable import Pipeline

/// bodycamd as a real subprocess.
@Suite("bodycamd process")
struct DaemonTests {
    /// The daemon binary built beside the test runner.
    var daemonPath: String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return runner.deletingLastPathComponent().appendingPathComponent("bodycamd").path
    }

    func config(store: String, extra: String = "") -> String {
        """
        device_id = "BC-PROC-1"
        [camera]
        source = "test-pattern"
        width = 320
        height = 240
        fps = 30
        [recording]
        pre_event_seconds = 1
        segment_seconds = 1
        [storage]
        path = "\(store)"
        \(extra)
        """
    }

    func launch(_ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: daemonPath)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    @Test("SIGTERM ends a recording cleanly: exit 0, every segment sealed and decodable")
    func sigtermSeals() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let configPath = directory.path + "/bodycam.toml"
        try config(store: directory.path + "/store").write(toFile: configPath, atomically: true, encoding: .utf8)
        let (process, errors) = try launch(["--config", configPath])
        Thread.sleep(forTimeInterval: 2.5)
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.contains("SIGTERM"))
        let store = TemporaryDirectory(existing: directory.path + "/store")
        #expect(try store.files(withSuffix: ".partial").isEmpty, "the open segment was sealed")
        let segments = try store.files(withSuffix: ".mp4")
        #expect(segments.count >= 2)
        for segment in segments {
            let report = try SegmentInspector.inspect(path: segment)
            #expect(report.problems.isEmpty, "\(segment): \(report.problems)")
            #expect(report.metadata["device_id"] == "BC-PROC-1")
        }
    }

    @Test("a bad configuration exits 78 naming file, line and setting")
    func badConfiguration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let configPath = directory.path + "/bodycam.toml"
        try config(store: directory.path + "/store", extra: "[overlay]\ncorner = \"middle\"\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        let (process, errors) = try launch(["--config", configPath])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 78)
        #expect(log.contains("\(configPath):13: overlay.corner: \"middle\" is not one of"), "\(log)")
    }

    @Test("a camera that is not there is a start-up failure naming the device")
    func missingCamera() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let configPath = directory.path + "/bodycam.toml"
        let text = config(store: directory.path + "/store").replacingOccurrences(of: "source = \"test-pattern\"",
                                                                                  with: "source = \"v4l2\"\ndevice = \"/dev/video-none-such\"")
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        let (process, errors) = try launch(["--config", configPath])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(log.contains("camera /dev/video-none-such: no such device"), "\(log)")
    }
}

extension TemporaryDirectory {
    init(existing path: String) { self.path = path }
}
