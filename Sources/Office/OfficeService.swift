import Evidence
import Export
import Glibc
import LibCrypto
import PKI
import Synchronization
import Platform
import Wire

/// Who is asking, as the TLS client certificate says (docs/PKI.md); the chain to the CA was
/// checked in the handshake.
public enum Caller: Equatable, Sendable {
    case device(id: String, serial: String)
    case officer(name: String, roles: [TLSRole], serial: String)

    /// As the access journal names it: `device:ID` or `officer:NAME`.
    public var name: String {
        switch self {
        case .device(let id, _): return "device:" + id
        case .officer(let name, _, _): return "officer:" + name
        }
    }
    public var serial: String {
        switch self {
        case .device(_, let serial), .officer(_, _, let serial): return serial
        }
    }
}

/// One HTTP request as the server read it: method, target (path and query), body, the peer's
/// address, and the caller (nil with the reason when the certificate is not one the office accepts).
public struct OfficeRequest: Sendable {
    public var method: String
    public var target: String
    public var body: [UInt8]
    public var peer: String
    public var caller: Result<Caller, OfficeRefusal>
    public init(method: String, target: String, body: [UInt8], peer: String, caller: Result<Caller, OfficeRefusal>) {
        self.method = method
        self.target = target
        self.body = body
        self.peer = peer
        self.caller = caller
    }
}

/// A refusal, with the HTTP status it is answered with and the reason the journal keeps.
public struct OfficeRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }
    public var description: String { "\(status): \(reason)" }
}

/// An answer: status, JSON body.
public struct OfficeReply: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var contentType = "application/json"
    /// More headers (live view's `x-live-next`, `x-live-captured-utc`).
    public var headers: [(name: String, value: String)] = []
    /// A device whose copy should be verified now that an upload pass of it is whole (its
    /// journal's last piece arrived: `OfficeService.verifyOnArrival`), off the request's thread.
    public var verifyDevice: String?
    init(_ status: Int, _ json: JSONValue) {
        self.status = status
        body = json.canonical
    }
    init(status: Int, bytes: [UInt8], contentType: String) {
        self.status = status
        body = bytes
        self.contentType = contentType
    }
}

/// The office's API (docs/OFFICE.md, "API"; docs/office-api.yaml) without the transport: each
/// request is authorised by its caller's certificate, answered, and journaled — refusals
/// included — before the answer goes. Blocking (file writes, fdatasync, verification): run it
/// on a thread pool, never on an event loop. Safe from any thread.
public final class OfficeService: Sendable {
    public let store: OfficeStore
    public let journal: AuditJournal
    public let authority: Ed25519PublicKey
    public let maximumBodyBytes: Int
    private let revocations: RevocationList?
    /// Refused handshakes journaled in the current minute, and those left out since the last record.
    private let handshakeRefusals = Mutex((minute: Int64(0), journaled: 0, unjournaled: 0))
    /// At most this many `tls_refused` records a minute: a client that connects in a loop
    /// cannot fill the journal; the rest are counted (`unjournaled_before` of the next record).
    public static let refusedHandshakesPerMinute = 60
    /// Segments one acknowledgement names at most (about 110 bytes each).
    public static let acknowledgedAtOnce = 256

    /// The office key that signs offload acknowledgements, with the authority's certificate
    /// for it; nil: this office acknowledges nothing (devices keep every segment).
    public struct Acknowledger: Sendable {
        public let key: Ed25519PrivateKey
        public let certificate: KeyCertificate
        /// A verified segment is acknowledged once it ended this long ago (or once 32 wait, or
        /// the device says its storage is short), so that a camera gets a few acknowledgements
        /// a day, not one a segment.
        public let afterNanoseconds: Int64
        public init(key: Ed25519PrivateKey, certificate: KeyCertificate, afterSeconds: Int = 300) {
            self.key = key
            self.certificate = certificate
            afterNanoseconds = Int64(afterSeconds) * 1_000_000_000
        }
    }
    /// Acknowledgements wait for at most this many segments.
    public static let acknowledgedTogether = 32
    private let acknowledger: Acknowledger?
    /// Live view (nil: the office has no identity to decrypt with, and offers none).
    public let live: LiveRelay?
    /// How long a viewer's request waits for the next fragment before it is answered empty.
    public static let livePollNanoseconds: Int64 = 2_000_000_000
    /// Per device: what verification learned of its segment files, and the last report with
    /// the store's generation it was made at (a store that has not changed is not verified again).
    private let verified = Mutex<[String: (cache: SegmentFactsCache, fingerprint: [String: [Int64]], report: VerificationReport?)]>([:])
    /// Per device, the acknowledgements the office holds for it (name → the sequences it
    /// names), read from its folder at first use.
    private let issued = Mutex<[String: [String: Set<Int64>]]>([:])

    public init(store: OfficeStore, journal: AuditJournal, authority: Ed25519PublicKey, revocations: RevocationList?, maximumBodyBytes: Int,
                acknowledger: Acknowledger? = nil, live: LiveRelay? = nil) {
        self.store = store
        self.journal = journal
        self.authority = authority
        self.revocations = revocations
        self.maximumBodyBytes = maximumBodyBytes
        self.acknowledger = acknowledger
        self.live = live
    }

    /// What a verified client certificate makes of the caller: a device or an officer not on
    /// the revocation list. The office's own kind, and anything else, is refused.
    public func caller(for identity: Result<TLSIdentity, OfficeRefusal>) -> Result<Caller, OfficeRefusal> {
        switch identity {
        case .failure(let refusal): return .failure(refusal)
        case .success(let identity):
            if let revocations, revocations.revokes(serial: identity.serial) {
                return .failure(OfficeRefusal(403, "certificate \(identity.serial) is revoked"))
            }
            switch identity.subject {
            case .device(let id):
                guard OfficeStore.isDeviceID(id) else { return .failure(OfficeRefusal(403, "the certificate's device id is not a valid one")) }
                return .success(.device(id: id, serial: identity.serial))
            case .officer(let name, let roles):
                return .success(.officer(name: name, roles: roles, serial: identity.serial))
            case .office:
                return .failure(OfficeRefusal(403, "an office certificate is not a client's"))
            case .mediaSigning:
                return .failure(OfficeRefusal(403, "a media-signing certificate is not a client's"))
            }
        }
    }

    /// Answers and journals one request.
    public func respond(to request: OfficeRequest) -> OfficeReply {
        var extra: [String: JSONValue] = [:]
        let reply: OfficeReply
        switch request.caller {
        case .failure(let refusal):
            reply = OfficeReply(refusal.status, .object(["error": .string(refusal.reason)]))
            extra["reason"] = .string(refusal.reason)
        case .success(let caller):
            do {
                reply = try route(request, caller: caller, journalFields: &extra)
            } catch let refusal as OfficeRefusal {
                reply = OfficeReply(refusal.status, .object(["error": .string(refusal.reason)]))
                extra["reason"] = .string(refusal.reason)
            } catch {
                reply = OfficeReply(500, .object(["error": .string("\(error)")]))
                extra["reason"] = .string("\(error)")
            }
        }
        var fields: [String: JSONValue] = [
            "method": .string(String(request.method.prefix(16))), "target": .string(String(request.target.prefix(512))),
            "status": .integer(Int64(reply.status)), "bytes_in": .integer(Int64(request.body.count)),
            "bytes_out": .integer(Int64(reply.body.count)), "peer": .string(request.peer),
        ]
        if case .success(let caller) = request.caller {
            fields["caller"] = .string(caller.name)
            fields["serial"] = .string(caller.serial)
        }
        fields.merge(extra) { _, new in new }
        do {
            try journal.append(kind: "request", fields: fields)
        } catch {
            // Nothing is answered that the journal does not hold.
            Log.error("access journal: \(error)")
            return OfficeReply(503, .object(["error": .string("the access journal cannot be written")]))
        }
        return reply
    }

    /// Whether a refused handshake is journaled (within the minute's allowance); one that is
    /// not is counted. Cheap: called on an event loop.
    public func admitRefusedHandshake(now: Int64 = Clock.monotonicNanoseconds()) -> Bool {
        handshakeRefusals.withLock { state in
            let minute = now / 60_000_000_000
            if minute != state.minute { (state.minute, state.journaled) = (minute, 0) }
            guard state.journaled < OfficeService.refusedHandshakesPerMinute else {
                state.unjournaled += 1
                return false
            }
            state.journaled += 1
            return true
        }
    }

    /// Journals a TLS handshake the office refused (no certificate, another CA's, expired…),
    /// with the count of refusals left out of the journal before it.
    public func journalRefusedHandshake(peer: String, reason: String) {
        let left = handshakeRefusals.withLock { state in
            defer { state.unjournaled = 0 }
            return state.unjournaled
        }
        var fields: [String: JSONValue] = ["peer": .string(peer), "reason": .string(String(reason.prefix(512)))]
        if left > 0 { fields["unjournaled_before"] = .integer(Int64(left)) }
        do {
            try journal.append(kind: "tls_refused", fields: fields)
        } catch {
            Log.error("access journal: \(error)")
        }
    }

    /// Whether a request is a viewer's wait for live view (run on threads of their own: each
    /// may wait up to `livePollNanoseconds`).
    public static func isLivePoll(_ target: String) -> Bool { split(target).path.hasSuffix("/live") }

    /// Whether a request verifies a store (a verification, or acknowledgements, which verify
    /// first): run on its own thread, one at a time.
    public static func isVerification(_ target: String) -> Bool {
        let path = split(target).path
        return path.hasSuffix("/verification") || path.hasSuffix("/acknowledgements")
    }

    // MARK: routes

    private func route(_ request: OfficeRequest, caller: Caller, journalFields: inout [String: JSONValue]) throws -> OfficeReply {
        let (path, query) = OfficeService.split(request.target)
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if path == "/" || path == "/index.html" {
            // The office's page (OfficePage.swift): any officer; what it shows, each API call
            // decides by role.
            guard request.method == "GET" else { throw OfficeRefusal(405, "GET only") }
            try require(caller, roles: [.technician, .evidence, .live])
            return OfficeReply(status: 200, bytes: Array(OfficePage.html.utf8), contentType: "text/html; charset=utf-8")
        }
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "v1", parts[2] == "devices" else {
            throw OfficeRefusal(404, "no such resource")
        }
        if parts.count == 3 {
            guard request.method == "GET" else { throw OfficeRefusal(405, "GET only") }
            try require(caller, roles: [.technician, .evidence])
            return OfficeReply(200, try fleet())
        }
        let device = parts[3]
        guard OfficeStore.isDeviceID(device) else { throw OfficeRefusal(404, "no such device") }
        let rest = Array(parts[4...])
        let resource = rest.first ?? ""
        let name = rest.count == 2 && (resource == "files" || resource == "live" || resource == "export") ? rest[1] : nil
        guard rest.count == 1 || name != nil else { throw OfficeRefusal(404, "no such resource") }
        switch (request.method, resource, name) {
        case ("GET", "files", nil):
            try require(caller, device: device, orRoles: [.technician, .evidence])
            let files = try store.files(of: device)
            return OfficeReply(200, .object(["device_id": .string(device), "files": .array(files.keys.sorted().map {
                .object(["name": .string($0), "size": .integer(files[$0]!)])
            })]))
        case ("PUT", "files", let name?):
            try require(caller, device: device, orRoles: [])
            guard OfficeStore.isUploadName(name) else { throw OfficeRefusal(400, "\(name) is not a file a device uploads") }
            if query["whole"] == "1" {
                // The certificate and the public key are the files a device may replace (a
                // renewed certificate, a replaced key): sent whole, the office keeps the old one
                // beside it and journals the change.
                guard OfficeStore.replaceable.contains(name) else { throw OfficeRefusal(400, "only \(OfficeStore.replaceable.sorted().joined(separator: " and ")) are sent whole") }
                let kept = try store.replace(device: device, name: name, bytes: request.body)
                if let kept { journalFields["replaced_kept_as"] = .string(kept) }
                return OfficeReply(200, .object(["name": .string(name), "size": .integer(Int64(request.body.count))]))
            }
            guard let offset = query["offset"].flatMap({ Int64($0) }), offset >= 0 else { throw OfficeRefusal(400, "offset: a byte offset is needed") }
            guard !OfficeStore.replaceable.contains(name) else { throw OfficeRefusal(400, "\(name) is sent whole (whole=1)") }
            do {
                let size = try store.write(device: device, name: name, offset: offset, bytes: request.body)
                var reply = OfficeReply(200, .object(["name": .string(name), "size": .integer(size)]))
                // The device sends its segments and manifests, then the journal, whose last piece
                // of the pass says `end=1`: the copy is then whole up to this pass, and verifying
                // it names no finding of an upload half done (a journal behind its manifests).
                if name == "journal.log", query["end"] == "1", size == offset + Int64(request.body.count), noteArrival(of: device) {
                    reply.verifyDevice = device
                }
                return reply
            } catch let conflict as UploadConflict {
                let (size, kind): (Int64, String)
                switch conflict {
                case .gap(let held): (size, kind) = (held, "gap")
                case .differs(_, let held): (size, kind) = (held, "differs")
                }
                journalFields["held"] = .integer(size)
                journalFields["reason"] = .string(conflict.description)
                return OfficeReply(409, .object(["error": .string(conflict.description), "conflict": .string(kind), "name": .string(name),
                                                 "size": .integer(size)]))
            }
        case ("GET", "files", let name?):
            // A device reads back only the acknowledgements the office issued it.
            try require(caller, device: OfficeStore.isAcknowledgementName(name) ? device : nil, orRoles: [.evidence])
            guard OfficeStore.isUploadName(name) || OfficeStore.isAcknowledgementName(name) else { throw OfficeRefusal(404, "no such file") }
            let offset = query["offset"].flatMap { Int64($0) } ?? 0
            let length = query["length"].flatMap { Int($0) } ?? maximumBodyBytes
            guard offset >= 0, (0...maximumBodyBytes).contains(length) else { throw OfficeRefusal(400, "offset and length: at most \(maximumBodyBytes) bytes a request") }
            guard store.files(ofDevice: device, has: name) else { throw OfficeRefusal(404, "no such file") }
            return OfficeReply(status: 200, bytes: try store.read(device: device, name: name, offset: offset, length: length),
                               contentType: "application/octet-stream")
        case ("POST", "heartbeat", nil):
            try require(caller, device: device, orRoles: [])
            guard case .object(let status)? = try? JSONParser.parse(request.body) else { throw OfficeRefusal(400, "a heartbeat is a JSON object") }
            if let records = status["journal_records"]?.integer { journalFields["journal_records"] = .integer(records) }
            if let head = status["journal_head_sha256"]?.string, head.utf8.count == 64, Hex.decode(head) != nil {
                journalFields["journal_head_sha256"] = .string(head)
            }
            try store.keepStatus(device: device, status: .object(status), receivedUTC: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()))
            return OfficeReply(200, .object(["device_id": .string(device), "received": .boolean(true),
                                             "live": .boolean(live?.isWatched(device) ?? false)]))
        case ("PUT", "live", let name?):
            try require(caller, device: device, orRoles: [])
            guard let live else { throw OfficeRefusal(404, "this office offers no live view (no identity to decrypt with)") }
            guard OfficeStore.isUploadName(name), name.hasSuffix(".bcseg") else { throw OfficeRefusal(400, "\(name) is not a segment") }
            guard let offset = query["offset"].flatMap({ Int64($0) }), offset >= 0 else { throw OfficeRefusal(400, "offset: a byte offset is needed") }
            do {
                guard let size = try live.receive(device: device, segment: name, offset: offset, bytes: request.body) else {
                    return OfficeReply(200, .object(["name": .string(name), "size": .null, "live": .boolean(false)]))
                }
                return OfficeReply(200, .object(["name": .string(name), "size": .integer(size), "live": .boolean(true)]))
            } catch let conflict as UploadConflict {
                guard case .gap(let size) = conflict else { throw conflict }
                journalFields["reason"] = .string(conflict.description)
                return OfficeReply(409, .object(["error": .string(conflict.description), "conflict": .string("gap"), "name": .string(name),
                                                 "size": .integer(size), "live": .boolean(live.isWatched(device))]))
            } catch let error as EvidenceError {
                throw OfficeRefusal(422, "\(error)")
            }
        case ("GET", "live", nil):
            try require(caller, roles: [.live])
            guard let live else { throw OfficeRefusal(404, "this office offers no live view (no identity to decrypt with)") }
            let after = max(0, query["after"].flatMap { Int($0) } ?? 0)
            let deadline = Clock.monotonicNanoseconds() + OfficeService.livePollNanoseconds
            var answer = live.poll(device: device, after: after)
            // Waits for the next fragment (a long poll), checking every 20 ms.
            while answer.bytes.isEmpty && Clock.monotonicNanoseconds() < deadline {
                usleep(20_000)
                answer = live.poll(device: device, after: after)
            }
            journalFields["live_next"] = .integer(Int64(answer.next))
            var reply = OfficeReply(status: 200, bytes: answer.bytes, contentType: "video/mp4")
            reply.headers.append(("x-live-next", String(answer.next)))
            if let captured = answer.captured { reply.headers.append(("x-live-captured-utc", Clock.iso8601(wallNanoseconds: captured))) }
            if let origin = answer.origin { reply.headers.append(("x-live-origin-utc", Clock.iso8601(wallNanoseconds: origin))) }
            if !answer.codec.isEmpty { reply.headers.append(("x-live-codec", answer.codec)) }
            return reply
        case ("POST", "acknowledgements", nil):
            try require(caller, device: device, orRoles: [])
            guard case .object(let asked)? = try? JSONParser.parse(request.body), let from = asked["from_sequence"]?.integer, from >= 1 else {
                throw OfficeRefusal(400, "a request for acknowledgements is {\"from_sequence\": N}, N ≥ 1")
            }
            let urgent = asked["urgent"]?.boolean ?? false
            var issued: OffloadAcknowledgement? = nil
            do {
                issued = try acknowledge(device: device, from: from, urgent: urgent)
            } catch let refusal as OfficeRefusal {
                journalFields["acknowledgement_refused"] = .string(refusal.reason)
            }
            if let issued {
                journalFields["ack_id"] = .string(issued.ackID)
                journalFields["ack_sha256"] = .string(Hex.encode(issued.document.sha256))
                journalFields["acknowledged"] = .array(issued.entries.map { .integer($0.sequence) })
            }
            // Those that name a segment from `from` on: what the device may still lack.
            let names = try acknowledgements(of: device).filter { $0.value.contains { $0 >= from } }.keys.sorted()
            return OfficeReply(200, .object(["device_id": .string(device), "acknowledgements": .array(names.map(JSONValue.string)),
                                             "issued": issued.map { .string($0.fileName) } ?? .null]))
        case ("GET", "status", nil):
            try require(caller, roles: [.technician, .evidence])
            guard let status = store.status(of: device) else { throw OfficeRefusal(404, "no heartbeat from \(device) yet") }
            return OfficeReply(200, status)
        case ("GET", "segments", nil):
            try require(caller, roles: [.technician, .evidence])
            guard !(try store.files(of: device)).isEmpty else { throw OfficeRefusal(404, "no evidence from \(device)") }
            return OfficeReply(200, try segments(of: device))
        case ("GET", "export", let name?):
            try require(caller, roles: [.evidence])
            guard let identity = live?.identity else { throw OfficeRefusal(404, "this office has no identity to decrypt with") }
            guard name.hasSuffix(".mp4"), OfficeStore.isUploadName(String(name.dropLast(4)) + ".bcseg") else { throw OfficeRefusal(404, "no such segment") }
            let segment = String(name.dropLast(4)) + ".bcseg"
            let report = try report(of: device)
            let manifests = try EvidenceVault.readManifests(store.deviceFolder(device))
            guard let manifest = manifests.first(where: { $0.segmentFile == segment }),
                  report.verifiedSequences.contains(manifest.sequence) else {
                throw OfficeRefusal(409, "\(segment) is not a verified segment of \(device): it is not exported")
            }
            // A recovered segment as `bodycamctl export` takes it: every chunk up to the first that
            // the power cut left unauthenticated (a torn write recovery could not see). Sent as a
            // standard MP4 made in memory (docs/EXPORT.md): players show a fragmented one's first
            // fragment only.
            let folder = store.deviceFolder(device)
            func source(_ manifest: Manifest) -> ExportSource {
                ExportSource(sequence: manifest.sequence, segmentFile: manifest.segmentFile,
                             startUTCNanoseconds: ClockParse.nanoseconds(iso8601: manifest.startUTC) ?? 0) {
                    try manifest.decryptSegment(in: folder, identity: identity).plaintext
                }
            }
            // The next segment, when verified: its first two pictures carry this one's last GOP's
            // signature (ONVIF Media Signing), added only when they sign it.
            let next = manifests.first { $0.sequence == manifest.sequence + 1 && report.verifiedSequences.contains($0.sequence) }
            let mp4: [UInt8]
            let exported: ExportedFile
            do { (mp4, exported) = try MP4Export.standardMP4(source(manifest), tail: next.map(source)) } catch let error as ExportError {
                throw OfficeRefusal(422, "\(segment) cannot be exported: \(error)")
            }
            journalFields["exported_sha256"] = .string(Hex.encode(try SHA256.hash(mp4)))
            var reply = OfficeReply(status: 200, bytes: mp4, contentType: "video/mp4")
            reply.headers.append(("content-disposition", "attachment; filename=\"\(device)-\(name)\""))
            // The pictures of the next segment that carry the last GOP's signature (0 or 2).
            let tailPictures = exported.pieces.filter { $0.sequence != manifest.sequence }.reduce(0) { $0 + $1.frames }
            reply.headers.append(("x-bodycam-signature-pictures", String(tailPictures)))
            if tailPictures > 0, let next { journalFields["signature_pictures_from"] = .integer(next.sequence) }
            return reply
        case ("GET", "verification", nil):
            try require(caller, roles: [.technician, .evidence])
            guard !(try store.files(of: device)).isEmpty else { throw OfficeRefusal(404, "no evidence from \(device)") }
            return OfficeReply(200, try verification(of: device))
        default:
            throw OfficeRefusal(404, "no such resource")
        }
    }

    private func require(_ caller: Caller, device: String? = nil, orRoles roles: Set<TLSRole>) throws {
        if let device, case .device(let id, _) = caller {
            guard id == device else { throw OfficeRefusal(403, "device \(id) may reach only its own evidence, not \(device)'s") }
            return
        }
        try require(caller, roles: roles)
    }

    private func require(_ caller: Caller, roles: Set<TLSRole>) throws {
        guard case .officer(_, let held, _) = caller else { throw OfficeRefusal(403, "devices may reach only their own evidence") }
        guard !roles.isDisjoint(with: held) else {
            throw OfficeRefusal(403, "this needs the role " + roles.map(\.rawValue).sorted().joined(separator: " or "))
        }
    }

    /// Each device: its last heartbeat, and the evidence the office holds.
    private func fleet() throws -> JSONValue {
        .object(["devices": .array(try store.devices().map { device in
            let files = (try? store.files(of: device)) ?? [:]
            var entry: [String: JSONValue] = [
                "device_id": .string(device),
                "segments": .integer(Int64(files.keys.filter { $0.hasSuffix(".manifest") }.count)),
                "bytes": .integer(files.values.reduce(0, +)),
            ]
            if let status = store.status(of: device) {
                entry["last_heartbeat_utc"] = status["received_utc"] ?? .null
                entry["status"] = status["status"] ?? .null
            }
            return .object(entry)
        })])
    }

    /// Devices with a verification on arrival scheduled and not yet begun.
    private let arrivals = Mutex<Set<String>>([])
    /// Per device, what the last verification on arrival journaled: segments verified and
    /// problems (their codes).
    private let announced = Mutex<[String: (verified: Int, problems: [String])]>([:])

    /// Notes an upload pass of `device` is whole; true when a verification on arrival is to be
    /// scheduled (none is waiting to begin for it).
    func noteArrival(of device: String) -> Bool {
        arrivals.withLock { $0.insert(device).inserted }
    }

    /// Verifies `device`'s copy because an upload pass of it is whole (docs/OFFICE.md,
    /// "Verification on arrival"), as `report(of:)` does, and journals a `verification` record when what it
    /// found changed since the last one: the segments verified, the problems (a tampered or
    /// missing segment, a broken chain) with the first few named. Blocking: the office runs it
    /// on its verification thread, one at a time, never on a request's thread.
    public func verifyOnArrival(of device: String) {
        _ = arrivals.withLock { $0.remove(device) }
        do {
            let report = try report(of: device)
            let problems = report.problems.map(\.code)
            let changed = announced.withLock { announced -> Bool in
                if let last = announced[device], last.verified == report.verifiedSequences.count, last.problems == problems { return false }
                announced[device] = (report.verifiedSequences.count, problems)
                return true
            }
            guard changed else { return }
            try journal.append(kind: "verification", fields: [
                "device_id": .string(device), "verified_segments": .integer(Int64(report.verifiedSequences.count)),
                "last_verified": report.verifiedSequences.max().map(JSONValue.integer) ?? .null,
                "problems": .integer(Int64(report.problems.count)),
                "first_problems": .array(report.problems.prefix(3).map { .string(String("\($0.code): \($0.message)".prefix(300))) }),
            ])
            if !report.isClean { Log.warning("\(device): its copy does not verify: \(report.problems.count) problems, first \(report.problems[0].code)") }
        } catch {
            Log.error("\(device): verification on arrival: \(error)")
        }
    }

    /// The office's copy of `device`'s store verified as `bodycamctl verify` would
    /// (docs/FORMAT.md, "Verification"): again only when a file in its folder changed, and
    /// hashing only the segment files that did.
    public func report(of device: String) throws -> VerificationReport {
        let fingerprint = try store.fingerprint(of: device)
        let (cache, last) = verified.withLock { verified -> (SegmentFactsCache, VerificationReport?) in
            let entry = verified[device] ?? (SegmentFactsCache(), [:], nil)
            verified[device] = entry
            return (entry.cache, entry.fingerprint == fingerprint ? entry.report : nil)
        }
        if let last { return last }
        let report = try StoreVerifier.verify(store: store.deviceFolder(device), authority: authority, cache: cache)
        verified.withLock { $0[device] = (cache, fingerprint, report) }
        return report
    }

    /// The acknowledgements the office holds for `device` that the authority stands behind,
    /// name → the sequences each names.
    func acknowledgements(of device: String) throws -> [String: Set<Int64>] {
        if let known = issued.withLock({ $0[device] }) { return known }
        let folder = store.deviceFolder(device)
        var found: [String: Set<Int64>] = [:]
        for name in try store.files(of: device).keys where OfficeStore.isAcknowledgementName(name) {
            guard let ack = try? OffloadAcknowledgement.read(try readWholeFile(folder + "/" + name, limit: 1 << 20, followLinks: false), what: name),
                  ack.deviceID == device, ack.fileName == name, ack.refusal(authority: authority, revocations: revocations) == nil else { continue }
            found[name] = Set(ack.entries.map(\.sequence))
        }
        issued.withLock { $0[device] = found }
        return found
    }

    /// Issues an offload acknowledgement (docs/OFFICE.md, "Acknowledgements") for `device`'s
    /// segments from sequence `from` on that the office's copy verifies and that no
    /// acknowledgement it holds names — once 32 wait, the oldest ended `afterNanoseconds` ago,
    /// or the device is `urgent` (short of storage) — and keeps it in the device's folder, each
    /// segment and manifest it names made durable first; nil when there is nothing to issue or
    /// the office has no acknowledgement key. Throws `OfficeRefusal` when the office's key
    /// certificate does not stand now.
    func acknowledge(device: String, from: Int64, urgent: Bool, now: Int64 = Clock.wallNanoseconds()) throws -> OffloadAcknowledgement? {
        guard let acknowledger else { return nil }
        guard !(try store.files(of: device)).isEmpty else { return nil }
        if let reason = acknowledger.certificate.refusal(authority: authority, purpose: KeyCertificate.offloadAcknowledgement,
                                                         at: Clock.iso8601(wallNanoseconds: now), revocations: revocations) {
            Log.error("acknowledgements: \(reason): none is issued")
            throw OfficeRefusal(503, reason)
        }
        let report = try report(of: device)
        let named = try acknowledgements(of: device).values.reduce(into: Set<Int64>()) { $0.formUnion($1) }
        let folder = store.deviceFolder(device)
        let candidates = Set(report.verifiedSequences.filter { $0 >= from && !named.contains($0) })
        guard !candidates.isEmpty, report.deviceID == device else { return nil }
        // At most `acknowledgedAtOnce`, lowest first: an acknowledgement stays far below the
        // smallest body the office may be configured to send (64 KiB).
        func manifestFile(_ manifest: Manifest) -> String { String(manifest.segmentFile.dropLast(".bcseg".count)) + ".manifest" }
        let manifests = Array(try EvidenceVault.readManifests(folder).filter {
            candidates.contains($0.sequence) && $0.segmentFile.hasSuffix(".bcseg") && OfficeStore.isUploadName($0.segmentFile)
        }.prefix(OfficeService.acknowledgedAtOnce))
        guard let oldest = manifests.first else { return nil }
        let ripe = urgent || acknowledger.afterNanoseconds == 0 || manifests.count >= OfficeService.acknowledgedTogether
            || (ClockParse.nanoseconds(iso8601: oldest.endUTC).map { now - $0 >= acknowledger.afterNanoseconds } ?? true)
        guard ripe else { return nil }
        var files: [String: Int64] = [:]
        for manifest in manifests {
            files[manifest.segmentFile] = manifest.ciphertextBytes
            files[manifestFile(manifest)] = Int64(manifest.document.bytes.count)
        }
        let ack = try OffloadAcknowledgement.issue(deviceID: device, manifests: manifests, key: acknowledger.key, certificate: acknowledger.certificate, now: now)
        try store.durably(device: device, files: files) {
            try store.keepAcknowledgement(device: device, name: ack.fileName, bytes: ack.document.bytes)
        }
        issued.withLock { $0[device, default: [:]][ack.fileName] = Set(ack.entries.map(\.sequence)) }
        return ack
    }

    /// A device's segments as its manifests give them, each with whether the office's copy
    /// verifies it (the office's page).
    private func segments(of device: String) throws -> JSONValue {
        let report = try report(of: device)
        let verified = Set(report.verifiedSequences)
        let manifests = try EvidenceVault.readManifests(store.deviceFolder(device)).suffix(500)
        return .object(["device_id": .string(device), "segments": .array(manifests.reversed().map { manifest in
            .object(["sequence": .integer(manifest.sequence), "file": .string(manifest.segmentFile),
                     "start_utc": .string(manifest.startUTC), "end_utc": .string(manifest.endUTC), "frames": .integer(manifest.frames),
                     "duration_us": .integer(manifest.durationMicroseconds),
                     "officer_id": manifest.document.body["officer_id"] ?? .null, "duty_id": manifest.document.body["duty_id"] ?? .null,
                     "marks": manifest.document.body["marks"] ?? .array([]), "verified": .boolean(verified.contains(manifest.sequence))])
        })])
    }

    private func verification(of device: String) throws -> JSONValue {
        let report = try report(of: device)
        return .object([
            "device_id": .string(device), "clean": .boolean(report.isClean), "segments": .integer(Int64(report.segments)),
            "verified": .integer(Int64(report.verifiedSequences.count)), "journal_records": .integer(Int64(report.journalRecords)),
            "problems": .array(report.problems.map {
                .object(["code": .string($0.code), "severity": .string($0.severity), "message": .string($0.message),
                         "sequences": .array($0.sequences.map(JSONValue.integer))])
            }),
        ])
    }

    /// "path?a=1&b=2" → ("path", ["a": "1", "b": "2"]); no percent-decoding (no name the API
    /// takes needs it).
    static func split(_ target: String) -> (path: String, query: [String: String]) {
        guard let mark = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { query[String(parts[0])] = String(parts[1]) }
        }
        return (String(target[..<mark]), query)
    }
}

extension OfficeStore {
    func files(ofDevice device: String, has name: String) -> Bool { ((try? files(of: device)) ?? [:])[name] != nil }
}
