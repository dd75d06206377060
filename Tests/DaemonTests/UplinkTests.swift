import Evidence
import Foundation
import Platform
import TestSupport
import Testing
import Wire

/// The daemon's uplink (docs/OFFICE.md, "The camera's uplink") against a real office server
/// over mutual TLS on loopback.
@Suite("Uplink: the daemon sends its store to the office as it records")
struct UplinkTests {
    static func uplinkSettings(_ office: OfficeFixture, url: String? = nil, retentionDays: Int = 0, certificate: String = "BC-PROC-1") -> String {
        """
        [uplink]
        office = "\(url ?? office.url)"
        certificate = "\(office.path)/\(certificate).pem"
        key = "\(office.path)/\(certificate).key"
        ca = "\(office.path)/ca.pem"
        authority = "\(office.path)/authority.pub"
        retention_days = \(retentionDays)
        heartbeat_seconds = 5
        piece_kib = 64

        """
    }

    @Test("every segment sealed while recording, and the one sealed at stop, reaches the office byte for byte; the office's copy verifies")
    func uploadsWhileRecording() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let office = try OfficeFixture()
        let config = DaemonTests.config(directory.path, storage: []) + Self.uplinkSettings(office)
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config), "--record-after", "0"])
        let copy = office.path + "/office/devices/BC-PROC-1"
        // Two segments at the office while the camera still records.
        #expect(DaemonTests.eventually(within: 60) { (try? names(copy, suffix: ".manifest").count) ?? 0 >= 2 })
        #expect(DaemonTests.eventually(within: 60) { FileManager.default.fileExists(atPath: office.path + "/office/status/BC-PROC-1.json") })
        // retention_days = 0: housekeeping deletes what the office acknowledged.
        #expect(DaemonTests.eventually(within: 60) {
            DaemonTests.journal(directory.path + "/store").filter { $0.kind == "segment_offloaded" }.count >= 2
        })
        DaemonTests.stop(process, errors)
        let store = directory.path + "/store"
        for name in try names(store, suffix: ".bcseg") + names(store, suffix: ".manifest") + ["device.pub"] {
            #expect(try readWholeFile(store + "/" + name) == readWholeFile(copy + "/" + name), "\(name)")
        }
        // retention_days = 0: what the office acknowledged has left the camera, and only that;
        // the office holds every segment.
        let offloaded = DaemonTests.journal(store).filter { $0.kind == "segment_offloaded" }.compactMap { $0.fields["sequence"]?.integer }
        #expect(offloaded.count >= 2)
        let manifests = try names(store, suffix: ".manifest").map { try Manifest.read(try readWholeFile(store + "/" + $0), what: $0) }
        for manifest in manifests {
            #expect(FileManager.default.fileExists(atPath: store + "/" + manifest.segmentFile) != offloaded.contains(manifest.sequence))
            #expect(FileManager.default.fileExists(atPath: copy + "/" + manifest.segmentFile), "\(manifest.segmentFile)")
        }
        let local = try StoreVerifier.verify(store: store, authority: nil)
        #expect(local.isClean && Set(local.offloaded) == Set(offloaded), "\(local.problems)")
        // The office's journal is the device's up to the last pass (the stop's records come after).
        let journal = try readWholeFile(store + "/journal.log")
        let sent = try readWholeFile(copy + "/journal.log")
        #expect(sent.count > 0 && sent.count < journal.count && Array(journal[..<sent.count]) == sent)
        let records = DaemonTests.journal(store)
        #expect(records.filter { $0.kind == "uplink_connected" }.count == 1)
        #expect(!records.contains { $0.kind == "uplink_lost" })
        let report = try StoreVerifier.verify(store: copy, authority: nil)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.segments == (try names(store, suffix: ".manifest")).count)
        let status = try JSONParser.parse(try readWholeFile(office.path + "/office/status/BC-PROC-1.json"))
        #expect((status["status"]?["journal_records"]?.integer ?? 0) > 0)
    }

    @Test("with retention_days = 30 the camera keeps and journals the office's acknowledgements and deletes nothing; below the storage reserve it releases what they name at once",
          arguments: [false, true])
    func retention(belowReserve: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let office = try OfficeFixture()
        // A reserve of ten terabytes: no test machine has that free.
        let storage = belowReserve ? ["reserve_mb = 10000000", "floor_mb = 1"] : []
        let config = DaemonTests.config(directory.path, storage: storage) + Self.uplinkSettings(office, retentionDays: 30)
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config), "--record-after", "0"])
        let store = directory.path + "/store"
        #expect(DaemonTests.eventually(within: 60) {
            let records = DaemonTests.journal(store)
            return records.filter { $0.kind == "offload_received" }.count >= 2 && (!belowReserve || records.contains { $0.kind == "segment_offloaded" })
        })
        DaemonTests.stop(process, errors)
        let records = DaemonTests.journal(store)
        #expect(!records.contains { $0.kind == "offload_refused" })
        #expect(try names(store, suffix: ".ack").count == records.filter { $0.kind == "offload_received" }.count)
        let acknowledged = try names(store, suffix: ".ack").flatMap {
            try OffloadAcknowledgement.read(try readWholeFile(store + "/" + $0), what: $0).entries.map(\.sequence)
        }
        let offloaded = records.filter { $0.kind == "segment_offloaded" }.compactMap { $0.fields["sequence"]?.integer }
        if belowReserve {
            // Housekeeping deletes them within its next check: those received just before the
            // stop may still be there.
            #expect(Set(offloaded).isSubset(of: acknowledged) && !offloaded.isEmpty)
            #expect(records.contains { $0.kind == "storage_alarm" && $0.fields["level"] == .string("low") })
        } else {
            #expect(offloaded.isEmpty)
            #expect(try names(store, suffix: ".bcseg").count == names(store, suffix: ".manifest").count)
        }
    }

    @Test("a camera whose TLS certificate has ended is refused at the handshake: journaled on both sides, the alarm raised, recording untouched")
    func expiredCertificate() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let office = try OfficeFixture()
        try office.issueExpired("BC-PROC-1-expired", .device(id: "BC-PROC-1"))
        let config = DaemonTests.config(directory.path) + Self.uplinkSettings(office, certificate: "BC-PROC-1-expired")
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config), "--record-after", "0"])
        let seen = DaemonTests.waitForStatus(directory.path + "/control.sock") { $0.segmentsSealed >= 2 && $0.alarms.contains("uplink down") }
        #expect(seen != nil)
        DaemonTests.stop(process, errors)
        let records = DaemonTests.journal(directory.path + "/store")
        // The camera's record names the office's alert; the office's, the failed verification.
        let lost = records.filter { $0.kind == "uplink_lost" }
        #expect(lost.count == 1 && lost.first?.fields["reason"]?.string?.contains("expired") == true, "\(lost.map(\.fields))")
        #expect(!FileManager.default.fileExists(atPath: office.path + "/office/devices/BC-PROC-1"))
        let journal = try office.stopAndReadJournal()
        #expect(journal.records.contains { $0.kind == "tls_refused" && $0.fields["reason"]?.string?.contains("CERTIFICATE_VERIFY_FAILED") == true },
                "\(journal.records.map(\.fields))")
        #expect(!journal.records.contains { $0.kind == "request" })
    }

    @Test("an office that cannot be reached changes nothing in the recording: one uplink_lost record, an alarm, every segment sealed")
    func officeDown() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let office = try OfficeFixture()
        // Port 1: nothing listens there (and no other test can start to).
        let config = DaemonTests.config(directory.path) + Self.uplinkSettings(office, url: "https://127.0.0.1:1")
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config), "--record-after", "0"])
        let seen = DaemonTests.waitForStatus(directory.path + "/control.sock") { $0.segmentsSealed >= 3 && $0.alarms.contains("uplink down") }
        #expect(seen != nil)
        DaemonTests.stop(process, errors)
        let records = DaemonTests.journal(directory.path + "/store")
        #expect(records.filter { $0.kind == "uplink_lost" }.count == 1)
        #expect(records.first { $0.kind == "uplink_lost" }?.fields["reason"]?.string?.contains("cannot reach the office") == true)
        #expect(try StoreVerifier.verify(store: directory.path + "/store", authority: nil).isClean)
    }
}
