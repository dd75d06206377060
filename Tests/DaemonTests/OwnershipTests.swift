import Capture
import ControlProtocol
import Daemon
import Foundation
import Glibc
import LibAV
import Pipeline
import Platform
import TestSupport
import Testing

/// Every C handle has one owner on every path: the failure paths below each once closed by hand
/// and then again in deinit, leaked, or tripped an assertion. Each is driven many times; a
/// descriptor left open per attempt would show in the process's count (other tests run at the
/// same time, so the bound is loose, far below one per attempt).
@Suite("C handles on failure paths")
struct OwnershipTests {
    static let attempts = 200

    @Test("a control socket that cannot bind throws naming bind and the path, and keeps no descriptor")
    func socketBindFails() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // The socket's folder is a regular file: mkdir finds it there, bind fails (ENOTDIR).
        _ = FileManager.default.createFile(atPath: directory.path + "/run", contents: Data())
        let path = directory.path + "/run/control.sock"
        let before = openDescriptorCount()
        for _ in 0..<Self.attempts {
            #expect(throws: SystemError.file(path: path, call: "bind", errno: ENOTDIR)) { _ = try ControlSocket(path: path) }
        }
        #expect(openDescriptorCount() - before < Self.attempts / 4)
    }

    @Test("a control socket that binds and listens answers, and after it is dropped its descriptor is closed")
    func socketLifecycle() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let before = openDescriptorCount()
        for index in 0..<Self.attempts {
            let socket = try ControlSocket(path: directory.path + "/s\(index % 4).sock")
            var mode = stat()
            #expect(stat(socket.path, &mode) == 0 && mode.st_mode & 0o777 == 0o666, "chmod took")
        }
        #expect(openDescriptorCount() - before < Self.attempts / 4)
    }

    @Test("a plain segment file over one already recorded fails with EEXIST, removes its partial file and keeps no descriptor")
    func plainSinkRefusesOverwrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = FileManager.default.createFile(atPath: directory.path + "/seg.mp4", contents: Data([1, 2, 3]))
        let before = openDescriptorCount()
        for _ in 0..<Self.attempts {
            #expect(throws: SystemError.file(path: directory.path + "/seg.mp4", call: "open", errno: EEXIST)) {
                _ = try PlainFileSink(directory: directory.path, name: "seg.mp4")
            }
        }
        #expect(openDescriptorCount() - before < Self.attempts / 4)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/seg.mp4.partial"))
        #expect(try readWholeFile(directory.path + "/seg.mp4") == [1, 2, 3], "what was recorded is untouched")
    }

    @Test("a segment whose header cannot be made durable ends the recording with the store's error; the muxer is given up, not leaked")
    func headerNotDurable() throws {
        _ = quietLibAV
        let store = UnsyncableStore()
        let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)
        let source = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 60)
        let recorder = Recorder(configuration: .init(deviceID: "BC-T", preEventSeconds: 0, segmentSeconds: 1), source: source,
                                overlay: nil, store: store, makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        recorder.startRecording()
        #expect(throws: SystemError.file(path: "unsyncable", call: "fdatasync", errno: EIO)) { try recorder.run() }
        #expect(store.sinksMade == 1)
    }

    @Test("a pixel converter for a size libav cannot hold throws naming the size, before any scaler is made")
    func converterTooLarge() {
        #expect {
            _ = try PixelConverter(width: 100_000, height: 100_000, from: .yuyv422, to: .yuv420p)
        } throws: { error in
            "\(error)".contains("av_image_get_buffer_size(100000x100000")
        }
    }
}

@Suite("The control socket against clients that go away")
struct PeerGoneTests {
    /// Connects, sends `bytes`, and closes without reading the answer.
    func sendAndLeave(_ bytes: [UInt8], path: String) -> Bool {
        guard let fd = try? connectUnixSocket(path) else { return false }
        defer { _ = close(fd) }
        return bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    @Test("clients that close before reading their answer, after every part of a request, never end the daemon")
    func clientsLeave() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let (process, _) = try DaemonTests.launch(["--config", try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))])
        defer { process.terminate(); process.waitUntilExit() }
        let socket = directory.path + "/control.sock"
        #expect(DaemonTests.waitForStatus(socket) != nil)
        let request = Array(#"{"cmd":"status"}"#.utf8) + [0x0A]
        // Gone after nothing, after part of the line, after the whole line (the answer then meets
        // a closed socket: EPIPE, which must not be a SIGPIPE), and after a refused request.
        let cuts = [0, 5, request.count - 1, request.count]
        for round in 0..<20 {
            for cut in cuts { #expect(sendAndLeave(Array(request.prefix(cut)), path: socket), "round \(round), cut \(cut)") }
            #expect(sendAndLeave(Array(#"{"cmd":"sim","battery":5}"#.utf8) + [0x0A], path: socket))
        }
        #expect(process.isRunning, "bodycamd ended (a SIGPIPE?)")
        #expect(DaemonTests.waitForStatus(socket) != nil, "the daemon still answers")
    }
}
