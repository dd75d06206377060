import Evidence
import Glibc
import Pipeline
import Platform
import Wire

/// Sends a device's store to the office (docs/OFFICE.md, "Uploads"): what the office lacks, in
/// order — `device.pub`, `device.certificate` (each sent whole: they may be replaced), then each
/// sealed segment and its manifest by sequence, and `journal.log` (through its last whole record,
/// measured before the folder is read) last, so the journal the office holds never names a
/// manifest it has not got. Each growing file goes in pieces of at most `pieceBytes` at byte
/// offsets, so a dropped link resumes where the office's copy ends; a repeated piece is
/// harmless. Only sealed segments (with their manifest) are sent. Used by one thread.
public final class StoreUploader {
    public let client: OfficeClient
    public let store: String
    public let deviceID: String
    public let pieceBytes: Int

    public struct Pass: Equatable, Sendable {
        /// Files the office's copy of which grew, and the bytes sent.
        public var files: [String] = []
        public var bytes: Int64 = 0
        /// Files the office refused (name and reason): they are not retried in this pass.
        public var refused: [String: String] = [:]
        public init() {}
    }

    /// The whole files (`replaceable`) the office has confirmed in this uploader's life, with
    /// the bytes it holds.
    private var sentWhole: [String: [UInt8]] = [:]
    /// The smallest piece tried when the office says a piece is too large (413).
    public static let smallestPiece = 4 << 10
    public static let replaceable: Set<String> = ["device.pub", "device.certificate"]

    public init(client: OfficeClient, store: String, deviceID: String, pieceBytes: Int = 1 << 20) {
        self.client = client
        self.store = store
        self.deviceID = deviceID
        self.pieceBytes = max(StoreUploader.smallestPiece, pieceBytes)
    }

    /// Why a pass ended early.
    public enum Interrupted: Error, Equatable {
        /// `cancelled` said so (the daemon is stopping).
        case cancelled
        /// The pass's deadline came.
        case deadline
    }

    /// The files to send now, in order, with the length to send of each.
    public static func plan(store: String) throws -> [(name: String, length: Int64)] {
        // The journal first: every manifest its records name was written before them, so the
        // folder read after it holds them all.
        var journalStatus = stat()
        let journalLength: Int64? = lstat(store + "/journal.log", &journalStatus) == 0 && (journalStatus.st_mode & S_IFMT) == S_IFREG
            ? Int64(journalStatus.st_size) : nil
        let names = try directoryEntries(store)
        let present = Set(names)
        func size(_ name: String) -> Int64? {
            var status = stat()
            guard lstat(store + "/" + name, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
            return Int64(status.st_size)
        }
        var plan: [(String, Int64)] = []
        for name in ["device.pub", "device.certificate"] { if let length = size(name) { plan.append((name, length)) } }
        // (journalLength was measured before the folder was listed.)
        let manifests = names.filter { $0.hasSuffix(".manifest") && SegmentName.sequence(of: $0) != nil }
            .sorted { SegmentName.sequence(of: $0)! < SegmentName.sequence(of: $1)! }
        for manifest in manifests {
            let segment = String(manifest.dropLast(".manifest".count)) + ".bcseg"
            // A segment offloaded earlier has no file: its manifest still goes.
            if present.contains(segment), let length = size(segment) { plan.append((segment, length)) }
            if let length = size(manifest) { plan.append((manifest, length)) }
        }
        if let length = journalLength { plan.append(("journal.log", try wholeRecords(store + "/journal.log", length: length))) }
        return plan
    }

    /// The journal's length through its last line feed (a record being appended is left for
    /// the next pass).
    static func wholeRecords(_ path: String, length: Int64) throws -> Int64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        var end = length
        while end > 0 {
            let start = max(0, end - 4096)
            let block = try readBytes(fd, count: Int(end - start), at: start, path: path, exact: true)
            if let last = block.lastIndex(of: 0x0A) { return start + Int64(last) + 1 }
            end = start
        }
        return 0
    }

    /// One pass: asks what the office holds, then sends the rest. Throws when the link fails
    /// (the caller retries with backoff; nothing sent is lost), and `Interrupted` when
    /// `cancelled` says so between pieces or the monotonic `deadline` passes.
    @discardableResult
    public func pass(deadline: Int64? = nil, cancelled: () -> Bool = { false }) throws -> Pass {
        func check() throws {
            if cancelled() { throw Interrupted.cancelled }
            if let deadline, Clock.monotonicNanoseconds() >= deadline { throw Interrupted.deadline }
        }
        let listing = try client.exchange("GET", "/v1/devices/\(deviceID)/files").json
        var held: [String: Int64] = [:]
        for file in listing?["files"]?.array ?? [] {
            if let name = file["name"]?.string, let size = file["size"]?.integer { held[name] = size }
        }
        var result = Pass()
        var piece = pieceBytes
        for (name, length) in try StoreUploader.plan(store: store) {
            try check()
            if StoreUploader.replaceable.contains(name) {
                let bytes = try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false)
                guard sentWhole[name] != bytes || held[name] != Int64(bytes.count) else { continue }
                let response = try client.send("PUT", "/v1/devices/\(deviceID)/files/\(name)?whole=1", body: bytes)
                if (200..<300).contains(response.status) {
                    sentWhole[name] = bytes
                    result.files.append(name)
                    result.bytes += Int64(bytes.count)
                } else {
                    result.refused[name] = response.message
                }
                continue
            }
            var offset = held[name] ?? 0
            guard offset < length else { continue }
            let fd = open(store + "/" + name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            // A segment released under an acknowledgement since the plan: the office has it.
            if fd < 0 && errno == ENOENT && name.hasSuffix(".bcseg") { continue }
            if fd < 0 { throw SystemError.file(path: store + "/" + name, call: "open", errno: errno) }
            defer { close(fd) }
            pieces: while offset < length {
                try check()
                let count = Int(min(Int64(piece), length - offset))
                let bytes = try readBytes(fd, count: count, at: offset, path: store + "/" + name, exact: true)
                // The journal's last piece of a pass says so (`end=1`): the office's copy is then
                // whole up to this pass, and the office verifies it (docs/OFFICE.md).
                let end = name == "journal.log" && offset + Int64(count) == length ? "&end=1" : ""
                let response = try client.send("PUT", "/v1/devices/\(deviceID)/files/\(name)?offset=\(offset)\(end)", body: bytes)
                switch response.status {
                case 200..<300:
                    guard let size = response.json?["size"]?.integer, size > offset else {
                        throw UplinkError.refused(status: response.status, message: "the office's answer for \(name) names no new size")
                    }
                    result.bytes += size - offset
                    offset = size
                case 409 where response.json?["conflict"]?.string == "gap":
                    // The office holds another length (a piece of an earlier pass landed after
                    // the listing): resume where it says.
                    guard let size = response.json?["size"]?.integer, size >= 0, size != offset else {
                        throw UplinkError.refused(status: 409, message: response.message)
                    }
                    offset = size
                case 413 where piece > StoreUploader.smallestPiece:
                    // The office takes smaller bodies than configured here: smaller pieces.
                    piece = max(StoreUploader.smallestPiece, piece / 4)
                case 500..<600:
                    // The office cannot take it now (busy, its journal or disk failing): the
                    // pass fails and is retried with backoff.
                    throw UplinkError.refused(status: response.status, message: response.message)
                default:
                    result.refused[name] = response.message
                    break pieces
                }
            }
            if offset > (held[name] ?? 0) { result.files.append(name) }
        }
        return result
    }

    /// Where live view is in the segment being recorded: its file name (as it will be once
    /// sealed) and the bytes the office holds of it.
    public struct LiveCursor: Equatable, Sendable {
        public var segment = ""
        public var sent: Int64 = 0
        public init() {}
    }

    /// What the office said to live view's last pieces.
    public enum LiveAnswer: Equatable, Sendable {
        /// Nothing was sent (nothing new was written).
        case nothingSent
        /// The office took the pieces; whether someone still watches.
        case watched(Bool)
        /// The office refused live view (why): it is off until asked again later.
        case refused(String)
    }

    /// Live view (docs/OFFICE.md, "Live view"): sends what was written of the segment being
    /// recorded (`NAME.bcseg.partial`) since the last call — its sealed chunks, which only the
    /// office can open — and, when that segment was sealed meanwhile, the rest of it first.
    /// Throws only when the link fails; a refusal of live view is an answer, not a failure.
    public func livePass(_ cursor: inout LiveCursor) throws -> LiveAnswer {
        let names = try directoryEntries(store)
        let recording = names.filter { $0.hasSuffix(".bcseg.partial") && SegmentName.sequence(of: String($0.dropLast(8))) != nil }
            .max { SegmentName.sequence(of: String($0.dropLast(8)))! < SegmentName.sequence(of: String($1.dropLast(8)))! }
        var files: [(path: String, name: String)] = []
        if !cursor.segment.isEmpty, recording.map({ String($0.dropLast(8)) }) != cursor.segment, names.contains(cursor.segment) {
            files.append((store + "/" + cursor.segment, cursor.segment))
        }
        if let recording { files.append((store + "/" + recording, String(recording.dropLast(8)))) }
        var answer = LiveAnswer.nothingSent
        var piece = pieceBytes
        for (path, name) in files {
            if name != cursor.segment { cursor = LiveCursor(); cursor.segment = name }
            var status = stat()
            guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { continue }
            let length = Int64(status.st_size)
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            // Sealed and renamed, or offloaded, between the listing and now: the next call sees it.
            if fd < 0 { continue }
            defer { close(fd) }
            while cursor.sent < length {
                let count = Int(min(Int64(piece), length - cursor.sent))
                // A file cut shorter meanwhile (recovery): the next call starts it over.
                guard let bytes = try? readBytes(fd, count: count, at: cursor.sent, path: path, exact: true) else {
                    cursor = LiveCursor()
                    return answer
                }
                let response = try client.send("PUT", "/v1/devices/\(deviceID)/live/\(name)?offset=\(cursor.sent)", body: bytes)
                let watched = response.json?["live"]?.boolean ?? false
                switch response.status {
                case 200..<300:
                    // No one watches any more: nothing of it is held, and nothing more is sent.
                    guard watched else { return .watched(false) }
                    guard let size = response.json?["size"]?.integer, size > cursor.sent else { return .refused("the office's answer names no new size") }
                    cursor.sent = size
                    answer = .watched(true)
                case 409:
                    guard let size = response.json?["size"]?.integer, size >= 0, size != cursor.sent else { return .refused(response.message) }
                    cursor.sent = size
                case 413 where piece > StoreUploader.smallestPiece:
                    piece = max(StoreUploader.smallestPiece, piece / 4)
                case 500..<600:
                    throw UplinkError.refused(status: response.status, message: response.message)
                default:
                    return .refused("\(response.status): \(response.message)")
                }
            }
        }
        return answer
    }

    /// Asks the office to acknowledge what it holds verified from sequence `from` on
    /// (docs/OFFICE.md, "Acknowledgements"), then fetches every acknowledgement it lists that
    /// `skip` does not name (those the store keeps, those refused before), `limit` at most:
    /// name and bytes, for the vault to check. `urgent`: the camera is short of storage. An
    /// office that acknowledges nothing answers with an empty list.
    public func acknowledgements(from: Int64, skip: Set<String>, urgent: Bool = false, limit: Int = 8) throws -> [(name: String, bytes: [UInt8])] {
        let body = JSONValue.object(["from_sequence": .integer(from), "urgent": .boolean(urgent)]).canonical
        let reply = try client.exchange("POST", "/v1/devices/\(deviceID)/acknowledgements", body: body, contentType: "application/json").json
        var fetched: [(String, [UInt8])] = []
        for name in (reply?["acknowledgements"]?.array?.compactMap(\.string) ?? []).lazy.filter({ !skip.contains($0) }).prefix(limit) {
            // Only names of the one form: nothing the office says can name a file elsewhere.
            guard OffloadAcknowledgement.isFileName(name) else { continue }
            // An acknowledgement of 256 segments is about 30 KiB: 64 KiB bounds what is read.
            let response = try client.exchange("GET", "/v1/devices/\(deviceID)/files/\(name)?offset=0&length=65536")
            fetched.append((name, response.body))
        }
        return fetched
    }
}
