import ArgumentParser
import Foundation
import LibAV
import Pipeline
import Daemon
import Configuration
import ControlProtocol
import Capture
import Evidence
import Tokens
import Policy
import Controls
import Platform
import Wire

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

@main
struct BodycamCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bodycamctl",
        abstract: "Diagnostics and evidence tool for bodycam devices.",
        discussion: """
            Exit codes: 0 success; 1 problems found or a request refused (verification failed, a \
            segment that does not decode, a denied stop, …); 2 usage error, or a file, store or \
            daemon that cannot be reached.
            """,
        subcommands: [Status.self, Stop.self, Duty.self, Mark.self, Selftest.self, Camera.self, GPIO.self, Segments.self, Events.self,
                      Storage.self, Time.self, Sim.self, Keys.self, Authority.self, Office.self, Supervisor.self, Verify.self, ExportCommand.self, VerifyExport.self, VerifyMedia.self, Offload.self, Live.self, Probe.self])
}

extension BodycamCtl {
    /// Like ParsableCommand.main(), but usage errors exit 2 (as documented), not 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || code.rawValue == 1 || code.rawValue == 2 { exit(withError: error) }
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code.rawValue == 64 ? 2 : code.rawValue)
        }
    }

    /// Exit code 2 for usage and I/O errors, as documented.
    static func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("bodycamctl: \(message)\n".utf8))
        return ExitCode(2)
    }
}
