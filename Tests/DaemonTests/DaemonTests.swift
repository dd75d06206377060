import Capture
import Configuration
import ControlProtocol
import Controls
import Daemon
import LibAV
import Platform
import Policy
import TestSupport
import Tokens
import Wire
import Foundation
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline
import Export

/// bodycamd as a real subprocess.
@Suite("bodycamd process")
struct DaemonTests {
    /// The daemon binary built beside the test runner.
    static var daemonPath: String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return runner.deletingLastPathComponent().appendingPathComponent("bodycamd").path
    }

    /// Writes an office identity's public key into DIRECTORY/keys; returns the identity.
    static func provision(_ directory: String) throws -> X25519PrivateKey {
        try FileManager.default.createDirectory(atPath: directory + "/keys", withIntermediateDirectories: true)
        let office = try X25519PrivateKey()
        try KeyFile.write(office.publicKey, to: directory + "/keys/office.pub")
        return office
    }

    /// A supervisor whose public key the device trusts (DIRECTORY/keys/supervisors); returns its key.
    static func provisionSupervisor(_ directory: String) throws -> Ed25519PrivateKey {
        let supervisor = try Ed25519PrivateKey()
        try FileManager.default.createDirectory(atPath: directory + "/keys/supervisors", withIntermediateDirectories: true)
        try KeyFile.write(supervisor.publicKey, to: directory + "/keys/supervisors/sgt.pub")
        return supervisor
    }

    static func config(_ directory: String, extra: String = "", segmentSeconds: Int = 1, storage: [String] = []) -> String {
        let lines = [
            "device_id = \"BC-PROC-1\"",
            "[camera]",
            "source = \"test-pattern\"",
            "width = 320",
            "height = 240",
            "fps = 30",
            "[recording]",
            "pre_event_seconds = 1",
            "segment_seconds = \(segmentSeconds)",
            "[storage]",
            "path = \"\(directory)/store\"",
        ] + storage + [
            "[evidence]",
            "device_key = \"\(directory)/keys/device.key\"",
            "certificate = \"\(directory)/keys/device.certificate\"",
            "recipients = [\"\(directory)/keys/office.pub\"]",
            "[controls]",
            "backend = \"simulated\"",
            "[policy]",
            "on_duty_at_start = true",
            "supervisors = \"\(directory)/keys/supervisors\"",
            "[control]",
            "socket = \"\(directory)/control.sock\"",
        ]
        return lines.joined(separator: "\n") + "\n" + extra
    }

    static func launch(_ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: daemonPath)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    /// Stops a daemon `launch` started (SIGTERM, as systemd does), expects it to end with 0 and
    /// returns what it logged.
    @discardableResult
    static func stop(_ process: Process, _ errors: Pipe) -> String {
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")
        return log
    }

    /// `TestSupport.eventually`: a wait on an event the daemon makes visible, with a deadline.
    static func eventually(within seconds: Double = 30, _ condition: () throws -> Bool) -> Bool {
        TestSupport.eventually(within: seconds, condition)
    }

    /// The daemon's status over its socket, once it answers; nil if it did not within the deadline.
    static func status(_ socket: String) -> StatusReport? {
        try? ControlClient.send(.status, path: socket, timeoutSeconds: 5).status
    }

    /// Waits until the daemon at `socket` answers `status` and its report satisfies `condition`.
    @discardableResult
    static func waitForStatus(_ socket: String, within seconds: Double = 30, _ condition: (StatusReport) -> Bool = { _ in true }) -> StatusReport? {
        var last: StatusReport?
        let met = eventually(within: seconds) {
            last = status(socket)
            return last.map(condition) ?? false
        }
        return met ? last : nil
    }

    /// The records of a store's journal.
    static func journal(_ store: String) -> [JournalRecord] {
        AuditJournal.parse((try? readWholeFile(store + "/journal.log")) ?? [], key: nil).records
    }

    /// Runs a program to its end: its exit status, standard output and standard error.
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func writeConfig(_ directory: String, _ text: String) throws -> String {
        let path = directory + "/bodycam.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("SIGTERM ends a recording cleanly: exit 0, every segment sealed, the store verifies and decrypts; libavcodec was never loaded")
    func sigtermSeals() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let office = try Self.provision(directory.path)
        let (process, errors) = try Self.launch(["--config", try Self.writeConfig(directory.path, Self.config(directory.path)), "--record-after", "0"])
        // Two segments sealed while recording, then the stop seals the open one.
        let seen = Self.waitForStatus(directory.path + "/control.sock") { $0.segmentsSealed >= 2 }
        #expect(seen != nil)
        // The recording path calls libx264 itself and writes its own MP4; the uplink is not
        // configured: libavcodec, libavformat and libcurl are not in the recording process.
        let maps = String(decoding: try readWholeFile("/proc/\(process.processIdentifier)/maps"), as: UTF8.self)
        #expect(maps.contains("/libx264.so"), "the encoder's library is mapped")
        for library in ["libavcodec", "libavformat", "libcurl"] { #expect(!maps.contains(library), "\(library) is loaded") }
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.contains("SIGTERM"))
        #expect(log.contains("UNPROVISIONED DEVICE"), "no certificate was given")
        let store = directory.path + "/store"
        #expect(try names(store, suffix: ".partial").isEmpty, "the open segment was sealed")
        #expect(try names(store, suffix: ".mp4").isEmpty, "no plaintext on storage")
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.segments >= 2)
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil)
        #expect(journal.records.first?.kind == "boot")
        #expect(journal.records.last?.kind == "shutdown" && journal.records.last?.fields["reason"] == .string("SIGTERM"))
        #expect(journal.records.contains { $0.kind == "recording_stopped" && $0.fields["source"] == .string("system stop") })
        // The journal's head as status gave it while recording is a record the journal still
        // holds, and verify takes it.
        let head = JournalHead(records: seen?.journalRecords ?? 0, sha256: seen?.journalHeadSHA256 ?? "")
        #expect(head.records >= 3 && journal.records.first { $0.sequence == head.records }.map { Hex.encode($0.hash) } == head.sha256)
        #expect(try StoreVerifier.verify(store: store, authority: nil, journalHead: head).isClean)
        let first = try names(store, suffix: ".bcseg")[0]
        let bytes = try readWholeFile(store + "/" + first)
        let plain = try SealedSegmentLayout(bytes, what: first).decrypt(bytes, identity: office, allowUnsealed: false, what: first)
        _ = FileManager.default.createFile(atPath: directory.path + "/first.mp4", contents: Data(plain))
        let inspected = try SegmentInspector.inspect(path: directory.path + "/first.mp4")
        #expect(inspected.problems.isEmpty && inspected.metadata["device_id"] == "BC-PROC-1")
    }

    @Test("bodycamd --help names its options and exit codes; a usage mistake exits 64 naming it")
    func usage() throws {
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let result = try Self.run(Self.daemonPath, arguments)
            return (result.status, result.output + result.errors)
        }
        let help = try run(["--help"])
        #expect(help.0 == 0)
        for words in ["USAGE: bodycamd", "--config", "--record-after", "--duration", "78 configuration error"] {
            #expect(help.1.contains(words), "help lacks \(words)")
        }
        let unknown = try run(["--bogus"])
        #expect(unknown.0 == 64 && unknown.1.contains("unknown argument --bogus") && unknown.1.contains("USAGE"), "\(unknown)")
        let negative = try run(["--duration=-5"])
        #expect(negative.0 == 64 && negative.1.contains("--duration needs a number of seconds"), "\(negative)")
        let missing = try run(["--config"])
        #expect(missing.0 == 64 && missing.1.contains("--config needs a value"), "\(missing)")
    }

    @Test("a control socket that cannot be made stops the start-up with exit 1 naming it, after the camera and the controls opened")
    func socketFailsLate() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try Self.provision(directory.path)
        // The socket's folder is a regular file: bind fails, late in the start-up.
        _ = FileManager.default.createFile(atPath: directory.path + "/run", contents: Data())
        let text = Self.config(directory.path).replacingOccurrences(of: "socket = \"\(directory.path)/control.sock\"",
                                                                   with: "socket = \"\(directory.path)/run/control.sock\"")
        let (process, errors) = try Self.launch(["--config", try Self.writeConfig(directory.path, text)])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(log)")
        #expect(log.contains("control socket") && log.contains("bind"), "\(log)")
    }

    @Test("no recipient keys: the daemon refuses to record (exit 78) rather than store plaintext")
    func noRecipients() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let text = Self.config(directory.path).replacingOccurrences(of: "recipients = [", with: "# recipients = [")
        let (process, errors) = try Self.launch(["--config", try Self.writeConfig(directory.path, text), "--duration", "1"])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 78)
        #expect(log.contains("evidence.recipients is empty"), "\(log)")
    }

    @Test("a recipient key of low order (all zeros) stops the start-up naming the file, before anything is recorded")
    func lowOrderRecipient() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try Self.provision(directory.path)
        let keyFile = directory.path + "/keys/office.pub"
        try "bodycam-x25519-public/1 \(Base64.encode([UInt8](repeating: 0, count: 32)))\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let (process, errors) = try Self.launch(["--config", try Self.writeConfig(directory.path, Self.config(directory.path)), "--record-after", "0"])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(log.contains("\(keyFile): not a usable recipient key") && log.contains("low-order point"), "\(log)")
        #expect(((try? directoryEntries(directory.path + "/store")) ?? []).filter { $0.hasSuffix(".bcseg") }.isEmpty)
    }

    @Test("a bad configuration exits 78 naming file, line and setting")
    func badConfiguration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = try Self.writeConfig(directory.path, Self.config(directory.path, extra: "[overlay]\ncorner = \"middle\"\n"))
        let (process, errors) = try Self.launch(["--config", path])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 78)
        #expect(log.contains("\(path):24: overlay.corner: \"middle\" is not one of"), "\(log)")
    }

    @Test("a camera that is not there at start: the daemon runs degraded, with the alarm in status and the journal, and stops cleanly")
    func missingCamera() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try Self.provision(directory.path)
        let text = Self.config(directory.path).replacingOccurrences(of: "source = \"test-pattern\"",
                                                                   with: "source = \"v4l2\"\ndevice = \"/dev/video-none-such\"")
        let (process, errors) = try Self.launch(["--config", try Self.writeConfig(directory.path, text)])
        let status = Self.waitForStatus(directory.path + "/control.sock") { $0.alarms.contains("camera missing") }
        #expect(status != nil && status?.frames == 0, "\(String(describing: status))")
        #expect(process.isRunning)
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.contains("CAMERA MISSING") && log.contains("camera /dev/video-none-such: no such device"), "\(log)")
        let lost = Self.journal(directory.path + "/store").filter { $0.kind == "camera_lost" }
        #expect(lost.count == 1 && lost[0].fields["reason"]?.string?.contains("no such device") == true)
    }
}
