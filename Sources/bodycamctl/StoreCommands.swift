import ArgumentParser
import Evidence
import Foundation
import LibCrypto
import Pipeline
import Daemon
import Configuration
import ControlProtocol
import Capture
import Tokens
import Policy
import Controls
import Platform
import Wire

func requireStore(_ store: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: store, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw BodycamCtl.failure("\(store): no such store folder")
    }
}

struct Segments: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a store's segments from their manifests (no key needed).",
        discussion: "Works on the device's store or on a copy. Exit 0; 2: the store cannot be read.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The store folder.") var store = "/var/lib/bodycam/store"

    func run() throws {
        try requireStore(store)
        let list = try orExit2 { try EvidenceVault.readManifests(store) }
        if global.json {
            try printJSON(list.map { $0.document.body })
            return
        }
        for manifest in list {
            let marks = manifest.document.body["marks"]?.array?.count ?? 0
            let present = FileManager.default.fileExists(atPath: store + "/" + manifest.segmentFile)
            print("\(manifest.sequence)\t\(manifest.startUTC) – \(manifest.endUTC)\t\(manifest.frames) frames\t\(manifest.ciphertextBytes / 1024) KiB"
                  + (marks > 0 ? "\t\(marks) marks" : "") + (manifest.recovered ? "\trecovered" : "") + (present ? "" : "\toffloaded or missing"))
        }
        print("\(list.count) segments, \(list.reduce(0) { $0 + $1.frames }) frames")
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The audit journal, with filters (works offline on a store folder).",
        discussion: "Exit 0; 1: the journal's chain has problems (listed first); 2: the store cannot be read.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only records of these kinds (comma-separated, e.g. stop_denied,mark).") var kind: String?
    @Option(help: "Only records at or after this UTC time (YYYY-MM-DDTHH:MM:SS…).") var since: String?
    @Option(help: "Only the last N records.") var last: Int?
    @Argument(help: "The store folder.") var store = "/var/lib/bodycam/store"

    func run() throws {
        try requireStore(store)
        let parsed = try orExit2 { () throws -> AuditJournal.Parsed in
            let key = try? KeyFile.readVerifyingKey(store + "/device.pub")
            return AuditJournal.parse(try readWholeFile(store + "/" + EvidenceVault.journalName), key: key)
        }
        let kinds = kind.map { Set($0.split(separator: ",").map(String.init)) }
        var records = parsed.records.filter { record in
            (kinds?.contains(record.kind) ?? true) && (since.map { record.utc >= $0 } ?? true)
        }
        if let last { records = Array(records.suffix(last)) }
        if global.json {
            try printJSON(EventListing(problems: parsed.problems.map { EventListing.Problem(line: $0.line, message: $0.message) },
                                       records: records.map { EventListing.Record(seq: $0.sequence, utc: $0.utc, kind: $0.kind, fields: .object($0.fields)) }))
        } else {
            for problem in parsed.problems { print("PROBLEM line \(problem.line): \(problem.message)") }
            for record in records {
                let fields = record.fields.keys.sorted().map { "\($0)=\(record.fields[$0]!.string ?? record.fields[$0]!.canonicalString)" }
                print("\(record.sequence)\t\(record.utc)\t\(record.kind)\t\(fields.joined(separator: " "))")
            }
        }
        if !parsed.problems.isEmpty { throw ExitCode(1) }
    }
}

struct Storage: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Free space, what the store holds, and hours of recording left.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The store folder.") var store = "/var/lib/bodycam/store"

    func run() throws {
        try requireStore(store)
        let free: Int64
        do { free = try freeSpace(store) } catch { throw BodycamCtl.failure("\(error)") }
        let list = try orExit2 { try EvidenceVault.readManifests(store) }
        let bytes = list.reduce(Int64(0)) { $0 + $1.ciphertextBytes }
        let seconds = Double(list.reduce(Int64(0)) { $0 + $1.durationMicroseconds }) / 1e6
        // Bytes per second of what was recorded; 4 Mb/s when nothing has been yet.
        let rate = seconds > 0 ? Double(bytes) / seconds : 500_000
        let hours = Double(free) / rate / 3600
        if global.json {
            try printJSON(StorageReport(store: store, freeBytes: free, segments: list.count, segmentBytes: bytes,
                                        recordedSeconds: seconds, bytesPerSecond: rate, hoursLeft: hours))
        } else {
            print("store \(store): \(list.count) segments, \(bytes >> 20) MiB, \(formatDecimal(seconds / 3600, places: 2)) h recorded")
            print("free \(free >> 20) MiB: about \(formatDecimal(hours, places: 1)) h at \(formatDecimal(rate * 8 / 1e6, places: 2)) Mb/s")
        }
    }
}

struct Time: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The clocks: UTC, monotonic, and whether the kernel says the clock is synchronised.")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        let clock = ClockSync.read()
        let synced = clock.synchronised, error = clock.estimatedErrorMicroseconds
        let utc = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
        if global.json {
            try printJSON(TimeReport(utc: utc, monotonicNanoseconds: Clock.monotonicNanoseconds(), synchronised: synced,
                                     estimatedErrorMicroseconds: error))
        } else {
            print("UTC \(utc); monotonic \(formatDecimal(Double(Clock.monotonicNanoseconds()) / 1e9, places: 3)) s; "
                  + (synced ? "synchronised (estimated error \(error) µs)" : "NOT synchronised: recordings are stamped with an unsynchronised clock"))
        }
    }
}
