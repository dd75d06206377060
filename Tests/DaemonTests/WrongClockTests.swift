import ControlProtocol
import Foundation
import Glibc
import Platform
import Policy
import TestSupport
import Testing
import Tokens
import Wire
@testable import Evidence

/// bodycamd started with its wall clock in 1970, as a board without a battery-backed clock boots,
/// under Debian's `faketime` (libfaketime; `make test` installs it), which runs the daemon as its
/// child with the preload set. Only the daemon's clock is faked: the test, and the tokens it
/// issues, keep the real time. libfaketime moves CLOCK_MONOTONIC with the wall clock, so the
/// daemon sees a clock that is wrong but steady; steps are tested through the recorder's clock
/// seam (PipelineTests/ClockTests) and in the rig (clock).
@Suite("A wrong clock at start")
struct WrongClockTests {
    static let faketime = "/usr/bin/faketime"

    /// The daemon `faketime` (pid `parent`) runs: its one child, from the kernel's list.
    static func child(of parent: Int32) -> Int32? {
        let text = (try? String(contentsOfFile: "/proc/\(parent)/task/\(parent)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }

    @Test("clock at 1970: recording goes on flagged (manifests, journal, status alarm); a duty token issued at the real time is taken and marked unchecked; a stop token is refused for the untrusted clock")
    func clockIn1970() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.faketime),
                     "Debian's faketime package is needed (make test installs it)")
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let supervisor = try DaemonTests.provisionSupervisor(directory.path)
        let text = DaemonTests.config(directory.path).replacingOccurrences(of: "on_duty_at_start = true", with: "on_duty_at_start = false")
        let config = try DaemonTests.writeConfig(directory.path, text)
        let socket = directory.path + "/control.sock", store = directory.path + "/store"

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.faketime)
        process.arguments = ["1970-01-01 00:00:05", DaemonTests.daemonPath, "--config", config]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()

        // SIGTERM to the daemon itself (faketime does not pass signals on); faketime exits with
        // the daemon's status.
        func log() -> String {
            if process.isRunning, let daemon = Self.child(of: process.processIdentifier) { kill(daemon, SIGTERM) }
            process.waitUntilExit()
            return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        guard let first = DaemonTests.waitForStatus(socket) else {
            Issue.record("the daemon under libfaketime did not answer: \(log())")
            return
        }
        #expect(first.alarms.contains("clock implausible"), "\(first.alarms)")
        // Issued by the supervisor at the real time: "not yet valid" by the daemon's clock.
        func token(_ kind: AuthorizationToken.Kind, _ action: String) throws -> [UInt8] {
            try AuthorizationToken.issue(kind, deviceID: "BC-PROC-1", issuer: "sgt", key: supervisor, minutes: 5, action: action,
                                         officerID: "OFC-7", dutyID: "D-1970").document.bytes
        }
        let duty = try ControlClient.send(.duty(token: try token(.duty, "start")), path: socket)
        #expect(duty.ok && duty.state == "standby", "a duty start fails toward recording: \(duty)")
        let record = try ControlClient.send(.simulateButton(button: "REC_BTN", action: .click, milliseconds: nil), path: socket)
        #expect(record.state == "recording", "\(record)")
        #expect(DaemonTests.waitForStatus(socket) { $0.state == "recording" && $0.segmentsSealed >= 2 } != nil)
        let stop = try ControlClient.send(.stop(token: try token(.stop, "stop")), path: socket)
        #expect(!stop.ok && stop.state == "recording", "a stop needs a clock that can be trusted: \(stop)")
        let errorLog = log()
        #expect(process.terminationStatus == 0, "\(errorLog)")
        #expect(errorLog.contains("CLOCK IMPLAUSIBLE"), "\(errorLog)")

        let journal = DaemonTests.journal(store)
        #expect(journal.first?.utc.hasPrefix("1970-01-01T") == true, "the daemon's clock was not faked: \(journal.first?.utc ?? "-")")
        #expect(journal.filter { $0.kind == "clock_implausible" }.count == 1, "journaled once")
        let started = journal.first { $0.kind == "duty_started" }
        #expect(started?.fields["clock_unchecked"] == .boolean(true), "\(started?.fields ?? [:])")
        #expect(started?.fields["duty_id"] == .string("D-1970"))
        let denied = journal.first { $0.kind == "stop_denied" }
        #expect(denied?.fields["reason"]?.string?.contains(TokenRefusal.clockUntrusted.rawValue) == true, "\(denied?.fields ?? [:])")

        let names = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".manifest") }
        #expect(names.count >= 2)
        for name in names {
            let body = try Manifest.read(try readWholeFile(store + "/" + name), what: name).document.body
            #expect(body["clock_plausible"] == .boolean(false), "\(name)")
            #expect(body["start_utc"]?.string?.hasPrefix("1970-01-01T") == true, "\(name)")
            #expect(body["officer_id"] == .string("OFC-7"), "\(name)")
        }
        // Authentic footage with wrong times: every segment verifies; the one problem is the clock.
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(Set(report.problems.map(\.code)) == ["clock_implausible"], "\(report.problems)")
        #expect(report.verifiedSequences.count == report.segments && report.segments == names.count)
    }
}
