import ArgumentParser
import Evidence
import Export
import Foundation
import LibAV
import LibCrypto
import Pipeline
import Platform
import Wire

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Verify, then decrypt a store to standard MP4 files that play in any player, with an export report.",
        discussion: """
            Writes OUT/NAME.mp4 per segment, or with --incident one file OUT/incident-FROM.mp4 joined across the \
            segments of the incident, and OUT/export-report.json and OUT/export-report.txt (the files' SHA-256, the \
            manifests, the verification, the wall-clock times of the first and last picture, marks, gaps). The files \
            are standard MP4 with the index first; the camera's H.264 is copied, never encoded again (docs/EXPORT.md). \
            An incident is cut on keyframes: from the last keyframe at or before FROM to the end of the GOP holding \
            TO; the officer's marks and the gaps in the recording are chapters. The manifests of the exported segments \
            and the device certificate are copied into OUT; with --signing-key and --signing-certificate (an office key \
            the authority certified for export-package) OUT/export-package.signed lists every file with its SHA-256, \
            signed, for bodycamctl verify-export. Segments that fail verification are \
            exported only with --force, and flagged. Files already in OUT are never replaced unless --overwrite is \
            given, and nothing is written through a link planted there. Exit 0: everything verified and exported; \
            1: problems (see the report); 2: usage or I/O error.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The office's secret identity file (X25519).") var identity: String
    @Option(help: "The authority's public key file.") var authority: String?
    @Option(help: "Folder for the MP4 files and the report.") var out: String
    @Option(help: ArgumentHelp("One file for an incident: FROM..TO in UTC (2026-11-30T10:00:00Z..2026-11-30T10:05:00Z), or mark:N, around the store's Nth mark (from 1, in time order, as the report lists them).",
                               valueName: "FROM..TO|mark:N"))
    var incident: String?
    @Option(help: "With --incident mark:N: seconds before the mark.") var before = 30
    @Option(help: "With --incident mark:N: seconds after the mark.") var after = 60
    @Option(name: .customLong("signing-key"), help: "The office's export-package key (Ed25519 secret key file).") var signingKey: String?
    @Option(name: .customLong("signing-certificate"), help: "Its key certificate (authority certify-key --purpose export-package).")
    var signingCertificate: String?
    @Flag(help: "Export segments that failed verification too (flagged in the report).") var force = false
    @Flag(help: "Replace files of an earlier export in the output folder.") var overwrite = false
    @Argument(help: "The store folder.") var store: String

    func validate() throws {
        guard (0...86_400).contains(before), (0...86_400).contains(after) else { throw ValidationError("--before and --after are 0…86400 seconds") }
        guard (signingKey == nil) == (signingCertificate == nil) else { throw ValidationError("--signing-key and --signing-certificate go together") }
        if let incident, !incident.hasPrefix("mark:"), !incident.contains("..") {
            throw ValidationError("--incident is FROM..TO or mark:N, not \(incident)")
        }
    }

    func run() throws {
        LibAVLogging.setQuiet(true)
        let document = try orExit2 { try export() }
        if global.json {
            var standardOutput = document
            standardOutput.exportedUTC = nil
            try printJSON(standardOutput)
        } else {
            print((try? String(contentsOfFile: out + "/export-report.txt", encoding: .utf8)) ?? "")
        }
        if !document.isClean { throw ExitCode(1) }
    }

    /// A segment that verification let through (or --force), ready to decrypt.
    private struct Candidate {
        var entry: Int
        var manifest: Manifest
        var verified: Bool
        var startUTC: Int64
    }

    private func export() throws -> ExportReport {
        let key = try KeyFile.readIdentity(identity)
        let authorityKey = try authority.map(KeyFile.readVerifyingKey)
        let signer = try packageSigner(authority: authorityKey)
        let report = try StoreVerifier.verify(store: store, authority: authorityKey)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // An earlier export's report here would make this one fail half written: refuse first.
        if !overwrite {
            for name in ["export-report.json", "export-report.txt", "device.certificate", ExportPackage.fileName] where access(out + "/" + name, F_OK) == 0 {
                throw BodycamCtl.failure("\(out) already holds an export (\(name)): export into an empty folder, or give --overwrite")
            }
        }
        var entries: [ExportEntry] = []
        var candidates: [Candidate] = []
        var startUTC: [Int64: Int64] = [:]
        for name in try directoryEntries(store).filter({ $0.hasSuffix(".manifest") }) {
            var entry = ExportEntry(manifest: name)
            defer { entries.append(entry) }
            guard let manifest = try? Manifest.read(try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false), what: name) else {
                entry.reason = "manifest unreadable"
                continue
            }
            entry.sequence = manifest.sequence
            entry.manifestBody = manifest.document.body
            entry.manifestSHA256 = Hex.encode(manifest.sha256)
            let correction = report.timeCorrections.first(where: { $0.sequence == manifest.sequence })
            entry.correctedStartUTC = correction?.correctedStartUTC
            entry.correctedEndUTC = correction?.correctedEndUTC
            let start = ClockParse.nanoseconds(iso8601: correction?.correctedStartUTC ?? manifest.startUTC) ?? 0
            startUTC[manifest.sequence] = start
            // An offloaded segment whose file is here all the same (the office's copy of a
            // store, which holds what the device deleted) is exported like any other.
            if report.offloaded.contains(manifest.sequence) && access(store + "/" + manifest.segmentFile, F_OK) != 0 {
                entry.offloaded = true
                entry.reason = "offloaded earlier under an acknowledgement; the office holds it"
                continue
            }
            let verified = report.verifiedSequences.contains(manifest.sequence)
            entry.verified = verified
            if manifest.recovered && manifest.frames == 0 && verified {
                // The power went as the segment opened: its header survived, no fragment did.
                entry.empty = true
                entry.reason = "recovered with no complete fragment: no picture to export"
                continue
            }
            if !verified && !force {
                entry.reason = "failed verification (use --force to export anyway)"
                continue
            }
            entry.flagged = !verified
            entry.framesDropped = manifest.framesDropped
            entry.framesDroppedEstimated = manifest.framesDropped == nil ? nil : manifest.framesDroppedEstimated
            candidates.append(Candidate(entry: entries.count, manifest: manifest, verified: verified, startUTC: start))
        }
        // One segment once, in recording order (file names sort by sequence only to 999999; a
        // copied manifest names a sequence twice).
        var seen: Set<Int64> = []
        candidates = candidates.sorted { $0.manifest.sequence < $1.manifest.sequence }.filter { seen.insert($0.manifest.sequence).inserted }
        // Marks only from what is exported: a manifest that did not verify adds no chapter.
        let marks = ExportMark.marks(in: candidates.map(\.manifest), startUTC: startUTC)
        // Each segment is decrypted once: one segment's export reads the next segment's first
        // pictures (its signature tail), then that segment's own export reads it whole.
        var lastDecrypted: (sequence: Int64, plaintext: [UInt8], lost: Int)?
        func decrypt(_ candidate: Candidate) throws -> (plaintext: [UInt8], lost: Int) {
            if let last = lastDecrypted, last.sequence == candidate.manifest.sequence { return (last.plaintext, last.lost) }
            let (plaintext, lost) = try candidate.manifest.decryptSegment(in: store, identity: key)
            lastDecrypted = (candidate.manifest.sequence, plaintext, lost)
            return (plaintext, lost)
        }
        func source(_ candidate: Candidate) -> ExportSource {
            ExportSource(sequence: candidate.manifest.sequence, segmentFile: candidate.manifest.segmentFile, startUTCNanoseconds: candidate.startUTC) {
                // A recovered segment keeps every chunk that authenticates: a torn write after
                // them (a header on disk, its payload not) is reported, not a reason to lose them.
                let (plaintext, lost) = try decrypt(candidate)
                if lost > 0 { entries[candidate.entry].tornChunks = lost }
                entries[candidate.entry].plaintextSHA256 = Hex.encode(try SHA256.hash(plaintext))
                return plaintext
            }
        }

        // A segment read only for the signature at its start: its report entry is its own.
        func tailSource(_ candidate: Candidate) -> ExportSource {
            ExportSource(sequence: candidate.manifest.sequence, segmentFile: candidate.manifest.segmentFile, startUTCNanoseconds: candidate.startUTC) {
                try decrypt(candidate).plaintext
            }
        }

        var document = ExportReport(verification: report, segments: [], marks: marks.enumerated().map { ExportReport.MarkLine(number: $0 + 1, $1) },
                                    exportedUTC: Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()))
        if let incident {
            let window = try incidentWindow(incident, marks: marks)
            document.incident = ExportReport.Incident(fromUTC: Clock.iso8601(wallNanoseconds: window.range.lowerBound),
                                                      toUTC: Clock.iso8601(wallNanoseconds: window.range.upperBound), chosenBy: window.chosenBy)
            // Segments that overlap the window (their first picture to the end of their last).
            let inside = candidates.filter { candidate in
                candidate.startUTC <= window.range.upperBound
                    && candidate.startUTC + candidate.manifest.durationMicroseconds * 1000 > window.range.lowerBound
            }
            for candidate in candidates where !inside.contains(where: { $0.entry == candidate.entry }) {
                entries[candidate.entry].outside = true
                entries[candidate.entry].reason = "outside the incident"
            }
            // The segment after the last one inside, when it follows on: it carries the signature
            // of the incident's last GOP (ONVIF Media Signing).
            let following = inside.last.flatMap { last in candidates.first { $0.manifest.sequence == last.manifest.sequence + 1 } }
            let result = try MP4Export.write(inside.map(source), window: window.range, marks: marks, tail: following.map(tailSource), folder: out,
                                             name: "incident-" + Clock.compactUTC(wallNanoseconds: window.range.lowerBound), exclusive: !overwrite)
            document.incident?.files = result.files.map(ExportReport.FileReport.init)
            record(result, candidates: inside, into: &entries)
        } else {
            for candidate in candidates {
                let result: ExportResult
                do {
                    let following = candidates.first { $0.manifest.sequence == candidate.manifest.sequence + 1 }
                    result = try MP4Export.write([source(candidate)], tail: following.map(tailSource), folder: out, name: candidate.manifest.baseName,
                                                 exclusive: !overwrite)
                } catch {
                    // One file that cannot be written (an earlier export's file is there): the
                    // others still are, and the report says why this one is not.
                    entries[candidate.entry].reason = "\(error)"
                    continue
                }
                record(result, candidates: [candidate], into: &entries)
                if let file = result.files.first {
                    entries[candidate.entry].fileSHA256 = file.sha256
                    entries[candidate.entry].fileBytes = file.bytes
                }
            }
        }
        document.segments = entries
        // What the package lists: each file's hash as this export wrote it (a file swapped in the
        // folder afterwards is not signed for).
        var written: [ExportPackage.Entry] = []
        let clips = document.incident?.files.map { ($0.file, $0.sha256, $0.bytes) }
            ?? entries.compactMap { entry in entry.exported ? entry.file.map { ($0, entry.fileSHA256 ?? "", entry.fileBytes ?? 0) } : nil }
        for (path, sha256, bytes) in clips { written.append(ExportPackage.Entry(name: String(path.dropFirst(out.count + 1)), sha256: sha256, bytes: bytes)) }
        func write(_ name: String, _ bytes: [UInt8]) throws {
            try writeFileAtomically(out + "/" + name, bytes, mode: 0o640, exclusive: !overwrite)
            written.append(ExportPackage.Entry(name: name, sha256: Hex.encode(try SHA256.hash(bytes)), bytes: Int64(bytes.count)))
        }
        // The provenance a court checks the clips against: the exported segments' manifests and
        // the device certificate whose key signed them.
        let exported = Set(entries.filter(\.exported).map(\.manifest))
        if !exported.isEmpty {
            try makeRealFolder(out + "/manifests")
            for name in exported.sorted() {
                try write("manifests/" + name, try readWholeFile(store + "/" + name, limit: 1 << 20, followLinks: false))
            }
            if let certificate = try? readWholeFile(store + "/device.certificate", limit: 1 << 16, followLinks: false) {
                try write("device.certificate", certificate)
            }
        }
        try write("export-report.json", try jsonBytes(document))
        try write("export-report.txt", Array((document.text + "\n").utf8))
        if let signer {
            let package = try ExportPackage.issue(files: written, deviceID: report.deviceID ?? "", deviceKeyID: report.deviceKeyID ?? "",
                                                  officeIdentityKeyID: key.publicKey.keyID, verificationClean: report.isClean,
                                                  exportedUTC: document.exportedUTC ?? Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()),
                                                  key: signer.key, certificate: signer.certificate)
            try writeFileAtomically(out + "/" + ExportPackage.fileName, package.document.bytes, mode: 0o640, exclusive: !overwrite)
        }
        return document
    }

    /// `path` as a folder of its own: made (0750) when absent; refused when it is a link or not
    /// a folder (nothing is written through a link planted in OUT).
    private func makeRealFolder(_ path: String) throws {
        if mkdir(path, 0o750) == 0 || errno != EEXIST { return }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw BodycamCtl.failure("\(path) is there and is not a folder (a link?): nothing is written through it")
        }
    }

    /// The export-package key and its certificate, checked before anything is written: the same
    /// key, for export-package, valid now, and the authority's when --authority is given.
    private func packageSigner(authority: Ed25519PublicKey?) throws -> (key: Ed25519PrivateKey, certificate: KeyCertificate)? {
        guard let signingKey, let signingCertificate else { return nil }
        let key = try KeyFile.readSigningKey(signingKey)
        let certificate = try KeyCertificate.read(signingCertificate)
        guard certificate.key == key.publicKey else {
            throw BodycamCtl.failure("\(signingCertificate) certifies key \(certificate.key.keyID), not \(signingKey)'s \(key.publicKey.keyID)")
        }
        let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
        if let authority {
            if let refusal = certificate.refusal(authority: authority, purpose: KeyCertificate.exportPackage, at: now) { throw BodycamCtl.failure(refusal) }
        } else if certificate.purpose != KeyCertificate.exportPackage || !(certificate.notBefore <= now && now <= certificate.notAfter) {
            throw BodycamCtl.failure("\(signingCertificate) is for \(certificate.purpose) from \(certificate.notBefore) to \(certificate.notAfter), not export-package now")
        }
        return (key, certificate)
    }

    /// Marks each candidate's entry with the file its pictures went to (checked by decoding it
    /// whole) or why they did not.
    private func record(_ result: ExportResult, candidates: [Candidate], into entries: inout [ExportEntry]) {
        var inspected: [String: SegmentReport] = [:]
        for file in result.files {
            inspected[file.path] = (try? SegmentInspector.inspect(path: file.path))
        }
        for candidate in candidates {
            let index = candidate.entry
            if let skipped = result.skipped.first(where: { $0.sequence == candidate.manifest.sequence }) {
                entries[index].reason = skipped.reason
                continue
            }
            guard let file = result.files.first(where: { $0.pieces.contains { $0.sequence == candidate.manifest.sequence } }),
                  let piece = file.pieces.first(where: { $0.sequence == candidate.manifest.sequence }) else {
                entries[index].reason = "no picture in the export"
                continue
            }
            entries[index].exported = true
            entries[index].file = file.path
            entries[index].framesExported = piece.frames
            entries[index].firstFrameUTC = Clock.iso8601(wallNanoseconds: piece.firstFrameUTCNanoseconds)
            entries[index].lastFrameUTC = Clock.iso8601(wallNanoseconds: piece.lastFrameUTCNanoseconds)
            entries[index].readError = file.readErrors[candidate.manifest.segmentFile]
            if let report = inspected[file.path] {
                entries[index].framesDecoded = report.decodedFrames
                entries[index].durationSeconds = report.durationSeconds
                entries[index].decodeProblems = report.problems
            } else {
                entries[index].decodeProblems = ["the exported file does not read back"]
            }
        }
    }

    /// The incident's UTC range (ns) and what chose it.
    private func incidentWindow(_ text: String, marks: [ExportMark]) throws -> (range: ClosedRange<Int64>, chosenBy: String?) {
        if text.hasPrefix("mark:") {
            guard let number = Int(text.dropFirst(5)), number >= 1, number <= marks.count else {
                throw BodycamCtl.failure("--incident \(text): the store has \(marks.count) mark\(marks.count == 1 ? "" : "s") (numbered from 1, in time order)")
            }
            let mark = marks[number - 1]
            let from = ClockParse.inRange(mark.utcNanoseconds, plus: -Int64(before) * 1_000_000_000) ?? 0
            let to = ClockParse.inRange(mark.utcNanoseconds, plus: Int64(after) * 1_000_000_000) ?? ClockParse.latestNanoseconds
            return (from...to, "mark \(number): \(mark.label.isEmpty ? "(no label)" : mark.label) (\(mark.source)) at \(Clock.iso8601(wallNanoseconds: mark.utcNanoseconds)), \(before) s before to \(after) s after")
        }
        let parts = text.components(separatedBy: "..")
        guard parts.count == 2, let from = userUTC(parts[0]), let to = userUTC(parts[1]) else {
            throw BodycamCtl.failure("--incident \(text): not FROM..TO in UTC, as in 2026-11-30T10:00:00Z..2026-11-30T10:05:00Z")
        }
        guard from <= to else { throw BodycamCtl.failure("--incident \(text): FROM is after TO") }
        return (from...to, nil)
    }

    /// A UTC time as a person writes it: "2026-11-30T10:00:00Z", with up to six decimals of the
    /// second; nil for anything else.
    private func userUTC(_ text: String) -> Int64? {
        guard text.hasSuffix("Z"), text.count >= 20 else { return nil }
        var body = String(text.dropLast())
        if body.count == 19 { body += "." }
        let fraction = body.count - 20
        guard fraction >= 0, fraction <= 6 else { return nil }
        return ClockParse.nanoseconds(iso8601: body + String(repeating: "0", count: 6 - fraction) + "Z")
    }
}

struct VerifyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-export",
        abstract: "Check an export package with the authority's public key alone: its signed list, every file's SHA-256, nothing added.",
        discussion: """
            Reads DIR/export-package.signed (written by bodycamctl export --signing-key): its certificate must be the \
            authority's, for export-package, valid when the export was made and not revoked; the list must be signed by \
            that key; every file it lists must have its SHA-256 and size, and no other file may be in DIR; the manifests \
            must be signed by the key of the device certificate in DIR, which the authority signed (docs/EXPORT.md). \
            Exit 0: verified; 1: problems; 2: usage or I/O error.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The authority's public key file.") var authority: String
    @Option(help: "The authority's revocation list.") var revocations: String?
    @Argument(help: "The export folder.") var dir: String

    func run() throws {
        let report = try orExit2 { () throws -> PackageReport in
            let key = try KeyFile.readVerifyingKey(authority)
            let list = try revocations.map { try RevocationList.read(try readWholeFile($0, limit: 1 << 24), authority: key, what: $0) }
            return PackageVerifier.verify(folder: dir, authority: key, revocations: list)
        }
        if global.json { try printJSON(report) } else { print(report.text) }
        if !report.isClean { throw ExitCode(1) }
    }
}
