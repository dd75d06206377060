import H264
import LibCrypto

/// Signs an H.264 stream as ONVIF Media Signing describes ("Signing a GOP", "Linked hashes"):
/// hashes every slice of a GOP (the IDR's first slice is the anchor, `a = SHA-256(IDR)`; every
/// other slice `SHA-256(a || SHA-256(slice))`), and once the next IDR has closed it puts an SEI
/// into the access unit after that IDR, holding the GOP's hash list, its GOP hash
/// (SHA-256 of the list), the linked hash (the previous GOP's first hash), a counter, the GOP's
/// times, the certificate chain, the hash algorithm and vendor information, signed with ECDSA
/// P-256 over SHA-256 of the SEI. Every SEI carries the certificate and algorithm, so a clip cut
/// at any GOP carries what a validator needs (the specification's certificate SEI is not used).
///
/// The SEI for a GOP travels in the next GOP's second access unit: the last GOP of a stream is
/// signed only when the next GOP has begun. Not thread-safe: one pipeline thread calls it.
public final class MediaSigner {
    private let key: ECDSASigningKey
    private let certificatePEM: [UInt8]
    private let vendor: SigningSEI.VendorInfo
    private var anchor: [UInt8]?
    private var hashes: [[UInt8]] = []
    private var linkedHash = [UInt8](repeating: 0, count: 32)
    private var counter: UInt32 = 0
    private var gopStart: Int64 = 0
    /// The SEI of the GOP the last IDR closed, for the next access unit.
    private var dueSEI: [UInt8]?
    /// SEI bytes added so far (for the overhead figure).
    public private(set) var seiBytes = 0
    public private(set) var signatures = 0

    /// - Parameters:
    ///   - certificatePEM: the leaf certificate of `key` (and any intermediates), without the
    ///     root, as PEM.
    ///   - vendor: firmware, serial (the device id) and manufacturer, for tag 5.
    public init(key: ECDSASigningKey, certificatePEM: [UInt8], vendor: SigningSEI.VendorInfo) {
        self.key = key
        self.certificatePEM = certificatePEM
        self.vendor = vendor
    }

    /// Takes one access unit in Annex B form (an encoder's packet) and its capture time (ns since
    /// 1970 UTC); returns it, with the SEI that signs the GOP before the last IDR inserted when
    /// one is due, else unchanged. When signing a GOP fails (OpenSSL), that GOP goes unsigned and
    /// `takeFailure()` says why: the access unit is returned all the same.
    ///
    /// The SEI goes into the access unit after the IDR that closed its GOP, before that access
    /// unit's first slice (ITU-T H.264 7.4.1.2.3 orders SEI before the primary coded picture):
    /// where ONVIF's reference framework puts it, and where its validator looks for it (the
    /// specification allows it anywhere after the GOP it signs).
    public func process(accessUnit: [UInt8], unixNanoseconds: Int64) -> [UInt8] {
        let units = H264Units.annexB(accessUnit)
        var output = accessUnit
        let timestamp = SigningSEI.timestamp(unixNanoseconds: unixNanoseconds)
        if let sei = dueSEI, let firstSlice = units.firstIndex(where: H264Units.isSlice) {
            var at = units[firstSlice].startIndex - 3
            if at > 0, accessUnit[at - 1] == 0 { at -= 1 }
            output.insert(contentsOf: [0, 0, 0, 1] + sei, at: at)
            seiBytes += sei.count + 4
            signatures += 1
            dueSEI = nil
        }
        if units.contains(where: H264Units.isIDRStart) {
            // (A due SEI went into this access unit above, even when it is itself an IDR's.) The
            // new GOP starts whether or not signing the old one worked.
            if anchor != nil && !hashes.isEmpty {
                do { dueSEI = try makeSEI(endTimestamp: timestamp) } catch { failure = error }
            }
            anchor = nil
            hashes = []
            gopStart = timestamp
        }
        for unit in units where H264Units.isSlice(unit) {
            do { try hash(unit) } catch { failure = error }
        }
        return output
    }

    private var failure: Error?

    /// Why signing failed since the last call, if it did.
    public func takeFailure() -> Error? {
        defer { failure = nil }
        return failure
    }

    private func hash(_ unit: ArraySlice<UInt8>) throws {
        if let hash = try MediaSigner.hash(unit, anchor: &anchor) { hashes.append(hash) }
    }

    /// One slice's hash in its GOP ("Linked hashes"): the first slice of an IDR is the anchor,
    /// `a = SHA-256(slice)` (and `anchor` becomes it); every other slice `SHA-256(a ||
    /// SHA-256(slice))`; nil for a slice before any IDR, which belongs to no GOP.
    static func hash(_ unit: ArraySlice<UInt8>, anchor: inout [UInt8]?) throws -> [UInt8]? {
        if H264Units.isIDRStart(unit) {
            let hash = try SHA256.hash(Array(unit))
            anchor = hash
            return hash
        }
        guard let anchor else { return nil }
        return try SHA256.hash(anchor + (try SHA256.hash(Array(unit))))
    }

    /// The GOP hash a signer signs for these access units (a GOP: from an IDR to the picture
    /// before the next), each given as its NAL units: SHA-256 over its slices' hashes in order.
    /// - Throws: `CryptoError` when OpenSSL fails.
    public static func gopHash(of accessUnits: [[ArraySlice<UInt8>]]) throws -> [UInt8] {
        var anchor: [UInt8]? = nil
        var hashes: [[UInt8]] = []
        for unit in accessUnits.joined() where H264Units.isSlice(unit) {
            if let hash = try hash(unit, anchor: &anchor) { hashes.append(hash) }
        }
        return try SHA256.hash(hashes.flatMap { $0 })
    }

    /// The SEI of the GOP just closed. The state moves on only once it is made: a signing that
    /// fails leaves the counter and the links as they were (that GOP goes unsigned, the next is
    /// signed as the one after).
    private func makeSEI(endTimestamp: Int64) throws -> [UInt8] {
        let gopHash = try SHA256.hash(hashes.flatMap { $0 })
        var sei = SigningSEI()
        sei.hashIsSHA256 = true
        sei.vendor = vendor
        sei.certificatePEM = certificatePEM
        sei.general = SigningSEI.General(startTimestamp: gopStart, endTimestamp: endTimestamp, counter: counter &+ 1,
                                         hashCount: UInt16(clamping: hashes.count), gopHash: gopHash, linkedHash: linkedHash)
        // The list only while ONVIF's validator can read it (at most 300 hashes in its build:
        // HASH_LIST_SIZE); the GOP hash signs the GOP either way.
        if hashes.count <= MediaSigner.maximumListedHashes { sei.hashList = hashes }
        let bytes = try sei.encode(maximumSignatureBytes: key.maximumSignatureBytes, sign: { try self.key.sign(digest: $0) },
                                   hash: { try SHA256.hash($0) })
        counter &+= 1
        linkedHash = hashes[0]
        return bytes
    }

    /// The longest hash list an SEI carries.
    public static let maximumListedHashes = 300
}
