import ControlProtocol
import Foundation
import Glibc
import LibCrypto
import Platform
import TestSupport
import Testing
import Tokens
import Wire
@testable import Evidence

/// bodycamd as a real subprocess against what a hostile local user or a second copy of itself
/// does: recording goes on, the journal stays bounded and whole.
@Suite("bodycamd against hostile clients, a hostile store and a second daemon")
struct HostileClientTests {
    /// Runs bodycamd to its end with `arguments`: exit status and standard error.
    static func runDaemon(_ arguments: [String]) throws -> (Int32, String) {
        let result = try DaemonTests.run(DaemonTests.daemonPath, arguments)
        return (result.status, result.errors)
    }

    @Test("a second daemon on the same store, or on the same socket, refuses to start; the first records on and its store verifies")
    func secondDaemon() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let office = try DaemonTests.provision(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let (first, _) = try DaemonTests.launch(["--config", config, "--record-after", "0"])
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        let socket = directory.path + "/control.sock"
        let before = try #require(DaemonTests.waitForStatus(socket) { $0.segmentsSealed >= 1 })

        let same = try Self.runDaemon(["--config", config])
        #expect(same.0 == 1 && same.1.contains("the store is in use by another process"), "\(same)")
        // Its own socket, the same store: refused before anything in the store is touched.
        let otherSocket = DaemonTests.config(directory.path).replacingOccurrences(of: "/control.sock", with: "/other.sock")
        let sameStore = try Self.runDaemon(["--config", try DaemonTests.writeConfig(directory.path, otherSocket)])
        #expect(sameStore.0 == 1 && sameStore.1.contains("in use by another process"), "\(sameStore)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/other.sock"))
        // Its own store, the same socket: refused, and the first daemon's socket stays.
        let otherStore = DaemonTests.config(directory.path).replacingOccurrences(of: "/store\"", with: "/store2\"")
        let sameSocket = try Self.runDaemon(["--config", try DaemonTests.writeConfig(directory.path, otherStore)])
        #expect(sameSocket.0 == 1 && sameSocket.1.contains("another process is serving this control socket"), "\(sameSocket)")

        #expect(first.isRunning)
        #expect(DaemonTests.waitForStatus(socket) { $0.segmentsSealed > before.segmentsSealed + 1 } != nil, "the first records on")
        first.terminate()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        let report = try StoreVerifier.verify(store: directory.path + "/store", authority: nil)
        #expect(report.isClean, "\(report.problems)")
        let segments = try directoryEntries(directory.path + "/store").filter { $0.hasSuffix(".bcseg") }
        #expect(segments.count == report.verifiedSequences.count && !segments.isEmpty)
        _ = office
    }

    @Test("a store holding what once crashed every start (a .partial linked to /dev/zero, a folder named like one, a header of sequence -1): the daemon starts, sets them aside and records")
    func hostileStoreStart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let store = directory.path + "/store"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        #expect(symlink("/dev/zero", store + "/seg-000001-20261129T000000Z.bcseg.partial") == 0)
        #expect(mkdir(store + "/seg-000002-20261129T000001Z.bcseg.partial", 0o700) == 0)
        let header = JSONValue.object(["sequence": .integer(-1), "start_monotonic_ns": .integer(0), "created_utc": .string("2026-11-29T00:00:02.000000Z")]).canonical
        let length = UInt32(header.count)
        let bytes = SealedSegmentFormat.versionLine + [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + header
        _ = FileManager.default.createFile(atPath: store + "/seg-000003-20261129T000002Z.bcseg.partial", contents: Data(bytes))
        for round in 0..<2 {
            let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path)),
                                                       "--record-after", "0"])
            defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
            #expect(DaemonTests.waitForStatus(directory.path + "/control.sock") { $0.segmentsSealed >= 1 } != nil, "round \(round): recording")
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        let setAside = DaemonTests.journal(store).filter { $0.kind == "segment_set_aside" }
        #expect(setAside.count == 3, "each set aside once, at the first start: \(setAside.map(\.fields))")
        #expect(try names(store, suffix: ".damaged").count == 3, "kept, not deleted")
    }

    @Test("a lost device key is replaced, never silently: recording goes on, the status raises an alarm, and verify reports one replacement, not a run of bad signatures")
    func lostDeviceKey() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let office = try DaemonTests.provision(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let socket = directory.path + "/control.sock", store = directory.path + "/store"
        for round in 0..<3 {
            // Round 1: the key is gone. Round 2: another key stands in its place.
            if round == 1 { #expect(rename(directory.path + "/keys/device.key", directory.path + "/device.key.lost") == 0) }
            if round == 2 {
                unlink(directory.path + "/keys/device.key")
                try KeyFile.write(Ed25519PrivateKey(), to: directory.path + "/keys/device.key")
            }
            let (process, _) = try DaemonTests.launch(["--config", config, "--record-after", "0"])
            defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
            let status = DaemonTests.waitForStatus(socket) { $0.segmentsSealed >= 2 }
            #expect(status != nil, "round \(round) records")
            #expect(status?.alarms.contains("device key replaced") == (round > 0), "\(String(describing: status?.alarms))")
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.problems.map(\.code) == ["device_key_replaced", "device_key_replaced"], "\(report.problems.map { "\($0.code): \($0.message)" })")
        let replaced = report.problems.flatMap(\.sequences)
        #expect(report.problems.allSatisfy { !$0.sequences.isEmpty && $0.message.contains("lost and replaced") })
        // What the lost key signed still verifies; what the replacements signed waits for a
        // certificate (exported only with --force).
        #expect(Set(report.verifiedSequences).isDisjoint(with: replaced))
        #expect(report.verifiedSequences.count + replaced.count == report.segments, "\(report.verifiedSequences) \(replaced)")
        let records = DaemonTests.journal(store).filter { $0.kind == "device_key_replaced" }
        #expect(records.count == 2)
        // What was recorded after the change is still sealed to the office.
        let last = try names(store, suffix: ".bcseg").last!
        let bytes = try readWholeFile(store + "/" + last)
        #expect(try SealedSegmentLayout(bytes, what: last).decrypt(bytes, identity: office, allowUnsealed: false, what: last).count > 0)
    }

    @Test("every refusal is journaled with what was refused and why: a token that is not base64, a line that is not JSON, an unknown command from root, a sim value out of range")
    func refusalsSayWhy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) != nil)
        for line in [#"{"cmd":"stop","token":"not base64!"}"#, "garbage", #"{"cmd":"format_disk"}"#,
                     #"{"cmd":"sim","button":"PWR_BTN","action":"hold","ms":-1}"#] {
            let answer = try ControlProtocol.decode(ControlResponse.self, from: ControlClient.exchange(Array(line.utf8) + [0x0A], path: socket))
            #expect(!answer.ok && answer.error != nil, "\(line): \(answer)")
        }
        // A stop request that never completes: answered at the request deadline, not carried out.
        let slow = try connectUnixSocket(socket)
        defer { _ = close(slow) }
        _ = send(slow, #"{"cmd":"stop","token":"AAAA"#, 26, Int32(MSG_NOSIGNAL))
        let late = ControlSocketTests.answer(slow)
        #expect(late?.ok == false && late?.error == "request not complete within 2000 ms: not carried out", "\(String(describing: late))")
        process.terminate()
        process.waitUntilExit()
        let records = DaemonTests.journal(directory.path + "/store")
        let refused = records.filter { $0.kind == "control_request" }
        #expect(refused.allSatisfy { $0.fields["accepted"] == .boolean(false) && $0.fields["reason"]?.string?.isEmpty == false })
        #expect(refused.map { $0.fields["cmd"]?.string ?? "" } == ["stop", "?", "format_disk", "sim", "stop"], "\(refused.map(\.fields))")
        #expect(refused.map { $0.fields["reason"]?.string ?? "" } == [
            "stop needs \"token\" (base64)", "not a JSON object with a \"cmd\" string", "unknown command",
            "sim needs \"ms\" (0 to 60000 milliseconds)", "request not complete within 2000 ms: not carried out"])
        let denied = records.filter { $0.kind == "stop_denied" }
        #expect(denied.count == 1 && denied.first?.fields["reason"] == .string("token malformed"), "\(denied.map(\.fields))")
    }

    @Test("a run of socket attacks: held, flooding, oversized and vanishing clients; recording goes on and the journal stays small and whole")
    func attackRun() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        _ = try DaemonTests.provisionSupervisor(directory.path)
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path)),
                                                   "--record-after", "0"])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let socket = directory.path + "/control.sock"
        let start = try #require(DaemonTests.waitForStatus(socket) { $0.state == "recording" && $0.segmentsSealed >= 1 })

        // Connections held open with half a line: all but the uid's bound are refused at once.
        var held: [Int32] = []
        defer { held.forEach { _ = close($0) } }
        for _ in 0..<300 {
            guard let fd = try? connectUnixSocket(socket) else { break }
            _ = send(fd, "{\"cmd\":\"st", 10, Int32(MSG_NOSIGNAL))
            held.append(fd)
        }
        // Oversized and unknown requests, each a refusal; a stop whose token is not base64.
        let huge = Array(#"{"cmd":""#.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 60_000) + Array("\"}\n".utf8)
        var refusedAnswers = 0
        for index in 0..<400 {
            let line = index % 4 == 3 ? Array(#"{"cmd":"stop","token":"not base64!"}"#.utf8) + [0x0A] : huge
            if let answer = try? ControlProtocol.decode(ControlResponse.self, from: ControlClient.exchange(line, path: socket)), !answer.ok {
                refusedAnswers += 1
            }
        }
        #expect(refusedAnswers == 400)
        // Clients that vanish after every part of a request.
        for cut in [0, 5, 17] {
            if let fd = try? connectUnixSocket(socket) {
                _ = send(fd, #"{"cmd":"status"}"# + "\n", cut, Int32(MSG_NOSIGNAL))
                _ = close(fd)
            }
        }
        held.forEach { _ = close($0) }
        held = []

        let after = try #require(DaemonTests.waitForStatus(socket) { $0.segmentsSealed >= start.segmentsSealed + 2 },
                                 "recording went on through the attacks")
        #expect(after.frames > start.frames && after.state == "recording")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let store = directory.path + "/store"
        let journalBytes = try readWholeFile(store + "/journal.log")
        let journal = AuditJournal.parse(journalBytes, key: nil)
        #expect(journal.problems.isEmpty, "\(journal.problems)")
        let refusals = journal.records.filter {
            ($0.kind == "control_request" && $0.fields["accepted"] == .boolean(false)) || $0.kind.hasSuffix("_denied")
        }
        #expect(refusals.count <= 10, "at most the burst of full records in the window: \(refusals.count)")
        #expect(refusals.allSatisfy { ($0.fields["cmd"]?.string?.utf8.count ?? 0) < 100 }, "the 60 KB command was cut")
        let summaries = journal.records.filter { $0.kind == "control_refusals_summarised" }
        let summarised = summaries.compactMap { $0.fields["count"]?.integer }.reduce(0, +)
        #expect(Int(summarised) + refusals.count >= 400 + 100, "every refusal is in a record or a count: \(summarised)")
        #expect(journalBytes.count < 100_000, "the journal grew by \(journalBytes.count) bytes")
        #expect(journal.records.filter { $0.kind == "recording_stopped" }.map { $0.fields["source"] } == [.string("system stop")],
                "no attack stopped the recording; only SIGTERM did")
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean, "\(report.problems)")
    }
}
