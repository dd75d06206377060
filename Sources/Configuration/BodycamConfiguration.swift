import Glibc
import LibAV
import V4L2
import V4L2Simulator
import Capture
import Settings
import Pipeline
import Platform
import Policy
import Controls

/// Every setting of the daemon, with its default. docs/CONFIGURATION.md lists them.
public struct BodycamConfiguration: Equatable, Sendable {
    public enum CameraSource: String, CaseIterable, Sendable {
        case testPattern = "test-pattern"
        case v4l2
        case rawFile = "raw-file"
        /// The V4L2 capture code against a driver simulated at the ioctl seam (development and
        /// tests): the same negotiation, buffers and timestamp checks as a real camera.
        case simulatedV4L2 = "simulated-v4l2"
    }

    public struct Camera: Equatable, Sendable {
        public var source: CameraSource = .testPattern
        /// V4L2 device node or udev symlink.
        public var device = "/dev/video0"
        /// rawvideo file, for `raw-file`.
        public var path = ""
        public var width = 1280
        public var height = 720
        public var framesPerSecond = 30
        /// Layout of test-pattern and raw-file pictures.
        public var pixelFormat: PixelFormat = .yuyv422
        /// V4L2 formats in order of preference.
        public var formats: [V4L2PixelFormat] = [.yuyv, .nv12, .yu12]
        public var buffers = 4
        public var pacing: Pacing = .realTime
        /// How the `simulated-v4l2` camera stamps its buffers: a good driver, or a fault.
        public var simulateTimestamps: SimulatedTimestamps = .driver
        /// The `simulated-v4l2` camera's top rate, every format (0: no limit below 60 fps).
        public var simulateMaxFramesPerSecond = 0
    }

    public var deviceID = "UNPROVISIONED"
    public var officerID = ""
    public var camera = Camera()
    public var encoder = VideoEncoderSettings()
    public var overlay = OverlaySettings()
    public var preEventSeconds = 30
    public var preEventMaxBytes = 64 << 20
    public var segmentSeconds = 60
    public var storagePath = "/var/lib/bodycam/store"
    /// Below this much free space: an alarm, recording goes on.
    public var storageReserveBytes: Int64 = 2048 << 20
    /// Below this: the open segment is sealed and recording stops.
    public var storageFloorBytes: Int64 = 256 << 20
    /// The write queue's bound: seconds of live video waiting for storage, and bytes.
    public var writeQueueSeconds = 10
    public var writeQueueMaxBytes = 32 << 20
    /// The device's Ed25519 signing key (made by `bodycamctl keys provision`).
    public var deviceKeyPath = "/var/lib/bodycam/keys/device.key"
    /// The authority's certificate for that key.
    public var certificatePath = "/var/lib/bodycam/keys/device.certificate"
    /// X25519 public keys every segment is sealed to (the evidence office, an escrow).
    public var recipientPaths: [String] = []
    /// ONVIF Media Signing (docs/EXPORT.md): the device's P-256 key and its certificate from the
    /// authority's CA (`bodycamctl authority issue media-signing ID`: the leaf, then the CA); nil:
    /// the stream is not signed.
    public var mediaSigningKeyPath: String?
    public var mediaSigningCertificatePath: String?

    public struct Controls: Equatable, Sendable {
        public var backend: GPIOBackendKind = .gpiod
        public var activeLow = true
        /// PWR_HOLD drives the PMIC's enable input, which is active-high on most PMICs whatever
        /// the buttons and indicators are.
        public var powerHoldActiveLow = false
        public var bias: LineSpec.Bias = .pullUp
        public var debounceMilliseconds = 30
        public var longPressMilliseconds = 3000
        /// Where lines are, for boards without gpio-line-names ("FUNCTION=CHIP:OFFSET").
        public var lines: [LinePlacement] = []
    }
    public var controls = Controls()

    public struct PolicyConfiguration: Equatable, Sendable {
        public var stopPolicy: StopPolicy = .authorized
        public var allowOffDutyRecording = false
        public var reminderSeconds = 120
        /// Development and test rigs: start on duty (no duty token), officer from `officer_id`.
        public var onDutyAtStart = false
        /// Folder of supervisor Ed25519 public keys (*.pub) trusted for stop and duty tokens.
        public var supervisors = "/etc/bodycam/supervisors"
        public var lowBatteryPercent = 15
        public var criticalBatteryPercent = 3
    }
    public var policy = PolicyConfiguration()

    /// The camera's uplink to the evidence office (docs/OFFICE.md, "The camera's uplink").
    public struct UplinkConfiguration: Equatable, Sendable {
        /// The office's base URL, `https://HOST[:PORT]`; empty: no uplink.
        public var office = ""
        /// The device's TLS client certificate chain and key (`bodycamctl authority issue device`),
        /// and the authority's CA certificate, the only one the office's may chain to.
        public var certificate = "/var/lib/bodycam/keys/uplink.pem"
        public var key = "/var/lib/bodycam/keys/uplink.key"
        public var ca = "/etc/bodycam/ca.pem"
        /// A status heartbeat every this many seconds.
        public var heartbeatSeconds = 30
        /// While recording, a heartbeat at least this often: the office's answer says whether
        /// an officer watches, so live view starts within it.
        public var liveCheckSeconds = 5
        /// Upload cap in kilobits per second (0: none).
        public var bandwidthKbps = 0
        /// Each upload request carries at most this many KiB of a file.
        public var pieceKiB = 1024
        /// The authority's Ed25519 public key: the offload acknowledgements the office sends back
        /// must be signed by it or by an office key it certified; and its revocation list (empty: none).
        public var authority = "/etc/bodycam/authority.pub"
        public var revocations = ""
        /// Days a segment the office acknowledged stays on the device after it ends (0: deleted
        /// once acknowledged). Below the storage reserve, acknowledged segments go at once.
        public var retentionDays = 0
        public var enabled: Bool { !office.isEmpty }
    }
    public var uplink = UplinkConfiguration()
    /// A sysfs power_supply capacity file (percent); empty: no battery reading.
    public var batteryPath = ""
    public var controlSocket = "/run/bodycam/control.sock"
    /// Members may read status, run diagnostics and mark over the control socket.
    public var technicianGroup = "bodycam-tech"
    /// The board profile given by `board_profile`, and its `board` name.
    public var boardProfile = ""
    public var board = ""

    public init() {}

    /// Reads and checks a configuration file; every problem names file, line and setting.
    public static func load(path: String) throws -> BodycamConfiguration {
        let file = try ConfigFile.read(path: path)
        // A board profile (Hardware/boards/*.toml) gives the camera and the GPIO lines of a
        // board; the device's own file overrides any of it.
        guard let profile = file.entries["board_profile"] else { return try BodycamConfiguration(file) }
        guard case .string(let profilePath) = profile.value, profilePath.hasPrefix("/") else {
            throw ConfigError(file: path, line: profile.line, key: "board_profile", message: "expected an absolute path")
        }
        let profileFile: ConfigFile
        do {
            let bytes = try readWholeFile(profilePath, limit: 1 << 20)
            profileFile = try ConfigFile(file: profilePath, text: String(decoding: bytes, as: UTF8.self))
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(file: path, line: profile.line, key: "board_profile", message: "\(error)")
        }
        let allowed = ["camera.", "controls.", "encoder."]
        if let stray = profileFile.entries.first(where: { entry in entry.key != "board" && !allowed.contains { entry.key.hasPrefix($0) } }) {
            throw ConfigError(file: profilePath, line: stray.value.line, key: stray.key, message: "a board profile holds only board and [camera], [encoder] and [controls] settings")
        }
        return try BodycamConfiguration(ConfigFile(base: profileFile, overlay: file))
    }

    public init(_ file: ConfigFile) throws {
        var reader = ConfigReader(file: file)
        try self.init(reading: &reader)
        try reader.rejectUnknown()
        if case .string(let name)? = file.entries["board"]?.value { board = name }
    }

    /// Every setting name the daemon reads ("camera.width", …), for documentation checks.
    public static var settingNames: [String] {
        var reader = ConfigReader(file: try! ConfigFile(file: "", text: ""))
        _ = try? BodycamConfiguration(reading: &reader)
        return reader.usedKeys.sorted()
    }

    private init(reading reader: inout ConfigReader) throws {
        self.init()
        deviceID = try reader.string("device_id", default: deviceID, where: { ConfigReader.isIdentifier($0) }, "letters, digits, '-' and '_' (1–32)")
        officerID = try reader.string("officer_id", default: officerID, where: { $0.isEmpty || ConfigReader.isIdentifier($0) }, "letters, digits, '-' and '_' (up to 32)")

        camera.source = try reader.choice("camera.source", default: camera.source)
        camera.device = try reader.string("camera.device", default: camera.device, where: { $0.hasPrefix("/") }, "an absolute path")
        camera.path = try reader.string("camera.path", default: camera.path)
        camera.width = try reader.integer("camera.width", default: camera.width, in: 16...7680, even: true)
        camera.height = try reader.integer("camera.height", default: camera.height, in: 16...4320, even: true)
        camera.framesPerSecond = try reader.integer("camera.fps", default: camera.framesPerSecond, in: 1...120)
        camera.pixelFormat = try reader.choice("camera.pixel_format", default: camera.pixelFormat)
        camera.formats = try reader.choices("camera.formats", default: camera.formats, allowed: V4L2FrameSource.supportedFormats)
        camera.buffers = try reader.integer("camera.buffers", default: camera.buffers, in: 2...32)
        camera.pacing = try reader.choice("camera.pacing", default: camera.pacing)
        camera.simulateTimestamps = try reader.choice("camera.simulate_timestamps", default: camera.simulateTimestamps)
        camera.simulateMaxFramesPerSecond = try reader.integer("camera.simulate_max_fps", default: 0, in: 0...120)
        for key in ["camera.simulate_timestamps", "camera.simulate_max_fps"] where reader.has(key) && camera.source != .simulatedV4L2 {
            throw reader.error(key, "applies to camera.source = \"simulated-v4l2\" only")
        }
        if camera.source == .rawFile && camera.path.isEmpty {
            throw reader.error("camera.path", "camera.source = \"raw-file\" needs camera.path")
        }

        encoder.codec = try reader.string("encoder.codec", default: encoder.codec, where: { ["libx264", "h264_v4l2m2m"].contains($0) }, "\"libx264\" or \"h264_v4l2m2m\"")
        encoder.preset = try reader.string("encoder.preset", default: encoder.preset,
                                           where: { ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"].contains($0) },
                                           "an x264 preset (ultrafast … veryslow)")
        encoder.tune = try reader.string("encoder.tune", default: encoder.tune,
                                         where: { ["zerolatency", "film", "grain", "stillimage", "fastdecode"].contains($0) }, "an x264 tune")
        let bitrate = try reader.integer("encoder.bitrate_kbps", default: encoder.bitrateKbps ?? 0, in: 0...100_000)
        let crf = try reader.integer("encoder.crf", default: 0, in: 0...51)
        if reader.has("encoder.crf") && reader.has("encoder.bitrate_kbps") && bitrate > 0 {
            throw reader.error("encoder.crf", "set either encoder.bitrate_kbps or encoder.crf, not both")
        }
        encoder.bitrateKbps = reader.has("encoder.crf") ? nil : (bitrate > 0 ? bitrate : nil)
        encoder.crf = reader.has("encoder.crf") ? crf : (bitrate > 0 ? nil : 23)
        encoder.bFrames = try reader.integer("encoder.b_frames", default: encoder.bFrames, in: 0...4)

        overlay.enabled = try reader.boolean("overlay.enabled", default: overlay.enabled)
        overlay.corner = try reader.choice("overlay.corner", default: overlay.corner)
        overlay.scale = try reader.integer("overlay.scale", default: overlay.scale, in: 0...16)
        overlay.lines = try reader.strings("overlay.lines", default: overlay.lines)

        preEventSeconds = try reader.integer("recording.pre_event_seconds", default: preEventSeconds, in: 0...120)
        preEventMaxBytes = try reader.integer("recording.pre_event_max_mb", default: preEventMaxBytes >> 20, in: 1...1024) << 20
        segmentSeconds = try reader.integer("recording.segment_seconds", default: segmentSeconds, in: 1...3600)
        storagePath = try reader.string("storage.path", default: storagePath, where: { !$0.isEmpty }, "a folder")
        storageReserveBytes = Int64(try reader.integer("storage.reserve_mb", default: Int(storageReserveBytes >> 20), in: 1...10_000_000)) << 20
        storageFloorBytes = Int64(try reader.integer("storage.floor_mb", default: Int(storageFloorBytes >> 20), in: 0...10_000_000)) << 20
        writeQueueSeconds = try reader.integer("storage.write_queue_seconds", default: writeQueueSeconds, in: 1...120)
        writeQueueMaxBytes = try reader.integer("storage.write_queue_max_mb", default: writeQueueMaxBytes >> 20, in: 1...1024) << 20
        if storageFloorBytes >= storageReserveBytes {
            throw reader.error(reader.has("storage.floor_mb") ? "storage.floor_mb" : "storage.reserve_mb", "storage.floor_mb must be below storage.reserve_mb")
        }
        deviceKeyPath = try reader.string("evidence.device_key", default: deviceKeyPath, where: { $0.hasPrefix("/") }, "an absolute path")
        certificatePath = try reader.string("evidence.certificate", default: certificatePath, where: { $0.hasPrefix("/") }, "an absolute path")
        recipientPaths = try reader.strings("evidence.recipients", default: recipientPaths)
        // Both or neither: "" is unset.
        let signingKey = try reader.string("evidence.media_signing_key", default: "", where: { $0.isEmpty || $0.hasPrefix("/") }, "an absolute path")
        let signingCertificate = try reader.string("evidence.media_signing_certificate", default: "", where: { $0.isEmpty || $0.hasPrefix("/") },
                                                   "an absolute path")
        if signingKey.isEmpty != signingCertificate.isEmpty {
            throw reader.error(signingKey.isEmpty ? "evidence.media_signing_key" : "evidence.media_signing_certificate",
                               "media_signing_key and media_signing_certificate go together")
        }
        mediaSigningKeyPath = signingKey.isEmpty ? nil : signingKey
        mediaSigningCertificatePath = signingCertificate.isEmpty ? nil : signingCertificate
        controls.backend = try reader.choice("controls.backend", default: controls.backend)
        controls.activeLow = try reader.boolean("controls.active_low", default: controls.activeLow)
        controls.powerHoldActiveLow = try reader.boolean("controls.power_hold_active_low", default: controls.powerHoldActiveLow)
        controls.bias = try reader.choice("controls.bias", default: controls.bias)
        controls.debounceMilliseconds = try reader.integer("controls.debounce_ms", default: controls.debounceMilliseconds, in: 0...500)
        controls.longPressMilliseconds = try reader.integer("controls.long_press_ms", default: controls.longPressMilliseconds, in: 500...10_000)
        controls.lines = try reader.strings("controls.lines", default: []).map { line in
            guard let placement = LinePlacement(line) else {
                throw reader.error("controls.lines", "\"\(line)\" is not FUNCTION=CHIP:OFFSET (e.g. REC_BTN=gpiochip0:17; FUNCTION is one of "
                                   + ControlLine.allCases.map(\.name).joined(separator: ", ") + ")")
            }
            return placement
        }
        if let twice = Dictionary(grouping: controls.lines, by: \.line).first(where: { $0.value.count > 1 }) {
            throw reader.error("controls.lines", "\(twice.key.name) is placed twice")
        }
        policy.stopPolicy = try reader.choice("policy.stop_policy", default: policy.stopPolicy)
        policy.allowOffDutyRecording = try reader.boolean("policy.allow_off_duty_recording", default: policy.allowOffDutyRecording)
        policy.reminderSeconds = try reader.integer("policy.reminder_seconds", default: policy.reminderSeconds, in: 10...3600)
        policy.onDutyAtStart = try reader.boolean("policy.on_duty_at_start", default: policy.onDutyAtStart)
        policy.supervisors = try reader.string("policy.supervisors", default: policy.supervisors, where: { $0.hasPrefix("/") }, "an absolute path")
        policy.lowBatteryPercent = try reader.integer("policy.low_battery_percent", default: policy.lowBatteryPercent, in: 1...100)
        policy.criticalBatteryPercent = try reader.integer("policy.critical_battery_percent", default: policy.criticalBatteryPercent, in: 0...50)
        if policy.criticalBatteryPercent >= policy.lowBatteryPercent {
            throw reader.error("policy.critical_battery_percent", "must be below policy.low_battery_percent")
        }
        uplink.office = try reader.string("uplink.office", default: uplink.office, where: BodycamConfiguration.isOfficeURL,
                                          "https://HOST[:PORT], with nothing after")
        for (key, path) in [("uplink.certificate", \UplinkConfiguration.certificate), ("uplink.key", \.key), ("uplink.ca", \.ca),
                            ("uplink.authority", \.authority)] {
            uplink[keyPath: path] = try reader.string(key, default: uplink[keyPath: path], where: { $0.hasPrefix("/") }, "an absolute path")
        }
        uplink.heartbeatSeconds = try reader.integer("uplink.heartbeat_seconds", default: uplink.heartbeatSeconds, in: 5...3600)
        uplink.liveCheckSeconds = try reader.integer("uplink.live_check_seconds", default: uplink.liveCheckSeconds, in: 1...3600)
        uplink.bandwidthKbps = try reader.integer("uplink.bandwidth_kbps", default: uplink.bandwidthKbps, in: 0...10_000_000)
        uplink.pieceKiB = try reader.integer("uplink.piece_kib", default: uplink.pieceKiB, in: 16...4096)
        uplink.revocations = try reader.string("uplink.revocations", default: uplink.revocations, where: { $0.isEmpty || $0.hasPrefix("/") },
                                               "an absolute path or empty")
        uplink.retentionDays = try reader.integer("uplink.retention_days", default: uplink.retentionDays, in: 0...3650)
        technicianGroup = try reader.string("control.technician_group", default: technicianGroup, where: { !$0.isEmpty }, "a group name")
        boardProfile = try reader.string("board_profile", default: boardProfile)
        _ = try reader.string("board", default: "")
        batteryPath = try reader.string("power.battery", default: batteryPath, where: { $0.isEmpty || $0.hasPrefix("/") }, "an absolute path or empty")
        controlSocket = try reader.string("control.socket", default: controlSocket, where: { $0.hasPrefix("/") && $0.utf8.count < 108 },
                                          "an absolute path shorter than 108 bytes")
        if let relative = recipientPaths.first(where: { !$0.hasPrefix("/") }) {
            throw reader.error("evidence.recipients", "\"\(relative)\" is not an absolute path")
        }
    }
}

extension BodycamConfiguration {
    /// `https://` then a host name, an IPv4 address or a bracketed IPv6 address, and an optional
    /// `:PORT`; nothing else (no path, user, query or spaces).
    static func isOfficeURL(_ text: String) -> Bool {
        guard text.hasPrefix("https://") else { return false }
        let rest = text.dropFirst("https://".count)
        guard !rest.isEmpty, rest.utf8.count <= 262 else { return false }
        var host = Substring(rest)
        var port: Substring? = nil
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return false }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return false }
                port = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
        } else {
            if let colon = rest.firstIndex(of: ":") {
                host = rest[..<colon]
                port = rest[rest.index(after: colon)...]
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) else { return false }
        }
        if let port { guard let number = Int(port), (1...65535).contains(number), port.allSatisfy(\.isNumber) else { return false } }
        return true
    }
}
