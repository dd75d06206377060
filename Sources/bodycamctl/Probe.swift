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
import Export

/// `bodycamctl probe`: opens plain MP4 segments with libavformat, decodes every picture and
/// checks the structure (moov first, one GOP per fragment, starts on a keyframe).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode MP4 segments and check their structure.",
        discussion: "Takes segment files or folders of them. Exit 0: every segment decodes cleanly; 1: a segment has problems; 2: a file cannot be read.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Segment files (.mp4) or folders holding them.")
    var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("name at least one segment file or folder") }
    }

    struct Entry: Encodable {
        var path: String
        var codec: String
        var width: Int
        var height: Int
        var frames: Int
        var keyframes: Int
        var fragments: Int
        var framesPerFragment: [Int]
        var durationSeconds: Double
        var creationTime: String?
        var deviceID: String?
        var problems: [String]
    }

    func run() throws {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw BodycamCtl.failure("\(path): no such file or folder")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".mp4") }.sorted()
                files += names.map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        if files.isEmpty { throw BodycamCtl.failure("no .mp4 segments in \(paths.joined(separator: " "))") }
        LibAVLogging.setQuiet(true)
        var entries: [Entry] = []
        for file in files {
            do {
                let report = try SegmentInspector.inspect(path: file)
                entries.append(Entry(path: file, codec: report.codec, width: report.width, height: report.height,
                                     frames: report.decodedFrames, keyframes: report.keyframes,
                                     fragments: report.framesPerFragment.count, framesPerFragment: report.framesPerFragment,
                                     durationSeconds: report.durationSeconds, creationTime: report.metadata["creation_time"],
                                     deviceID: report.metadata["device_id"], problems: report.problems))
            } catch {
                entries.append(Entry(path: file, codec: "", width: 0, height: 0, frames: 0, keyframes: 0, fragments: 0,
                                     framesPerFragment: [], durationSeconds: 0, creationTime: nil, deviceID: nil,
                                     problems: ["cannot open: \(error)"]))
            }
        }
        if global.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
        } else {
            for entry in entries {
                let verdict = entry.problems.isEmpty ? "OK  " : "FAIL"
                print("\(verdict) \(entry.path): \(entry.codec) \(entry.width)x\(entry.height), \(entry.frames) frames, "
                      + "\(entry.fragments) fragments, \(String(format: "%.2f", entry.durationSeconds)) s, "
                      + "device \(entry.deviceID ?? "?"), created \(entry.creationTime ?? "?")"
                      + (entry.problems.isEmpty ? "" : " — " + entry.problems.joined(separator: "; ")))
            }
            let total = entries.reduce(0) { $0 + $1.frames }
            print("\(entries.count) segments, \(total) frames, \(entries.filter { !$0.problems.isEmpty }.count) with problems")
        }
        if entries.contains(where: { !$0.problems.isEmpty }) { throw ExitCode(1) }
    }
}
