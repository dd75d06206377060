import ArgumentParser
import Foundation
import LibAV
import Pipeline

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
            Exit codes: 0 success; 1 problems found (verification failed, a segment that does not \
            decode, …); 2 usage or I/O error.
            """,
        subcommands: [Status.self, Stop.self, Duty.self, Mark.self, Sim.self, Keys.self, Authority.self, Office.self, Supervisor.self,
                      Verify.self, Export.self, Offload.self, Probe.self])
}

extension BodycamCtl {
    /// Exit code 2 for usage and I/O errors, as documented.
    static func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("bodycamctl: \(message)\n".utf8))
        return ExitCode(2)
    }
}
