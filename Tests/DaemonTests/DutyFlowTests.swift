import Capture
import Configuration
import ControlProtocol
import Daemon
import LibAV
import Platform
import TestSupport
import Tokens
import Wire
import Controls
import Foundation
import LibCrypto
import Policy
import Testing
@testable import Evidence
@testable import Pipeline

@Suite("A duty through the control socket")
struct DutyFlowTests {
    func ask(_ socket: String, _ request: [String: JSONValue]) throws -> JSONValue {
        try controlRequest(.object(request), path: socket)
    }

    @Test("duty start, record, marks, refused stops, an authorised stop, a replay, duty end: all journaled, marks in the manifests, the store verifies")
    func duty() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let supervisor = try DaemonTests.provisionSupervisor(directory.path)
        let text = DaemonTests.config(directory.path).replacingOccurrences(of: "on_duty_at_start = true", with: "on_duty_at_start = false")
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, text)])
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) != nil)
        func token(_ kind: AuthorizationToken.Kind, _ action: String, device: String = "BC-PROC-1") throws -> JSONValue {
            .string(Base64.encode(try AuthorizationToken.issue(kind, deviceID: device, issuer: "sgt", key: supervisor, minutes: 5, action: action,
                                                               officerID: "OFC-3", dutyID: "D-9").document.bytes))
        }

        #expect(try ask(socket, ["cmd": .string("sim"), "button": .string("REC_BTN"), "action": .string("click")])["state"] == .string("off-duty"))
        #expect(try ask(socket, ["cmd": .string("duty"), "token": try token(.duty, "start")])["state"] == .string("standby"))
        #expect(try ask(socket, ["cmd": .string("sim"), "button": .string("REC_BTN"), "action": .string("click")])["state"] == .string("recording"))
        // Marks land in the segments recorded while they are made: wait for the first seal.
        let before = try #require(DaemonTests.waitForStatus(socket)).segmentsSealed
        #expect(DaemonTests.waitForStatus(socket) { $0.segmentsSealed > before } != nil)
        _ = try ask(socket, ["cmd": .string("sim"), "button": .string("MARK_BTN"), "action": .string("click")])
        #expect(try ask(socket, ["cmd": .string("mark"), "label": .string("vehicle search")])["ok"] == .boolean(true))
        _ = try ask(socket, ["cmd": .string("sim"), "button": .string("REC_BTN"), "action": .string("click")])
        let foreign = try ask(socket, ["cmd": .string("stop"), "token": try token(.stop, "stop", device: "BC-OTHER")])
        #expect(foreign["ok"] == .boolean(false) && foreign["state"] == .string("recording"))
        let stopToken = try token(.stop, "stop")
        let marked = try #require(DaemonTests.waitForStatus(socket)).segmentsSealed
        #expect(DaemonTests.waitForStatus(socket) { $0.segmentsSealed > marked } != nil)
        #expect(try ask(socket, ["cmd": .string("stop"), "token": stopToken])["state"] == .string("standby"))
        #expect(try ask(socket, ["cmd": .string("stop"), "token": stopToken])["ok"] == .boolean(false), "a replay")
        #expect(try ask(socket, ["cmd": .string("duty"), "token": try token(.duty, "end")])["state"] == .string("off-duty"))
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")

        let store = directory.path + "/store"
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean && report.segments >= 2, "\(report.problems)")
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil)
        let kinds = journal.records.map(\.kind)
        for expected in ["record_refused", "duty_started", "recording_started", "mark", "stop_denied", "recording_stopped", "duty_ended", "control_request", "shutdown"] {
            #expect(kinds.contains(expected), "journal lacks \(expected)")
        }
        #expect(journal.records.filter { $0.kind == "stop_denied" }.count == 3, "a press, a foreign token, a replay")
        let marks = try names(store, suffix: ".manifest").flatMap { name in
            (try Manifest.read(try readWholeFile(store + "/" + name), what: name).document.body["marks"]?.array ?? [])
        }
        #expect(marks.count == 2)
        #expect(marks.contains { $0["label"] == .string("vehicle search") })
        let officers = try names(store, suffix: ".manifest").map { try Manifest.read(try readWholeFile(store + "/" + $0), what: $0).document.body }
        #expect(officers.allSatisfy { $0["officer_id"] == .string("OFC-3") && $0["duty_id"] == .string("D-9") },
                "\(officers.map { "\($0["officer_id"]!) \($0["duty_id"]!)" })")
    }
}

@Suite("Control socket access by peer")
struct SocketAccessTests {
    /// Runs bodycamctl as another user: uid 65534 with group `gid` only (65534: nobody, no group
    /// of ours), as the kernel will report it to the daemon.
    func asNobody(_ arguments: [String], gid: Int = 65534) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        let ctl = URL(fileURLWithPath: DaemonTests.daemonPath).deletingLastPathComponent().appendingPathComponent("bodycamctl").path
        process.arguments = ["--reuid=65534", "--regid=\(gid)", "--clear-groups", ctl] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test("a peer of another uid may present a token but not read status or simulate; each refusal is journaled with its uid",
          .enabled(if: getuid() == 0, "changing to another uid needs root"))
    func otherUID() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let supervisor = try DaemonTests.provisionSupervisor(directory.path)
        // The test folder must be reachable by the other user.
        chmod(directory.path, 0o755)
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path)), "--record-after", "0"])
        defer { process.terminate(); process.waitUntilExit() }
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) { $0.frames > 0 } != nil)

        let status = try asNobody(["status", "--socket", socket])
        #expect(status.0 == 1 && status.1.contains("permission denied: status needs technician"), "\(status)")
        let sim = try asNobody(["sim", "click", "REC_BTN", "--socket", socket])
        #expect(sim.0 == 1 && sim.1.contains("needs root"), "\(sim)")
        let reload = try asNobody(["supervisor", "reload", "--socket", socket])
        #expect(reload.0 == 1 && reload.1.contains("reload_supervisors needs root"), "\(reload)")
        let tokenPath = directory.path + "/stop.token"
        try writeFileAtomically(tokenPath, try AuthorizationToken.issue(.stop, deviceID: "BC-PROC-1", issuer: "sgt", key: supervisor, minutes: 5).document.bytes, mode: 0o644)
        let stop = try asNobody(["stop", "--token", tokenPath, "--socket", socket])
        #expect(stop.0 == 0 && stop.1.contains("recording_stopped"), "\(stop)")
        // Root reads status.
        #expect(try controlRequest(.object(["cmd": .string("status")]), path: socket)["state"] == .string("standby"))
        var mode = stat()
        #expect(stat(socket, &mode) == 0 && mode.st_mode & 0o777 == 0o666, "anyone reaches the socket; the daemon decides")

        process.terminate()
        process.waitUntilExit()
        let journal = AuditJournal.parse(try readWholeFile(directory.path + "/store/journal.log"), key: nil)
        let refused = journal.records.filter { $0.kind == "control_request" && $0.fields["accepted"] == .boolean(false) }
        #expect(refused.count == 3 && refused.allSatisfy { $0.fields["uid"] == .integer(65534) })
    }

    @Test("a member of the technician group (its gid from the kernel, no other group of ours) reads status and marks; a member of another group does not",
          .enabled(if: getuid() == 0, "changing to another uid needs root"))
    func technicianGroup() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        chmod(directory.path, 0o755)
        // Debian's "users" group (gid 100) stands for the technicians' group here.
        let config = DaemonTests.config(directory.path).replacingOccurrences(of: "[control]", with: "[control]\ntechnician_group = \"users\"")
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config)])
        defer { process.terminate(); process.waitUntilExit() }
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) != nil)
        let technician = try asNobody(["status", "--socket", socket], gid: 100)
        #expect(technician.0 == 0 && technician.1.contains("standby"), "\(technician)")
        let mark = try asNobody(["mark", "--label", "gate 3", "--socket", socket], gid: 100)
        #expect(mark.0 == 0, "\(mark)")
        let other = try asNobody(["status", "--socket", socket], gid: 65534)
        #expect(other.0 == 1 && other.1.contains("needs technician"), "\(other)")
    }

    @Test("root reloads the supervisors' keys and installs a certificate; bad ones are refused, and everything is journaled")
    func keyAndConfigurationChanges() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        _ = try DaemonTests.provisionSupervisor(directory.path)
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path)), "--record-after", "0"])
        defer { process.terminate(); process.waitUntilExit() }
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) { $0.frames > 0 } != nil)
        func request(_ fields: [String: JSONValue]) throws -> JSONValue { try controlRequest(.object(fields), path: socket) }
        func stop(_ key: Ed25519PrivateKey) throws -> JSONValue {
            let token = try AuthorizationToken.issue(.stop, deviceID: "BC-PROC-1", issuer: "new", key: key, minutes: 5)
            return try request(["cmd": .string("stop"), "token": .string(Base64.encode(token.document.bytes))])
        }

        // A supervisor whose key is not trusted yet: refused; trusted after a reload.
        let newcomer = try Ed25519PrivateKey()
        #expect(try stop(newcomer)["ok"] == .boolean(false))
        try KeyFile.write(newcomer.publicKey, to: directory.path + "/keys/supervisors/newcomer.pub")
        let reloaded = try request(["cmd": .string("reload_supervisors")])
        #expect(reloaded["ok"] == .boolean(true) && reloaded["key_ids"]?.array?.count == 2, "\(reloaded)")
        #expect(try stop(newcomer)["ok"] == .boolean(true))
        // A folder that cannot be read keeps the old keys.
        try "not a key".write(toFile: directory.path + "/keys/supervisors/broken.pub", atomically: true, encoding: .utf8)
        #expect(try request(["cmd": .string("reload_supervisors")])["ok"] == .boolean(false))

        // The device made its own key at start; the authority certifies it.
        let deviceKey = try KeyFile.readSigningKey(directory.path + "/keys/device.key")
        let authority = try Ed25519PrivateKey()
        let good = try DeviceCertificate.issue(deviceID: "BC-PROC-1", deviceKey: deviceKey.publicKey, authority: authority,
                                               notBefore: "2020-01-01T00:00:00.000000Z", notAfter: "2099-01-01T00:00:00.000000Z")
        let other = try DeviceCertificate.issue(deviceID: "BC-PROC-1", deviceKey: try Ed25519PrivateKey().publicKey, authority: authority,
                                                notBefore: "2020-01-01T00:00:00.000000Z", notAfter: "2099-01-01T00:00:00.000000Z")
        let refused = try request(["cmd": .string("install_certificate"), "certificate": .string(Base64.encode(other.document.bytes))])
        #expect(refused["ok"] == .boolean(false) && refused["error"]?.string?.contains("another key") == true, "\(refused)")
        let installed = try request(["cmd": .string("install_certificate"), "certificate": .string(Base64.encode(good.document.bytes))])
        #expect(installed["ok"] == .boolean(true), "\(installed)")
        #expect(try readWholeFile(directory.path + "/keys/device.certificate") == good.document.bytes)
        #expect(try readWholeFile(directory.path + "/store/device.certificate") == good.document.bytes)

        process.terminate()
        process.waitUntilExit()
        let kinds = AuditJournal.parse(try readWholeFile(directory.path + "/store/journal.log"), key: nil).records.map(\.kind)
        #expect(kinds.filter { $0 == "supervisors_reloaded" }.count == 1 && kinds.contains("supervisors_reload_failed"))
        #expect(kinds.contains("certificate_refused") && kinds.contains("certificate_installed"))
    }
}

/// One request as the wire carries it (a JSON object on one line), and the answer parsed back:
/// the tests speak the protocol by hand, so they check it as docs/CONTROL.md gives it.
func controlRequest(_ request: JSONValue, path: String) throws -> JSONValue {
    try JSONParser.parse(ControlClient.exchange(request.canonical + [0x0A], path: path))
}
