import CV4L2
import Glibc

/// Pixel formats the capture code can negotiate, by V4L2 fourcc.
public enum V4L2PixelFormat: String, CaseIterable, Sendable {
    case yuyv = "YUYV"
    case nv12 = "NV12"
    case yu12 = "YU12"
    case mjpeg = "MJPG"

    public var fourcc: UInt32 {
        let bytes = Array(rawValue.utf8)
        return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    public init?(fourcc: UInt32) {
        guard let match = V4L2PixelFormat.allCases.first(where: { $0.fourcc == fourcc }) else { return nil }
        self = match
    }

    /// "YUYV" from a fourcc, for messages about formats we do not handle.
    public static func name(of fourcc: UInt32) -> String {
        String(decoding: (0..<4).map { UInt8((fourcc >> ($0 * 8)) & 0xff) }, as: UTF8.self)
    }
}

/// Why a camera could not be used; each case names the device and what the caller can do.
public enum V4L2Error: Error, CustomStringConvertible, Equatable {
    case noSuchDevice(path: String)
    case permissionDenied(path: String)
    case busy(path: String, request: String)
    case notVideoDevice(path: String)
    case notCaptureDevice(path: String, driver: String)
    case noStreaming(path: String, driver: String)
    case noSupportedFormat(path: String, offered: [String], wanted: [String])
    /// The device vanished or failed mid-stream (unplugged, driver unbound, I/O error). Close the
    /// capture and open it again when the device is back.
    case deviceLost(path: String, call: SystemCallError)
    case request(path: String, call: SystemCallError)

    public var description: String {
        switch self {
        case .noSuchDevice(let path): return "camera \(path): no such device (is it connected, is the driver loaded?)"
        case .permissionDenied(let path): return "camera \(path): permission denied (is the daemon's user in the video group?)"
        case .busy(let path, let request): return "camera \(path): busy (\(request)): another process is using it"
        case .notVideoDevice(let path): return "camera \(path): not a V4L2 device"
        case .notCaptureDevice(let path, let driver): return "camera \(path) (\(driver)): not a video capture device"
        case .noStreaming(let path, let driver): return "camera \(path) (\(driver)): does not support mmap streaming"
        case .noSupportedFormat(let path, let offered, let wanted):
            return "camera \(path): no supported pixel format: it offers \(offered.joined(separator: ", ")), we take \(wanted.joined(separator: ", "))"
        case .deviceLost(let path, let call): return "camera \(path) lost: \(call)"
        case .request(let path, let call): return "camera \(path): \(call)"
        }
    }
}

/// What the camera agreed to.
public struct V4L2Format: Equatable, Sendable {
    public var pixelFormat: V4L2PixelFormat
    public var width: Int
    public var height: Int
    public var bytesPerLine: Int
    public var imageSize: Int
    /// Frames per second the driver reports after VIDIOC_S_PARM (0 when it cannot set a rate).
    public var framesPerSecond: Double
    /// Set when the camera agreed to less than was asked (a smaller picture or a lower rate):
    /// what it gives against what was configured.
    public var shortfall: String? = nil
}

/// One pixel format's best mode for a wanted size and rate, from VIDIOC_ENUM_FRAMESIZES and
/// VIDIOC_ENUM_FRAMEINTERVALS; nil members where the driver does not enumerate.
struct V4L2ModeOffer: Equatable {
    var format: V4L2PixelFormat
    /// The size the driver offers closest to the wanted one (the wanted one when offered).
    var size: (width: Int, height: Int)?
    /// The highest rate at that size.
    var framesPerSecond: Double?

    static func == (a: V4L2ModeOffer, b: V4L2ModeOffer) -> Bool {
        a.format == b.format && a.size?.width == b.size?.width && a.size?.height == b.size?.height && a.framesPerSecond == b.framesPerSecond
    }

    /// Reaches the wanted size and rate (an unknown rate counts as reaching it: nothing says not).
    func reaches(width: Int, height: Int, framesPerSecond wanted: Int) -> Bool {
        guard let size, size.width >= width, size.height >= height else { return size == nil }
        return (framesPerSecond ?? Double(wanted)) >= Double(wanted) - 0.5
    }
}

public struct V4L2Settings: Sendable {
    public var devicePath: String
    public var width: Int
    public var height: Int
    public var framesPerSecond: Int
    /// Formats in order of preference; the first the camera offers wins.
    public var preferredFormats: [V4L2PixelFormat]
    public var bufferCount: Int

    public init(devicePath: String, width: Int, height: Int, framesPerSecond: Int,
                preferredFormats: [V4L2PixelFormat] = [.yuyv, .nv12, .yu12], bufferCount: Int = 4) {
        self.devicePath = devicePath
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.preferredFormats = preferredFormats
        self.bufferCount = bufferCount
    }
}

/// One filled buffer, borrowed from the driver until `V4L2Capture.requeue` gives it back.
public struct V4L2Buffer {
    public let index: Int
    public let bytes: UnsafeRawBufferPointer
    /// The driver's frame counter; a jump means frames were dropped before this one.
    public let sequence: UInt32
    /// Capture time as the driver stamped it, nanoseconds (on CLOCK_MONOTONIC when
    /// `isMonotonic`; the driver may also leave it 0 or repeat it).
    public let timestampNanoseconds: Int64
    /// The buffer's timestamp flags say CLOCK_MONOTONIC (V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC).
    public let isMonotonic: Bool
    /// CLOCK_MONOTONIC when VIDIOC_DQBUF returned it, nanoseconds: the fallback capture time.
    public let dequeuedNanoseconds: Int64
    /// The driver flagged the buffer as corrupt (V4L2_BUF_FLAG_ERROR).
    public let isCorrupt: Bool
}

/// An open V4L2 capture device with mmap streaming. Owns the descriptor and the mappings;
/// `close()` tears down in order (STREAMOFF, munmap, close) and must be called.
/// Not thread-safe: one capture thread drives it.
// Used by one thread at a time: opened on the pipeline thread, then read only by the capture
// thread, then closed on the pipeline thread after that thread has been joined.
public final class V4L2Capture: @unchecked Sendable {
    public let settings: V4L2Settings
    public let format: V4L2Format
    public let driver: String
    public let card: String
    private let system: V4L2System
    private var fd: Int32
    private var mappings: [(address: UnsafeMutableRawPointer, length: Int)] = []
    private var streaming = false
    private var closed = false

    private var path: String { settings.devicePath }

    /// Opens the device, checks it can capture by streaming and negotiates format, size and rate.
    public init(_ settings: V4L2Settings, system: V4L2System = LinuxV4L2()) throws {
        self.settings = settings
        self.system = system
        do {
            fd = try system.open(settings.devicePath)
        } catch {
            switch error.errno {
            case ENOENT, ENODEV, ENXIO: throw V4L2Error.noSuchDevice(path: settings.devicePath)
            case EACCES, EPERM: throw V4L2Error.permissionDenied(path: settings.devicePath)
            case EBUSY: throw V4L2Error.busy(path: settings.devicePath, request: "open")
            default: throw V4L2Error.request(path: settings.devicePath, call: error)
            }
        }
        do {
            (driver, card) = try V4L2Capture.checkCapabilities(system: system, fd: fd, path: settings.devicePath)
            format = try V4L2Capture.negotiate(system: system, fd: fd, settings: settings)
        } catch {
            try? system.close(fd)
            closed = true
            throw error
        }
    }

    deinit {
        assert(closed, "V4L2Capture for \(settings.devicePath) released without close()")
    }

    private static func classify(_ error: SystemCallError, path: String, request: V4L2Request) -> V4L2Error {
        switch error.errno {
        case EBUSY: return .busy(path: path, request: request.rawValue)
        case ENODEV, EIO, ENXIO: return .deviceLost(path: path, call: error)
        case ENOTTY where request == .querycap: return .notVideoDevice(path: path)
        default: return .request(path: path, call: error)
        }
    }

    private func ioctl<T>(_ request: V4L2Request, _ value: inout T) throws {
        try V4L2Capture.ioctl(system, fd, path, request, &value)
    }

    private static func ioctl<T>(_ system: V4L2System, _ fd: Int32, _ path: String, _ request: V4L2Request, _ value: inout T) throws {
        do {
            try withUnsafeMutableBytes(of: &value) { (raw) throws(SystemCallError) in
                try system.ioctl(fd, request, raw.baseAddress!)
            }
        } catch {
            throw classify(error, path: path, request: request)
        }
    }

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func checkCapabilities(system: V4L2System, fd: Int32, path: String) throws -> (String, String) {
        var capability = v4l2_capability()
        try ioctl(system, fd, path, .querycap, &capability)
        let driver = string(capability.driver)
        let card = string(capability.card)
        // device_caps describes this node; capabilities describes the whole physical device.
        let caps = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
        guard caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0 else { throw V4L2Error.notCaptureDevice(path: path, driver: driver) }
        guard caps & UInt32(V4L2_CAP_STREAMING) != 0 else { throw V4L2Error.noStreaming(path: path, driver: driver) }
        return (driver, card)
    }

    /// The fourccs the device offers for capture (VIDIOC_ENUM_FMT until EINVAL).
    public static func offeredFormats(system: V4L2System, fd: Int32, path: String) throws -> [UInt32] {
        var result: [UInt32] = []
        for index in 0..<64 {
            var description = v4l2_fmtdesc()
            description.index = UInt32(index)
            description.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            do {
                try withUnsafeMutableBytes(of: &description) { (raw) throws(SystemCallError) in
                    try system.ioctl(fd, .enumFormat, raw.baseAddress!)
                }
            } catch where error.errno == EINVAL {
                break
            } catch {
                throw classify(error, path: path, request: .enumFormat)
            }
            result.append(description.pixelformat)
        }
        return result
    }

    /// The offer of `format` for the wanted size: the wanted size if the driver lists it (or its
    /// ranges hold it), else the smallest listed size that holds it, else the largest; and the
    /// highest rate at that size.
    static func modeOffer(system: V4L2System, fd: Int32, format: V4L2PixelFormat, width: Int, height: Int) -> V4L2ModeOffer {
        var sizes: [(width: Int, height: Int)] = []
        var chosen: (width: Int, height: Int)? = nil
        for index in 0..<64 {
            var size = v4l2_frmsizeenum()
            size.index = UInt32(index)
            size.pixel_format = format.fourcc
            guard (try? withUnsafeMutableBytes(of: &size, { (raw) throws(SystemCallError) in try system.ioctl(fd, .enumFrameSizes, raw.baseAddress!) })) != nil
            else { break }
            if size.type == V4L2_FRMSIZE_TYPE_DISCRETE.rawValue {
                sizes.append((Int(size.discrete.width), Int(size.discrete.height)))
            } else {
                // Stepwise or continuous: the wanted size, clamped into the range and onto its steps.
                let range = size.stepwise
                func fit(_ value: Int, _ low: UInt32, _ high: UInt32, _ step: UInt32) -> Int {
                    let clamped = min(max(value, Int(low)), Int(high))
                    return step > 1 ? Int(low) + (clamped - Int(low)) / Int(step) * Int(step) : clamped
                }
                chosen = (fit(width, range.min_width, range.max_width, range.step_width),
                          fit(height, range.min_height, range.max_height, range.step_height))
                break
            }
        }
        if chosen == nil, !sizes.isEmpty {
            chosen = sizes.first { $0.width == width && $0.height == height }
                ?? sizes.filter { $0.width >= width && $0.height >= height }.min { $0.width * $0.height < $1.width * $1.height }
                ?? sizes.max { $0.width * $0.height < $1.width * $1.height }
        }
        guard let chosen else { return V4L2ModeOffer(format: format, size: nil, framesPerSecond: nil) }
        var best: Double? = nil
        for index in 0..<64 {
            var interval = v4l2_frmivalenum()
            interval.index = UInt32(index)
            interval.pixel_format = format.fourcc
            interval.width = UInt32(chosen.width)
            interval.height = UInt32(chosen.height)
            guard (try? withUnsafeMutableBytes(of: &interval, { (raw) throws(SystemCallError) in try system.ioctl(fd, .enumFrameIntervals, raw.baseAddress!) })) != nil
            else { break }
            // The shortest interval is the highest rate (stepwise: its minimum).
            let fraction = interval.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue ? interval.discrete : interval.stepwise.min
            if fraction.numerator > 0 { best = max(best ?? 0, Double(fraction.denominator) / Double(fraction.numerator)) }
            if interval.type != V4L2_FRMIVAL_TYPE_DISCRETE.rawValue { break }
        }
        return V4L2ModeOffer(format: format, size: chosen, framesPerSecond: best)
    }

    /// Which offered format to ask for: the first preferred one whose modes reach the configured
    /// size and rate; when none does, the one that comes closest (the configured size if any
    /// offers it, at the highest rate; ties by preference); a driver that enumerates nothing
    /// gets the first preferred format, as before.
    static func choose(_ offers: [V4L2ModeOffer], width: Int, height: Int, framesPerSecond: Int) -> V4L2ModeOffer? {
        if let reaching = offers.first(where: { $0.reaches(width: width, height: height, framesPerSecond: framesPerSecond) }) { return reaching }
        let sized = offers.filter { ($0.size?.width ?? 0) >= width && ($0.size?.height ?? 0) >= height }
        let candidates = sized.isEmpty ? offers : sized
        // max(by:) keeps the first of equals: the first in preference order wins a tie.
        return candidates.max { ($0.framesPerSecond ?? 0, ($0.size?.width ?? 0) * ($0.size?.height ?? 0))
                                            < ($1.framesPerSecond ?? 0, ($1.size?.width ?? 0) * ($1.size?.height ?? 0)) }
    }

    private static func negotiate(system: V4L2System, fd: Int32, settings: V4L2Settings) throws -> V4L2Format {
        let path = settings.devicePath
        let offered = try offeredFormats(system: system, fd: fd, path: path)
        let offers = settings.preferredFormats.filter { offered.contains($0.fourcc) }.map {
            modeOffer(system: system, fd: fd, format: $0, width: settings.width, height: settings.height)
        }
        guard let chosen = choose(offers, width: settings.width, height: settings.height, framesPerSecond: settings.framesPerSecond) else {
            throw V4L2Error.noSupportedFormat(path: path, offered: offered.map(V4L2PixelFormat.name(of:)),
                                              wanted: settings.preferredFormats.map(\.rawValue))
        }
        // The size judged is the size asked for: a driver left to pick its own nearest size for
        // one it does not list may pick a smaller one (uvcvideo does).
        var format = v4l2_format()
        format.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        format.fmt.pix.width = UInt32(chosen.size?.width ?? settings.width)
        format.fmt.pix.height = UInt32(chosen.size?.height ?? settings.height)
        format.fmt.pix.pixelformat = chosen.format.fourcc
        format.fmt.pix.field = V4L2_FIELD_NONE.rawValue
        try ioctl(system, fd, path, .setFormat, &format)
        // The driver may adjust size and even format (S_FMT never fails for an unsupported size).
        guard let agreed = V4L2PixelFormat(fourcc: format.fmt.pix.pixelformat) else {
            throw V4L2Error.noSupportedFormat(path: path, offered: [V4L2PixelFormat.name(of: format.fmt.pix.pixelformat)],
                                              wanted: settings.preferredFormats.map(\.rawValue))
        }

        var parameters = v4l2_streamparm()
        parameters.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        var framesPerSecond = 0.0
        if (try? ioctl(system, fd, path, .getParameters, &parameters)) != nil,
           parameters.parm.capture.capability & UInt32(V4L2_CAP_TIMEPERFRAME) != 0 {
            parameters.parm.capture.timeperframe = v4l2_fract(numerator: 1, denominator: UInt32(settings.framesPerSecond))
            try ioctl(system, fd, path, .setParameters, &parameters)
            let fraction = parameters.parm.capture.timeperframe
            if fraction.numerator > 0 { framesPerSecond = Double(fraction.denominator) / Double(fraction.numerator) }
        }
        let minimumLine = agreed == .yuyv ? Int(format.fmt.pix.width) * 2 : Int(format.fmt.pix.width)
        var result = V4L2Format(pixelFormat: agreed, width: Int(format.fmt.pix.width), height: Int(format.fmt.pix.height),
                                bytesPerLine: max(Int(format.fmt.pix.bytesperline), agreed == .mjpeg ? 0 : minimumLine),
                                imageSize: Int(format.fmt.pix.sizeimage), framesPerSecond: framesPerSecond)
        let smaller = result.width < settings.width || result.height < settings.height
        let slower = framesPerSecond > 0 && framesPerSecond < Double(settings.framesPerSecond) - 0.5
        if smaller || slower {
            let rate = framesPerSecond > 0 ? " at \(Int(framesPerSecond.rounded())) fps" : ""
            result.shortfall = "the camera gives \(agreed.rawValue) \(result.width)x\(result.height)\(rate), "
                + "less than the configured \(settings.width)x\(settings.height) at \(settings.framesPerSecond) fps "
                + "(offered: \(offers.map { V4L2Capture.describe($0) }.joined(separator: "; ")))"
        }
        return result
    }

    static func describe(_ offer: V4L2ModeOffer) -> String {
        let size = offer.size.map { "\($0.width)x\($0.height)" } ?? "sizes not listed"
        let rate = offer.framesPerSecond.map { " up to \(Int($0.rounded())) fps" } ?? ""
        return "\(offer.format.rawValue) \(size)\(rate)"
    }

    /// VIDIOC_REQBUFS, QUERYBUF + mmap for each buffer, QBUF them all, STREAMON.
    public func start() throws {
        precondition(!streaming && !closed)
        var request = v4l2_requestbuffers()
        request.count = UInt32(settings.bufferCount)
        request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        request.memory = V4L2_MEMORY_MMAP.rawValue
        try ioctl(.requestBuffers, &request)
        guard request.count >= 2 else {
            throw V4L2Error.request(path: path, call: SystemCallError("VIDIOC_REQBUFS(got \(request.count) buffers)", errno: ENOMEM))
        }
        for index in 0..<Int(request.count) {
            var buffer = makeBuffer(index: index)
            try ioctl(.queryBuffer, &buffer)
            do {
                let address = try system.mmap(fd, length: Int(buffer.length), offset: Int(buffer.m.offset))
                mappings.append((address, Int(buffer.length)))
            } catch {
                throw V4L2Capture.classify(error, path: path, request: .queryBuffer)
            }
            try ioctl(.queueBuffer, &buffer)
        }
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        try ioctl(.streamOn, &type)
        streaming = true
    }

    private func makeBuffer(index: Int) -> v4l2_buffer {
        var buffer = v4l2_buffer()
        buffer.index = UInt32(index)
        buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        buffer.memory = V4L2_MEMORY_MMAP.rawValue
        return buffer
    }

    /// Waits for the next filled buffer (poll, then VIDIOC_DQBUF). Returns nil when `wakeFD` was
    /// signalled (a stop). The buffer must be handed back with `requeue` before the next call.
    public func dequeue(wakeFD: Int32) throws -> V4L2Buffer? {
        precondition(streaming)
        while true {
            do {
                guard try system.waitReadable(fd, wakeFD: wakeFD) else { return nil }
            } catch {
                throw V4L2Error.deviceLost(path: path, call: error)
            }
            var buffer = makeBuffer(index: 0)
            do {
                try withUnsafeMutableBytes(of: &buffer) { (raw) throws(SystemCallError) in
                    try system.ioctl(fd, .dequeueBuffer, raw.baseAddress!)
                }
            } catch where error.errno == EAGAIN {
                continue  // spurious wake-up
            } catch {
                throw V4L2Capture.classify(error, path: path, request: .dequeueBuffer)
            }
            let index = Int(buffer.index)
            guard index < mappings.count else {
                throw V4L2Error.request(path: path, call: SystemCallError("VIDIOC_DQBUF(index \(index))", errno: EINVAL))
            }
            let used = min(Int(buffer.bytesused), mappings[index].length)
            var dequeued = timespec()
            clock_gettime(CLOCK_MONOTONIC, &dequeued)
            // A driver's seconds are not trusted with arithmetic: a value past ~292 years is kept
            // out of range (it then fails the capture-time checks, as 0 would).
            let seconds = Int64(clamping: buffer.timestamp.tv_sec)
            let nanoseconds = abs(seconds) < 9_000_000_000 ? seconds * 1_000_000_000 + Int64(buffer.timestamp.tv_usec % 1_000_000) * 1_000 : -1
            let timestampType = buffer.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK)
            return V4L2Buffer(index: index, bytes: UnsafeRawBufferPointer(start: mappings[index].address, count: used),
                              sequence: buffer.sequence, timestampNanoseconds: nanoseconds,
                              isMonotonic: timestampType == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC),
                              dequeuedNanoseconds: Int64(dequeued.tv_sec) * 1_000_000_000 + Int64(dequeued.tv_nsec),
                              isCorrupt: buffer.flags & UInt32(V4L2_BUF_FLAG_ERROR) != 0)
        }
    }

    /// VIDIOC_QBUF: gives a dequeued buffer back to the driver.
    public func requeue(_ buffer: V4L2Buffer) throws {
        var raw = makeBuffer(index: buffer.index)
        try ioctl(.queueBuffer, &raw)
    }

    /// STREAMOFF, munmap every buffer, close: in that order, each failure reported. Safe to call
    /// on a device that has vanished (the errors then say so, and everything is still released).
    public func close() throws {
        guard !closed else { return }
        closed = true
        var firstError: Error? = nil
        if streaming {
            streaming = false
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            do { try ioctl(.streamOff, &type) } catch { firstError = firstError ?? error }
        }
        for mapping in mappings {
            do { try system.munmap(mapping.address, length: mapping.length) } catch {
                firstError = firstError ?? V4L2Error.request(path: path, call: error)
            }
        }
        mappings.removeAll()
        do { try system.close(fd) } catch { firstError = firstError ?? V4L2Error.request(path: path, call: error) }
        if let firstError { throw firstError }
    }
}

/// What a V4L2 node says about itself, for listing cameras (`bodycamctl camera list`).
public struct V4L2DeviceInfo: Sendable {
    public var path: String
    public var driver: String
    public var card: String
    public var isCapture: Bool
    /// Capture formats the node offers, as fourcc names ("YUYV", "MJPG", …).
    public var formats: [String]
}

extension V4L2Capture {
    /// Opens a node just long enough to ask VIDIOC_QUERYCAP and VIDIOC_ENUM_FMT.
    public static func describe(_ path: String, system: V4L2System = LinuxV4L2()) throws -> V4L2DeviceInfo {
        let fd: Int32
        do {
            fd = try system.open(path)
        } catch {
            switch error.errno {
            case ENOENT, ENODEV, ENXIO: throw V4L2Error.noSuchDevice(path: path)
            case EACCES, EPERM: throw V4L2Error.permissionDenied(path: path)
            default: throw V4L2Error.request(path: path, call: error)
            }
        }
        defer { try? system.close(fd) }
        var capability = v4l2_capability()
        do {
            try withUnsafeMutableBytes(of: &capability) { (raw) throws(SystemCallError) in try system.ioctl(fd, .querycap, raw.baseAddress!) }
        } catch {
            throw error.errno == ENOTTY ? V4L2Error.notVideoDevice(path: path) : V4L2Error.request(path: path, call: error)
        }
        let caps = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
        let isCapture = caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0
        let formats = isCapture ? try offeredFormats(system: system, fd: fd, path: path).map(V4L2PixelFormat.name(of:)) : []
        func text<T>(_ tuple: T) -> String { withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
        return V4L2DeviceInfo(path: path, driver: text(capability.driver), card: text(capability.card), isCapture: isCapture, formats: formats)
    }
}
