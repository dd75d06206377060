import CShims
import Glibc
import Platform

#if FUZZING
// Built by `make fuzz` with -sanitize=fuzzer,address and -D FUZZING: libFuzzer's driver runs
// the target named by BODYCAM_FUZZ_TARGET.

/// The target this fuzzing process runs (read once, at the first input).
let fuzzTarget: FuzzTarget = {
    guard let name = getenv("BODYCAM_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTarget(rawValue: name) else {
        writeStandardError("BODYCAM_FUZZ_TARGET must name one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n")
        exit(2)
    }
    return target
}()

/// The executable's entry point (SwiftPM links an executable target's main under this name):
/// hands the arguments to libFuzzer's driver with the selected target.
@_cdecl("bodycam_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    _ = fuzzTarget
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        fuzzTarget.run(data.map { Array(UnsafeBufferPointer(start: $0, count: Int(size))) } ?? [])
        return 0
    }
}
#else
/// bodycam-fuzz without the fuzzer: makes the seed corpora and replays inputs through a target
/// (the regression runner `make test` uses for every input a fuzzer once found).
@main
struct BodycamFuzz {
    static let usage = """
        USAGE: bodycam-fuzz seeds REPOSITORY OUT     write each target's seeds to OUT/TARGET/
               bodycam-fuzz run TARGET FILE…          run each file through TARGET (exit 0 if none crashed)
               bodycam-fuzz list                      the targets
        """

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            switch arguments.first {
            case "list":
                for target in FuzzTarget.allCases { print(target.rawValue) }
            case "seeds" where arguments.count == 3:
                let out = arguments[2]
                for target in FuzzTarget.allCases { try makeFolder(out + "/" + target.rawValue) }
                let seeds = try Seeds.all(root: arguments[1])
                for (target, name, bytes) in seeds {
                    try writeFileAtomically(out + "/" + target.rawValue + "/" + name, bytes, mode: 0o644)
                }
                print("\(seeds.count) seeds for \(FuzzTarget.allCases.count) targets in \(out)")
            case "run" where arguments.count >= 2:
                guard let target = FuzzTarget(rawValue: arguments[1]) else {
                    writeStandardError("bodycam-fuzz: no target \(arguments[1]); `bodycam-fuzz list` names them\n")
                    exit(64)
                }
                for path in arguments.dropFirst(2) { target.run(try readWholeFile(path, limit: 1 << 24)) }
                print("\(arguments.count - 2) inputs through \(target.rawValue): no crash")
            default:
                writeStandardError(usage + "\n")
                exit(64)
            }
        } catch {
            writeStandardError("bodycam-fuzz: \(error)\n")
            exit(1)
        }
    }

    static func makeFolder(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) < 0 && errno != EEXIST { throw SystemError.file(path: prefix, call: "mkdir", errno: errno) }
            prefix += "/"
        }
    }
}
#endif
