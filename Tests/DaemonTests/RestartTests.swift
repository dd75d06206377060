import ControlProtocol
import Foundation
import Glibc
import Platform
import TestSupport
import Testing
import Tokens
import Wire
@testable import Evidence

/// bodycamd restarted mid-duty: the journal carries the duty and the recording over.
@Suite("Restarts resume the duty and the recording")
struct RestartTests {
    @Test("SIGKILL, then SIGTERM, while recording: each restart records again by itself, journaled with how the run ended and the gap; after an authorised stop a restart does not record")
    func resume() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let supervisor = try DaemonTests.provisionSupervisor(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let socket = directory.path + "/control.sock", store = directory.path + "/store"
        func launch(_ extra: [String] = []) throws -> Process {
            let (process, _) = try DaemonTests.launch(["--config", config] + extra)
            return process
        }
        // Recording, then killed without a word.
        var process = try launch(["--record-after", "0"])
        #expect(DaemonTests.waitForStatus(socket) { $0.state == "recording" && $0.segmentsSealed >= 1 } != nil)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Back with no button pressed: recording again.
        process = try launch()
        #expect(DaemonTests.waitForStatus(socket) { $0.state == "recording" && $0.frames > 0 } != nil, "resumed after SIGKILL")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // An OS shutdown (SIGTERM) is not an authorised stop either.
        process = try launch()
        #expect(DaemonTests.waitForStatus(socket) { $0.state == "recording" } != nil, "resumed after SIGTERM")
        // An authorised stop ends the recording; the next start stays in standby.
        let token = try AuthorizationToken.issue(.stop, deviceID: "BC-PROC-1", issuer: "sgt", key: supervisor, minutes: 5)
        let stopped = try ControlClient.send(.stop(token: token.document.bytes), path: socket)
        #expect(stopped.ok && stopped.state == "standby", "\(stopped)")
        process.terminate()
        process.waitUntilExit()
        process = try launch()
        let after = DaemonTests.waitForStatus(socket)
        #expect(after?.state == "standby")
        process.terminate()
        process.waitUntilExit()

        let resumed = DaemonTests.journal(store).filter { $0.kind == "recording_resumed" }
        #expect(resumed.count == 2, "\(resumed.map(\.fields))")
        #expect(resumed.first?.fields["previous_end"]?.string?.hasPrefix("unclean") == true)
        #expect(resumed.last?.fields["previous_end"] == .string("system stop (SIGTERM)"))
        #expect(resumed.allSatisfy { ($0.fields["gap_ms"]?.integer ?? -1) >= 0 })
        #expect(try StoreVerifier.verify(store: store, authority: nil).isClean)
    }
}
