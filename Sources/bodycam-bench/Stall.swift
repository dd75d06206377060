import Capture
import Evidence
import Glibc
import LibAV
import LibCrypto
import Pipeline
import Platform
import Synchronization
import V4L2
import V4L2Simulator

/// A store whose every sync and seal first waits `stallMilliseconds`: an SD card that takes that
/// long over each flush (the bench's seam; the rig's slow-store scenario does it with dm-delay).
final class StallingStore: SegmentStore {
    let inner: SegmentStore
    let stallMicroseconds: UInt32
    let stalls = Mutex(0)

    init(inner: SegmentStore, stallMilliseconds: Int) {
        self.inner = inner
        stallMicroseconds = UInt32(stallMilliseconds * 1000)
    }

    func stall() {
        stalls.withLock { $0 += 1 }
        usleep(stallMicroseconds)
    }

    final class Sink: SegmentSink {
        let inner: SegmentSink
        let store: StallingStore
        init(inner: SegmentSink, store: StallingStore) { self.inner = inner; self.store = store }
        func write(_ bytes: UnsafeRawBufferPointer) throws { try inner.write(bytes) }
        func fragmentComplete(frames: Int, duration: Int64) throws { try inner.fragmentComplete(frames: frames, duration: duration) }
        func makeDurable() throws {
            store.stall()
            try inner.makeDurable()
        }
        func finish() throws -> String {
            store.stall()
            return try inner.finish()
        }
        func noteDropped(frames: Int, estimated: Bool) { inner.noteDropped(frames: frames, estimated: estimated) }
        func noteClock(_ clock: SegmentClock) { inner.noteClock(clock) }
    }

    var nextSequence: UInt64 { inner.nextSequence }
    func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        Sink(inner: try inner.makeSink(for: segment), store: self)
    }
}

/// `seconds` of a simulated 30 fps V4L2 camera (640x480 YUYV, four buffers, as the device's
/// driver hands them over) recorded through the whole pipeline into a sealing store whose
/// every sync stalls `stallMilliseconds`: the pictures lost, by the camera's sequence numbers and
/// by the write queue, and the queue's peak.
func storageStall(seconds: Int, stallMilliseconds: Int, folder: String) throws {
    let camera = SimulatedV4L2()
    camera.frameInterval = 33_333
    let source = try V4L2FrameSource(settings: V4L2Settings(devicePath: "/dev/video-sim", width: 640, height: 480, framesPerSecond: 30),
                                     system: camera)
    let office = try X25519PrivateKey()
    let store = StallingStore(inner: try vault(folder, office: office), stallMilliseconds: stallMilliseconds)
    var settings = VideoEncoderSettings()
    settings.preset = "veryfast"
    settings.bitrateKbps = 2000
    let recorder = Recorder(configuration: .init(deviceID: "BC-BENCH", preEventSeconds: 0, segmentSeconds: 10), source: source,
                            overlay: nil, store: store, makeEncoder: { try makeVideoEncoder(settings: settings, format: $0) })
    recorder.startRecording()
    let timer = WorkerThread(name: "bench-timer") {
        usleep(UInt32(seconds) * 1_000_000)
        recorder.shutdown()
    }
    try recorder.run()
    timer.join()
    let recorded = recorder.segments.reduce(0) { $0 + $1.frames }
    guard recorded > 0, recorded + recorder.framesShed == recorder.framesEncoded else {
        writeStandardError("bench: storage stall: \(recorded) pictures recorded of \(recorder.framesEncoded) encoded, \(recorder.framesShed) let go")
        exit(1)
    }
    let name = "stall_\(stallMilliseconds)ms"
    emit("\(name)_frames_captured", Double(recorder.framesEncoded + recorder.framesDropped), "frames")
    emit("\(name)_frames_dropped", Double(recorder.framesDropped + recorder.framesShed), "frames")
    emit("\(name)_syncs_stalled", Double(store.stalls.withLock { $0 }), "syncs")
    emit("\(name)_write_queue_peak_ms", Double(recorder.writeQueuePeak.milliseconds), "ms")
}
