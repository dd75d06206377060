import Evidence
import Foundation
import LibAV
import Pipeline
import Platform
import TestSupport
import Testing
import Wire
import LibAVFormat

/// Live view (docs/OFFICE.md, "Live view"): an officer with the `live` role watches a recording
/// camera through the office, which decrypts the open segment's chunks as they arrive.
@Suite("Live view: the camera's open segment, decrypted at the office, to a viewer")
struct LiveTests {
    @Test("bodycamctl live plays a recording camera as one fMP4 stream across its segments, with its latency; only the live role may watch, only the camera may send")
    func watch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let identity = try DaemonTests.provision(directory.path)
        let office = try OfficeFixture(identity: identity)
        // Heartbeats an hour apart: the camera learns someone watches from the heartbeats it sends while
        // recording every live_check_seconds.
        let config = DaemonTests.config(directory.path, segmentSeconds: 2)
            + UplinkTests.uplinkSettings(office).replacingOccurrences(of: "heartbeat_seconds = 5", with: "heartbeat_seconds = 3600\nlive_check_seconds = 1")
        let (daemon, daemonErrors) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, config), "--record-after", "0"])
        // The viewer asks only once the office holds the camera's first heartbeat (sent at start): the next one,
        // which tells the camera, is a live check.
        #expect(DaemonTests.eventually(within: 30) { access(office.path + "/office/status/BC-PROC-1.json", F_OK) == 0 })
        let output = directory.path + "/live.mp4"
        let viewer = Process()
        viewer.executableURL = URL(fileURLWithPath: CLITests.ctl)
        viewer.arguments = ["live", "--office", office.url, "--device", "BC-PROC-1", "--certificate", office.path + "/live.pem",
                            "--key", office.path + "/live.key", "--ca", office.path + "/ca.pem", "--out", output, "--latency"]
        let viewerErrors = Pipe()
        viewer.standardError = viewerErrors
        try viewer.run()
        // The camera goes live at its next heartbeat (within a second); wait for fragments of three segments.
        func fragments() -> Int {
            guard let bytes = try? readWholeFile(output, limit: 1 << 30) else { return 0 }
            return FragmentedMP4.children(bytes, 0..<bytes.count).filter { $0.type == "moof" }.count
        }
        let sealed = { (try? names(directory.path + "/store", suffix: ".manifest").count) ?? 0 }
        var sealedWhenLive = 0
        #expect(DaemonTests.eventually(within: 60) {
            if sealedWhenLive == 0 && fragments() > 0 { sealedWhenLive = sealed() }
            return sealedWhenLive > 0 && sealed() >= sealedWhenLive + 2 && fragments() >= 4
        })
        viewer.terminate()
        viewer.waitUntilExit()
        let log = DaemonTests.stop(daemon, daemonErrors)
        #expect(log.contains("the recording goes live"))
        let viewed = String(decoding: viewerErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(viewed.contains("live: fragment captured"), "\(viewed)")

        // What the viewer wrote is one playable stream: one init segment, pictures whose times
        // only go forward across the camera's segments.
        let bytes = try readWholeFile(output, limit: 1 << 30)
        let boxes = FragmentedMP4.children(bytes, 0..<bytes.count)
        #expect(boxes.filter { $0.type == "moov" }.count == 1 && boxes.first?.type == "ftyp")
        let reader = try MediaReader(path: output)
        var times: [Int64] = []
        let pictures = try reader.decodeAll(packet: { times.append($0.dts) })
        #expect(pictures >= 30 && reader.decodeErrors == 0, "\(pictures) pictures, \(reader.decodeErrors) errors")
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "decode times go back")

        // Only an officer with the live role watches; only the camera sends its live bytes.
        let cases: [(String, String, String, Int)] = [
            ("evidence", "GET", "/v1/devices/BC-PROC-1/live", 403),
            ("BC-PROC-1", "GET", "/v1/devices/BC-PROC-1/live", 403),
            ("BC-EV-2", "PUT", "/v1/devices/BC-PROC-1/live/seg-000001-20261130T000000Z.bcseg?offset=0", 403),
            ("live", "PUT", "/v1/devices/BC-PROC-1/live/seg-000001-20261130T000000Z.bcseg?offset=0", 403),
            ("BC-EV-2", "PUT", "/v1/devices/BC-EV-2/live/journal.log?offset=0", 400),
        ]
        for (name, method, target, status) in cases {
            let response = try office.client(name).send(method, target, body: method == "PUT" ? [1, 2, 3] : [])
            #expect(response.status == status, "\(name) \(method) \(target): \(response.message)")
        }
        // A segment sealed to someone else: the office cannot open it, and says so.
        let store = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let foreign = try readWholeFile(store + "/" + (try #require(try names(store, suffix: ".bcseg").first)))
        // (Sent while someone watches BC-EV-2: when no one does, nothing is held or opened.)
        let idle = try office.client("BC-EV-2").send("PUT", "/v1/devices/BC-EV-2/live/seg-000001-20261130T000000Z.bcseg?offset=0", body: foreign)
        #expect(idle.status == 200 && idle.json?["live"]?.boolean == false && idle.json?["size"] == .null)
        #expect(try office.client("live").send("GET", "/v1/devices/BC-EV-2/live").status == 200)
        let refused = try office.client("BC-EV-2").send("PUT", "/v1/devices/BC-EV-2/live/seg-000001-20261130T000000Z.bcseg?offset=0", body: foreign)
        #expect(refused.status == 422 && refused.message.contains("not encrypted to identity"), "\(refused.status) \(refused.message)")
    }
}
