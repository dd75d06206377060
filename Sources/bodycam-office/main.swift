import ArgumentParser
import Dispatch
import Glibc
import Office
import Platform

/// The evidence office's server (docs/OFFICE.md): `bodycam-office --config /etc/bodycam-office/office.toml`.
/// Exit 0 after SIGTERM or SIGINT; 78 (EX_CONFIG) for a configuration it cannot use; 1 otherwise.
@main
struct BodycamOffice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bodycam-office",
        abstract: "The evidence office's server: cameras upload to it over mutual TLS, officers read from it by role.")

    @Option(help: "The configuration file (TOML, an [office] table; docs/OFFICE.md).") var config = "/etc/bodycam-office/office.toml"

    func run() throws {
        let settings: OfficeConfiguration
        do {
            settings = try OfficeConfiguration.load(path: config)
        } catch {
            Log.error("\(error)")
            throw ExitCode(78)
        }
        let server: OfficeServer
        do {
            server = try OfficeServer(configuration: settings)
            try server.start()
        } catch {
            Log.error("\(error)")
            throw ExitCode(78)
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signals = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { server.stop(reason: number == SIGTERM ? "SIGTERM" : "SIGINT") }
            source.resume()
            return source
        }
        try server.wait()
        _ = signals
        Log.notice("bodycam-office stopped")
    }
}
