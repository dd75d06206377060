import ArgumentParser
import Daemon
import Glibc
import Platform

/// bodycamd: the camera controller. Everything it does is the `Daemon` library's; this parses
/// the arguments and runs it.
@main
struct Bodycamd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bodycamd",
        abstract: "The body-worn camera's controller: capture, sealing, buttons and the recording policy.",
        discussion: "Exit codes: 0 clean stop, 1 runtime failure, 64 usage error, 78 configuration error.")

    @Option(help: "The configuration file.")
    var config = "/etc/bodycam/bodycam.toml"

    @Option(name: .customLong("record-after"), help: ArgumentHelp("Development: press record (as the button would) after this long.", valueName: "seconds"))
    var recordAfter: Double?

    @Option(help: ArgumentHelp("Development: a system stop after this many seconds in all.", valueName: "seconds"))
    var duration: Double?

    func validate() throws {
        for (name, value) in [("--record-after", recordAfter), ("--duration", duration)] {
            if let value, !(0..<1e7).contains(value) { throw ValidationError("\(name) needs a number of seconds (0 to 10,000,000)") }
        }
    }

    func run() async throws {
        let start = Clock.monotonicNanoseconds()
        Log.bootstrap(program: "bodycamd")
        let signals = await Daemon.trapSignals()
        let daemon: Daemon
        do {
            daemon = try Daemon(options: DaemonOptions(configPath: config, recordAfterSeconds: recordAfter, durationSeconds: duration),
                                processStart: start)
        } catch let error as DaemonStartError {
            Log.error("\(error)")
            throw ExitCode(error.exitStatus)
        }
        let status = await daemon.run(signals: signals)
        if status != 0 { throw ExitCode(status) }
    }
}
