import Daemon
import Glibc
import Platform

/// bodycamd: the camera controller. Everything it does is the `Daemon` library's; this reads the
/// arguments, builds the daemon and runs its service group. (Not swift-argument-parser: it loads
/// Foundation, which costs the camera 1.5 to 2 MiB of memory for three options; see
/// docs/ARCHITECTURE.md.)
@main
enum Bodycamd {
    static func main() async {
        let start = Clock.monotonicNanoseconds()
        Log.bootstrap(program: "bodycamd")
        let options: DaemonOptions
        do {
            guard let parsed = try DaemonOptions.parse(Array(CommandLine.arguments.dropFirst())) else {
                print(DaemonOptions.usage)
                exit(0)
            }
            options = parsed
        } catch {
            Log.error("\(error)")
            writeStandardError(DaemonOptions.usage)
            exit(64)
        }
        let signals = await Daemon.trapSignals()
        do {
            let daemon = try Daemon(options: options, processStart: start)
            exit(await daemon.run(signals: signals))
        } catch let error as DaemonStartError {
            Log.error("\(error)")
            exit(error.exitStatus)
        } catch {
            Log.error("start-up: \(error)")
            exit(1)
        }
    }
}
