import Evidence
import Glibc
import LibCrypto
import Platform
import Synchronization
import Uplink

/// `bodycam-bench ingest URL CERTS CA STORE CAMERAS [SEGMENTS]`: CAMERAS cameras
/// (`BC-INGEST-1` …, each with its certificate CERTS/BC-INGEST-N.pem and key) upload the same
/// store to the office at once, each on a thread of its own as a camera's uplink would: the
/// office's ingest in segments and megabytes a second. (The office's CPU is read from outside.)
/// STORE is made first when it is not there: SEGMENTS (10) 5 s segments at 4 Mb/s (2.5 MB each,
/// ten fragments of random bytes: sealed video does not compress either).
func ingest(url: String, certificates: String, ca: String, store: String, cameras: Int, segmentCount: Int = 10) throws {
    if access(store, F_OK) != 0 {
        let sealer = try vault(store, office: try X25519PrivateKey())
        for sequence in 1...UInt64(segmentCount) {
            let sink = try sealer.makeSink(for: descriptor(sequence))
            for _ in 0..<10 {
                let fragment = try randomBytes(250_000)
                try fragment.withUnsafeBytes { try sink.write($0) }
                try sink.fragmentComplete(frames: 15, duration: 45_000)
            }
            _ = try sink.finish()
        }
    }
    let plan = try StoreUploader.plan(store: store)
    let segments = plan.filter { $0.name.hasSuffix(".bcseg") }.count
    let bytes = plan.reduce(Int64(0)) { $0 + $1.length }
    let failures = Mutex<[String]>([])
    var threads: [WorkerThread] = []
    let elapsed = seconds {
        for camera in 1...cameras {
            let device = "BC-INGEST-\(camera)"
            threads.append(WorkerThread(name: "camera-\(camera)") {
                do {
                    let link = OfficeLink(url: url, certificatePath: "\(certificates)/\(device).pem", keyPath: "\(certificates)/\(device).key", caPath: ca)
                    let pass = try StoreUploader(client: try OfficeClient(link), store: store, deviceID: device).pass()
                    if !pass.refused.isEmpty { failures.withLock { $0.append("\(device): \(pass.refused)") } }
                } catch {
                    failures.withLock { $0.append("\(device): \(error)") }
                }
            })
        }
        for thread in threads { thread.join() }
    }
    let failed = failures.withLock { $0 }
    guard failed.isEmpty else {
        writeStandardError("bench: ingest failed: \(failed.prefix(3).joined(separator: "; "))")
        exit(1)
    }
    emit("office_ingest_cameras", Double(cameras), "cameras")
    emit("office_ingest_segments_per_s", Double(segments * cameras) / elapsed, "segments/s")
    emit("office_ingest_mb_per_s", Double(bytes) * Double(cameras) / elapsed / 1e6, "MB/s")
    emit("office_ingest_s", elapsed, "s")
}
