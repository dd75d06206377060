import H264
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
    /// the recording, as a media-signing certificate of the device the clip names.
    public var signer: String?
    public var certificateTrusted = false
    public var pictures = 0
    public var signedGOPs = 0
    public var verifiedGOPs = 0
    /// Pictures after the last signature (the specification's "dangling end": the SEI of the
    /// last GOP comes with the next, not in the stream): at most a GOP, and the GOP before it when
    /// the stream ends just after the IDR that closed that one, or the verdict is not authentic.
    public var unsignedTrailingPictures = 0
    /// Where the camera's signer started again (a restart of the daemon: the counter back to 1,
    /// no linked hash), and the pictures of the GOP before each, which no signature covers.
    public var signingRestarts: [Int] = []
    public var unsignedPicturesAtRestarts = 0
    public var gops: [GOPVerdict] = []
    public var problems: [String] = []

    enum CodingKeys: String, CodingKey {
        case authenticity, signer, pictures, gops, problems
        case certificateTrusted = "certificate_trusted", signedGOPs = "signed_gops", verifiedGOPs = "verified_gops"
        case unsignedTrailingPictures = "unsigned_trailing_pictures", signingRestarts = "signing_restarts"
        case unsignedPicturesAtRestarts = "unsigned_pictures_at_restarts"
    }
}

/// Validates ONVIF Media Signing in an H.264 stream, from the specification ("Client side
/// validation"): each signing SEI's signature with the public key of the certificate it carries,
/// that certificate against the trusted CA at the recording's time (a media-signing certificate,
/// `OU=media-signing`, of the expected device), then the GOP it signs: the GOP hash over the
/// hashes of the slices since the GOP's IDR, or, when that differs, slice by slice against the
/// hash list; the linked hash against the GOP before; the counter without a gap.
///
/// Which GOP an SEI signs: the one the last IDR before it closed (the reference framework's
/// place, this project's), or, when no IDR has closed one, the GOP received so far (an SEI before
/// the next IDR's slices). A clip may begin at any GOP: its first SEI signs a GOP before the clip
/// ("outside"), and the linked hash of the first GOP inside cannot be checked. Every picture must
/// be covered: pictures before the first IDR, pictures after a GOP was signed and before the next
/// IDR, picture data in NAL types that are not hashed, a GOP whose SEI never comes, and more than
/// a GOP after the last signature are each a problem. A signer that starts again (counter 1, no
/// linked hash: the daemon restarted) is reported with the GOP before it, which nothing signed.
/// Feed access units in stream order, then `finish()`. Not thread-safe.
public final class MediaValidator {
    private typealias Item = (hash: [UInt8], picture: Int)
    private let roots: [X509Certificate]
    private let expectedDevice: String?
    private var report = MediaValidationReport()
    /// Hashes since the last IDR (the GOP being received), with their picture.
    private var pending: [Item] = []
    private var anchor: [UInt8]?
    private var pendingStartsAtIDR = false
    /// A complete GOP (ended by an IDR) whose SEI has not come yet.
    private var closed: [Item]?
    /// Complete GOPs whose SEI never came (the pictures of each).
    private var unsigned: [[Int]] = []
    private var uncovered: Set<Int> = []
    private var previousFirstHash: [UInt8]?
    private var lastCounter: UInt32?
    private var certificatePEM: [UInt8]?
    private var leaf: X509Certificate?
    private var intermediates: [X509Certificate] = []
    private var largestGOP = 0
    private var picture = 0

    /// - Parameters:
    ///   - roots: the trusted CA certificates (the authority's).
    ///   - expectedDevice: the device id the signer's certificate must name (its one common
    ///     name), or nil for any device the CA certified for media signing.
    ///   - revoked: certificates the authority revoked, by serial number (lower-case hex
    ///     without leading zero bytes, `X509Certificate.serialHex`), each with what to say of it
    ///     ("revoked at T: reason"). A revoked signer is not trusted for any GOP, whatever its
    ///     time: a stolen key can sign any time it likes.
    public init(roots: [X509Certificate], expectedDevice: String? = nil, revoked: [String: String] = [:]) {
        self.roots = roots
        self.expectedDevice = expectedDevice
        self.revoked = revoked
    }
    private let revoked: [String: String]

    /// Picture data that could not be split into NAL units (a sample whose lengths do not add
    /// up): no signature can cover it.
    public func addUnreadable() {
        report.pictures += 1
        uncovered.insert(picture)
        picture += 1
    }

    /// One access unit's NAL units (from an MP4 sample or Annex B).
    public func add(accessUnit units: [ArraySlice<UInt8>]) {
        defer { picture += 1 }
        report.pictures += 1
        for unit in units {
            if SigningSEI.isSigningSEI(unit) {
                validate(sei: unit)
                continue
            }
            // Coded slice data partitions and auxiliary or extension slices: picture data this
            // does not hash (nor does the reference framework), so nothing would cover it.
            if [2, 3, 4, 19, 20, 21].contains(H264Units.type(unit)) {
                uncovered.insert(picture)
                continue
            }
            guard H264Units.isSlice(unit), let hash = try? SHA256.hash(Array(unit)) else { continue }
            if H264Units.isIDRStart(unit) {
                if pendingStartsAtIDR && !pending.isEmpty {
                    if let gop = closed { unsigned.append(pictures(gop)) }
                    closed = pending
                }
                anchor = hash
                pending = [(hash, picture)]
                pendingStartsAtIDR = true
            } else if let anchor, pendingStartsAtIDR, let chained = try? SHA256.hash(anchor + hash) {
                pending.append((chained, picture))
            } else {
                // Before the first IDR, or after its GOP was signed and before the next IDR.
                uncovered.insert(picture)
            }
        }
    }

    private func pictures(_ items: [Item]) -> [Int] { Array(Set(items.map(\.picture))).sorted() }

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
        if let problem = certificateProblem(at: SigningSEI.unixSeconds(timestamp: general.startTimestamp)) { failed(problem) }
        // A signer that started again: counter 1 and no GOP before it.
        if lastCounter != nil, general.counter == 1, general.linkedHash.allSatisfy({ $0 == 0 }) {
            report.signingRestarts.append(picture)
            // The GOP the old signer never signed (the recording stopped before its SEI).
            if let gop = unsigned.popLast() { report.unsignedPicturesAtRestarts += gop.count }
            lastCounter = nil
            previousFirstHash = nil
        }
        let first = lastCounter == nil
        defer { lastCounter = general.counter }
        if let lastCounter, general.counter != lastCounter &+ 1 {
            failed("counter \(general.counter) after \(lastCounter): \(general.counter > lastCounter ? "a GOP is missing" : "GOPs out of order or repeated")")
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
            if verdict.result == "ok" {
                report.verifiedGOPs += 1
                largestGOP = max(largestGOP, pictures(target).count)
            }
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
        guard missing > 0 else { return failed("its GOP hash is not that of its own hash list") }
        if verdict.result == "ok" {
            verdict.result = "missing"
            verdict.reason = "\(missing) NAL unit\(missing == 1 ? "" : "s") missing"
            report.verifiedGOPs += 1
            largestGOP = max(largestGOP, pictures(target).count)
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
        intermediates = Array(chain.dropFirst())
        report.signer = chain[0].subject
    }

    /// Why the signer's certificate does not vouch for the stream at `time`; nil when it does:
    /// it chains to a root at that time, it is a media-signing certificate (its first
    /// organisational unit, as the authority issues them: docs/PKI.md), and its one common name
    /// is the expected device.
    private func certificateProblem(at time: Int64) -> String? {
        guard let leaf else { return "no certificate" }
        if let refusal = leaf.chainRefusal(intermediates: intermediates, roots: roots, at: time) {
            return "the signer's certificate (\(leaf.subject)) is not trusted: \(refusal)"
        }
        if let revocation = revoked[leaf.serialHex] {
            return "the signer's certificate (\(leaf.subject), serial \(leaf.serialHex)) is revoked: \(revocation)"
        }
        let units = leaf.organizationalUnits
        guard units.first == "media-signing" else {
            return "the signer's certificate (\(leaf.subject)) is not a media-signing certificate"
        }
        let names = leaf.commonNames
        if let expectedDevice, names != [expectedDevice] {
            return "signed by \(names.joined(separator: ", ")), not by \(expectedDevice)"
        }
        report.certificateTrusted = true
        return nil
    }

    private func fail(_ problem: String) {
        if report.problems.count < 100 { report.problems.append(problem) }
    }

    /// The verdict, once every access unit is in.
    public func finish() -> MediaValidationReport {
        // The specification's "dangling end": the GOP the end cuts, not covered, counted, not
        // judged; and the GOP before it only when the stream ends with the IDR that closed it
        // (its SEI would come in the very next access unit). A GOP whose SEI did not come in
        // the access units after that IDR is a problem (`unsigned`).
        var dangling = pictures(pending)
        let closedDangles = closed != nil && dangling.count <= 1
        if let gop = closed {
            if closedDangles { dangling = pictures(gop) + dangling } else { unsigned.append(pictures(gop)) }
        }
        for gop in unsigned where report.signedGOPs > 0 {
            fail("pictures \(gop.first ?? 0)–\(gop.last ?? 0): a GOP whose signature is not in the stream")
        }
        if !uncovered.isEmpty && report.signedGOPs > 0 {
            let list = uncovered.sorted()
            fail("\(list.count) picture\(list.count == 1 ? "" : "s") no signature can cover (from picture \(list[0])): "
                 + "before the first IDR, after a signed GOP before the next IDR, or unreadable")
        }
        report.unsignedTrailingPictures = dangling.count
        // At most a GOP (and the closing IDR after it).
        let allowed = max(largestGOP, 1) + (closedDangles ? 1 : 0)
        if report.signedGOPs > 0 && report.unsignedTrailingPictures > allowed {
            fail("the last \(report.unsignedTrailingPictures) pictures are covered by no signature: more than a GOP (\(largestGOP))")
        }
        if report.unsignedPicturesAtRestarts > largestGOP * report.signingRestarts.count {
            fail("\(report.unsignedPicturesAtRestarts) pictures before signing restarts are covered by no signature: more than a GOP each")
        }
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
