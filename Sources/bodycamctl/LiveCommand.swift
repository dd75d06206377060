import ArgumentParser
import Foundation
import Glibc
import Pipeline
import Platform
import Uplink
import Evidence

/// `bodycamctl live`: a recording camera's live view through the office (docs/OFFICE.md, "Live
/// view"), as one fragmented MP4 stream on standard output.
struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a recording camera through the evidence office: playable fragmented MP4 on standard output (| ffplay -).",
        discussion: """
            Needs an officer certificate with the live role. The camera goes live at its next heartbeat \
            and stays live while someone watches. With --latency, prints to standard error how long each \
            fragment took from the capture of its first picture to its arrival here (both clocks must agree). \
            Exit 0 after --seconds, or when the output is closed; 2: usage, or an office that cannot be \
            reached or refuses.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The office's base URL, https://HOST[:PORT].") var office: String
    @Option(name: .customLong("device"), help: "The camera's device id.") var deviceID: String
    @Option(help: "The officer's TLS certificate chain (authority issue officer NAME --role live).") var certificate: String
    @Option(help: "Its key.") var key: String
    @Option(help: "The authority's CA certificate.") var ca: String
    @Option(help: "Stop after this many seconds (default: until the output is closed).") var seconds: Double?
    @Option(help: "Write to this file instead of standard output.") var out: String?
    @Flag(help: "Print each fragment's capture-to-arrival latency, and a summary, to standard error.") var latency = false

    func validate() throws {
        guard office.hasPrefix("https://") else { throw ValidationError("--office must be https://HOST[:PORT]") }
        if let seconds, !(seconds > 0 && seconds <= 31_536_000) { throw ValidationError("--seconds must be above 0 and at most a year") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        // Ctrl-C and SIGTERM end it, whatever mask it was started with.
        var stops = sigset_t()
        sigemptyset(&stops)
        sigaddset(&stops, SIGINT)
        sigaddset(&stops, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stops, nil)
        let client = try orExit2 { try OfficeClient(OfficeLink(url: office, certificatePath: certificate, keyPath: key, caPath: ca)) }
        let fd: Int32 = try orExit2 {
            guard let out else { return 1 }
            let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o640)
            if fd < 0 { throw SystemError.file(path: out, call: "open", errno: errno) }
            return fd
        }
        defer { if fd != 1 { close(fd) } }
        let end = seconds.map { Clock.monotonicNanoseconds() + Int64($0 * 1e9) }
        var after = 0
        // The stream's decoder configuration (the init segment's avcC: its SPS and PPS): a camera
        // segment that begins with the same one adds nothing a player needs, and its init segment
        // is left out so that the output stays one stream.
        var description: [UInt8]? = nil
        var latencies: [Double] = []
        while end.map({ Clock.monotonicNanoseconds() < $0 }) ?? true {
            let response = try orExit2 { try client.send("GET", "/v1/devices/\(deviceID)/live?after=\(after)") }
            guard response.status == 200 else {
                FileHandle.standardError.write(Data("bodycamctl: the office refused live view: \(response.message)\n".utf8))
                throw ExitCode(2)
            }
            after = response.headers["x-live-next"].flatMap { Int($0) } ?? after
            guard !response.body.isEmpty else { continue }
            // Each camera segment's init segment (ftyp, moov) is passed on only when its decoder
            // configuration is new.
            var bytes: [UInt8] = []
            let boxes = FragmentedMP4.children(response.body, 0..<response.body.count)
            var skipped: Set<Int> = []
            for (index, box) in boxes.enumerated() where box.type == "moov" && index > 0 && boxes[index - 1].type == "ftyp" {
                let here = FragmentedMP4.decoderConfiguration(response.body, in: box.payload..<box.end)
                if description != nil && here == description {
                    skipped.formUnion([index - 1, index])
                } else {
                    description = here
                }
            }
            for (index, box) in boxes.enumerated() where !skipped.contains(index) { bytes += response.body[box.start..<box.end] }
            do {
                try bytes.withUnsafeBytes { try writeAll(fd, $0, path: out ?? "standard output") }
            } catch {
                break  // the player went away
            }
            if latency, let captured = response.headers["x-live-captured-utc"].flatMap({ ClockParse.nanoseconds(iso8601: $0) }) {
                let seconds = Double(Clock.wallNanoseconds() - captured) / 1e9
                latencies.append(seconds)
                FileHandle.standardError.write(Data("live: fragment captured \(formatDecimal(seconds, places: 3)) s ago\n".utf8))
            }
        }
        if latency {
            let sorted = latencies.sorted()
            let summary = sorted.isEmpty ? "no fragment arrived"
                : "\(sorted.count) fragments, median \(formatDecimal(sorted[sorted.count / 2], places: 3)) s, "
                + "max \(formatDecimal(sorted.last!, places: 3)) s from capture to arrival"
            FileHandle.standardError.write(Data("live latency: \(summary)\n".utf8))
        }
    }
}
