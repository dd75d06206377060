import Capture
import Glibc
import Crypto
import LibAV
import LibCrypto
import MediaSigning
import PKI
import Pipeline
import Platform

/// `signing SECONDS`: the cost of ONVIF Media Signing. The test pattern at 1280x720, 30 fps,
/// through libx264 at 4 Mb/s (the recorder's settings), each packet through the signer: the
/// bytes the SEIs add against the stream's, and the signer's CPU time (thread CPU clock) per
/// second of video. The pattern compresses far below 4 Mb/s; what the SEIs add does not depend
/// on the pictures (one SEI per GOP: the certificate, one hash per slice, a signature), so the
/// increase at 4 Mb/s is their bit rate over 4,000 kbit/s.
func signingOverhead(seconds: Int) throws {
    LibAVLogging.setQuiet(true)
    let ca = try TLSAuthority.create(name: "bench authority")
    let key = P256.Signing.PrivateKey()
    let leaf = try ca.issue(.mediaSigning(deviceID: "BC-BENCH-1"), publicKey: key.publicKey, days: 30)
    let signer = MediaSigner(key: try ECDSASigningKey(pem: Array(key.pemRepresentation.utf8)),
                             certificatePEM: Array((try leaf.serializeAsPEM().pemString + "\n").utf8),
                             vendor: .init(firmware: "bodycam bench", serial: "BC-BENCH-1", manufacturer: "bodycam"))
    let format = FrameFormat(width: 1280, height: 720, pixelFormat: .yuv420p, framesPerSecond: 30)
    let source = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: seconds * 30)
    var settings = VideoEncoderSettings()
    settings.bitrateKbps = 4000
    let encoder = try makeVideoEncoder(settings: settings, format: format)
    try source.start()
    var plainBytes = 0
    var signedBytes = 0
    var cpu: Int64 = 0
    func sign(_ packets: [EncodedPacket]) throws {
        for packet in packets {
            plainBytes += packet.data.count
            let before = threadCPUNanoseconds()
            let signed = signer.process(accessUnit: packet.data, unixNanoseconds: Clock.wallNanoseconds())
            cpu += threadCPUNanoseconds() - before
            signedBytes += signed.count
        }
    }
    while let captured = try source.nextFrame() { try sign(try encoder.encode(captured.frame)) }
    try sign(try encoder.flush())
    emit("media_signing_stream_kbit_s", Double(plainBytes) * 8 / Double(seconds) / 1000, "kbit/s")
    emit("media_signing_bitrate_increase_pattern_percent", Double(signedBytes - plainBytes) / Double(plainBytes) * 100, "%")
    emit("media_signing_kbit_s", Double(signedBytes - plainBytes) * 8 / Double(seconds) / 1000, "kbit/s")
    emit("media_signing_bitrate_increase_at_4mbps_percent", Double(signedBytes - plainBytes) * 8 / Double(seconds) / 4_000_000 * 100, "%")
    emit("media_signing_sei_bytes_per_gop", Double(signer.seiBytes) / Double(max(signer.signatures, 1)), "B")
    emit("media_signing_cpu_ms_per_video_s", Double(cpu) / 1e6 / Double(seconds), "ms")
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), ns.
func threadCPUNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
