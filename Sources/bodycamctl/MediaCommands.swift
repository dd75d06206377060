import H264
import ArgumentParser
import Evidence
import Foundation
import LibAV
import LibCrypto
import MediaSigning
import Platform
import LibAVFormat

struct VerifyMedia: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-media",
        abstract: "Validate the ONVIF Media Signing in a clip: the camera's signature on every GOP, checked against the authority's CA.",
        discussion: """
            Reads an MP4 (an export, or a segment as recorded) with libavformat and validates its H.264 stream as \
            ONVIF's Media Signing Specification describes (docs/EXPORT.md, "Signed in the stream"): each signing SEI's \
            signature with the certificate it carries, that certificate against CA.pem at the time of the recording \
            and, unless --any-device, issued to the device the file names (its device_id tag, or --device), then each \
            GOP's hashes, the links between GOPs and the counter. A clip may start at any GOP. Pictures after the last \
            signature (whose SEI comes with the next GOP) are counted, not judged. Exit 0: authentic; 1: not \
            authentic, not signed or NAL units missing; 2: usage or I/O error.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The authority's CA certificate (PEM).") var ca: String
    @Option(help: "The device the clip must be signed by (default: the file's device_id tag).") var device: String?
    @Flag(name: .customLong("any-device"), help: "Accept any device the CA certified.") var anyDevice = false
    @Option(help: "The authority's revocation list: a signer it revokes is not trusted (needs --authority).") var revocations: String?
    @Option(help: "The authority's public key file, which signs the revocation list.") var authority: String?
    @Argument(help: "The MP4 file.") var file: String

    func validate() throws {
        if (revocations == nil) != (authority == nil) {
            throw ValidationError("--revocations and --authority go together: the list, and the key that signs it")
        }
    }

    func run() throws {
        LibAVLogging.setQuiet(true)
        let report = try orExit2 { () throws -> MediaValidationReport in
            let roots = try X509Certificate.chain(pem: try readWholeFile(ca, limit: 1 << 20))
            let reader = try MediaReader(path: file)
            guard reader.codecName == "h264" else { throw BodycamCtl.failure("\(file) holds \(reader.codecName), not H.264") }
            let claimed = anyDevice ? nil : (device ?? reader.metadata["device_id"])
            if !anyDevice && claimed == nil {
                throw BodycamCtl.failure("\(file) does not name its device (no device_id tag): give --device ID or --any-device")
            }
            // One video stream: a second one, which a player might show, would go unchecked.
            guard reader.videoStreams == 1 else { throw BodycamCtl.failure("\(file) holds \(reader.videoStreams) video streams: only a file of one is validated") }
            var revoked: [String: String] = [:]
            if let revocations, let authority {
                let list = try RevocationList.read(try readWholeFile(revocations, limit: 1 << 24), authority: try KeyFile.readVerifyingKey(authority),
                                                   what: revocations)
                for entry in list.entries {
                    let serial = String(entry.serial.lowercased().drop { $0 == "0" })
                    // Whole bytes: a leading zero nibble of the first byte stays.
                    revoked[serial.count % 2 == 1 ? "0" + serial : serial] = "revoked at \(entry.revokedUTC): \(entry.reason)"
                }
            }
            let validator = MediaValidator(roots: roots, expectedDevice: claimed, revoked: revoked)
            // avcC: lengthSizeMinusOne in the low two bits of its fifth byte (ISO/IEC 14496-15).
            let avcC = reader.extradata.count > 4 && reader.extradata[0] == 1
            let lengthSize = avcC ? Int(reader.extradata[4] & 3) + 1 : 4
            while let (_, bytes) = try reader.nextPacketBytes() {
                if let units = H264Units.lengthPrefixed(bytes, lengthSize: lengthSize) {
                    validator.add(accessUnit: units)
                } else if avcC {
                    validator.addUnreadable()  // lengths that do not add up: not what a decoder reads either
                } else {
                    validator.add(accessUnit: H264Units.annexB(bytes))
                }
            }
            return validator.finish()
        }
        if global.json {
            try printJSON(report)
        } else {
            let verdict: String = switch report.authenticity {
            case .authentic: "AUTHENTIC"
            case .authenticWithMissingUnits: "AUTHENTIC WITH MISSING NAL UNITS"
            case .notSigned: "NOT SIGNED"
            case .notAuthentic: "NOT AUTHENTIC"
            }
            print("\(file): \(verdict): \(report.verifiedGOPs) of \(report.signedGOPs) signed GOPs verified, \(report.pictures) pictures, "
                  + "signer \(report.signer ?? "none")\(report.certificateTrusted ? " (trusted by the CA)" : ""), "
                  + "\(report.unsignedTrailingPictures) pictures after the last signature")
            if !report.signingRestarts.isEmpty {
                print("NOTE: the camera's signer started again at picture\(report.signingRestarts.count == 1 ? "" : "s") "
                      + "\(report.signingRestarts.map(String.init).joined(separator: ", ")) (a restart); \(report.unsignedPicturesAtRestarts) pictures before it are covered by no signature")
            }
            for problem in report.problems { print("PROBLEM: \(problem)") }
        }
        if report.authenticity != .authentic { throw ExitCode(1) }
    }
}
