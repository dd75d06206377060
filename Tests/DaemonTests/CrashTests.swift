import Capture
import Configuration
import ControlProtocol
import Controls
import Daemon
import LibAV
import Platform
import Policy
import TestSupport
import Tokens
import Wire
import Foundation
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline
import Export

@Suite("Crashes: recovery keeps every complete fragment")
struct CrashTests {
    @Test("a writer stopped at random points: recovery yields segments that verify, decrypt and decode, losing only the fragment in flight",
          arguments: 0..<8)
    func stoppedWriter(round: Int) throws {
        let pristine = Pristine.shared
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store"
        // The fragments of a real segment, as the muxer would hand them over.
        let source = try names(pristine.store, suffix: ".bcseg")[1]
        let bytes = try readWholeFile(pristine.store + "/" + source)
        let layout = try SealedSegmentLayout(bytes, what: source)
        let plaintexts = try layout.decryptChunks(bytes, identity: pristine.keys.office, allowUnsealed: false, what: source)

        var generator = SeededRandom.announced("stoppedWriter round \(round)")
        let completed = Int.random(in: 1..<(layout.chunks.count - 1), using: &generator)
        let keys = pristine.keys
        do {
            let vault = try makeVault(store, keys: keys)
            try recordEvidence(into: vault, frames: 30)  // segment 1, sealed
            let sink = try vault.makeSink(for: SegmentDescriptor(sequence: 2, deviceID: "BC-EV-1", officerID: "OFC-1",
                                                                 startWallNanoseconds: Clock.wallNanoseconds(), codec: "h264",
                                                                 width: 160, height: 120, framesPerSecond: 30))
            for index in 0..<completed {
                try plaintexts[index].withUnsafeBytes { try sink.write($0) }
                try sink.fragmentComplete(frames: layout.chunks[index].frames, duration: layout.chunks[index].ticks)
            }
            // The next fragment was being written when the power went: part of it is buffered
            // (lost), part of a chunk may have reached the disk.
            try plaintexts[completed].withUnsafeBytes { try sink.write($0) }
            let torn = Int.random(in: 0..<40, using: &generator)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: try names(store, suffix: ".partial").map { store + "/" + $0 }[0]))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(try randomBytes(torn)))
            try handle.close()
        }

        let reopened = try makeVault(store, keys: keys)
        let recovery = try reopened.recover()
        #expect(recovery.recovered.count == 1 && recovery.unrecoverable.isEmpty)
        let report = try StoreVerifier.verify(store: store, authority: keys.authority.publicKey)
        #expect(report.isClean, "\(report.problems)")
        let name = recovery.recovered[0]
        let manifest = try Manifest.read(try readWholeFile(store + "/" + name.replacingOccurrences(of: ".bcseg", with: ".manifest")), what: name)
        let expectedFrames = layout.chunks[0..<completed].reduce(0) { $0 + $1.frames }
        #expect(manifest.recovered && manifest.frames == Int64(expectedFrames) && manifest.chunks == Int64(completed))
        let recoveredBytes = try readWholeFile(store + "/" + name)
        let plain = try SealedSegmentLayout(recoveredBytes, what: name).decrypt(recoveredBytes, identity: keys.office, allowUnsealed: true, what: name)
        #expect(plain == Array(plaintexts[0..<completed].joined()))
        let mp4 = directory.path + "/recovered.mp4"
        _ = FileManager.default.createFile(atPath: mp4, contents: Data(plain))
        if expectedFrames > 0 {
            let inspected = try SegmentInspector.inspect(path: mp4)
            #expect(inspected.decodedFrames == expectedFrames && inspected.decodeErrors == 0)
        }
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: keys.device.publicKey)
        #expect(journal.records.contains { $0.kind == "segment_recovered" })
    }

    @Test("SIGKILL of a recording daemon, many times: every segment verifies and decodes, and the loss per kill is at most the fragment in flight")
    func killedDaemon() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let office = try DaemonTests.provision(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path, segmentSeconds: 2))
        let store = directory.path + "/store"
        var worstLoss = 0.0
        var random = SeededRandom.announced("killedDaemon")
        for round in 0..<5 {
            let sealedBefore = DaemonTests.journal(store).filter { $0.kind == "segment_sealed" }.count
            let (process, _) = try DaemonTests.launch(["--config", config, "--record-after", "0"])
            // Killed at a random moment (seeded, printed) after a segment of this run was sealed,
            // so every round has a sealed segment and a segment open at the cut.
            #expect(DaemonTests.eventually { DaemonTests.journal(store).filter { $0.kind == "segment_sealed" }.count > sealedBefore })
            let delay = Int64.random(in: 0...1_500_000_000, using: &random)
            print("killedDaemon round \(round): SIGKILL \(formatDecimal(Double(delay) / 1e9, places: 3)) s after a seal")
            Clock.sleep(untilMonotonic: Clock.monotonicNanoseconds() + delay)
            let killed = Clock.wallNanoseconds()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // Recovery runs when the daemon next starts; here the vault does it directly.
            let vault = try EvidenceVault(configuration: .init(directory: store, deviceID: "BC-PROC-1", recipients: [office.publicKey],
                                                               deviceKey: try KeyFile.readSigningKey(directory.path + "/keys/device.key"),
                                                               provisioned: false))
            try vault.recover()
            let newest = try names(store, suffix: ".manifest").compactMap { try? Manifest.read(try readWholeFile(store + "/" + $0), what: $0) }
                .max { $0.sequence < $1.sequence }!
            let end = ClockParse.nanoseconds(iso8601: newest.endUTC)!
            worstLoss = max(worstLoss, Double(killed - end) / 1e9)
        }
        let report = try StoreVerifier.verify(store: store, authority: nil)
        #expect(report.isClean, "\(report.problems)")
        for name in try names(store, suffix: ".bcseg") {
            let bytes = try readWholeFile(store + "/" + name)
            let layout = try SealedSegmentLayout(bytes, what: name)
            let plain = try layout.decrypt(bytes, identity: office, allowUnsealed: true, what: name)
            guard layout.frames > 0 else { continue }
            let mp4 = directory.path + "/check.mp4"
            _ = FileManager.default.createFile(atPath: mp4, contents: Data(plain))
            #expect(try SegmentInspector.inspect(path: mp4).decodedFrames == layout.frames, "\(name)")
        }
        // One fragment is one second; allow the encoder's and the scheduler's latency on top.
        #expect(worstLoss <= 1.5, "worst loss \(worstLoss) s")
        print("CRASH worst_loss_seconds \(formatDecimal(worstLoss, places: 2))")
    }
}
