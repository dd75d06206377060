import ArgumentParser
import Controls
import Evidence
import Foundation
import LibCrypto
import Pipeline
import Policy
import Daemon
import Configuration
import ControlProtocol
import Capture
import Tokens
import Platform
import Wire

/// Options of the subcommands that talk to the running daemon.
struct SocketOptions: ParsableArguments {
    @Option(help: "The daemon's control socket.") var socket = "/run/bodycam/control.sock"
}

/// Sends one request; prints the answer; exit 1 when the daemon refused, 2 when it cannot be reached.
func send(_ request: ControlRequest, socket: String, json: Bool) throws {
    let response = try orExit2 { try ControlClient.send(request, path: socket) }
    if json {
        try printJSON(response)
    } else {
        var parts: [String] = []
        if let state = response.state ?? response.status?.state { parts.append("state \(state)") }
        if let decision = response.decision, !decision.isEmpty { parts.append("journaled: \(decision.joined(separator: ", "))") }
        if let error = response.error { parts.append("error: \(error)") }
        if let ids = response.keyIDs { parts.append("trusted supervisor keys: \(ids.isEmpty ? "none" : ids.joined(separator: ", "))") }
        if let serial = response.serial { parts.append("serial \(serial)") }
        if let takesEffect = response.takesEffect { parts.append("takes_effect \(takesEffect)") }
        if let status = response.status {
            parts += ["officer_id \(status.officerID)", "duty_id \(status.dutyID)", "segments_sealed \(status.segmentsSealed)",
                      "next_sequence \(status.nextSequence)", "last_seal_utc \(status.lastSealUTC)", "pre_event_ms \(status.preEventMilliseconds)",
                      "frames \(status.frames)", "write_queue_ms \(status.writeQueueMilliseconds)",
                      "write_queue_peak_ms \(status.writeQueuePeakMilliseconds)", "frames_shed \(status.framesShed)",
                      "storage_free_bytes \(status.storageFreeBytes)", "hours_left \(status.hoursLeft)"]
            if let battery = status.batteryPercent { parts.append("battery_percent \(battery)") }
            parts.append("clock_synced \(status.clockSynced ? "yes" : "no")")
            parts.append("journal_head \(status.journalRecords):\(status.journalHeadSHA256)")
            if !status.alarms.isEmpty { parts.append("ALARMS: \(status.alarms.joined(separator: ", "))") }
        }
        print((response.ok ? "OK " : "REFUSED ") + parts.joined(separator: "; "))
    }
    if !response.ok { throw ExitCode(1) }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The daemon's state, duty and segments.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    func run() throws { try send(.status, socket: connection.socket, json: global.json) }
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
        try send(.stop(token: bytes), socket: connection.socket, json: global.json)
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
            try send(.duty(token: bytes), socket: connection.socket, json: global.json)
        }
    }
    struct End: ParsableCommand {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var connection: SocketOptions
        @Option(help: "The duty token file (action end).") var token: String
        func run() throws {
            let bytes = try orExit2 { try readWholeFile(token, limit: 1 << 16) }
            try send(.duty(token: bytes), socket: connection.socket, json: global.json)
        }
    }
}

struct Mark: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a mark (now) to the recording and the journal.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: SocketOptions
    @Option(help: "What happened (up to 200 characters).") var label = ""
    func run() throws { try send(.mark(label: label), socket: connection.socket, json: global.json) }
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
        let request: ControlRequest
        switch words[0] {
        case "press", "release", "click", "hold":
            request = .simulateButton(button: words[1], action: SimulatedButtonAction(rawValue: words[0])!, milliseconds: nil)
        case "battery":
            guard let percent = Int(words[1]) else { throw ValidationError("battery needs a percentage") }
            request = .simulateBattery(percent: percent)
        case "dock":
            guard ["in", "out"].contains(words[1]) else { throw ValidationError("dock in or dock out") }
            request = .simulateDock(connected: words[1] == "in")
        default:
            throw ValidationError("unknown action \(words[0])")
        }
        try send(request, socket: connection.socket, json: global.json)
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
            try send(.reloadSupervisors, socket: connection.socket, json: global.json)
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
                print("supervisor \(name) \(key.publicKey.keyID): \(dir)/\(name).key (secret), \(dir)/\(name).pub")
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
