import Evidence
import Foundation
import LibCrypto
import Office
import PKI
import Pipeline
import Platform
import Settings
import Synchronization
import TestSupport
import Testing
import Uplink
import Wire
import Export

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
        #expect(try office.differingFiles(store: store) == [])
        #expect(try uploader.pass() == StoreUploader.Pass())

        let verification = try office.client("evidence").exchange("GET", "/v1/devices/BC-EV-1/verification").json
        #expect(verification?["clean"]?.boolean == true, "\(String(describing: verification))")
        #expect(verification?["verified"]?.integer == Int64(plan.filter { $0.name.hasSuffix(".manifest") }.count))
        let journal = try office.stopAndReadJournal()
        #expect(journal.problems.isEmpty)
        #expect(journal.records.contains { $0.kind == "request" && $0.fields["caller"]?.string == "device:BC-EV-1" && $0.fields["method"]?.string == "PUT" })
    }

    @Test("the office verifies a device's copy when an upload pass is whole: a verification record with the segments verified and no finding of an upload half done; one naming the problem when a segment does not match its manifest")
    func verificationOnArrival() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let plan = try StoreUploader.plan(store: store)
        let manifests = plan.filter { $0.name.hasSuffix(".manifest") }.map(\.name)
        #expect(manifests.count >= 2)
        let key = try KeyFile.readVerifyingKey(office.path + "/office/access.pub")
        func verifications() throws -> [JournalRecord] {
            AuditJournal.parse(try readWholeFile(office.path + "/office/access.log"), key: key).records.filter { $0.kind == "verification" }
        }
        // No one asks: the uploads alone make the office verify.
        #expect(try StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1", pieceBytes: 64 << 10).pass().refused.isEmpty)
        #expect(eventually {
            guard let last = try verifications().last else { return false }
            return last.fields["verified_segments"]?.integer == Int64(manifests.count) && last.fields["problems"]?.integer == 0
        }, "\(String(describing: try? verifications().map(\.fields)))")
        #expect(try verifications().last?.fields["device_id"]?.string == "BC-EV-1")
        // Verified when the pass was whole (its journal's last piece): no finding of an upload half done.
        #expect(try verifications().allSatisfy { $0.fields["problems"]?.integer == 0 }, "\(String(describing: try? verifications().map(\.fields)))")

        // At another office, the same store with its second segment not what its manifest says (a byte changed
        // before upload): the record names the problem.
        let second = try OfficeFixture()
        let other = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let segment = try #require(plan.filter { $0.name.hasSuffix(".bcseg") }.dropFirst().first).name
        var bytes = try readWholeFile(other + "/" + segment)
        bytes[bytes.count / 2] ^= 0x01
        try writeFileAtomically(other + "/" + segment, bytes)
        _ = try StoreUploader(client: try second.client("BC-EV-1"), store: other, deviceID: "BC-EV-1", pieceBytes: 64 << 10).pass()
        let secondKey = try KeyFile.readVerifyingKey(second.path + "/office/access.pub")
        func secondVerifications() throws -> [JournalRecord] {
            AuditJournal.parse(try readWholeFile(second.path + "/office/access.log"), key: secondKey).records.filter { $0.kind == "verification" }
        }
        #expect(eventually {
            guard let last = try secondVerifications().last else { return false }
            return last.fields["verified_segments"]?.integer == Int64(manifests.count - 1) && last.fields["problems"]?.integer == 1
                && String(decoding: last.fields["first_problems"]?.canonical ?? [], as: UTF8.self).contains("ciphertext_mismatch")
        }, "\(String(describing: try? secondVerifications().map(\.fields)))")
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
        // Another CA's certificate, one that has ended, and no certificate: the handshake fails.
        try office.issueForeign()
        try office.issueExpired("expired", .device(id: "BC-EV-1"))
        for name in ["foreign", "expired", ""] {
            #expect(throws: UplinkError.self) { try office.client(name).send("GET", "/v1/devices/BC-EV-1/files") }
        }
        #expect(!FileManager.default.fileExists(atPath: office.path + "/office/devices/BC-EV-2/escape.bcseg"))
        let journal = try office.stopAndReadJournal()
        #expect(journal.problems.isEmpty)
        let refused = journal.records.filter { ($0.fields["status"]?.integer ?? 0) >= 400 }
        #expect(refused.count == cases.filter { $0.3 >= 400 }.count)
        #expect(refused.allSatisfy { $0.fields["reason"]?.string?.isEmpty == false })
        #expect(refused.contains { $0.fields["reason"]?.string?.contains("revoked") == true })
        #expect(journal.records.filter { $0.kind == "tls_refused" }.count == 3)

    }

    @Test("the office acknowledges what its copy verifies with its certified key; the device fetches, checks and keeps it and releases those segments; nothing is acknowledged twice; no one else may ask or read")
    func acknowledgements() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: office.keys)
        let authority = office.keys.authority.publicKey
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1")
        // Before the office holds anything, there is nothing to acknowledge.
        #expect(try uploader.acknowledgements(from: 1, skip: []).isEmpty)
        _ = try uploader.pass()
        let from = try #require(try vault.firstUnacknowledged(authority: authority))
        let fetched = try uploader.acknowledgements(from: from, skip: [])
        #expect(fetched.count == 1)
        let (ack, refused) = try vault.receiveOffload(try #require(fetched.first).bytes, authority: authority)
        #expect(refused.isEmpty && ack.fileName == fetched.first?.name)
        #expect(ack.entries.map(\.sequence) == [1, 2, 3, 4, 5] && ack.signerCertificate?.holder == "test office")
        #expect(try vault.firstUnacknowledged(authority: authority) == nil)
        // Asked again, the office issues nothing new; a device that lost the answer gets the same one.
        #expect(try uploader.acknowledgements(from: 1, skip: [ack.fileName]).isEmpty)
        #expect(try uploader.acknowledgements(from: 1, skip: []).map(\.bytes) == [ack.document.bytes])
        #expect(try vault.releaseOffloaded(authority: authority, due: { _, _ in true }) == [1, 2, 3, 4, 5])
        _ = try uploader.pass()
        let report = try StoreVerifier.verify(store: store, authority: authority)
        #expect(report.isClean && report.offloaded == [1, 2, 3, 4, 5], "\(report.problems)")
        let copy = try office.client("evidence").exchange("GET", "/v1/devices/BC-EV-1/verification").json
        #expect(copy?["clean"]?.boolean == true && copy?["verified"]?.integer == 5, "\(String(describing: copy))")

        let other = try office.client("BC-EV-2")
        let cases: [(OfficeClient, String, String, Int)] = [
            (other, "POST", "/v1/devices/BC-EV-1/acknowledgements", 403),
            (other, "GET", "/v1/devices/BC-EV-1/files/\(ack.fileName)", 403),
            (try office.client("BC-EV-1"), "GET", "/v1/devices/BC-EV-1/files/journal.log", 403),  // a device reads back only acknowledgements
            (try office.client("BC-EV-1"), "PUT", "/v1/devices/BC-EV-1/files/offload-0011223344556677.ack?offset=0", 400),  // nor writes one
            (try office.client("BC-EV-1"), "POST", "/v1/devices/BC-EV-1/acknowledgements", 400),  // no from_sequence
            (try office.client("evidence"), "GET", "/v1/devices/BC-EV-1/files/\(ack.fileName)", 200),
        ]
        for (client, method, target, status) in cases {
            let response = try client.send(method, target, body: method == "GET" ? [] : Array("{}".utf8), contentType: "application/json")
            #expect(response.status == status, "\(method) \(target): \(response.message)")
        }
        let journal = try office.stopAndReadJournal()
        #expect(journal.problems.isEmpty)
        let issued = journal.records.filter { $0.fields["ack_id"] != nil }
        #expect(issued.count == 1 && issued.first?.fields["ack_id"]?.string == ack.ackID
                && issued.first?.fields["acknowledged"] == .array((1...5).map { .integer($0) }))
    }

    @Test("acknowledgements wait for segments that ended acknowledge_after_seconds ago, or 32 of them, unless the camera is short of storage")
    func acknowledgementsWait() throws {
        let office = try OfficeFixture(acknowledgeAfterSeconds: 300)
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1")
        _ = try uploader.pass()
        // Five segments that ended moments ago: not yet.
        #expect(try uploader.acknowledgements(from: 1, skip: []).isEmpty)
        #expect(try names(office.path + "/office/devices/BC-EV-1", suffix: ".ack").isEmpty)
        // Short of storage: at once.
        let urgent = try uploader.acknowledgements(from: 1, skip: [], urgent: true)
        #expect(urgent.count == 1)
        #expect(try OffloadAcknowledgement.read(try #require(urgent.first).bytes, what: "ack").entries.map(\.sequence) == [1, 2, 3, 4, 5])
        // The reply lists only acknowledgements that name a segment from from_sequence on.
        #expect(try uploader.acknowledgements(from: 6, skip: []).isEmpty)
    }

    @Test("the office's page and what it reads: officers get the page, devices do not; segments with their verification; an export decrypted for the evidence role only")
    func page() throws {
        let office = try OfficeFixture(identity: Pristine.shared.keys.office)
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        _ = try StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1").pass()
        let page = try office.client("technician").send("GET", "/")
        #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
        #expect(String(decoding: page.body, as: UTF8.self).contains("<title>bodycam office</title>"))
        #expect(try office.client("BC-EV-1").send("GET", "/").status == 403)
        let segments = try #require(try office.client("technician").exchange("GET", "/v1/devices/BC-EV-1/segments").json?["segments"]?.array)
        #expect(segments.count == 5 && segments.allSatisfy { $0["verified"]?.boolean == true && $0["marks"]?.array != nil })
        let file = try #require(segments.first?["file"]?.string)
        let target = "/v1/devices/BC-EV-1/export/" + file.replacingOccurrences(of: ".bcseg", with: ".mp4")
        #expect(try office.client("technician").send("GET", target).status == 403)
        let export = try office.client("evidence").send("GET", target)
        #expect(export.status == 200 && export.headers["content-type"] == "video/mp4")
        // A standard MP4, index first, that decodes whole.
        #expect(Array(MP4Boxes.topLevel(export.body).map(\.type).prefix(2)) == ["ftyp", "moov"])
        #expect(!MP4Boxes.topLevel(export.body).contains { $0.type == "moof" })
        let downloaded = store + "-download.mp4"
        defer { unlink(downloaded) }
        try writeFileAtomically(downloaded, export.body)
        let inspected = try SegmentInspector.inspect(path: downloaded)
        #expect(inspected.problems.isEmpty && inspected.decodedFrames == 30, "\(inspected.problems)")
        #expect(try office.client("evidence").send("GET", "/v1/devices/BC-EV-1/export/seg-000009-20260101T000000Z.mp4").status == 409)
    }

    @Test("an office without an acknowledgement key acknowledges nothing: every segment stays on the device")
    func noAcknowledgementKey() throws {
        let office = try OfficeFixture(acknowledging: false)
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1")
        _ = try uploader.pass()
        #expect(try uploader.acknowledgements(from: 1, skip: []).isEmpty)
        #expect(try names(store, suffix: ".ack").isEmpty)
    }

    @Test("targets that try to leave the device's folder, or name what a device never uploads, are refused before the disk is touched")
    func hostileTargets() throws {
        let office = try OfficeFixture()
        let service = office.server.service
        let device = Caller.device(id: "BC-EV-2", serial: "01")
        for target in ["/v1/devices/BC-EV-2/files/../../status/BC-EV-2.json?offset=0", "/v1/devices/BC-EV-2/files/..?offset=0",
                       "/v1/devices/BC-EV-2/files/.hidden.bcseg?offset=0", "/v1/devices/../files/journal.log?offset=0",
                       "/v1/devices/BC-EV-2/files/x.bcseg.partial?offset=0", "/v1/devices/BC-EV-2/files/journal.log?offset=-1",
                       "/v1/devices/BC-EV-2/files/journal.log", "/v1/devices/BC-EV-2/files/device.pub?offset=0",
                       "/v1/devices/BC-EV-2/files/journal.log?whole=1"] {
            let reply = service.respond(to: OfficeRequest(method: "PUT", target: target, body: [0x0A], peer: "test", caller: .success(device)))
            #expect((400..<500).contains(reply.status), "\(target): \(reply.status)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: office.path + "/office/status").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: office.path + "/office/devices/BC-EV-2"))
    }

    @Test("a body over the office's limit is 413; the uploader then sends smaller pieces and the copy ends equal")
    func smallerPieces() throws {
        let office = try OfficeFixture(maximumBodyBytes: 6 << 10)
        let store = try LinkTests.largeStore(office)
        #expect(try StoreUploader.plan(store: store).contains { $0.length > 6 << 10 }, "no file needs more than one piece: the test proves nothing")
        let device = try office.client("BC-EV-1")
        #expect(try device.send("PUT", "/v1/devices/BC-EV-1/files/journal.log?offset=0", body: [UInt8](repeating: 0x0A, count: 7 << 10)).status == 413)
        let pass = try StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1", pieceBytes: 1 << 20).pass()
        #expect(pass.refused.isEmpty)
        #expect(try office.differingFiles(store: store) == [])
    }

    @Test("a renewed certificate replaces the office's whole, the old one kept beside it and the change journaled")
    func renewal() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1")
        try uploader.pass()
        let keys = Pristine.shared.keys
        let renewed = try DeviceCertificate.issue(deviceID: "BC-EV-1", deviceKey: keys.device.publicKey, authority: keys.authority,
                                                  notBefore: "2026-01-01T00:00:00.000000Z", notAfter: "2099-06-01T00:00:00.000000Z")
        try writeFileAtomically(store + "/device.certificate", renewed.document.bytes)
        #expect(try uploader.pass().files == ["device.certificate"])
        let copy = office.path + "/office/devices/BC-EV-1"
        #expect(try readWholeFile(copy + "/device.certificate") == renewed.document.bytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: copy).filter { $0.hasPrefix("device.certificate.replaced-") }.count == 1)
        #expect(try StoreVerifier.verify(store: copy, authority: keys.authority.publicKey).isClean)
        let journal = try office.stopAndReadJournal()
        #expect(journal.records.contains { $0.fields["replaced_kept_as"]?.string?.hasPrefix("device.certificate.replaced-") == true })
    }

    @Test("a pass ends at the next piece when cancelled (a stop); the next pass sends the rest")
    func cancelledPass() throws {
        let office = try OfficeFixture()
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let uploader = StoreUploader(client: try office.client("BC-EV-1"), store: store, deviceID: "BC-EV-1", pieceBytes: 16 << 10)
        var checks = 0
        #expect(throws: StoreUploader.Interrupted.cancelled) { try uploader.pass(cancelled: { checks += 1; return checks > 4 }) }
        #expect(throws: StoreUploader.Interrupted.deadline) { try uploader.pass(deadline: Clock.monotonicNanoseconds()) }
        #expect(try uploader.pass().refused.isEmpty)
        #expect(try office.differingFiles(store: store) == [])
    }

    @Test("refused handshakes: at most 60 journaled a minute, the rest counted into the next record")
    func refusalLimit() throws {
        let office = try OfficeFixture()
        let service = office.server.service
        let minute: Int64 = 60_000_000_000
        let admitted = (0..<100).filter { _ in service.admitRefusedHandshake(now: 7 * minute) }.count
        #expect(admitted == OfficeService.refusedHandshakesPerMinute)
        #expect(service.admitRefusedHandshake(now: 8 * minute))
        service.journalRefusedHandshake(peer: "192.0.2.1:5000", reason: "test")
        let journal = try office.stopAndReadJournal()
        #expect(journal.records.last { $0.kind == "tls_refused" }?.fields["unjournaled_before"]?.integer == 40)
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
        let config = try fixture.writeConfig(listenHost: "127.0.0.1", port: 0, store: fixture.path + "/process-store")
        let (office, text) = try OfficeFixture.launch([Self.officePath, "--config", config])
        defer { if office.isRunning { office.terminate(); office.waitUntilExit() } }
        // The port, from its first line ("… listening on 127.0.0.1:PORT, store …").
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

/// The uplink over a real link between network namespaces (docs/OFFICE.md, "Tests over a
/// link"): the office in a namespace of its own behind a veth pair, the camera's side shaped to
/// a slow uplink with tbf, and the link cut in the middle of an upload. (This kernel has no
/// netem: delay and loss cannot be shaped here, only the rate and the cut.)
@Suite("Link: uploads across network namespaces, shaped and cut", .serialized,
       .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
                    && FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc"),
                "needs root and iproute2 (ip, tc) to make namespaces"))
struct LinkTests {
    /// Runs ip or tc; throws with its words when it fails.
    @discardableResult
    static func sh(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/" + tool)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw OfficeRefusal(500, "\(tool) \(arguments.joined(separator: " ")): \(said)") }
        return said
    }

    @Test("a store uploaded over a 512 kbit/s link that is cut mid-upload: the pass fails, the next resumes, the office's copy is the camera's byte for byte and verifies")
    func cutAndResume() throws {
        let fixture = try OfficeFixture(extraHosts: ["10.77.0.2"])
        fixture.server.stop()
        let id = String(getpid() % 100_000)
        let namespace = "bc-office-\(id)", outside = "bcv\(id)a", inside = "bcv\(id)b"
        try Self.sh("ip", ["netns", "add", namespace])
        defer {
            _ = try? Self.sh("ip", ["link", "del", outside])
            _ = try? Self.sh("ip", ["netns", "del", namespace])
        }
        try Self.sh("ip", ["link", "add", outside, "type", "veth", "peer", "name", inside])
        try Self.sh("ip", ["link", "set", inside, "netns", namespace])
        try Self.sh("ip", ["addr", "add", "10.77.0.1/30", "dev", outside])
        try Self.sh("ip", ["link", "set", outside, "up"])
        try Self.sh("ip", ["-n", namespace, "addr", "add", "10.77.0.2/30", "dev", inside])
        try Self.sh("ip", ["-n", namespace, "link", "set", inside, "up"])
        try Self.sh("ip", ["-n", namespace, "link", "set", "lo", "up"])
        // The camera's uplink: 512 kbit/s.
        try Self.sh("tc", ["qdisc", "add", "dev", outside, "root", "tbf", "rate", "512kbit", "burst", "16kbit", "latency", "400ms"])

        let config = try fixture.writeConfig(listenHost: "10.77.0.2", port: 8443, store: fixture.path + "/link-store")
        let (office, line) = try OfficeFixture.launch(["/usr/sbin/ip", "netns", "exec", namespace, OfficeProcessTests.officePath, "--config", config])
        defer { if office.isRunning { office.terminate(); office.waitUntilExit() } }
        #expect(line.contains("listening on 10.77.0.2:8443"))

        // A store large enough to take seconds at 512 kbit/s.
        let store = try LinkTests.largeStore(fixture)
        var link = OfficeLink(url: "https://10.77.0.2:8443", certificatePath: fixture.path + "/BC-EV-1.pem",
                              keyPath: fixture.path + "/BC-EV-1.key", caPath: fixture.path + "/ca.pem")
        link.stallSeconds = 3
        let shaped = link
        let plan = try StoreUploader.plan(store: store)
        let total = plan.reduce(0) { $0 + $1.length }
        let copy = fixture.path + "/link-store/devices/BC-EV-1"
        func held() -> Int64 { plan.reduce(0) { sum, file in sum + ((try? readWholeFile(copy + "/" + file.name).count).map(Int64.init) ?? 0) } }

        // First pass, cut once a quarter has arrived.
        let first = Mutex<Result<StoreUploader.Pass, any Error>?>(nil)
        let worker = WorkerThread(name: "upload") {
            first.withLock { $0 = Result { try StoreUploader(client: try OfficeClient(shaped), store: store, deviceID: "BC-EV-1", pieceBytes: 32 << 10).pass() } }
        }
        #expect(eventually(within: 120) { held() >= total / 4 })
        try Self.sh("ip", ["link", "set", outside, "down"])
        worker.join()
        let arrivedBeforeCut = held()
        #expect(arrivedBeforeCut < total, "the cut came after the whole store had arrived: make the store larger")
        #expect(throws: UplinkError.self) { try first.withLock { $0 }!.get() }
        try Self.sh("ip", ["link", "set", outside, "up"])
        try Self.sh("ip", ["addr", "replace", "10.77.0.1/30", "dev", outside])

        // The next pass resumes where the office's copy ends.
        let started = Clock.monotonicNanoseconds()
        let second = try StoreUploader(client: try OfficeClient(link), store: store, deviceID: "BC-EV-1", pieceBytes: 32 << 10).pass()
        let seconds = Double(Clock.monotonicNanoseconds() - started) / 1e9
        #expect(second.refused.isEmpty)
        // Only what was missing, and the two small whole files (a new uploader sends them once).
        let whole = plan.filter { StoreUploader.replaceable.contains($0.name) }.reduce(0) { $0 + $1.length }
        #expect(second.bytes == total - arrivedBeforeCut + whole, "only what was missing was sent")
        print("LINK goodput \(Self.formatRate(Double(second.bytes) * 8 / seconds)) over a 512 kbit/s tbf link (\(second.bytes) bytes in \(seconds) s)")
        #expect(try fixture.differingFiles(store: store, copy: copy) == [])
        #expect(try StoreVerifier.verify(store: copy, authority: fixture.keys.authority.publicKey).isClean)
    }

    static func formatRate(_ bitsPerSecond: Double) -> String { String(format: "%.3f Mbit/s", bitsPerSecond / 1e6) }

    /// A store of about 1 MB: 300 frames at 640×480.
    static func largeStore(_ fixture: OfficeFixture) throws -> String {
        let store = fixture.path + "/large-store"
        try recordEvidence(into: try makeVault(store, keys: fixture.keys), frames: 300, width: 640, height: 480)
        return store
    }
}
