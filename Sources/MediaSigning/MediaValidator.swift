import LibCrypto

/// What validation of a signed stream concludes (the specification's "Client side validation"
/// signals).
public enum MediaAuthenticity: String, Sendable, Encodable {
    /// Every GOP a signature covers verified, in order, nothing missing.
    case authentic
    /// Verified, but the hash lists show NAL units missing.
    case authenticWithMissingUnits = "authentic_with_missing_units"
    /// No ONVIF signing SEI at all.
    case notSigned = "not_signed"
    case notAuthentic = "not_authentic"
}

/// One signing SEI's verdict over the GOP it signs.
public struct GOPVerdict: Sendable, Encodable {
    public var counter: UInt32
    /// The access unit (picture, 0-based, in stream order) that carried the SEI.
    public var carriedAt: Int
    /// First and last picture of the GOP it signs, when that GOP is in the stream.
    public var firstPicture: Int?
    public var lastPicture: Int?
    /// "ok", "missing" (verified through the hash list, NAL units missing), "outside" (the GOP
    /// it signs begins before the clip: nothing to check), or "failed".
    public var result: String
    public var reason: String?
    public var startUTCSeconds: Int64
    public var endUTCSeconds: Int64

    enum CodingKeys: String, CodingKey {
        case counter, result, reason, carriedAt = "carried_at", firstPicture = "first_picture", lastPicture = "last_picture"
        case startUTCSeconds = "start_utc_s", endUTCSeconds = "end_utc_s"
    }
}

/// What `MediaValidator` found.
public struct MediaValidationReport: Sendable, Encodable {
    public var authenticity: MediaAuthenticity = .notSigned
    /// The signer certificate's subject and whether it chains to the trusted CA at the time of
    /// the recording.
    public var signer: String?
    public var certificateTrusted = false
    public var vendor: String?
    public var pictures = 0
    public var signedGOPs = 0
    public var verifiedGOPs = 0
    /// Pictures after the last signature (its SEI comes with the next GOP, not in the stream).
    public var unsignedTrailingPictures = 0
    public var gops: [GOPVerdict] = []
    public var problems: [String] = []

    enum CodingKeys: String, CodingKey {
        case authenticity, signer, vendor, pictures, gops, problems
        case certificateTrusted = "certificate_trusted", signedGOPs = "signed_gops", verifiedGOPs = "verified_gops"
        case unsignedTrailingPictures = "unsigned_trailing_pictures"
    }
}

/// Validates ONVIF Media Signing in an H.264 stream, from the specification ("Client side
/// validation"): each signing SEI's signature with the public key of the certificate it carries,
/// that certificate against the trusted CA at the recording's time, then the GOP it signs:
/// the GOP hash over the hashes of the slices since the GOP's IDR, or, when that differs, slice
/// by slice against the hash list; the linked hash against the GOP before; the counter without
/// a gap. A clip may begin at any GOP: its first SEI signs a GOP before the clip ("outside"), and
/// the linked hash of the first GOP inside cannot be checked. An SEI signs the GOP the last IDR
/// before it closed (the reference framework's place, this project's), or, when no IDR has
/// closed one, the GOP received so far (an SEI before the next IDR's slices).
/// Feed access units in stream order, then `finish()`. Not thread-safe.
public final class MediaValidator {
    private let roots: [X509Certificate]
    private let expectedSubjectPart: String?
    private var report = MediaValidationReport()
    /// Hashes since the last IDR (the GOP being received), with their picture.
    private var pending: [(hash: [UInt8], picture: Int)] = []
    private var anchor: [UInt8]?
    private var pendingStartsAtIDR = false
    private var previousFirstHash: [UInt8]?
    private var lastCounter: UInt32?
    private var certificatePEM: [UInt8]?
    private var leaf: X509Certificate?
    private var picture = 0

    /// - Parameters:
    ///   - roots: the trusted CA certificates (the authority's).
    ///   - expectedSubject: text the signer certificate's subject must contain (the device id the
    ///     file claims), or nil.
    public init(roots: [X509Certificate], expectedSubject: String? = nil) {
        self.roots = roots
        expectedSubjectPart = expectedSubject
    }

    /// One access unit's NAL units (from an MP4 sample or Annex B).
    public func add(accessUnit units: [ArraySlice<UInt8>]) {
        defer { picture += 1 }
        report.pictures += 1
        // In stream order: an SEI before this access unit's slices signs the GOP before them (the
        // specification's preferred place, and this project's); one after an IDR signs the GOP
        // that IDR closed (the reference framework's place).
        for unit in units {
            if SigningSEI.isSigningSEI(unit) {
                validate(sei: unit)
                continue
            }
            guard H264Units.isSlice(unit), let hash = try? SHA256.hash(Array(unit)) else { continue }
            if H264Units.isIDRStart(unit) {
                if pendingStartsAtIDR && !pending.isEmpty {
                    if closed != nil { unsignedGOPs += 1 }
                    closed = pending
                }
                anchor = hash
                pending = [(hash, picture)]
                pendingStartsAtIDR = true
            } else if let anchor, let chained = try? SHA256.hash(anchor + hash) {
                pending.append((chained, picture))
            }
        }
    }

    /// A complete GOP (ended by an IDR) whose SEI has not come yet.
    private var closed: [(hash: [UInt8], picture: Int)]?
    private var unsignedGOPs = 0

    private func validate(sei unit: ArraySlice<UInt8>) {
        let sei: SigningSEI
        do { sei = try SigningSEI.parse(unit) } catch {
            fail("picture \(picture): \(error)")
            return
        }
        guard let general = sei.general, let signature = sei.signature else {
            if sei.isCertificateSEI { checkCertificate(sei) }
            return
        }
        report.signedGOPs += 1
        var verdict = GOPVerdict(counter: general.counter, carriedAt: picture, result: "ok",
                                 startUTCSeconds: SigningSEI.unixSeconds(timestamp: general.startTimestamp),
                                 endUTCSeconds: SigningSEI.unixSeconds(timestamp: general.endTimestamp))
        defer { report.gops.append(verdict) }
        func failed(_ reason: String) {
            verdict.result = "failed"
            verdict.reason = reason
            fail("the GOP signed at picture \(picture) (counter \(general.counter)): \(reason)")
        }
        guard sei.hashIsSHA256 || certificatePEM != nil else { return failed("no hash algorithm given (only SHA-256 is supported)") }
        checkCertificate(sei)
        guard let leaf else { return failed("no certificate to check the signature with") }
        guard let digest = try? SHA256.hash(sei.document), leaf.verify(signature: signature, digest: digest) else {
            return failed("the signature does not verify with the certificate's key: the SEI was altered or signed by another key")
        }
        if let chainProblem = chainProblem(at: SigningSEI.unixSeconds(timestamp: general.startTimestamp)) { failed(chainProblem) }
        let first = lastCounter == nil
        defer { lastCounter = general.counter }
        if let lastCounter, general.counter != lastCounter &+ 1 {
            failed("counter \(general.counter) after \(lastCounter): \(general.counter > lastCounter ? "a GOP is missing" : "GOPs out of order")")
        }
        // The GOP it signs: the one an IDR closed, else the slices since the last IDR.
        let fromClosed = closed != nil
        guard let target = closed ?? (pendingStartsAtIDR && !pending.isEmpty ? pending : nil) else {
            // A clip's first SEI signs a GOP that began before the clip: nothing here to check.
            if first { verdict.result = "outside" } else { failed("the GOP it signs is not in the stream") }
            return
        }
        let computed = target.map(\.hash)
        let gopHash = try? SHA256.hash(computed.flatMap { $0 })
        let whole = gopHash == general.gopHash && Int(general.hashCount) == computed.count
        if first && !fromClosed && !whole && sei.hashList?.first != computed.first {
            // A clip cut at an IDR: its first SEI (in its second access unit) signs the GOP
            // before the clip, not the one the clip begins with (whose SEI comes later).
            verdict.result = "outside"
            return
        }
        verdict.firstPicture = target.first?.picture
        verdict.lastPicture = target.last?.picture
        if fromClosed { closed = nil } else { pending = []; pendingStartsAtIDR = false }
        defer { previousFirstHash = computed.first }
        if let previousFirstHash, general.linkedHash != previousFirstHash {
            failed("its linked hash is not the GOP before's: a GOP was removed, added or reordered")
        }
        if whole {
            if verdict.result == "ok" { report.verifiedGOPs += 1 }
            return
        }
        guard let list = sei.hashList else {
            return failed("the GOP's hash differs and there is no hash list to say where")
        }
        // Slice by slice: every received hash must be in the list, in order; list entries with no
        // slice are missing units.
        var listIndex = 0
        for (hash, at) in target {
            guard listIndex < list.count, let found = list[listIndex...].firstIndex(of: hash) else {
                return failed("picture \(at) is not what was signed (changed, or not from this camera)")
            }
            listIndex = found + 1
        }
        let missing = list.count - computed.count
        if verdict.result == "ok" {
            verdict.result = "missing"
            verdict.reason = "\(missing) NAL unit\(missing == 1 ? "" : "s") missing"
            report.verifiedGOPs += 1
        }
    }

    private func checkCertificate(_ sei: SigningSEI) {
        guard let pem = sei.certificatePEM else { return }
        if let certificatePEM {
            if pem != certificatePEM { fail("picture \(picture): the certificate changed within the stream") }
            return
        }
        certificatePEM = pem
        guard let chain = try? X509Certificate.chain(pem: pem) else {
            fail("picture \(picture): the certificate chain does not parse")
            return
        }
        leaf = chain[0]
        report.signer = chain[0].subject
    }

    private var chainChecked = false
    private func chainProblem(at time: Int64) -> String? {
        guard let leaf, let pem = certificatePEM, let chain = try? X509Certificate.chain(pem: pem) else { return "no certificate" }
        if let refusal = leaf.chainRefusal(intermediates: Array(chain.dropFirst()), roots: roots, at: time) {
            return "the signer's certificate (\(leaf.subject)) is not trusted: \(refusal)"
        }
        if let expected = expectedSubjectPart, !leaf.subject.contains(expected) {
            return "signed by \(leaf.subject), not by \(expected)"
        }
        if !chainChecked {
            chainChecked = true
            report.certificateTrusted = true
        }
        return nil
    }

    private func fail(_ problem: String) {
        if report.problems.count < 100 { report.problems.append(problem) }
    }

    /// The verdict, once every access unit is in.
    public func finish(vendor: String? = nil) -> MediaValidationReport {
        report.unsignedTrailingPictures = Set(((closed ?? []) + pending).map(\.picture)).count
        if unsignedGOPs > 0 && report.signedGOPs > 0 { fail("\(unsignedGOPs) GOP\(unsignedGOPs == 1 ? "" : "s") in the stream without the SEI that signs it") }
        if report.signedGOPs == 0 {
            report.authenticity = .notSigned
            if report.problems.isEmpty { report.problems.append("no ONVIF Media Signing SEI in the stream: not signed (or signed and then encoded again)") }
        } else if !report.problems.isEmpty || report.verifiedGOPs == 0 {
            report.authenticity = .notAuthentic
            if report.problems.isEmpty { report.problems.append("no GOP of the stream is covered by a signature in it") }
        } else if report.gops.contains(where: { $0.result == "missing" }) {
            report.authenticity = .authenticWithMissingUnits
        } else {
            report.authenticity = .authentic
        }
        return report
    }
}
