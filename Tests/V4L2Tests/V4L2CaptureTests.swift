import CShims
import CV4L2
import Glibc
import Testing
@testable import V4L2
import V4L2Simulator

@Suite("V4L2 capture at the ioctl seam")
struct V4L2CaptureTests {
    func settings(_ formats: [V4L2PixelFormat] = [.yuyv, .nv12, .yu12], width: Int = 640, height: Int = 480, fps: Int = 30) -> V4L2Settings {
        V4L2Settings(devicePath: "/dev/video-sim", width: width, height: height, framesPerSecond: fps, preferredFormats: formats)
    }

    @Test("the first preferred format the camera offers is chosen, with the asked size and rate")
    func negotiatesPreferredFormat() throws {
        let camera = SimulatedV4L2()
        camera.offeredFormats = [V4L2PixelFormat.mjpeg.fourcc, V4L2PixelFormat.nv12.fourcc, V4L2PixelFormat.yuyv.fourcc]
        let capture = try V4L2Capture(settings([.nv12, .yuyv]), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.pixelFormat == .nv12)
        #expect(capture.format.width == 640 && capture.format.height == 480)
        #expect(capture.format.bytesPerLine == 640)
        #expect(capture.format.framesPerSecond == 30)
        #expect(capture.driver == "simulated")
        #expect(camera.calls.prefix(3) == ["open", "VIDIOC_QUERYCAP", "VIDIOC_ENUM_FMT"])
        #expect(camera.calls.contains("VIDIOC_S_PARM"))
    }

    @Test("a USB 2.0 camera (YUYV 1920x1080 only at 5 fps, MJPG at 30): the preferred YUYV is passed over for MJPG, which reaches the configured rate")
    func choosesFormatThatReachesRate() throws {
        let camera = SimulatedV4L2()
        camera.offeredFormats = [V4L2PixelFormat.yuyv.fourcc, V4L2PixelFormat.mjpeg.fourcc]
        camera.maxFramesPerSecondByFormat = [V4L2PixelFormat.yuyv.fourcc: 5]
        let capture = try V4L2Capture(settings([.yuyv, .nv12, .yu12, .mjpeg], width: 1920, height: 1080), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.pixelFormat == .mjpeg)
        #expect(capture.format.width == 1920 && capture.format.height == 1080 && capture.format.framesPerSecond == 30)
        #expect(capture.format.shortfall == nil)
        #expect(camera.calls.contains("VIDIOC_ENUM_FRAMESIZES") && camera.calls.contains("VIDIOC_ENUM_FRAMEINTERVALS"))
    }

    @Test("no format reaches the rate: the fastest at the configured size is taken, and the shortfall says what the camera gives against what was configured")
    func shortfallWhenNoneReaches() throws {
        let camera = SimulatedV4L2()
        camera.offeredFormats = [V4L2PixelFormat.yuyv.fourcc, V4L2PixelFormat.nv12.fourcc]
        camera.maxFramesPerSecondByFormat = [V4L2PixelFormat.yuyv.fourcc: 5, V4L2PixelFormat.nv12.fourcc: 15]
        let capture = try V4L2Capture(settings(width: 1920, height: 1080), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.pixelFormat == .nv12 && capture.format.framesPerSecond == 15)
        let shortfall = try #require(capture.format.shortfall)
        #expect(shortfall.contains("NV12 1920x1080 at 15 fps") && shortfall.contains("configured 1920x1080 at 30 fps"), "\(shortfall)")
        #expect(shortfall.contains("YUYV 1920x1080 up to 5 fps"), "what was offered: \(shortfall)")
        // A driver that lists no modes: the first preferred format, and its rate found short after the fact.
        let silent = SimulatedV4L2()
        silent.enumeratesModes = false
        silent.maxFramesPerSecond = 10
        let fallback = try V4L2Capture(settings(), system: silent)
        defer { try? fallback.close() }
        #expect(fallback.format.pixelFormat == .yuyv && fallback.format.framesPerSecond == 10)
        #expect(fallback.format.shortfall?.contains("at 10 fps") == true, "\(fallback.format.shortfall ?? "-")")
        // A smaller picture than asked is short too; what reaches everything is not.
        let small = SimulatedV4L2()
        small.maxWidth = 1280
        small.maxHeight = 720
        let clamped = try V4L2Capture(settings(width: 1920, height: 1080), system: small)
        defer { try? clamped.close() }
        #expect(clamped.format.shortfall?.contains("1280x720") == true)
        let good = try V4L2Capture(settings(), system: SimulatedV4L2())
        defer { try? good.close() }
        #expect(good.format.shortfall == nil)
    }

    @Test("sizes listed one by one: the smallest that holds the configured size is the one asked for; a tie in rate goes to the preferred format")
    func discreteSizesAndTies() throws {
        let camera = SimulatedV4L2()
        camera.discreteSizes = [(640, 480), (800, 600), (1920, 1080)]
        let capture = try V4L2Capture(settings(width: 1280, height: 720), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.width == 1920 && capture.format.height == 1080, "asked for the listed size, not left to the driver")
        #expect(capture.format.shortfall == nil)
        let offers = [V4L2ModeOffer(format: .yuyv, size: (1920, 1080), framesPerSecond: 15),
                      V4L2ModeOffer(format: .nv12, size: (1920, 1080), framesPerSecond: 15)]
        #expect(V4L2Capture.choose(offers, width: 1920, height: 1080, framesPerSecond: 30)?.format == .yuyv)
        #expect(V4L2Capture.choose(offers.reversed(), width: 1920, height: 1080, framesPerSecond: 30)?.format == .nv12)
    }

    @Test("a size the driver clamps is reported as the driver's size")
    func reportsClampedSize() throws {
        let camera = SimulatedV4L2()
        camera.maxWidth = 1280
        camera.maxHeight = 720
        let capture = try V4L2Capture(settings(width: 1920, height: 1080), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.width == 1280 && capture.format.height == 720)
        #expect(capture.format.bytesPerLine == 2560)
    }

    @Test("a camera that cannot set its rate is still used, with rate 0 reported")
    func noFrameRateControl() throws {
        let camera = SimulatedV4L2()
        camera.supportsFrameRate = false
        let capture = try V4L2Capture(settings(), system: camera)
        defer { try? capture.close() }
        #expect(capture.format.framesPerSecond == 0)
        #expect(!camera.calls.contains("VIDIOC_S_PARM"))
    }

    @Test("no format in common is an error listing what the camera offers", arguments: [[V4L2PixelFormat.mjpeg.fourcc], [0x34363248]])
    func noSupportedFormat(offered: [UInt32]) throws {
        let camera = SimulatedV4L2()
        camera.offeredFormats = offered
        #expect {
            _ = try V4L2Capture(settings(), system: camera)
        } throws: { error in
            guard case .noSupportedFormat(_, let listed, let wanted) = error as? V4L2Error else { return false }
            return listed == offered.map(V4L2PixelFormat.name(of:)) && wanted == ["YUYV", "NV12", "YU12"]
        }
        #expect(camera.openCount == 0, "the descriptor is closed on failure")
    }

    @Test("open errors name the problem", arguments: [(ENOENT, "no such device"), (EBUSY, "busy"), (EACCES, "permission denied")])
    func openErrors(code: Int32, words: String) throws {
        let camera = SimulatedV4L2()
        camera.openErrno = code
        do {
            _ = try V4L2Capture(settings(), system: camera)
            Issue.record("open should fail")
        } catch let error as V4L2Error {
            #expect(error.description.contains(words))
            #expect(error.description.contains("/dev/video-sim"))
        }
    }

    @Test("a node that is not a capture device, or not V4L2 at all, is refused")
    func notCaptureDevice() throws {
        let output = SimulatedV4L2()
        output.capabilities = UInt32(V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING)
        #expect(throws: V4L2Error.notCaptureDevice(path: "/dev/video-sim", driver: "simulated")) {
            _ = try V4L2Capture(settings(), system: output)
        }
        let other = SimulatedV4L2()
        other.isV4L2 = false
        #expect(throws: V4L2Error.notVideoDevice(path: "/dev/video-sim")) {
            _ = try V4L2Capture(settings(), system: other)
        }
        let noStreaming = SimulatedV4L2()
        noStreaming.capabilities = UInt32(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_READWRITE)
        #expect(throws: V4L2Error.noStreaming(path: "/dev/video-sim", driver: "simulated")) {
            _ = try V4L2Capture(settings(), system: noStreaming)
        }
    }

    @Test("a camera another process streams from is reported busy")
    func busyWhileStreaming() throws {
        let camera = SimulatedV4L2()
        camera.busyOnStream = true
        #expect(throws: V4L2Error.busy(path: "/dev/video-sim", request: "VIDIOC_S_FMT")) {
            _ = try V4L2Capture(settings(), system: camera)
        }
    }

    @Test("frames stream with monotonic timestamps, and close tears down in order")
    func streamsAndClosesInOrder() throws {
        let camera = SimulatedV4L2()
        let capture = try V4L2Capture(settings(), system: camera)
        try capture.start()
        let wake = makeEventFD(signalled: false)
        defer { Glibc.close(wake) }
        var previous: Int64 = 0
        for expected in 0..<10 {
            let buffer = try #require(try capture.dequeue(wakeFD: wake))
            #expect(buffer.sequence == UInt32(expected))
            #expect(buffer.bytes.count == 640 * 480 * 2)
            #expect(buffer.bytes[0] == UInt8(expected))
            #expect(buffer.timestampNanoseconds > previous)
            previous = buffer.timestampNanoseconds
            try capture.requeue(buffer)
        }
        try capture.close()
        let teardown = camera.calls.drop { $0 != "VIDIOC_STREAMOFF" }
        #expect(Array(teardown) == ["VIDIOC_STREAMOFF", "munmap", "munmap", "munmap", "munmap", "close"])
        #expect(camera.openCount == 0)
    }

    @Test("a signalled wake event ends a wait without a frame")
    func wakeEndsWait() throws {
        let camera = SimulatedV4L2()
        camera.frameInterval = 1_000_000
        let capture = try V4L2Capture(settings(), system: camera)
        try capture.start()
        let wake = makeEventFD(signalled: true)
        defer { Glibc.close(wake) }
        #expect(try capture.dequeue(wakeFD: wake) == nil)
        try capture.close()
    }

    @Test("a device that vanishes mid-stream is reported lost, still closes, and can be opened again")
    func deviceLostAndReopened() throws {
        let camera = SimulatedV4L2()
        camera.vanishAfterFrames = 3
        let capture = try V4L2Capture(settings(), system: camera)
        try capture.start()
        let wake = makeEventFD(signalled: false)
        defer { Glibc.close(wake) }
        var received = 0
        do {
            while let buffer = try capture.dequeue(wakeFD: wake) {
                received += 1
                try capture.requeue(buffer)
            }
            Issue.record("the loss must be thrown")
        } catch let error as V4L2Error {
            guard case .deviceLost(let path, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(path == "/dev/video-sim")
        }
        #expect(received == 3)
        try? capture.close()
        #expect(camera.openCount == 0)
        #expect(throws: V4L2Error.noSuchDevice(path: "/dev/video-sim")) { _ = try V4L2Capture(settings(), system: camera) }
        camera.reconnect()
        let again = try V4L2Capture(settings(), system: camera)
        try again.start()
        #expect(try again.dequeue(wakeFD: wake) != nil)
        try again.close()
    }

    @Test("fourcc names round-trip")
    func fourccs() {
        for format in V4L2PixelFormat.allCases {
            #expect(V4L2PixelFormat(fourcc: format.fourcc) == format)
            #expect(V4L2PixelFormat.name(of: format.fourcc) == format.rawValue)
        }
    }
}

func makeEventFD(signalled: Bool) -> Int32 {
    let fd = bc_eventfd()
    if signalled {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }
    return fd
}
