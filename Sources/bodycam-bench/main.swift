import Evidence
import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire

/// Measurements for `make bench` that need the project's own code in a loop. Each prints
/// `BENCH <name> <value> <unit>` lines; scripts/bench.sh puts them beside the reference tools.
///
///   bodycam-bench seal MIB              STREAM sealing of MIB MiB in 16 KiB chunks, in memory
///   bodycam-bench verify COUNT FOLDER   a store of COUNT sealed segments, then one verify of it
///   bodycam-bench decrypt MIB FOLDER    a MIB MiB segment, then read + decrypt + SHA-256 of it

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Clock.monotonicNanoseconds()
    try body()
    return Double(Clock.monotonicNanoseconds() - start) / 1e9
}

func emit(_ name: String, _ value: Double, _ unit: String) { print("BENCH \(name) \(formatDecimal(value, places: 3)) \(unit)") }

func vault(_ folder: String, office: X25519PrivateKey) throws -> EvidenceVault {
    try EvidenceVault(configuration: .init(directory: folder, deviceID: "BC-BENCH", recipients: [office.publicKey],
                                           deviceKey: try Ed25519PrivateKey(), provisioned: false))
}

func descriptor(_ sequence: UInt64) -> SegmentDescriptor {
    SegmentDescriptor(sequence: sequence, deviceID: "BC-BENCH", officerID: "", startWallNanoseconds: Clock.wallNanoseconds(),
                      codec: "h264", width: 1920, height: 1080, framesPerSecond: 30)
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch (arguments.first, arguments.count) {
    case ("seal", 2):
        let mebibytes = Int(arguments[1]) ?? 256
        let block = try randomBytes(16 << 10)
        let sealer = try StreamSealer(header: .object(["bench": .boolean(true)]), dataKey: try SecretBytes.random(count: 32))
        let count = mebibytes * 64
        var sink = 0
        let elapsed = try seconds {
            try block.withUnsafeBytes { plaintext in
                for _ in 0..<count { sink &+= try sealer.seal(plaintext, frames: 0, ticks: 0, last: false).count }
            }
        }
        precondition(sink > 0)
        emit("seal_16k_mb_s", Double(count * block.count) / elapsed / 1e6, "MB/s")
    case ("verify", 3):
        let count = Int(arguments[1]) ?? 1000
        let office = try X25519PrivateKey()
        let store = try vault(arguments[2], office: office)
        let fragment = try randomBytes(4096)
        for sequence in 1...UInt64(count) {
            let sink = try store.makeSink(for: descriptor(sequence))
            try fragment.withUnsafeBytes { try sink.write($0) }
            try sink.fragmentComplete(frames: 30, duration: 90_000)
            _ = try sink.finish()
        }
        var report: VerificationReport? = nil
        let elapsed = try seconds { report = try StoreVerifier.verify(store: arguments[2], authority: nil) }
        guard let report, report.isClean, report.segments == count else {
            writeStandardError("bench: the store did not verify clean: \(report?.problems.prefix(3).map(\.message) ?? [])")
            exit(1)
        }
        emit("verify_\(count)_s", elapsed, "s")
    case ("decrypt", 3):
        let mebibytes = Int(arguments[1]) ?? 64
        let office = try X25519PrivateKey()
        let store = try vault(arguments[2], office: office)
        let sink = try store.makeSink(for: descriptor(1))
        let fragment = try randomBytes(1 << 20)
        for _ in 0..<mebibytes {
            try fragment.withUnsafeBytes { try sink.write($0) }
            try sink.fragmentComplete(frames: 30, duration: 90_000)
        }
        let path = try sink.finish()
        var digest: [UInt8] = []
        let elapsed = try seconds {
            let bytes = try readWholeFile(path)
            let plain = try SealedSegmentLayout(bytes, what: path).decrypt(bytes, identity: office, allowUnsealed: false, what: path)
            digest = SHA256.hash(plain)
        }
        precondition(digest.count == 32)
        emit("decrypt_hash_mb_s", Double(mebibytes << 20) / elapsed / 1e6, "MB/s")
    default:
        writeStandardError("usage: bodycam-bench seal MIB | verify COUNT FOLDER | decrypt MIB FOLDER")
        exit(64)
    }
} catch {
    writeStandardError("bench: \(error)")
    exit(1)
}
