import Capture
import Configuration
import PKI
import ControlProtocol
import Controls
import Daemon
import Export
import LibAV
import Platform
import Policy
import TestSupport
import Tokens
import Wire
import Foundation
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline
import LibAVFormat

/// bodycamctl as a person runs it: help, exit codes, --json.
@Suite("bodycamctl")
struct CLITests {
    static var ctl: String {
        URL(fileURLWithPath: DaemonTests.daemonPath).deletingLastPathComponent().appendingPathComponent("bodycamctl").path
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try DaemonTests.run(Self.ctl, arguments)
    }

    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test("export decrypts and decodes every segment; one cut before its first fragment is reported empty, not failed")
    func exportWithEmptyRecoveredSegment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        do {
            let vault = try makeVault(store, keys: keys)
            _ = try recordEvidence(into: vault, frames: 30)
            // The power goes as segment 2 opens: its header is on the disk, no fragment is.
            _ = try vault.makeSink(for: SegmentDescriptor(sequence: 2, deviceID: "BC-EV-1", officerID: "OFC-1",
                                                          startWallNanoseconds: Clock.wallNanoseconds(), codec: "h264",
                                                          width: 160, height: 120, framesPerSecond: 30))
        }
        let recovery = try makeVault(store, keys: keys).recover()
        #expect(recovery.recovered.count == 1)
        // A sealed segment's manifest says how many camera frames are missing inside it; a
        // recovered one cannot know.
        let manifests = try EvidenceVault.readManifests(store)
        #expect(manifests.map(\.framesDropped) == [0, nil])
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        try KeyFile.write(keys.authority.publicKey, to: directory.path + "/authority.pub")
        let result = try run(["export", "--json", "--identity", directory.path + "/office.key", "--authority", directory.path + "/authority.pub",
                              "--out", directory.path + "/export", store])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        let segments = try #require((try json(result.output) as? [String: Any])?["segments"] as? [[String: Any]])
        #expect(segments.count == 2)
        #expect(segments.first?["exported"] as? Bool == true && segments.first?["frames_decoded"] as? Int == 30)
        #expect((segments.first?["duration_seconds"] as? Double).map { abs($0 - 1.0) < 0.05 } == true)
        #expect(segments.first?["frames_dropped"] as? Int == 0 && segments.last?["frames_dropped"] == nil)
        #expect(segments.last?["empty"] as? Bool == true && segments.last?["exported"] as? Bool == false)
        let text = try String(contentsOfFile: directory.path + "/export/export-report.txt", encoding: .utf8)
        #expect(text.contains("EMPTY seg-000002"))
    }

    @Test("export --incident FROM..TO joins the window's segments into one standard MP4 cut on keyframes; mark:N picks the window around a mark, which becomes a chapter")
    func exportIncident() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        let vault = try makeVault(store, keys: keys)
        // 1.5 s after now: in the second one-second segment (the test pattern's clock starts now).
        let markAt = Clock.monotonicNanoseconds() + 1_500_000_000
        vault.addMark(label: "stop", source: "button", at: markAt, utc: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds() + 1_500_000_000))
        try recordEvidence(into: vault, frames: 150, width: 320, height: 240)
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        let manifests = try EvidenceVault.readManifests(store)
        try #require(manifests.count == 5)
        let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30)

        let from = Clock.iso8601(wallNanoseconds: ClockParse.nanoseconds(iso8601: manifests[1].startUTC)! + 500_000_000)
        let to = Clock.iso8601(wallNanoseconds: ClockParse.nanoseconds(iso8601: manifests[3].startUTC)! + 100_000_000)
        let out = directory.path + "/incident"
        let result = try run(["export", "--json", "--identity", directory.path + "/office.key", "--incident", "\(from)..\(to)", "--out", out, store])
        #expect(result.status == 0, "\(result)")
        let report = try #require(try json(result.output) as? [String: Any])
        let incident = try #require(report["incident"] as? [String: Any])
        let files = try #require(incident["files"] as? [[String: Any]])
        try #require(files.count == 1)
        let file = try #require(files[0]["file"] as? String)
        #expect((files[0]["pieces"] as? [[String: Any]])?.compactMap { $0["sequence"] as? Int } == manifests[1...3].map { Int($0.sequence) })
        #expect(files[0]["first_frame_utc"] as? String == manifests[1].startUTC)
        #expect(files[0]["sha256"] as? String == Hex.encode(try SHA256.hash(try readWholeFile(file))))
        #expect(try burnedInFrameNumbers(path: file, format: format) == (30..<120).map { Optional($0) })
        let segments = try #require(report["segments"] as? [[String: Any]])
        #expect(segments.map { $0["outside"] as? Bool == true } == [true, false, false, false, true])
        #expect((report["marks"] as? [[String: Any]])?.first?["label"] as? String == "stop")
        #expect(try names(out, suffix: "") == ["device.certificate", "export-report.json", "export-report.txt", URL(fileURLWithPath: file).lastPathComponent, "manifests"])
        #expect(try names(out + "/manifests", suffix: "") == manifests[1...3].map { $0.baseName + ".manifest" })
        #expect(try String(contentsOfFile: out + "/export-report.txt", encoding: .utf8).contains("INCIDENT FILE \(file): 90 frames"))

        // Around the mark, nothing before or after it: the GOP that holds it, the mark a chapter.
        let around = try run(["export", "--json", "--identity", directory.path + "/office.key", "--incident", "mark:1", "--before", "0", "--after", "0",
                              "--out", directory.path + "/mark", store])
        #expect(around.status == 0, "\(around)")
        let markFile = try #require(((try json(around.output) as? [String: Any])?["incident"] as? [String: Any]).flatMap { ($0["files"] as? [[String: Any]])?.first?["file"] as? String })
        #expect(try burnedInFrameNumbers(path: markFile, format: format) == (30..<60).map { Optional($0) })
        let chapters = try MediaReader(path: markFile).chapters
        #expect(chapters.map(\.title) == ["start", "stop (button)"], "\(chapters)")
        #expect(abs((chapters.last?.startSeconds ?? 0) - 0.5) < 0.1, "\(chapters)")

        // A mark the store does not have, and a window with nothing in it.
        let missing = try run(["export", "--identity", directory.path + "/office.key", "--incident", "mark:2", "--out", directory.path + "/none", store])
        #expect(missing.status == 2 && missing.errors.contains("the store has 1 mark"), "\(missing)")
        let empty = try run(["export", "--identity", directory.path + "/office.key", "--incident", "2020-01-01T00:00:00Z..2020-01-01T00:01:00Z",
                             "--out", directory.path + "/empty", store])
        #expect(empty.status == 1 && empty.output.contains("NOTHING RECORDED"), "\(empty)")
    }

    @Test("export --signing-key makes a package that verify-export checks with the authority's key alone: a changed byte, an edited report, a file added or removed, another authority are each found")
    func exportPackage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        try recordEvidence(into: try makeVault(store, keys: keys), frames: 60)
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        try KeyFile.write(keys.authority.publicKey, to: directory.path + "/authority.pub")
        let signing = try Ed25519PrivateKey()
        try KeyFile.write(signing, to: directory.path + "/export.key")
        func certify(_ purpose: String, _ name: String) throws {
            let certificate = try KeyCertificate.issue(holder: "office-1", key: signing.publicKey, purpose: purpose, authority: keys.authority,
                                                       notBefore: "2020-01-01T00:00:00.000000Z", notAfter: "2099-01-01T00:00:00.000000Z")
            try writeFileAtomically(directory.path + "/" + name, certificate.document.bytes)
        }
        try certify(KeyCertificate.exportPackage, "export.certificate")
        try certify(KeyCertificate.offloadAcknowledgement, "offload.certificate")
        let out = directory.path + "/package"
        let export = ["export", "--identity", directory.path + "/office.key", "--authority", directory.path + "/authority.pub",
                      "--signing-key", directory.path + "/export.key"]
        // A key certified for another purpose signs no package, and nothing is written.
        let wrong = try run(export + ["--signing-certificate", directory.path + "/offload.certificate", "--out", out, store])
        #expect(wrong.status == 2 && wrong.errors.contains("not export-package"), "\(wrong)")
        #expect(!FileManager.default.fileExists(atPath: out + "/export-report.json"))
        let made = try run(export + ["--signing-certificate", directory.path + "/export.certificate", "--out", out, store])
        #expect(made.status == 0, "\(made)")
        let package = try ExportPackage.parse(try readWholeFile(out + "/" + ExportPackage.fileName), what: "package")
        let mp4s = package.files.map(\.name).filter { $0.hasSuffix(".mp4") }
        #expect(mp4s.count == 2 && package.files.contains { $0.name == "export-report.json" } && package.files.contains { $0.name == "device.certificate" })
        #expect(package.files.filter { $0.name.hasPrefix("manifests/") }.count == 2)
        #expect(package.officeIdentityKeyID == keys.office.publicKey.keyID && package.deviceID == "BC-EV-1")

        let verify = ["verify-export", "--json", "--authority", directory.path + "/authority.pub", out]
        let clean = try run(verify)
        #expect(clean.status == 0, "\(clean)")
        let report = try #require(try json(clean.output) as? [String: Any])
        #expect(report["files_checked"] as? Int == package.files.count && report["manifests_checked"] as? Int == 2)

        func problems(_ result: (status: Int32, output: String, errors: String)) throws -> [String] {
            #expect(result.status == 1, "\(result)")
            return (try json(result.output) as? [String: Any])?["problems"] as? [String] ?? []
        }
        // One byte of a clip, in the middle of its pictures.
        let clip = out + "/" + mp4s[0]
        var bytes = try readWholeFile(clip)
        bytes[bytes.count / 2] ^= 0x01
        try writeFileAtomically(clip, bytes)
        #expect(try problems(try run(verify)).contains { $0.hasPrefix(mp4s[0] + ":") })
        bytes[bytes.count / 2] ^= 0x01
        try writeFileAtomically(clip, bytes)
        // The report edited.
        let reportText = try readWholeFile(out + "/export-report.txt")
        try writeFileAtomically(out + "/export-report.txt", reportText + Array("one more line\n".utf8))
        #expect(try problems(try run(verify)).contains { $0.hasPrefix("export-report.txt:") })
        try writeFileAtomically(out + "/export-report.txt", reportText)
        // A file added; a file removed.
        try writeFileAtomically(out + "/extra.mp4", [1, 2, 3])
        #expect(try problems(try run(verify)) == ["extra.mp4: not in the signed list (added after the export)"])
        unlink(out + "/extra.mp4")
        let certificate = try readWholeFile(out + "/device.certificate")
        unlink(out + "/device.certificate")
        #expect(try problems(try run(verify)).contains { $0.hasPrefix("device.certificate:") })
        try writeFileAtomically(out + "/device.certificate", certificate)
        #expect(try run(verify).status == 0)
        // The list itself edited: its signature no longer holds.
        let list = try readWholeFile(out + "/" + ExportPackage.fileName)
        let edited = String(decoding: list, as: UTF8.self).replacingOccurrences(of: "\"verification_clean\":true", with: "\"verification_clean\":false")
        #expect(edited != String(decoding: list, as: UTF8.self))
        try writeFileAtomically(out + "/" + ExportPackage.fileName, Array(edited.utf8))
        #expect(try problems(try run(verify)).contains { $0.contains("not signed by the key") }, "the edited list is refused")
        try writeFileAtomically(out + "/" + ExportPackage.fileName, list)
        // A FIFO in a listed file's place: reported, not waited on.
        unlink(out + "/device.certificate")
        #expect(mkfifo(out + "/device.certificate", 0o600) == 0)
        #expect(try problems(try run(verify)).contains { $0.hasPrefix("device.certificate:") })
        unlink(out + "/device.certificate")
        try writeFileAtomically(out + "/device.certificate", certificate)
        // Clips are the owner's and the group's only; a second export into the folder is refused before it writes.
        var info = stat()
        #expect(stat(clip, &info) == 0 && info.st_mode & 0o777 == 0o640)
        let again = try run(export + ["--signing-certificate", directory.path + "/export.certificate", "--out", out, store])
        #expect(again.status == 2 && again.errors.contains("already holds an export"), "\(again)")
        #expect(try run(verify).status == 0)
        // Another authority's key: the certificate is not its.
        try KeyFile.write(try Ed25519PrivateKey().publicKey, to: directory.path + "/other.pub")
        let other = try run(["verify-export", "--json", "--authority", directory.path + "/other.pub", out])
        #expect(try problems(other).contains { $0.contains("is not the authority's") })
    }

    @Test("ONVIF Media Signing through the recorder: a whole segment, an incident joined across segments and a clip cut at a GOP verify as authentic with verify-media; a changed P-frame byte, another CA and another device do not")
    func mediaSigning() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let ca = try TLSAuthority.create(name: "test authority")
        try ca.write(certificatePath: directory.path + "/ca.pem", keyPath: directory.path + "/ca.key")
        var issued: [String: BodycamConfiguration] = [:]
        var serials: [String: String] = [:]
        func issue(_ device: String) throws -> BodycamConfiguration {
            if let configuration = issued[device] { return configuration }
            let key = PEMFiles.newKey()
            let certificate = try ca.issue(.mediaSigning(deviceID: device), publicKey: key.publicKey, days: 30)
            serials[device] = TLSIdentity.serial(of: certificate)
            try PEMFiles.write(key, to: directory.path + "/\(device)-media.key")
            try PEMFiles.write([certificate, ca.certificate], to: directory.path + "/\(device)-media.pem")
            var configuration = BodycamConfiguration()
            configuration.deviceID = device
            configuration.mediaSigningKeyPath = directory.path + "/\(device)-media.key"
            configuration.mediaSigningCertificatePath = directory.path + "/\(device)-media.pem"
            issued[device] = configuration
            return configuration
        }
        let keys = Keys()
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        /// Five one-second segments from the test pattern, signed as bodycamd signs them.
        func record(_ device: String) throws -> String {
            let store = directory.path + "/store-" + device
            let vault = try makeVault(store, keys: keys, deviceID: device)
            let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30)
            let recorder = Recorder(configuration: .init(deviceID: device, officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 1),
                                    source: try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 150), overlay: nil, store: vault,
                                    makeEncoder: { try makeVideoEncoder(settings: VideoEncoderSettings(), format: $0) })
            recorder.packetStage = try StageFactory.makeMediaSigner(try issue(device), software: "bodycam test")
            recorder.startRecording()
            try recorder.run()
            return store
        }
        let store = try record("BC-SIGN-1")
        let verify = ["verify-media", "--ca", directory.path + "/ca.pem"]
        /// verify-media --json on a file that must verify: its report.
        func authenticReport(_ path: String) throws -> [String: Any] {
            let result = try run(verify + ["--json", path])
            #expect(result.status == 0, "\(result)")
            return try #require(try json(result.output) as? [String: Any], "\(result)")
        }
        /// A segment of `folder`, decrypted in memory, as the office's download reads it.
        func exportSource(_ manifest: Manifest, in folder: String) -> ExportSource {
            ExportSource(sequence: manifest.sequence, segmentFile: manifest.segmentFile,
                         startUTCNanoseconds: ClockParse.nanoseconds(iso8601: manifest.startUTC)!) {
                try manifest.decryptSegment(in: folder, identity: keys.office).plaintext
            }
        }
        // Every segment, exported whole, with the two pictures of the next segment that sign its last GOP.
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--out", directory.path + "/segments", store]).status == 0)
        let segments = try names(directory.path + "/segments", suffix: ".mp4")
        #expect(segments.count == 5)
        let wholeReport = try authenticReport(directory.path + "/segments/" + segments[2])
        #expect(wholeReport["authenticity"] as? String == "authentic" && wholeReport["certificate_trusted"] as? Bool == true)
        #expect(wholeReport["verified_gops"] as? Int == 1 && wholeReport["pictures"] as? Int == 32, "\(wholeReport)")
        // An incident across three segments, cut inside the first and the last: every GOP verified, the last by the
        // signature in the two pictures of the next segment the export adds.
        let manifests = try EvidenceVault.readManifests(store)
        let from = Clock.iso8601(wallNanoseconds: ClockParse.nanoseconds(iso8601: manifests[1].startUTC)! + 200_000_000)
        let to = Clock.iso8601(wallNanoseconds: ClockParse.nanoseconds(iso8601: manifests[3].startUTC)! + 200_000_000)
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--incident", "\(from)..\(to)", "--out", directory.path + "/incident", store]).status == 0)
        let incident = directory.path + "/incident/" + (try names(directory.path + "/incident", suffix: ".mp4")[0])
        let joinedReport = try authenticReport(incident)
        #expect(joinedReport["verified_gops"] as? Int == 3 && joinedReport["unsigned_trailing_pictures"] as? Int == 2, "\(joinedReport)")
        let joinedGOPs = joinedReport["gops"] as? [[String: Any]] ?? []
        #expect(joinedGOPs.first?["result"] as? String == "outside", "the first SEI signs the GOP before the clip: \(joinedGOPs)")

        // One byte of a P-frame's slice in the middle of the incident.
        let reader = try MediaReader(path: incident)
        var position: Int64 = -1
        var index = 0
        while let packet = try reader.nextPacket() {
            if index == 45 { position = packet.position + Int64(packet.size) - 8 }
            index += 1
        }
        var bytes = try readWholeFile(incident)
        bytes[Int(position)] ^= 0x20
        try writeFileAtomically(directory.path + "/tampered.mp4", bytes)
        let tampered = try run(verify + [directory.path + "/tampered.mp4", "--device", "BC-SIGN-1"])
        #expect(tampered.status == 1 && tampered.output.contains("NOT AUTHENTIC") && tampered.output.contains("picture 45 is not what was signed"), "\(tampered)")
        // Another CA.
        let other = try TLSAuthority.create(name: "another authority")
        try other.write(certificatePath: directory.path + "/other-ca.pem", keyPath: directory.path + "/other-ca.key")
        let foreign = try run(["verify-media", "--ca", directory.path + "/other-ca.pem", incident])
        #expect(foreign.status == 1 && foreign.output.contains("is not trusted"), "\(foreign)")
        // The authority revokes the camera's media-signing certificate: nothing it signed is trusted.
        try KeyFile.write(keys.authority.publicKey, to: directory.path + "/authority.pub")
        let revocations = try RevocationList.issue([.init(serial: try #require(serials["BC-SIGN-1"]), revokedUTC: "2026-01-02T03:04:05.000000Z",
                                                          reason: "key compromise")], key: keys.authority)
        try writeFileAtomically(directory.path + "/revocations.list", revocations.document.bytes)
        let revoked = try run(verify + ["--revocations", directory.path + "/revocations.list", "--authority", directory.path + "/authority.pub", incident])
        #expect(revoked.status == 1 && revoked.output.contains("is revoked: revoked at 2026-01-02T03:04:05.000000Z: key compromise"), "\(revoked)")
        #expect(try run(verify + ["--revocations", directory.path + "/revocations.list", incident]).status == 2, "the list needs the key that signs it")
        let otherList = try RevocationList.issue([], key: keys.authority)
        try writeFileAtomically(directory.path + "/empty.list", otherList.document.bytes)
        #expect(try run(verify + ["--revocations", directory.path + "/empty.list", "--authority", directory.path + "/authority.pub", incident]).status == 0)
        // Another device of the same CA, where the file names BC-SIGN-1 (its device_id tag).
        let otherStore = try record("BC-SIGN-2")
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--out", directory.path + "/other", otherStore]).status == 0)
        let otherFile = directory.path + "/other/" + (try names(directory.path + "/other", suffix: ".mp4")[1])
        let wrongDevice = try run(verify + [otherFile, "--device", "BC-SIGN-1"])
        #expect(wrongDevice.status == 1 && wrongDevice.output.contains("signed by BC-SIGN-2, not by BC-SIGN-1"), "\(wrongDevice)")
        #expect(try run(verify + [otherFile]).status == 0, "by the device it names")
        // A recording that ends just after an IDR (a daemon stopped there): the GOP that IDR closed has its SEI in
        // no access unit of the stream; it is the dangling end, counted after the last signature, not judged.
        let endsAtIDR = directory.path + "/store-ends-at-idr"
        let shortRecorder = Recorder(configuration: .init(deviceID: "BC-SIGN-1", officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 60),
                                     source: try TestPatternSource(format: FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30), pacing: .asFastAsPossible, frameLimit: 91), overlay: nil,
                                     store: try makeVault(endsAtIDR, keys: keys, deviceID: "BC-SIGN-1"),
                                     makeEncoder: { try makeVideoEncoder(settings: VideoEncoderSettings(), format: $0) })
        shortRecorder.packetStage = try StageFactory.makeMediaSigner(try issue("BC-SIGN-1"), software: "bodycam test")
        shortRecorder.startRecording()
        try shortRecorder.run()
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--out", directory.path + "/ends-at-idr", endsAtIDR]).status == 0)
        let endsFile = directory.path + "/ends-at-idr/" + (try names(directory.path + "/ends-at-idr", suffix: ".mp4")[0])
        let endsReport = try authenticReport(endsFile)
        #expect(endsReport["pictures"] as? Int == 91 && endsReport["verified_gops"] as? Int == 2 && endsReport["unsigned_trailing_pictures"] as? Int == 31,
                "GOPs 0 and 30 verified, 60…89 and the IDR at 90 dangling: \(endsReport)")
        // A file that does not name its device needs --device or --any-device.
        #expect(try run(verify + [directory.path + "/segments/" + segments[0], "--any-device"]).status == 0)

        // A second recording into the same store: the first one's last segment gets no tail from it
        // (the second recording's first SEI signs a GOP that was never recorded).
        let vault = try makeVault(store, keys: keys, deviceID: "BC-SIGN-1")
        let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30)
        let again = Recorder(configuration: .init(deviceID: "BC-SIGN-1", officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 1),
                             source: try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 60), overlay: nil, store: vault,
                             makeEncoder: { try makeVideoEncoder(settings: VideoEncoderSettings(), format: $0) })
        again.packetStage = try StageFactory.makeMediaSigner(try issue("BC-SIGN-1"), software: "bodycam test")
        again.startRecording()
        try again.run()
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--out", directory.path + "/two", store]).status == 0)
        let two = try names(directory.path + "/two", suffix: ".mp4")
        #expect(two.count == 7)
        #expect(try MediaReader(path: directory.path + "/two/" + two[4]).decodeAll() == 30, "no pictures of the next recording")
        #expect(try MediaReader(path: directory.path + "/two/" + two[3]).decodeAll() == 32, "a tail within a recording")
        // The office's download of one segment (made in memory) takes the same tail from the next segment; the
        // other recording's first segment gives none.
        let recorded = try EvidenceVault.readManifests(store)
        #expect(recorded.count == 7)
        let (download, downloaded) = try MP4Export.standardMP4(exportSource(recorded[2], in: store), tail: exportSource(recorded[3], in: store))
        #expect(downloaded.pieces.map(\.frames) == [30, 2], "\(downloaded.pieces)")
        try writeFileAtomically(directory.path + "/download.mp4", download)
        let downloadReport = try authenticReport(directory.path + "/download.mp4")
        #expect(downloadReport["verified_gops"] as? Int == 1 && downloadReport["unsigned_trailing_pictures"] as? Int == 2, "\(downloadReport)")
        #expect(try MP4Export.standardMP4(exportSource(recorded[4], in: store), tail: exportSource(recorded[5], in: store)).file.pieces.count == 1)

        // A recording stopped in the middle of a GOP (picture 45 of one-second segments) keeps the keyframe the
        // stop asks for and the picture after it, which carries the signature of the GOP the stop cut: every
        // picture up to the stop is signed inside the recording. Started again at 80 with the pre-event buffer,
        // whose first GOP (75) brings the signature of the GOP that ran on from 45 after the stop: no tail of
        // the first recording takes it.
        let stopped = directory.path + "/store-stopped"
        let stopRecorder = Locked<Recorder?>(nil)
        let hooked = HookedSource(try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: 120)) { index in
            if index == 0 { stopRecorder.current?.startRecording() }
            if index == 45 { stopRecorder.current?.stopRecording() }
            if index == 80 { stopRecorder.current?.startRecording() }
        }
        let stopping = Recorder(configuration: .init(deviceID: "BC-SIGN-1", officerID: "OFC-1", preEventSeconds: 2, segmentSeconds: 1),
                                source: hooked, overlay: nil, store: try makeVault(stopped, keys: keys, deviceID: "BC-SIGN-1"),
                                makeEncoder: { try makeVideoEncoder(settings: VideoEncoderSettings(), format: $0) })
        stopping.packetStage = try StageFactory.makeMediaSigner(try issue("BC-SIGN-1"), software: "bodycam test")
        stopRecorder.withLock { $0 = stopping }
        try stopping.run()
        #expect(try run(["export", "--identity", directory.path + "/office.key", "--out", directory.path + "/stopped", stopped]).status == 0)
        let stoppedFiles = try names(directory.path + "/stopped", suffix: ".mp4")
        #expect(stoppedFiles.count == 4)
        let lastReport = try authenticReport(directory.path + "/stopped/" + stoppedFiles[1])
        #expect(lastReport["pictures"] as? Int == 17 && lastReport["verified_gops"] as? Int == 1
                && lastReport["unsigned_trailing_pictures"] as? Int == 2, "pictures 30…44 signed, 45 and 46 close it: \(lastReport)")
        let stoppedManifests = try EvidenceVault.readManifests(stopped)
        #expect(try MP4Export.standardMP4(exportSource(stoppedManifests[1], in: stopped),
                                          tail: exportSource(stoppedManifests[2], in: stopped)).file.frames == 17,
                "the next recording's signature of the GOP that ran on past the stop is not this one's")
    }

    @Test("export of a store with offloaded segments: one whose file is gone is reported offloaded; one whose file is there (the office's copy) is exported")
    func exportOffloaded() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        let vault = try makeVault(store, keys: keys)
        _ = try recordEvidence(into: vault, frames: 60)
        let manifests = try EvidenceVault.readManifests(store)
        #expect(manifests.count == 2)
        let kept = try readWholeFile(store + "/" + manifests[1].segmentFile)
        let ack = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: manifests, key: keys.authority)
        #expect(try vault.applyOffload(ack.document.bytes, authority: keys.authority.publicKey).deleted == [1, 2])
        // As the office's copy holds it: the journal's tombstones, and the file.
        try writeFileAtomically(store + "/" + manifests[1].segmentFile, kept)
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        try KeyFile.write(keys.authority.publicKey, to: directory.path + "/authority.pub")
        let result = try run(["export", "--json", "--identity", directory.path + "/office.key", "--authority", directory.path + "/authority.pub",
                              "--out", directory.path + "/export", store])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        let segments = try #require((try json(result.output) as? [String: Any])?["segments"] as? [[String: Any]])
        #expect(segments.map { $0["offloaded"] as? Bool } == [true, nil] || segments.map { $0["offloaded"] as? Bool } == [true, false])
        #expect(segments.map { $0["exported"] as? Bool } == [false, true])
        #expect(segments.last?["frames_decoded"] as? Int == 30)
    }

    @Test("verify --access checks an office's access journal: clean as written; an altered record, or another key, is found")
    func accessJournal() throws {
        let office = try OfficeFixture()
        _ = try office.client("technician").send("GET", "/v1/devices")
        _ = try office.client("BC-EV-2").send("GET", "/v1/devices")
        _ = try office.stopAndReadJournal()
        let store = office.path + "/office"
        let clean = try run(["verify", "--access", "--json", store])
        #expect(clean.status == 0, "\(clean.output)\(clean.errors)")
        let report = try #require(try json(clean.output) as? [String: Any])
        #expect(report["records"] as? Int == 4 && report["clean"] as? Bool == true)
        #expect((report["kinds"] as? [String: Int])?["request"] == 2)
        // Another key: every signature fails.
        let other = office.path + "/other.pub"
        try KeyFile.write(try Ed25519PrivateKey().publicKey, to: other)
        let wrongKey = try run(["verify", "--access", "--access-key", other, store])
        #expect(wrongKey.status == 1 && wrongKey.output.contains("journal_bad_signature"), "\(wrongKey.output)")
        // One byte of a record changed (a refusal made to look like an answer).
        var bytes = try readWholeFile(store + "/access.log")
        let text = String(decoding: bytes, as: UTF8.self)
        let at = try #require(text.range(of: "\"status\":403"))
        bytes[text.utf8.distance(from: text.utf8.startIndex, to: at.lowerBound) + 10] = UInt8(ascii: "2")
        try writeFileAtomically(store + "/access.log", bytes)
        let altered = try run(["verify", "--access", store])
        #expect(altered.status == 1 && altered.output.contains("NOT VERIFIED"), "\(altered.output)")
        #expect(try run(["verify", "--access", "--authority", other, store]).status == 2)
    }

    @Test("export and office init never write through a link planted in their folder, and replace nothing unless asked")
    func plantedLinks() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        try recordEvidence(into: try makeVault(store, keys: keys), frames: 30)
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        let loot = directory.path + "/loot"
        _ = FileManager.default.createFile(atPath: loot, contents: Data(), attributes: [.posixPermissions: 0o666])
        let out = directory.path + "/export"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let segment = try names(store, suffix: ".bcseg")[0]
        let planted = out + "/" + segment.dropLast(".bcseg".count) + ".mp4"
        #expect(symlink(loot, planted) == 0)
        let export = ["export", "--identity", directory.path + "/office.key", "--out", out, store]
        let refused = try run(export)
        #expect(refused.status == 1, "\(refused)")
        #expect(try readWholeFile(loot).isEmpty, "nothing decrypted reached the planted link's target")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: planted)) == loot, "the link was not replaced without --overwrite")
        let replaced = try run(export + ["--overwrite"])
        #expect(replaced.status == 0, "\(replaced)")
        #expect(try readWholeFile(loot).isEmpty)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: planted)) == nil, "the link itself was replaced by the file")
        #expect(try readWholeFile(planted).count > 1000)

        // An office identity over a planted link: refused, the link's target untouched.
        let keysDir = directory.path + "/keys"
        try FileManager.default.createDirectory(atPath: keysDir, withIntermediateDirectories: true)
        #expect(symlink(loot, keysDir + "/office.key") == 0)
        let office = try run(["office", "init", "--dir", keysDir])
        #expect(office.status == 2 && office.errors.contains("office.key"), "\(office)")
        #expect(try readWholeFile(loot).isEmpty, "the secret key did not reach the planted link's target")
        let fresh = try run(["office", "init", "--dir", keysDir, "--name", "escrow"])
        #expect(fresh.status == 0)
        var info = stat()
        #expect(stat(keysDir + "/escrow.key", &info) == 0 && info.st_mode & 0o777 == 0o600, "secret keys are 0600")
        #expect(try names(keysDir, suffix: "").allSatisfy { !$0.contains(".tmp") }, "no temporary file is left behind")
    }

    @Test("export --force over a store whose segments are a link to /dev/zero and a FIFO: each reported, none hangs or crashes the tool")
    func exportHostileStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = directory.path + "/store", keys = Keys()
        try recordEvidence(into: try makeVault(store, keys: keys), frames: 90)
        try KeyFile.write(keys.office, to: directory.path + "/office.key")
        let segments = try names(store, suffix: ".bcseg")
        unlink(store + "/" + segments[0])
        #expect(symlink("/dev/zero", store + "/" + segments[0]) == 0)
        unlink(store + "/" + segments[1])
        #expect(mkfifo(store + "/" + segments[1], 0o600) == 0)
        let result = try run(["export", "--json", "--force", "--identity", directory.path + "/office.key", "--out", directory.path + "/export", store])
        #expect(result.status == 1, "\(result)")
        let entries = try #require((try json(result.output) as? [String: Any])?["segments"] as? [[String: Any]])
        #expect(entries.count == 3)
        #expect(entries.filter { $0["exported"] as? Bool == true }.count == 1, "the untouched segment is exported")
        #expect((entries[0]["reason"] as? String)?.contains("Too many levels of symbolic links") == true, "the link is not followed")
        #expect((entries[1]["reason"] as? String)?.contains("not a regular file") == true, "the FIFO is not read")
    }

    @Test("authority init makes the CA beside the Ed25519 key; issue writes each kind's key and chain; revoke grows one signed list; mistakes exit 2")
    func authorityX509() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let authority = directory.path + "/authority", out = directory.path + "/issued"
        #expect(mkdir(authority, 0o700) == 0 && mkdir(out, 0o700) == 0)
        #expect(try run(["authority", "init", "--dir", authority]).status == 0)
        #expect(FileManager.default.fileExists(atPath: authority + "/ca.pem") && FileManager.default.fileExists(atPath: authority + "/ca.key"))
        #expect(try run(["authority", "init", "--dir", authority]).status == 2, "an existing authority is never written over")
        var serials: [String] = []
        for arguments in [["device", "BC-0001"], ["office", "localhost", "--host", "127.0.0.1"], ["officer", "jana", "--role", "evidence", "--role", "live"]] {
            let issued = try run(["authority", "issue", "--dir", authority, "--out", out] + arguments)
            #expect(issued.status == 0, "\(arguments): \(issued.errors)")
            let serial = try #require(issued.output.components(separatedBy: "(serial ").dropFirst().first?.prefix { $0 != ")" })
            serials.append(String(serial))
            let pem = try String(contentsOfFile: out + "/" + arguments[1] + ".pem", encoding: .utf8)
            #expect(pem.components(separatedBy: "BEGIN CERTIFICATE").count == 3, "the certificate, then the CA's")
        }
        #expect(try run(["authority", "issue", "--dir", authority, "--out", out, "device", "BC-0001"]).status == 2, "a key is never written over")
        #expect(try run(["authority", "issue", "--dir", authority, "--out", out, "officer", "x", "--role", "boss"]).status == 2)
        #expect(try run(["authority", "issue", "--dir", authority, "--out", out, "printer", "x"]).status == 2)
        #expect(try run(["authority", "issue", "--dir", directory.path, "--out", out, "device", "BC-0002"]).status == 2, "no CA there")

        #expect(try run(["authority", "revoke", "--dir", authority, "--serial", serials[0], "--reason", "lost"]).status == 0)
        #expect(try run(["authority", "revoke", "--dir", authority, "--serial", serials[2]]).status == 0)
        #expect(try run(["authority", "revoke", "--dir", authority, "--serial", "XYZ"]).status == 2)
        let list = try RevocationList.read(try readWholeFile(authority + "/revocations.list"), authority: try KeyFile.readVerifyingKey(authority + "/authority.pub"),
                                           what: "list")
        #expect(Set(list.entries.map(\.serial)) == [serials[0], serials[2]] && list.revokes(serial: serials[0]) && !list.revokes(serial: serials[1]))
        // certify-key: an office key for offload acknowledgements, certified; never written over.
        let certified = try run(["authority", "certify-key", "office-1", "--dir", authority, "--out", out])
        #expect(certified.status == 0, "\(certified.errors)")
        let keyCertificate = try KeyCertificate.read(out + "/office-1-offload.certificate")
        let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
        #expect(keyCertificate.refusal(authority: try KeyFile.readVerifyingKey(authority + "/authority.pub"), purpose: KeyCertificate.offloadAcknowledgement, at: now) == nil)
        #expect(keyCertificate.key == (try KeyFile.readSigningKey(out + "/office-1-offload.key")).publicKey && keyCertificate.holder == "office-1")
        #expect(try run(["authority", "certify-key", "office-1", "--dir", authority, "--out", out]).status == 2, "the key is there already")
    }

    @Test("help lists every subcommand and documents the exit codes")
    func help() throws {
        let help = try run(["--help"])
        #expect(help.status == 0)
        for subcommand in ["status", "stop", "duty", "mark", "selftest", "camera", "gpio", "segments", "events", "storage", "time",
                           "keys", "authority", "office", "supervisor", "verify", "export", "offload"] {
            #expect(help.output.contains("  \(subcommand) "), "help lacks \(subcommand)")
        }
        #expect(help.output.contains("Exit codes: 0 success; 1 problems found"))
        let verify = try run(["verify", "--help"])
        #expect(verify.output.contains("Exit 0: clean; 1: problems found") && verify.output.contains("--json"))
    }

    @Test("usage errors and unreachable things exit 2 with a message; a refusal exits 1")
    func exitCodes() throws {
        let missing = try run(["verify"])
        #expect(missing.status == 2 && missing.errors.contains("Missing expected argument"))
        #expect(try run(["no-such-command"]).status == 2)
        let store = try run(["verify", "/nonexistent/store"])
        #expect(store.status == 2 && store.errors.contains("/nonexistent/store"))
        let daemon = try run(["status", "--socket", "/nonexistent/control.sock"])
        #expect(daemon.status == 2 && daemon.errors.contains("is bodycamd running?"))
        let tampered = try Pristine.shared.copy()
        defer { try? FileManager.default.removeItem(atPath: tampered) }
        try FileManager.default.removeItem(atPath: tampered + "/" + (try names(tampered, suffix: ".bcseg"))[1])
        let problems = try run(["verify", tampered])
        #expect(problems.status == 1 && problems.output.contains("PROBLEM segment_missing (error)"))
        // The same as JSON: one object per finding with its severity and files, and a summary.
        let missingFile = try names(Pristine.shared.store, suffix: ".bcseg")[1]
        let report = try #require(try json(try run(["verify", "--json", tampered]).output) as? [String: Any])
        let findings = try #require(report["problems"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings.first?["code"] as? String == "segment_missing" && findings.first?["severity"] as? String == "error")
        #expect(findings.first?["segment_files"] as? [String] == [missingFile] && findings.first?["sequences"] as? [Int] == [2])
        let summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["errors"] as? Int == 1 && summary["warnings"] as? Int == 0 && summary["verified"] as? Int == 4 && summary["clean"] as? Bool == false)
    }

    @Test("--json gives machine-readable output for verify, segments, events, storage and time")
    func jsonOutput() throws {
        let store = Pristine.shared.store
        let verify = try #require(try json(try run(["verify", "--json", store]).output) as? [String: Any])
        #expect(verify["clean"] as? Bool == true && verify["segments"] as? Int == 5)
        let segments = try #require(try json(try run(["segments", "--json", store]).output) as? [[String: Any]])
        #expect(segments.count == 5 && segments.first?["sequence"] as? Int == 1)
        let events = try #require(try json(try run(["events", "--json", "--kind", "segment_sealed", store]).output) as? [String: Any])
        #expect((events["records"] as? [[String: Any]])?.count == 5)
        let storage = try #require(try json(try run(["storage", "--json", store]).output) as? [String: Any])
        #expect(storage["segments"] as? Int == 5 && storage["hours_left"] != nil)
        let time = try #require(try json(try run(["time", "--json"]).output) as? [String: Any])
        #expect((time["utc"] as? String)?.hasSuffix("Z") == true)
    }

    @Test("selftest passes a healthy development device, and fails one without keys, one line per check")
    func selftest() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let missingKey = try run(["selftest", "--config", config])
        #expect(missingKey.status == 1 && missingKey.output.contains("FAIL device key: none at"), "\(missingKey.output)")
        #expect(missingKey.output.contains("PASS camera: test-pattern") && missingKey.output.contains("PASS encoder: libx264"))
        try KeyFile.write(try Ed25519PrivateKey(), to: directory.path + "/keys/device.key")
        let healthy = try run(["selftest", "--json", "--config", config])
        let checks = try #require(try json(healthy.output) as? [[String: String]])
        #expect(healthy.status == 0, "\(healthy.output)")
        #expect(Set(checks.compactMap { $0["check"] }).isSuperset(of: ["camera", "encoder", "storage", "device key", "recipients", "GPIO lines", "clock"]))
        #expect(!checks.contains { $0["verdict"] == "FAIL" })
    }

    @Test("gpio test-outputs drives each output in turn; gpio list answers on a machine without chips")
    func gpio() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let outputs = try run(["gpio", "test-outputs", "--config", config])
        #expect(outputs.status == 0)
        #expect(outputs.output.split(separator: "\n").map { String($0.prefix { $0 != ":" }) } == ["REC_LED", "STATUS_LED", "BUZZER", "HAPTIC"])
        #expect(try run(["gpio", "list"]).status == 0)
        let watch = try run(["gpio", "watch", "--config", config, "--seconds", "0"])
        #expect(watch.status == 0 && watch.output.contains("watching REC_BTN, MARK_BTN, PWR_BTN"))
    }

    @Test("camera snapshot writes a JPEG of the configured camera")
    func snapshot() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        _ = try DaemonTests.provision(directory.path)
        let config = try DaemonTests.writeConfig(directory.path, DaemonTests.config(directory.path))
        let result = try run(["camera", "snapshot", "--config", config, "--out", directory.path + "/still.jpg"])
        #expect(result.status == 0, "\(result.errors)")
        let bytes = try readWholeFile(directory.path + "/still.jpg")
        #expect(Array(bytes.prefix(2)) == [0xFF, 0xD8] && bytes.count > 1000)
    }
}

