import Wire

/// The control socket's protocol, shared by `bodycamd` and `bodycamctl` (docs/CONTROL.md).
///
/// A Unix stream socket. The client writes one request — one JSON object on one line, at most
/// `maximumRequestBytes` — and the daemon answers with one JSON object on one line, then closes.
/// Who may send what is decided from the peer's credentials (SO_PEERCRED), per command
/// (`ControlCommand.requiredRole`). The messages are `Codable`, read and written through `Wire`'s
/// JSONCoding and canonical JSON, so the daemon loads no Foundation.
public enum ControlProtocol {
    /// Version 1. A request may carry `"version": 1`; a request for a later version is refused.
    public static let version = 1
    /// A request line longer than this is refused.
    public static let maximumRequestBytes = 65_536

    /// One line of canonical JSON for `value` (sorted keys), with its newline.
    public static func encodeLine<T: Encodable>(_ value: T) throws -> [UInt8] {
        try JSONCoding.encode(value).canonical + [0x0A]
    }

    /// Reads one message (a JSON text, without its newline).
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONCoding.decode(type, from: JSONParser.parse(bytes))
    }
}

/// Who may send a command: root everything; the daemon's own user and the technicians' group
/// status and marks; anyone who can reach the socket a stop or duty token (the token is the
/// authorisation).
public enum ControlRole: String, Codable, Sendable, Comparable {
    case anyone, technician, root

    public static func < (a: ControlRole, b: ControlRole) -> Bool {
        let order: [ControlRole] = [.anyone, .technician, .root]
        return order.firstIndex(of: a)! < order.firstIndex(of: b)!
    }
}

/// The commands, by their `cmd` on the wire.
public enum ControlCommand: String, Codable, Sendable, CaseIterable {
    case status, stop, duty, mark, sim
    case reloadSupervisors = "reload_supervisors"
    case installCertificate = "install_certificate"

    public var requiredRole: ControlRole {
        switch self {
        case .stop, .duty: return .anyone
        case .status, .mark: return .technician
        case .sim, .reloadSupervisors, .installCertificate: return .root
        }
    }
}

/// What a simulated button does (`sim`, with `controls.backend = "simulated"` only).
public enum SimulatedButtonAction: String, Codable, Sendable {
    /// Contact closes / opens.
    case press, release
    /// Closes, then opens after `ms` (click: 120 ms by default, hold: 3500 ms).
    case click, hold
}

/// A request. On the wire: `{"cmd": "…", …}` with the members each case lists.
public enum ControlRequest: Equatable, Sendable {
    /// `{"cmd":"status"}`
    case status
    /// `{"cmd":"stop","token":BASE64}`: a supervisor's stop token.
    case stop(token: [UInt8])
    /// `{"cmd":"duty","token":BASE64}`: a supervisor's duty token (start or end).
    case duty(token: [UInt8])
    /// `{"cmd":"mark","label":TEXT}`: an event mark (label at most 200 characters).
    case mark(label: String)
    /// `{"cmd":"sim","button":"REC_BTN","action":"click","ms":120}`
    case simulateButton(button: String, action: SimulatedButtonAction, milliseconds: Int?)
    /// `{"cmd":"sim","battery":PERCENT}`
    case simulateBattery(percent: Int)
    /// `{"cmd":"sim","dock":BOOL}`
    case simulateDock(connected: Bool)
    /// `{"cmd":"reload_supervisors"}`: trust the keys now in policy.supervisors.
    case reloadSupervisors
    /// `{"cmd":"install_certificate","certificate":BASE64}`
    case installCertificate([UInt8])

    public var command: ControlCommand {
        switch self {
        case .status: return .status
        case .stop: return .stop
        case .duty: return .duty
        case .mark: return .mark
        case .simulateButton, .simulateBattery, .simulateDock: return .sim
        case .reloadSupervisors: return .reloadSupervisors
        case .installCertificate: return .installCertificate
        }
    }
}

/// A request that cannot be carried out as sent.
public enum ControlRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    case notJSON
    case unknownCommand(String)
    case unsupportedVersion(Int)
    /// A member the command needs is missing, or its value is not what it must be.
    case missing(command: String, member: String, expected: String)

    public var description: String {
        switch self {
        case .notJSON: return "expected one JSON object with \"cmd\" on one line"
        case .unknownCommand(let name): return "unknown command \(name)"
        case .unsupportedVersion(let version): return "protocol version \(version) is not supported (this daemon speaks \(ControlProtocol.version))"
        case .missing(let command, let member, let expected): return "\(command) needs \"\(member)\" (\(expected))"
        }
    }
}

extension ControlRequest: Codable {
    enum Key: String, CodingKey { case cmd, version, token, label, button, action, ms, battery, dock, certificate }

    /// The `cmd` of a request line, before the rest is read (access is decided on it alone).
    public struct Envelope: Decodable, Sendable {
        public var cmd: String
        public var version: Int?
    }

    /// Reads a request line: first the envelope (for access), then the members its command needs.
    public static func parse(_ line: [UInt8]) throws -> ControlRequest {
        guard let value = try? JSONParser.parse(line) else { throw ControlRequestError.notJSON }
        return try parse(value)
    }

    /// The same, for a request line already parsed as JSON.
    public static func parse(_ value: JSONValue) throws -> ControlRequest {
        guard let envelope = try? JSONCoding.decode(Envelope.self, from: value) else { throw ControlRequestError.notJSON }
        if let version = envelope.version, version > ControlProtocol.version { throw ControlRequestError.unsupportedVersion(version) }
        do {
            return try JSONCoding.decode(ControlRequest.self, from: value)
        } catch let error as ControlRequestError {
            throw error
        } catch {
            throw ControlRequestError.notJSON
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let name = try container.decode(String.self, forKey: .cmd)
        guard let command = ControlCommand(rawValue: name) else { throw ControlRequestError.unknownCommand(String(name.prefix(64))) }
        func base64(_ key: Key) throws -> [UInt8] {
            guard let text = try? container.decode(String.self, forKey: key), let bytes = Base64.decode(text) else {
                throw ControlRequestError.missing(command: name, member: key.rawValue, expected: "base64")
            }
            return bytes
        }
        switch command {
        case .status: self = .status
        case .stop: self = .stop(token: try base64(.token))
        case .duty: self = .duty(token: try base64(.token))
        case .mark: self = .mark(label: String((try? container.decode(String.self, forKey: .label))?.prefix(200) ?? ""))
        case .reloadSupervisors: self = .reloadSupervisors
        case .installCertificate: self = .installCertificate(try base64(.certificate))
        case .sim:
            if let button = try? container.decode(String.self, forKey: .button) {
                guard let action = try? container.decode(SimulatedButtonAction.self, forKey: .action) else {
                    throw ControlRequestError.missing(command: name, member: "action", expected: "press, release, click or hold")
                }
                var milliseconds: Int? = nil
                if container.contains(.ms) {
                    guard let value = try? container.decode(Int.self, forKey: .ms), (0...60_000).contains(value) else {
                        throw ControlRequestError.missing(command: name, member: "ms", expected: "0 to 60000 milliseconds")
                    }
                    milliseconds = value
                }
                self = .simulateButton(button: button, action: action, milliseconds: milliseconds)
            } else if container.contains(.battery) {
                guard let percent = try? container.decode(Int.self, forKey: .battery), (0...100).contains(percent) else {
                    throw ControlRequestError.missing(command: name, member: "battery", expected: "0 to 100 percent")
                }
                self = .simulateBattery(percent: percent)
            } else if let docked = try? container.decode(Bool.self, forKey: .dock) {
                self = .simulateDock(connected: docked)
            } else {
                throw ControlRequestError.missing(command: name, member: "button", expected: "button and action, battery or dock")
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(command.rawValue, forKey: .cmd)
        try container.encode(ControlProtocol.version, forKey: .version)
        switch self {
        case .status, .reloadSupervisors: break
        case .stop(let token), .duty(let token): try container.encode(Base64.encode(token), forKey: .token)
        case .mark(let label): try container.encode(label, forKey: .label)
        case .installCertificate(let bytes): try container.encode(Base64.encode(bytes), forKey: .certificate)
        case .simulateButton(let button, let action, let milliseconds):
            try container.encode(button, forKey: .button)
            try container.encode(action, forKey: .action)
            try container.encodeIfPresent(milliseconds, forKey: .ms)
        case .simulateBattery(let percent): try container.encode(percent, forKey: .battery)
        case .simulateDock(let connected): try container.encode(connected, forKey: .dock)
        }
    }
}

/// The daemon's state as `status` reports it.
public struct StatusReport: Codable, Equatable, Sendable {
    /// The policy's state: off-duty, standby, recording, shutting-down.
    public var state: String
    public var officerID: String
    public var dutyID: String
    public var segmentsSealed: Int
    public var nextSequence: UInt64
    /// UTC end of the newest sealed segment; empty before the first.
    public var lastSealUTC: String
    /// Video held in the pre-event buffer, in milliseconds.
    public var preEventMilliseconds: Int
    /// Pictures encoded since start.
    public var frames: Int
    /// Live video waiting for storage in the write queue now, and the most it has held since
    /// start, milliseconds; pictures let go because that queue was at its bound.
    public var writeQueueMilliseconds: Int = 0
    public var writeQueuePeakMilliseconds: Int = 0
    public var framesShed: Int = 0
    /// Free space in the store (statvfs f_bavail × f_frsize), bytes.
    public var storageFreeBytes: Int64
    /// Hours of recording that space holds at the configured bitrate.
    public var hoursLeft: Int64
    /// The last battery reading; nil without one.
    public var batteryPercent: Int?
    /// The kernel's NTP state (adjtimex): true when synchronised.
    public var clockSynced: Bool
    /// "storage low", "storage critical", "battery low", "clock not synchronised".
    public var alarms: [String]
    /// The journal's head: its number of records and the last one's hash (lower-case hex; ""
    /// while empty). Kept outside the device, it lets `bodycamctl verify --journal-head` find a
    /// journal cut or rewritten later (docs/FORMAT.md, "The journal's tail").
    public var journalRecords: Int64 = 0
    public var journalHeadSHA256 = ""

    public init(state: String, officerID: String, dutyID: String, segmentsSealed: Int, nextSequence: UInt64, lastSealUTC: String,
                preEventMilliseconds: Int, frames: Int, storageFreeBytes: Int64, hoursLeft: Int64, batteryPercent: Int?,
                clockSynced: Bool, alarms: [String]) {
        self.state = state
        self.officerID = officerID
        self.dutyID = dutyID
        self.segmentsSealed = segmentsSealed
        self.nextSequence = nextSequence
        self.lastSealUTC = lastSealUTC
        self.preEventMilliseconds = preEventMilliseconds
        self.frames = frames
        self.storageFreeBytes = storageFreeBytes
        self.hoursLeft = hoursLeft
        self.batteryPercent = batteryPercent
        self.clockSynced = clockSynced
        self.alarms = alarms
    }

    enum CodingKeys: String, CodingKey {
        case state, frames, alarms
        case officerID = "officer_id", dutyID = "duty_id", segmentsSealed = "segments_sealed", nextSequence = "next_sequence"
        case lastSealUTC = "last_seal_utc", preEventMilliseconds = "pre_event_ms", storageFreeBytes = "storage_free_bytes"
        case hoursLeft = "hours_left", batteryPercent = "battery_percent", clockSynced = "clock_synced"
        case writeQueueMilliseconds = "write_queue_ms", writeQueuePeakMilliseconds = "write_queue_peak_ms", framesShed = "frames_shed"
        case journalRecords = "journal_records", journalHeadSHA256 = "journal_head_sha256"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state, forKey: .state)
        try container.encode(officerID, forKey: .officerID)
        try container.encode(dutyID, forKey: .dutyID)
        try container.encode(segmentsSealed, forKey: .segmentsSealed)
        try container.encode(nextSequence, forKey: .nextSequence)
        try container.encode(lastSealUTC, forKey: .lastSealUTC)
        try container.encode(preEventMilliseconds, forKey: .preEventMilliseconds)
        try container.encode(frames, forKey: .frames)
        try container.encode(writeQueueMilliseconds, forKey: .writeQueueMilliseconds)
        try container.encode(writeQueuePeakMilliseconds, forKey: .writeQueuePeakMilliseconds)
        try container.encode(framesShed, forKey: .framesShed)
        try container.encode(storageFreeBytes, forKey: .storageFreeBytes)
        try container.encode(hoursLeft, forKey: .hoursLeft)
        try container.encode(batteryPercent, forKey: .batteryPercent)  // null without a reading
        try container.encode(clockSynced, forKey: .clockSynced)
        try container.encode(alarms, forKey: .alarms)
        try container.encode(journalRecords, forKey: .journalRecords)
        try container.encode(journalHeadSHA256, forKey: .journalHeadSHA256)
    }
}

/// The answer to every request. On the wire one flat object: `ok`, then the members that apply.
public struct ControlResponse: Codable, Equatable, Sendable {
    /// Whether the request was carried out (a refused token or a denied stop is `false`).
    public var ok: Bool
    /// Why not, when `ok` is false and the request itself was at fault.
    public var error: String?
    /// The journal records the policy wrote for the request (`stop_denied`, `duty_started`, …).
    public var decision: [String]?
    /// The policy's state after the request.
    public var state: String?
    /// `status` only.
    public var status: StatusReport?
    /// `reload_supervisors`: the key ids now trusted.
    public var keyIDs: [String]?
    /// `install_certificate`: the certificate's serial, and when it takes effect.
    public var serial: String?
    public var takesEffect: String?

    public init(ok: Bool, error: String? = nil, decision: [String]? = nil, state: String? = nil, status: StatusReport? = nil,
                keyIDs: [String]? = nil, serial: String? = nil, takesEffect: String? = nil) {
        self.ok = ok
        self.error = error
        self.decision = decision
        self.state = state
        self.status = status
        self.keyIDs = keyIDs
        self.serial = serial
        self.takesEffect = takesEffect
    }

    public static func failure(_ message: String) -> ControlResponse { ControlResponse(ok: false, error: message) }

    enum CodingKeys: String, CodingKey {
        case ok, error, decision, state, serial
        case keyIDs = "key_ids", takesEffect = "takes_effect", segmentsSealed = "segments_sealed"
    }

    // `status` is flattened into the response (its members sit beside `ok`).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ok = try container.decode(Bool.self, forKey: .ok)
        error = try container.decodeIfPresent(String.self, forKey: .error)
        decision = try container.decodeIfPresent([String].self, forKey: .decision)
        state = try container.decodeIfPresent(String.self, forKey: .state)
        keyIDs = try container.decodeIfPresent([String].self, forKey: .keyIDs)
        serial = try container.decodeIfPresent(String.self, forKey: .serial)
        takesEffect = try container.decodeIfPresent(String.self, forKey: .takesEffect)
        status = container.contains(.segmentsSealed) ? try StatusReport(from: decoder) : nil
    }

    public func encode(to encoder: Encoder) throws {
        if let status { try status.encode(to: encoder) }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ok, forKey: .ok)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(decision, forKey: .decision)
        if status == nil { try container.encodeIfPresent(state, forKey: .state) }
        try container.encodeIfPresent(keyIDs, forKey: .keyIDs)
        try container.encodeIfPresent(serial, forKey: .serial)
        try container.encodeIfPresent(takesEffect, forKey: .takesEffect)
    }
}
