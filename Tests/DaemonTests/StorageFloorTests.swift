import Foundation
import Evidence
import Platform
import TestSupport
import Testing

@Suite("Daemon: storage floor")
struct StorageFloorTests {
    @Test("below the storage floor the daemon raises the alarm and does not record")
    func floorStopsRecording() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        // A floor of almost ten terabytes: no test machine has that free.
        let text = DaemonTests.config(directory.path, storage: ["reserve_mb = 10000000", "floor_mb = 9999999"])
        let (process, errors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, text), "--duration", "2", "--record-after", "0.5"])
        process.waitUntilExit()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.contains("STORAGE FULL"))
        let store = directory.path + "/store"
        #expect(try names(store, suffix: ".bcseg").isEmpty)
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil)
        #expect(journal.records.contains { $0.kind == "storage_alarm" && $0.fields["level"] == .string("critical") })
        #expect(!journal.records.contains { $0.kind == "recording_started" })
        #expect(journal.records.contains { $0.kind == "record_refused" && $0.fields["reason"] == .string("storage full") })
    }
}
