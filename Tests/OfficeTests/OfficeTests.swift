import Evidence
import Foundation
import LibCrypto
import Office
import PKI
import Platform
import Settings
import TestSupport
import Testing
import Uplink
import Wire

@Suite("Office: uploads over mutual TLS, refusals, the access journal")
struct OfficeTests {
    @Test("a device's store uploads whole, byte for byte; the office's copy verifies clean; a second pass sends nothing")
    func uploadWhole() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1", pieceBytes: 64 << 10)
        let first = try uploader.pass()
        #expect(first.refused.isEmpty)
        let plan = try StoreUploader.plan(store: store)
        #expect(Set(first.files) == Set(plan.map(\.name)))
        #expect(plan.contains { $0.name.hasSuffix(".bcseg") } && plan.last?.name == "journal.log")
        for (name, _) in plan {
            #expect(try readWholeFile(store + "/" + name) == readWholeFile(office.path + "/office/devices/BC-EV-1/" + name), "\(name)")
        }
        #expect(try uploader.pass() == StoreUploader.Pass())

        let verification = try office.client("evidence").exchange("GET", "/v1/devices/BC-EV-1/verification").json
        #expect(verification?["clean"]?.boolean == true, "\(String(describing: verification))")
        #expect(verification?["verified"]?.integer == Int64(plan.filter { $0.name.hasSuffix(".manifest") }.count))
        let journal = try office.stopAndReadJournal()
        #expect(journal.problems.isEmpty)
        #expect(journal.records.contains { $0.kind == "request" && $0.fields["caller"]?.string == "device:BC-EV-1" && $0.fields["method"]?.string == "PUT" })
    }

    @Test("an upload resumes at the office's length; a repeat is harmless; a gap or a changed byte is refused and journaled")
    func resume() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let device = try office.client("BC-EV-1")
        let segment = try #require(try StoreUploader.plan(store: store).first { $0.name.hasSuffix(".bcseg") }).name
        let bytes = try readWholeFile(store + "/" + segment)
        let half = bytes.count / 2
        let target = "/v1/devices/BC-EV-1/files/\(segment)"
        #expect(try device.exchange("PUT", target + "?offset=0", body: Array(bytes[..<half])).json?["size"]?.integer == Int64(half))
        // The same piece again: nothing changes.
        #expect(try device.exchange("PUT", target + "?offset=0", body: Array(bytes[..<half])).json?["size"]?.integer == Int64(half))
        // A piece beyond the end: refused, with where to resume.
        let gap = try device.send("PUT", target + "?offset=\(half + 10)", body: [1, 2, 3])
        #expect(gap.status == 409 && gap.json?["conflict"]?.string == "gap" && gap.json?["size"]?.integer == Int64(half))
        // A piece that changes a byte the office holds: refused, the copy unchanged.
        var changed = Array(bytes[(half - 4)..<(half + 4)])
        changed[0] ^= 0xFF
        let differs = try device.send("PUT", target + "?offset=\(half - 4)", body: changed)
        #expect(differs.status == 409 && differs.json?["conflict"]?.string == "differs")
        // The uploader resumes at the office's length, and the file ends equal.
        let pass = try StoreUploader(client: device, store: store, deviceID: "BC-EV-1", pieceBytes: 4096).pass()
        #expect(pass.refused.isEmpty)
        #expect(try readWholeFile(office.path + "/office/devices/BC-EV-1/" + segment) == bytes)
        let journal = try office.stopAndReadJournal()
        let conflicts = journal.records.filter { $0.fields["status"]?.integer == 409 }
        #expect(conflicts.count == 2 && conflicts.allSatisfy { $0.fields["reason"]?.string?.isEmpty == false })
    }

    @Test("each caller reaches only what its certificate allows; every refusal is journaled with the reason")
    func authorisation() throws {
        let office = try OfficeFixture(revoked: ["live"])
        let other = try office.client("BC-EV-2")
        let cases: [(OfficeClient, String, String, Int)] = [
            (other, "PUT", "/v1/devices/BC-EV-1/files/journal.log?offset=0", 403),  // another device's evidence
            (other, "GET", "/v1/devices/BC-EV-1/files", 403),
            (other, "GET", "/v1/devices", 403),                                      // devices do not read the fleet
            (try office.client("technician"), "GET", "/v1/devices", 200),
            (try office.client("technician"), "GET", "/v1/devices/BC-EV-2/files/journal.log", 403),  // needs evidence
            (try office.client("evidence"), "PUT", "/v1/devices/BC-EV-1/files/journal.log?offset=0", 403),  // officers never write
            (try office.client("live"), "GET", "/v1/devices", 403),                  // revoked
            (other, "PUT", "/v1/devices/BC-EV-2/files/..%2Fescape.bcseg?offset=0", 400),  // not an upload name
            (other, "PUT", "/v1/devices/BC-EV-2/files/journal.log?offset=0", 200),
            (try office.client("evidence"), "GET", "/v1/devices/BC-EV-2/files/journal.log", 200),
        ]
        for (client, method, target, status) in cases {
            let response = try client.send(method, target, body: method == "PUT" ? Array("x\n".utf8) : [])
            #expect(response.status == status, "\(method) \(target): \(response.message)")
        }
        // Another CA's certificate and no certificate: the handshake fails.
        try office.issueForeign()
        for name in ["foreign", ""] {
            #expect(throws: UplinkError.self) { try office.client(name).send("GET", "/v1/devices/BC-EV-1/files") }
        }
        #expect(!FileManager.default.fileExists(atPath: office.path + "/office/devices/BC-EV-2/escape.bcseg"))
        let journal = try office.stopAndReadJournal()
        #expect(journal.problems.isEmpty)
        let refused = journal.records.filter { ($0.fields["status"]?.integer ?? 0) >= 400 }
        #expect(refused.count == cases.filter { $0.3 >= 400 }.count)
        #expect(refused.allSatisfy { $0.fields["reason"]?.string?.isEmpty == false })
        #expect(refused.contains { $0.fields["reason"]?.string?.contains("revoked") == true })
        #expect(journal.records.filter { $0.kind == "tls_refused" }.count == 2)
    }

    @Test("a heartbeat keeps the device's status and journal head; officers read them")
    func heartbeat() throws {
        let office = try OfficeFixture()
        let status = JSONValue.object(["state": .string("recording"), "journal_records": .integer(42), "journal_head_sha256": .string(String(repeating: "ab", count: 32))])
        _ = try office.client("BC-EV-1").exchange("POST", "/v1/devices/BC-EV-1/heartbeat", body: status.canonical, contentType: "application/json")
        #expect(try office.client("BC-EV-1").send("POST", "/v1/devices/BC-EV-1/heartbeat", body: Array("[1]".utf8)).status == 400)
        let kept = try office.client("technician").exchange("GET", "/v1/devices/BC-EV-1/status").json
        #expect(kept?["status"] == status)
        let fleet = try office.client("evidence").exchange("GET", "/v1/devices").json
        #expect(fleet?["devices"]?.array?.first?["status"]?["state"]?.string == "recording")
        let journal = try office.stopAndReadJournal()
        #expect(journal.records.contains { $0.fields["journal_head_sha256"]?.string == String(repeating: "ab", count: 32) && $0.fields["journal_records"]?.integer == 42 })
    }

    @Test("office.toml: every setting read, an unknown one refused with its line")
    func configuration() throws {
        let text = "[office]\nlisten_host = \"127.0.0.1\"\nlisten_port = 9443\nstore = \"/srv/office\"\nrevocations = \"/etc/bodycam-office/revocations.list\"\n"
        let settings = try OfficeConfiguration(file: ConfigFile(file: "office.toml", text: text))
        #expect(settings.listenPort == 9443 && settings.storePath == "/srv/office" && settings.journalKeyPath == "/srv/office/access.key")
        #expect(settings.revocationsPath == "/etc/bodycam-office/revocations.list")
        #expect(throws: ConfigError(file: "office.toml", line: 2, key: "office.colour", message: "unknown setting")) {
            try OfficeConfiguration(file: ConfigFile(file: "office.toml", text: "[office]\ncolour = \"blue\"\n"))
        }
        #expect(throws: ConfigError.self) { try OfficeConfiguration(file: ConfigFile(file: "office.toml", text: "[office]\nstore = \"relative\"\n")) }
    }
}

@Suite("bodycam-office as a process")
struct OfficeProcessTests {
    static var officePath: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("bodycam-office").path
    }

    @Test("it serves until SIGTERM, then exits 0 with a shutdown record; a configuration it cannot use exits 78 naming the problem")
    func process() throws {
        let fixture = try OfficeFixture()
        fixture.server.stop()
        let config = fixture.path + "/office.toml"
        try """
        [office]
        listen_host = "127.0.0.1"
        listen_port = 0
        store = "\(fixture.path)/process-store"
        certificate = "\(fixture.path)/office.pem"
        key = "\(fixture.path)/office.key"
        ca = "\(fixture.path)/ca.pem"
        authority = "\(fixture.path)/authority.pub"

        """.write(toFile: config, atomically: true, encoding: .utf8)
        let office = Process()
        office.executableURL = URL(fileURLWithPath: Self.officePath)
        office.arguments = ["--config", config]
        let errors = Pipe()
        office.standardError = errors
        try office.run()
        defer { if office.isRunning { office.terminate(); office.waitUntilExit() } }
        // The port, from its first line ("… listening on 127.0.0.1:PORT, store …").
        var line = [UInt8]()
        while let byte = try errors.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        let port = try #require(text.range(of: "127.0.0.1:").flatMap { Int(text[$0.upperBound...].prefix { $0.isNumber }) }, "\(text)")
        let client = try OfficeClient(OfficeLink(url: "https://127.0.0.1:\(port)", certificatePath: fixture.path + "/technician.pem",
                                                 keyPath: fixture.path + "/technician.key", caPath: fixture.path + "/ca.pem"))
        #expect(try client.send("GET", "/v1/devices").status == 200)
        office.terminate()
        office.waitUntilExit()
        #expect(office.terminationStatus == 0)
        let journal = AuditJournal.parse(try readWholeFile(fixture.path + "/process-store/access.log"),
                                         key: try KeyFile.readVerifyingKey(fixture.path + "/process-store/access.pub"))
        #expect(journal.problems.isEmpty)
        #expect(journal.records.map(\.kind) == ["office_started", "request", "shutdown"])
        #expect(journal.records.last?.fields["reason"]?.string == "SIGTERM")

        try "[office]\ncertificate = \"\(fixture.path)/missing.pem\"\nstore = \"\(fixture.path)/other\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let refused = Process()
        refused.executableURL = URL(fileURLWithPath: Self.officePath)
        refused.arguments = ["--config", config]
        let refusal = Pipe()
        refused.standardError = refusal
        try refused.run()
        let said = String(decoding: refusal.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        refused.waitUntilExit()
        #expect(refused.terminationStatus == 78)
        #expect(said.contains("missing.pem"), "\(said)")
    }
}
