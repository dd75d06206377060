import ArgumentParser
import Controls
import Evidence
import Foundation
import LibCrypto
import Pipeline
import Policy

/// Options of the subcommands that talk to the running daemon.
struct SocketOptions: ParsableArguments {
    @Option(help: "The daemon's control socket.") var socket = "/run/bodycam/control.sock"
}

/// Sends one request; prints the answer; exit 1 when the daemon refused, 2 when it cannot be reached.
func send(_ request: JSONValue, socket: String, json: Bool) throws {
    let response = try orExit2 { try ControlSocket.request(request, path: socket) }
    if json {
        print(response.canonicalString)
    } else {
        var parts: [String] = []
        if let state = response["state"]?.string { parts.append("state \(state)") }
        if let decision = response["decision"]?.array?.compactMap(\.string), !decision.isEmpty { parts.append("journaled: \(decision.joined(separator: ", "))") }
        if let error = response["error"]?.string { parts.append("error: \(error)") }
        if let ids = response["key_ids"]?.array?.compactMap(\.string) { parts.append("trusted supervisor keys: \(ids.isEmpty ? "none" : ids.joined(separator: ", "))") }
        for key in ["serial", "takes_effect", "officer_id", "duty_id", "segments_sealed", "next_sequence", "last_seal_utc", "pre_event_ms", "frames",
                    "storage_free_bytes", "hours_left", "battery_percent", "clock_synced"] {
            guard let value = response[key], value != .null else { continue }
            parts.append("\(key) \(value.string ?? value.integer.map(String.init) ?? value.boolean.map { $0 ? "yes" : "no" } ?? "?")")
        }
        if let alarms = response["alarms"]?.array?.compactMap(\.string), !alarms.isEmpty { parts.append("ALARMS: \(alarms.joined(separator: ", "))") }
        print((response["ok"]?.boolean == true ? "OK " : "REFUSED ") + parts.joined(separator: "; "))
    }
    if response["ok"]?.boolean != true { throw ExitCode(1) }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The daemon's state, duty and segments.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    func run() throws { try send(.object(["cmd": .string("status")]), socket: connection.socket, json: global.json) }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Present a supervisor's stop token to the running daemon.",
        discussion: "Exit 0: recording stopped; 1: refused (and journaled as a denied stop); 2: the daemon cannot be reached.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    @Option(help: "The stop token file.") var token: String
    func run() throws {
        let bytes = try orExit2 { try readWholeFile(token, limit: 1 << 16) }
        try send(.object(["cmd": .string("stop"), "token": .string(Base64.encode(bytes))]), socket: connection.socket, json: global.json)
    }
}

struct Duty: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start or end a duty with a signed duty token.", subcommands: [Start.self, End.self])
    struct Start: ParsableCommand {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: SocketOptions
        @Option(help: "The duty token file (action start).") var token: String
        func run() throws {
            let bytes = try orExit2 { try readWholeFile(token, limit: 1 << 16) }
            try send(.object(["cmd": .string("duty"), "token": .string(Base64.encode(bytes))]), socket: connection.socket, json: global.json)
        }
    }
    struct End: ParsableCommand {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: SocketOptions
        @Option(help: "The duty token file (action end).") var token: String
        func run() throws {
            let bytes = try orExit2 { try readWholeFile(token, limit: 1 << 16) }
            try send(.object(["cmd": .string("duty"), "token": .string(Base64.encode(bytes))]), socket: connection.socket, json: global.json)
        }
    }
}

struct Mark: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a mark (now) to the recording and the journal.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    @Option(help: "What happened (up to 200 characters).") var label = ""
    func run() throws { try send(.object(["cmd": .string("mark"), "label": .string(label)]), socket: connection.socket, json: global.json) }
}

struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive the simulated buttons, battery and dock (controls.backend = \"simulated\").",
        discussion: "Buttons: REC_BTN, MARK_BTN, PWR_BTN. Actions: press, release, click (120 ms), hold (3.5 s).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    @Argument(help: "press|release|click|hold BUTTON, battery PERCENT, dock in|out") var words: [String]
    func validate() throws {
        guard words.count == 2 else { throw ValidationError("give an action and its object, e.g. `click REC_BTN`") }
    }
    func run() throws {
        var request: [String: JSONValue] = ["cmd": .string("sim")]
        switch words[0] {
        case "press", "release", "click", "hold":
            request["action"] = .string(words[0])
            request["button"] = .string(words[1])
        case "battery":
            guard let percent = Int64(words[1]) else { throw ValidationError("battery needs a percentage") }
            request["battery"] = .integer(percent)
        case "dock":
            request["dock"] = .boolean(words[1] == "in")
        default:
            throw ValidationError("unknown action \(words[0])")
        }
        try send(.object(request), socket: connection.socket, json: global.json)
    }
}

struct Supervisor: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Supervisors' keys and the tokens they sign.", subcommands: [Init.self, Token.self, Reload.self])

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the running daemon trust the supervisor keys now in its policy.supervisors folder (root only).",
            discussion: "Exit 0: reloaded (the trusted key ids are printed); 1: refused or unreadable, the old keys stay trusted; 2: the daemon cannot be reached.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: SocketOptions
        func run() throws {
            try send(.object(["cmd": .string("reload_supervisors")]), socket: connection.socket, json: global.json)
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a supervisor's Ed25519 key: DIR/NAME.key (secret) and DIR/NAME.pub (goes into each device's policy.supervisors folder).")
        @Option(help: "Folder for the key files.") var dir: String
        @Option(help: "The supervisor's name.") var name = "supervisor"
        func run() throws {
            try orExit2 {
                let key = try makeSigningKeyPair(dir: dir, name: name)
                print("supervisor \(name) \(KeyFile.keyID(key.publicKey.raw)): \(dir)/\(name).key (secret), \(dir)/\(name).pub")
            }
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign a stop token, or a duty start or end token, for one device.")
        @Option(help: "stop, duty-start or duty-end.") var kind: String
        @Option(help: "The supervisor's secret key file.") var key: String
        @Option(help: "The supervisor's name, as journaled.") var issuer = "supervisor"
        @Option(name: .customLong("device-id")) var deviceID: String
        @Option(name: .customLong("officer-id"), help: "Duty tokens: the officer.") var officerID = ""
        @Option(name: .customLong("duty-id"), help: "Duty tokens: the duty.") var dutyID = ""
        @Option(help: "Minutes of validity.") var minutes = 15
        @Option(help: "Where to write the token.") var out: String
        func validate() throws {
            guard ["stop", "duty-start", "duty-end"].contains(kind) else { throw ValidationError("--kind is stop, duty-start or duty-end") }
            guard (1...1440).contains(minutes) else { throw ValidationError("--minutes must be 1…1440") }
            if kind == "duty-start" && officerID.isEmpty { throw ValidationError("a duty-start token needs --officer-id") }
        }
        func run() throws {
            try orExit2 {
                let token = try AuthorizationToken.issue(kind == "stop" ? .stop : .duty, deviceID: deviceID, issuer: issuer,
                                                         key: try KeyFile.readSigningKey(key), minutes: minutes,
                                                         action: kind == "duty-end" ? "end" : kind == "duty-start" ? "start" : "stop",
                                                         officerID: officerID, dutyID: dutyID)
                try writeFileAtomically(out, token.document.bytes, mode: 0o600)
                print("\(kind) token for \(deviceID), valid until \(token.notAfter): \(out)")
            }
        }
    }
}
