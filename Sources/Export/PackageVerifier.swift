import Evidence
import Glibc
import LibCrypto
import Platform
import Wire

/// What `bodycamctl verify-export` found in an export package (docs/EXPORT.md, "The package").
public struct PackageReport: Sendable, Encodable {
    public var folder: String
    /// The signer's certificate: holder and key id.
    public var signer: String?
    public var exportedUTC: String?
    public var deviceID: String?
    public var officeIdentityKeyID: String?
    /// Whether the store verified clean when it was exported (as the list says).
    public var verificationClean: Bool?
    /// Files whose SHA-256 and size match the list.
    public var filesChecked = 0
    /// Manifests signed by the device certificate's key, which the authority signed.
    public var manifestsChecked = 0
    public var problems: [String] = []

    public var isClean: Bool { problems.isEmpty }

    enum CodingKeys: String, CodingKey {
        case folder, signer, problems, clean
        case exportedUTC = "exported_utc", deviceID = "device_id", officeIdentityKeyID = "office_identity_key_id"
        case verificationClean = "verification_clean", filesChecked = "files_checked", manifestsChecked = "manifests_checked"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(folder, forKey: .folder)
        try container.encode(signer, forKey: .signer)
        try container.encode(exportedUTC, forKey: .exportedUTC)
        try container.encode(deviceID, forKey: .deviceID)
        try container.encode(officeIdentityKeyID, forKey: .officeIdentityKeyID)
        try container.encode(verificationClean, forKey: .verificationClean)
        try container.encode(filesChecked, forKey: .filesChecked)
        try container.encode(manifestsChecked, forKey: .manifestsChecked)
        try container.encode(isClean, forKey: .clean)
        try container.encode(problems, forKey: .problems)
    }

    public var text: String {
        var lines = ["package \(folder): exported \(exportedUTC ?? "?") from device \(deviceID ?? "?") with office identity \(officeIdentityKeyID ?? "?"), "
                     + "signed by \(signer ?? "?"); \(filesChecked) files and \(manifestsChecked) manifests checked"]
        if verificationClean == false { lines.append("NOTE: the store had verification problems when it was exported (see export-report.txt)") }
        lines += problems.map { "PROBLEM: " + $0 }
        lines.append(isClean ? "VERIFIED: every file is as the office exported it" : "NOT VERIFIED: \(problems.count) problem\(problems.count == 1 ? "" : "s")")
        return lines.joined(separator: "\n")
    }
}

/// Checks an export package against the authority's public key alone: the signed list
/// (`ExportPackage`) and its certificate, every file's SHA-256 and size, no file added, and the
/// manifests it carries against the device certificate it carries. Never follows a link; reads
/// files whole only to hash them (1 MiB at a time). Runs on the caller's thread.
public enum PackageVerifier {
    public static func verify(folder: String, authority: Ed25519PublicKey, revocations: RevocationList? = nil) -> PackageReport {
        var report = PackageReport(folder: folder)
        let package: ExportPackage
        do {
            package = try ExportPackage.parse(try readWholeFile(folder + "/" + ExportPackage.fileName, limit: 256 << 20, followLinks: false),
                                              what: ExportPackage.fileName)
        } catch {
            report.problems.append("\(ExportPackage.fileName): \(error)")
            return report
        }
        report.signer = "\(package.signerCertificate.holder) (\(package.signerCertificate.key.keyID))"
        report.exportedUTC = package.exportedUTC
        report.deviceID = package.deviceID
        report.officeIdentityKeyID = package.officeIdentityKeyID
        report.verificationClean = package.verificationClean
        if let refusal = package.refusal(authority: authority, revocations: revocations) { report.problems.append(refusal) }

        for entry in package.files {
            do {
                let (sha256, bytes) = try fileSHA256(folder + "/" + entry.name)
                if sha256 != entry.sha256 || bytes != entry.bytes {
                    report.problems.append("\(entry.name): \(bytes) bytes with SHA-256 \(sha256), the list says \(entry.bytes) bytes with \(entry.sha256)")
                } else {
                    report.filesChecked += 1
                }
            } catch {
                report.problems.append("\(entry.name): \(error)")
            }
        }
        let listed = Set(package.files.map(\.name))
        var found: [String] = []
        walk(folder, prefix: "", into: &found, problems: &report.problems)
        for name in found where !listed.contains(name) && name != ExportPackage.fileName {
            report.problems.append("\(name): not in the signed list (added after the export)")
        }
        checkManifests(folder: folder, listed: listed, package: package, authority: authority, into: &report)
        return report
    }

    /// Every plain file under `folder` (relative names); links and other kinds are problems.
    private static func walk(_ folder: String, prefix: String, into found: inout [String], problems: inout [String], depth: Int = 0) {
        guard depth < 8, found.count <= ExportPackage.maximumFiles else {
            problems.append("\(prefix.isEmpty ? "." : prefix): too deep or too many files to check")
            return
        }
        guard let names = try? directoryEntries(folder + (prefix.isEmpty ? "" : "/" + prefix)) else {
            problems.append("\(prefix.isEmpty ? "." : prefix): cannot be listed")
            return
        }
        if names.isEmpty && !prefix.isEmpty { problems.append("\(prefix): an empty folder, not in the signed list") }
        for name in names {
            let relative = prefix.isEmpty ? name : prefix + "/" + name
            // A name that is not UTF-8 is read back changed: it cannot be the one listed.
            guard !name.unicodeScalars.contains("\u{FFFD}") else {
                problems.append("\(relative): a file name that is not UTF-8 (added after the export)")
                continue
            }
            var info = stat()
            guard lstat(folder + "/" + relative, &info) == 0 else {
                problems.append("\(relative): cannot be examined (\(String(cString: strerror(errno))))")
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFREG: found.append(relative)
            case S_IFDIR: walk(folder, prefix: relative, into: &found, problems: &problems, depth: depth + 1)
            default: problems.append("\(relative): not a plain file (a link or a device)")
            }
        }
    }

    /// The manifests the package carries (manifests/*.manifest) are signed by the key of the
    /// device certificate it carries (device.certificate), which the authority signed.
    private static func checkManifests(folder: String, listed: Set<String>, package: ExportPackage, authority: Ed25519PublicKey,
                                       into report: inout PackageReport) {
        let manifests = listed.filter { $0.hasPrefix("manifests/") && $0.hasSuffix(".manifest") }.sorted()
        guard !manifests.isEmpty else { return }
        guard listed.contains("device.certificate"),
              let certificate = try? DeviceCertificate.read(folder + "/device.certificate") else {
            report.problems.append("device.certificate: missing or unreadable: the manifests cannot be checked")
            return
        }
        guard certificate.document.isSigned(by: authority), certificate.authorityKeyID == authority.keyID else {
            report.problems.append("device.certificate: not signed by the authority (\(authority.keyID))")
            return
        }
        guard certificate.deviceID == package.deviceID else {
            report.problems.append("device.certificate: for \(certificate.deviceID), the list says \(package.deviceID)")
            return
        }
        for name in manifests {
            guard let manifest = try? Manifest.read(try readWholeFile(folder + "/" + name, limit: 1 << 20, followLinks: false), what: name) else {
                report.problems.append("\(name): not a manifest")
                continue
            }
            if !manifest.document.isSigned(by: certificate.deviceKey) || manifest.deviceID != certificate.deviceID {
                report.problems.append("\(name): not signed by \(certificate.deviceID)'s key")
            } else {
                report.manifestsChecked += 1
            }
        }
    }
}

/// SHA-256 (lower-case hex) and size of the file at `path`, read 1 MiB at a time, not through a
/// link. Throws `SystemError`.
public func fileSHA256(_ path: String, sync: Bool = false) throws -> (sha256: String, bytes: Int64) {
    // A FIFO planted in its place must not hang the open; only a plain file is read.
    let (fd, _) = try openRegularFile(path, followLinks: false)
    defer { close(fd) }
    if sync && fsync(fd) < 0 { throw SystemError.file(path: path, call: "fsync", errno: errno) }
    let hasher = try SHA256()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var total: Int64 = 0
    while true {
        let count = try buffer.withUnsafeMutableBytes { try readFully(fd, into: $0, path: path) }
        if count == 0 { break }
        hasher.update(Array(buffer[0..<count]))
        total += Int64(count)
        if count < buffer.count { break }
    }
    return (Hex.encode(try hasher.finish()), total)
}
