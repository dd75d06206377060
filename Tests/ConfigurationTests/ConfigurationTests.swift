import Capture
import Configuration
import Controls
import LibAV
import Policy
import Settings
import TestSupport
import Foundation
import Testing
@testable import Pipeline
import V4L2

@Suite("Configuration file")
struct ConfigurationTests {
    func parse(_ text: String) throws -> BodycamConfiguration {
        try BodycamConfiguration(ConfigFile(file: "test.toml", text: text))
    }

    func error(_ text: String) -> ConfigError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    @Test("an empty file gives every default")
    func defaults() throws {
        let configuration = try parse("# nothing set\n")
        #expect(configuration == BodycamConfiguration())
        #expect(configuration.preEventSeconds == 30 && configuration.segmentSeconds == 60)
        #expect(configuration.encoder.codec == "libx264" && configuration.encoder.bitrateKbps == 4000)
        #expect(configuration.overlay.enabled)
    }

    @Test("every kind of value is read")
    func values() throws {
        let configuration = try parse("""
            device_id = "BC-0042"   # trailing comment
            officer_id = "O_7"
            [camera]
            source = "v4l2"
            device = "/dev/bodycam/camera"
            width = 1_920
            height = 1080
            fps = 25
            formats = ["NV12", "YUYV"]
            [encoder]
            codec = "h264_v4l2m2m"
            crf = 20
            [overlay]
            enabled = false
            corner = "bottom-right"
            lines = ["{time}", "# not a comment"]
            [recording]
            pre_event_seconds = 0
            segment_seconds = 5
            [storage]
            path = "/data/store"
            """)
        #expect(configuration.deviceID == "BC-0042" && configuration.officerID == "O_7")
        #expect(configuration.camera.source == .v4l2 && configuration.camera.device == "/dev/bodycam/camera")
        #expect(configuration.camera.width == 1920 && configuration.camera.framesPerSecond == 25)
        #expect(configuration.camera.formats == [.nv12, .yuyv])
        #expect(configuration.encoder.codec == "h264_v4l2m2m" && configuration.encoder.crf == 20 && configuration.encoder.bitrateKbps == nil)
        #expect(!configuration.overlay.enabled && configuration.overlay.corner == .bottomRight)
        #expect(configuration.overlay.lines == ["{time}", "# not a comment"])
        #expect(configuration.preEventSeconds == 0 && configuration.segmentSeconds == 5)
        #expect(configuration.storagePath == "/data/store")
    }

    @Test("mistakes are named with file, line and setting", arguments: [
        ("[camera]\nwidht = 640\n", 2, "camera.widht", "unknown setting"),
        ("[recording]\npre_event_seconds = 121\n", 2, "recording.pre_event_seconds", "out of range"),
        ("\n\n[camera]\nfps = \"30\"\n", 4, "camera.fps", "expected an integer"),
        ("[camera]\nsource = \"usb\"\n", 2, "camera.source", "is not one of"),
        ("[camera]\nwidth = 641\n", 2, "camera.width", "must be even"),
        ("[camera]\nformats = [\"H264\"]\n", 2, "camera.formats", "is not one of"),
        ("device_id = \"a b\"\n", 1, "device_id", "is not valid"),
        ("device_id = \"x\"\ndevice_id = \"y\"\n", 2, "", "cannot redefine existing string 'device_id'"),
        ("[camera\n", 1, "", "parsing table header: expected ']'"),
        ("just words\n", 1, "", "expected '='"),
        ("officer_id = \"open\n", 1, "", "Error while parsing string"),
        ("[encoder]\nbitrate_kbps = 3000\ncrf = 20\n", 3, "encoder.crf", "not both"),
        ("[camera]\nsource = \"raw-file\"\n", 2, "camera.path", "needs camera.path"),
        ("[camera]\nsimulate_timestamps = \"frozen\"\n", 2, "camera.simulate_timestamps", "\"simulated-v4l2\" only"),
        ("[camera]\nsource = \"simulated-v4l2\"\nsimulate_timestamps = \"late\"\n", 3, "camera.simulate_timestamps", "step-back"),
        ("[evidence]\nmedia_signing_key = \"/k/BC-1-media.key\"\n", 0, "evidence.media_signing_certificate", "go together"),
        ("[evidence]\nmedia_signing_key = \"k.key\"\nmedia_signing_certificate = \"/c.pem\"\n", 2, "evidence.media_signing_key", "absolute path"),
    ])
    func errors(text: String, line: Int, key: String, words: String) throws {
        let found = try #require(error(text))
        #expect(found.file == "test.toml")
        #expect(found.line == line || ((key == "camera.path" || key.hasPrefix("evidence.media")) && found.line == 0))
        #expect(found.key == key)
        #expect(found.message.contains(words), "\(found)")
    }

    @Test("TOML 1.0 beyond the old subset loads: a multi-line array with comments, literal strings, a comment after a table header")
    func fullTOML() throws {
        let text = """
            [camera]  # the camera
            source = 'v4l2'
            formats = ['YUYV', 'MJPG']
            [evidence]
            recipients = [
              "/etc/bodycam/office.pub",  # office
              '/etc/bodycam/escrow.pub',
            ]
            """
        let configuration = try BodycamConfiguration(ConfigFile(file: "test.toml", text: text))
        #expect(configuration.camera.source == .v4l2 && configuration.camera.formats == [.yuyv, .mjpeg])
        #expect(configuration.recipientPaths == ["/etc/bodycam/office.pub", "/etc/bodycam/escrow.pub"])
    }

    @Test("values of types no setting takes are named", arguments: [
        ("[camera]\nfps = 30.0\n", "camera.fps", "found a floating-point number"),
        ("[camera]\nformats = [1, 2]\n", "camera.formats", "found a list holding other values than strings"),
        ("[camera.extra]\nx = 1\n", "camera.extra.x", "unknown setting"),
        ("\"camera.fps\" = 5\n[camera]\nfps = 30\n", "camera.fps", "not a setting name"),
        ("[camera]\ndevice = \"/dev/video0\\u0000x\"\n", "camera.device", "U+0000"),
    ])
    func unsupportedTypes(text: String, key: String, words: String) throws {
        let found = try #require(error(text))
        #expect(found.key == key && found.message.contains(words), "\(found)")
    }

    @Test("a missing file is a configuration error naming it")
    func missingFile() {
        #expect {
            _ = try BodycamConfiguration.load(path: "/nonexistent/bodycam.toml")
        } throws: { error in
            (error as? ConfigError)?.description.contains("/nonexistent/bodycam.toml: cannot open") == true
        }
    }
}

@Suite("Configuration documentation")
struct ConfigurationDocumentationTests {
    @Test("docs/CONFIGURATION.md documents every setting the daemon reads, and no other")
    func documented() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/CONFIGURATION.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        var documented: Set<String> = []
        var section = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("## `[") { section = String(line.dropFirst(5).prefix { $0 != "]" }) }
            if line.hasPrefix("## Top level") { section = "" }
            if line.hasPrefix("| `") {
                let key = String(line.dropFirst(3).prefix { $0 != "`" })
                documented.insert(section.isEmpty ? key : section + "." + key)
            }
        }
        #expect(Set(BodycamConfiguration.settingNames) == documented)
    }
}

@Suite("Board profiles")
struct BoardProfileTests {
    static let hardware = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Hardware").path

    func load(_ text: String) throws -> BodycamConfiguration {
        let directory = NSTemporaryDirectory() + "bodycam-profile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try text.write(toFile: directory + "/bodycam.toml", atomically: true, encoding: .utf8)
        return try BodycamConfiguration.load(path: directory + "/bodycam.toml")
    }

    @Test("the CM4 profile gives the camera, the hardware encoder and the controls; the device's file overrides")
    func cm4() throws {
        let configuration = try load("board_profile = \"\(Self.hardware)/boards/rpi-cm4.toml\"\n[camera]\nwidth = 1280\nheight = 720\n")
        #expect(configuration.board == "rpi-cm4")
        #expect(configuration.camera.source == .v4l2 && configuration.camera.device == "/dev/bodycam/camera")
        #expect(configuration.camera.width == 1280 && configuration.camera.height == 720, "the device's own file wins")
        #expect(configuration.camera.formats == [.yuyv, .nv12, .mjpeg])
        #expect(configuration.encoder.codec == "h264_v4l2m2m" && configuration.controls.backend == .gpiod)
    }

    @Test("the simulator profile, and the installed default configuration, parse")
    func others() throws {
        #expect(try load("board_profile = \"\(Self.hardware)/boards/simulator.toml\"\n").controls.backend == .simulated)
        let installed = try String(contentsOfFile: Self.hardware + "/config/bodycam.toml", encoding: .utf8)
            .replacingOccurrences(of: "/usr/share/bodycam/boards", with: Self.hardware + "/boards")
        let configuration = try load(installed)
        #expect(configuration.board == "rpi-cm4" && configuration.recipientPaths == ["/etc/bodycam/recipients/office.pub"])
    }

    @Test("a profile with other settings is refused, naming the profile's file and line")
    func strayInProfile() throws {
        let directory = NSTemporaryDirectory() + "bodycam-profile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "board = \"x\"\n[storage]\npath = \"/tmp\"\n".write(toFile: directory + "/board.toml", atomically: true, encoding: .utf8)
        #expect {
            _ = try load("board_profile = \"\(directory)/board.toml\"\n")
        } throws: { error in
            (error as? ConfigError).map { $0.file == directory + "/board.toml" && $0.line == 3 && $0.key == "storage.path" } == true
        }
        // A bad value in a profile names the profile.
        try "[camera]\nfps = 0\n".write(toFile: directory + "/bad.toml", atomically: true, encoding: .utf8)
        #expect {
            _ = try load("board_profile = \"\(directory)/bad.toml\"\n")
        } throws: { error in (error as? ConfigError).map { $0.file == directory + "/bad.toml" && $0.key == "camera.fps" } == true }
    }
}
