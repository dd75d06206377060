import ControlProtocol
import Testing
import Wire

@Suite("Control protocol: requests and answers as docs/CONTROL.md gives them")
struct ControlProtocolTests {
    static let requests: [ControlRequest] = [
        .status, .stop(token: [1, 2, 3]), .duty(token: Array("token".utf8)), .mark(label: "vehicle search"),
        .simulateButton(button: "REC_BTN", action: .hold, milliseconds: 4000), .simulateButton(button: "MARK_BTN", action: .click, milliseconds: nil),
        .simulateBattery(percent: 12), .simulateDock(connected: true), .reloadSupervisors, .installCertificate([9, 8, 7]),
    ]

    @Test("every request is one line of canonical JSON with its cmd and version, and reads back the same")
    func requestsRoundTrip() throws {
        for request in Self.requests {
            let line = try ControlProtocol.encodeLine(request)
            #expect(line.last == 0x0A && line.dropLast().allSatisfy { $0 != 0x0A })
            let value = try JSONParser.parse(Array(line.dropLast()))
            #expect(value["cmd"] == .string(request.command.rawValue) && value["version"] == .integer(1))
            #expect(value.canonical == Array(line.dropLast()), "canonical form")
            #expect(try ControlRequest.parse(Array(line.dropLast())) == request)
        }
    }

    @Test("the wire form of each member is what the docs name", arguments: [
        (ControlRequest.stop(token: [0xFF, 0x00]), #"{"cmd":"stop","token":"/wA=","version":1}"#),
        (.mark(label: "x"), #"{"cmd":"mark","label":"x","version":1}"#),
        (.simulateDock(connected: false), #"{"cmd":"sim","dock":false,"version":1}"#),
        (.installCertificate([1]), #"{"certificate":"AQ==","cmd":"install_certificate","version":1}"#),
    ])
    func wireForm(request: ControlRequest, text: String) throws {
        #expect(String(decoding: try ControlProtocol.encodeLine(request).dropLast(), as: UTF8.self) == text)
    }

    @Test("requests that cannot be carried out are named", arguments: [
        (#"not json"#, ControlRequestError.notJSON),
        (#"{"cmd":"format_disk"}"#, .unknownCommand("format_disk")),
        (#"{"cmd":"status","version":2}"#, .unsupportedVersion(2)),
        (#"{"cmd":"stop"}"#, .missing(command: "stop", member: "token", expected: "base64")),
        (#"{"cmd":"stop","token":"not base64!"}"#, .missing(command: "stop", member: "token", expected: "base64")),
        (#"{"cmd":"sim","button":"REC_BTN","action":"smash"}"#, .missing(command: "sim", member: "action", expected: "press, release, click or hold")),
        (#"{"cmd":"sim"}"#, .missing(command: "sim", member: "button", expected: "button and action, battery or dock")),
        (#"{"cmd":3}"#, .notJSON),
    ])
    func refusals(line: String, error: ControlRequestError) {
        #expect(throws: error) { try ControlRequest.parse(Array(line.utf8)) }
    }

    @Test("a mark's label is cut to 200 characters; a hold outside 0–60 s or a battery outside 0–100 % is refused, naming the range")
    func limits() throws {
        let long = String(repeating: "é", count: 300)
        #expect(try ControlRequest.parse(Array(#"{"cmd":"mark","label":"\#(long)"}"#.utf8)) == .mark(label: String(long.prefix(200))))
        #expect(try ControlRequest.parse(Array(#"{"cmd":"sim","button":"PWR_BTN","action":"hold","ms":60000}"#.utf8))
                == .simulateButton(button: "PWR_BTN", action: .hold, milliseconds: 60_000))
        #expect(try ControlRequest.parse(Array(#"{"cmd":"sim","button":"PWR_BTN","action":"hold","ms":0}"#.utf8))
                == .simulateButton(button: "PWR_BTN", action: .hold, milliseconds: 0))
        for ms in ["-1", "4294968", "60001", "9223372036854775807", "\"120\"", "null"] {
            #expect(throws: ControlRequestError.missing(command: "sim", member: "ms", expected: "0 to 60000 milliseconds"), "ms \(ms)") {
                try ControlRequest.parse(Array(#"{"cmd":"sim","button":"PWR_BTN","action":"hold","ms":\#(ms)}"#.utf8))
            }
        }
        for percent in ["-1", "101", "true"] {
            #expect(throws: ControlRequestError.missing(command: "sim", member: "battery", expected: "0 to 100 percent"), "battery \(percent)") {
                try ControlRequest.parse(Array(#"{"cmd":"sim","battery":\#(percent)}"#.utf8))
            }
        }
        #expect(try ControlRequest.parse(Array(#"{"cmd":"sim","battery":100}"#.utf8)) == .simulateBattery(percent: 100))
    }

    @Test("answers read back the same; a status sits flat beside ok, with battery null when unknown")
    func answers() throws {
        let status = StatusReport(state: "recording", officerID: "OFC-1", dutyID: "D-1", segmentsSealed: 3, nextSequence: 4,
                                  lastSealUTC: "2026-11-29T10:00:00.000000Z", preEventMilliseconds: 0, frames: 900,
                                  storageFreeBytes: 1 << 30, hoursLeft: 12, batteryPercent: nil, clockSynced: false,
                                  alarms: ["clock not synchronised"])
        let answers = [ControlResponse(ok: true, state: "recording", status: status), .failure("permission denied: sim needs root"),
                       ControlResponse(ok: false, decision: ["stop_denied"], state: "recording"),
                       ControlResponse(ok: true, keyIDs: ["00112233aabbccdd"]), ControlResponse(ok: true, serial: "7", takesEffect: "at the next start")]
        for answer in answers {
            let line = try ControlProtocol.encodeLine(answer)
            #expect(try ControlProtocol.decode(ControlResponse.self, from: Array(line.dropLast())) == answer)
        }
        let flat = try JSONParser.parse(Array(try ControlProtocol.encodeLine(answers[0]).dropLast()))
        #expect(flat["ok"] == .boolean(true) && flat["segments_sealed"] == .integer(3) && flat["battery_percent"] == .null)
        #expect(flat["status"] == nil)
    }

    @Test("roles: tokens from anyone, status and marks for technicians, the rest for root")
    func roles() {
        let expected: [ControlCommand: ControlRole] = [.stop: .anyone, .duty: .anyone, .status: .technician, .mark: .technician,
                                                       .sim: .root, .reloadSupervisors: .root, .installCertificate: .root]
        for command in ControlCommand.allCases { #expect(command.requiredRole == expected[command], "\(command)") }
        #expect(ControlRole.anyone < .technician && ControlRole.technician < .root)
    }
}
