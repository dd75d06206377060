import ArgumentParser
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
        // SIGTERM and SIGINT are blocked before any thread starts (every thread inherits the
        // mask), so they stay pending until the main thread takes them with sigwait(3).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
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
        var received: Int32 = 0
        while sigwait(&stopSignals, &received) != 0 {}
        Log.notice("\(received == SIGTERM ? "SIGTERM" : "SIGINT"): stopping")
        server.stop(reason: received == SIGTERM ? "SIGTERM" : "SIGINT")
        Log.notice("bodycam-office stopped")
    }
}
