import H264
/// The ONVIF Media Signing SEI (ONVIF Media Signing Specification 26.06, "SEI format" and "TLV
/// tags"): an H.264 SEI NAL unit (type 6) holding one user_data_unregistered message (payload
/// type 5) with ONVIF's UUID, a reserved byte, then TLVs (a 1-byte tag, a 2-byte length, a
/// value whose first byte is the tag's version), the Signature TLV last, and the stop bit.
///
/// Where the specification leaves the coding open or contradicts itself, this follows ONVIF's
/// reference implementation (onvif/media-signing-framework r25.12.3), which validators in the
/// field run: every multi-byte integer is big-endian (the specification's text says the
/// timestamps and the counter are little-endian; the framework and its sample files write them
/// big-endian), the TLV length is big-endian, a "serialized OID" is its DER encoding with tag
/// and length, and the payload size counts the reserved byte.
/// Hand-written: no library knows this format.
public struct SigningSEI: Sendable, Equatable {
    /// uuid_iso_iec_11578 of ONVIF Media Signing: 005bc93f-2d71-5e95-ada4-796f90877a6f.
    public static let uuid: [UInt8] = [0x00, 0x5B, 0xC9, 0x3F, 0x2D, 0x71, 0x5E, 0x95, 0xAD, 0xA4, 0x79, 0x6F, 0x90, 0x87, 0x7A, 0x6F]
    /// The specification revision this writes in the general tag: 26.06 (patch 0: not the
    /// reference framework).
    public static let specificationVersion: [UInt8] = [26, 6, 0]
    /// DER of OBJECT IDENTIFIER 2.16.840.1.101.3.4.2.1 (SHA-256).
    public static let sha256OID: [UInt8] = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]

    enum Tag: UInt8 {
        case general = 1, hashList = 2, signature = 3, cryptoInfo = 4, vendorInfo = 5, certificates = 6, arbitraryData = 7
    }

    /// Tag 1, "General GOP information" (version 2).
    public struct General: Sendable, Equatable {
        public var version: [UInt8] = SigningSEI.specificationVersion
        public var partialGOP = false
        /// 100 ns units since 1601-01-01 UTC (the specification's unit) of the first picture of
        /// the GOP, and of the first picture after it.
        public var startTimestamp: Int64
        public var endTimestamp: Int64
        /// +1 per (partial) GOP; the first SEI of a stream carries 1.
        public var counter: UInt32
        /// Hashes in the GOP's hash list.
        public var hashCount: UInt16
        public var gopHash: [UInt8]
        /// The first hash of the GOP before (32 zero bytes for the first).
        public var linkedHash: [UInt8]

        public init(startTimestamp: Int64, endTimestamp: Int64, counter: UInt32, hashCount: UInt16, gopHash: [UInt8], linkedHash: [UInt8]) {
            self.startTimestamp = startTimestamp
            self.endTimestamp = endTimestamp
            self.counter = counter
            self.hashCount = hashCount
            self.gopHash = gopHash
            self.linkedHash = linkedHash
        }
    }

    /// Tag 5, "ONVIF vendor information".
    public struct VendorInfo: Sendable, Equatable {
        public var firmware: String
        public var serial: String
        public var manufacturer: String

        public init(firmware: String, serial: String, manufacturer: String) {
            self.firmware = firmware
            self.serial = serial
            self.manufacturer = manufacturer
        }
    }

    public var general: General?
    public var hashList: [[UInt8]]?
    public var vendor: VendorInfo?
    /// Tag 6: the certificate chain as PEM, the leaf first, without the root.
    public var certificatePEM: [UInt8]?
    /// Tag 4 carries SHA-256's OID (the only hash this writes or accepts).
    public var hashIsSHA256 = false
    /// The reserved byte's bit 7: a certificate SEI (no GOP information).
    public var isCertificateSEI = false
    /// The DER signature (tag 3), and the bytes it signs: the NAL unit without emulation
    /// prevention, from its header byte up to the signature tag.
    public var signature: [UInt8]?
    public var document: [UInt8] = []

    /// An empty SEI, for the signer (or a test) to fill.
    public init() {}

    /// 1601-01-01 to 1970-01-01 in 100 ns units (FILETIME's epoch).
    public static let unixEpochIn1601: Int64 = 116_444_736_000_000_000

    public static func timestamp(unixNanoseconds: Int64) -> Int64 { unixNanoseconds / 100 + unixEpochIn1601 }
    /// Seconds since 1970 of a timestamp (any value, no overflow: one out of range saturates).
    public static func unixSeconds(timestamp: Int64) -> Int64 {
        let (difference, overflow) = timestamp.subtractingReportingOverflow(unixEpochIn1601)
        return overflow ? (timestamp < 0 ? Int64.min / 10_000_000 : Int64.max / 10_000_000) : difference / 10_000_000
    }

    // MARK: writing

    /// The SEI NAL unit, signed with `sign` (given SHA-256 of the document, it returns a DER
    /// signature of at most `maximumSignatureBytes`), with emulation prevention applied after
    /// signing (reserved byte bit 6 clear: the document is hashed without it). No start code.
    public func encode(maximumSignatureBytes: Int, sign: ([UInt8]) throws -> [UInt8], hash: ([UInt8]) throws -> [UInt8]) throws -> [UInt8] {
        var tlvs: [UInt8] = []
        func append(_ tag: Tag, _ value: [UInt8]) {
            precondition(value.count <= 0xFFFF)
            tlvs += [tag.rawValue, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
        }
        if hashIsSHA256 { append(.cryptoInfo, [1, UInt8(SigningSEI.sha256OID.count)] + SigningSEI.sha256OID + [0, 0, 0]) }
        if let vendor {
            func text(_ string: String) -> [UInt8] { let bytes = Array(string.utf8.prefix(255)); return [UInt8(bytes.count)] + bytes }
            append(.vendorInfo, [1] + text(vendor.firmware) + text(vendor.serial) + text(vendor.manufacturer))
        }
        if let certificatePEM { append(.certificates, [1, 0] + certificatePEM) }
        if let general {
            var value: [UInt8] = [2] + general.version + [general.partialGOP ? 1 : 0]
            value += bigEndian(general.startTimestamp, 8) + bigEndian(general.endTimestamp, 8)
            value += bigEndian(Int64(general.counter), 4) + bigEndian(Int64(general.hashCount), 2)
            value += general.gopHash + general.linkedHash
            append(.general, value)
        }
        if let hashList { append(.hashList, [1] + hashList.flatMap { $0 }) }
        let signatureValueBytes = 3 + maximumSignatureBytes
        let payloadSize = SigningSEI.uuid.count + 1 + tlvs.count + 3 + signatureValueBytes
        var document: [UInt8] = [0x06, 0x05]
        var size = payloadSize
        while size >= 255 { document.append(0xFF); size -= 255 }
        document.append(UInt8(size))
        document += SigningSEI.uuid + [isCertificateSEI ? 0x80 : 0x00] + tlvs
        let signature = try sign(try hash(document))
        precondition(signature.count <= maximumSignatureBytes)
        var nal = document + [Tag.signature.rawValue] + bigEndian(Int64(signatureValueBytes), 2)
        nal += [1] + bigEndian(Int64(signature.count), 2) + signature
        // Padding with 01, as the reference framework does (it never makes emulation prevention).
        nal += [UInt8](repeating: 1, count: maximumSignatureBytes - signature.count)
        nal.append(0x80)
        return [nal[0]] + H264Units.addEmulationPrevention(nal[1...])
    }

    private func bigEndian(_ value: Int64, _ count: Int) -> [UInt8] {
        (0..<count).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    // MARK: reading

    /// Whether `unit` is an SEI NAL unit carrying ONVIF Media Signing's user data (without
    /// checking the rest).
    public static func isSigningSEI(_ unit: ArraySlice<UInt8>) -> Bool {
        guard H264Units.type(unit) == 6, unit.count > 2, unit[unit.startIndex + 1] == 5 else { return false }
        // The size's run of FF bytes (no emulation prevention can fall inside it), then the UUID.
        var index = unit.startIndex + 2
        while index < unit.endIndex, unit[index] == 0xFF { index += 1 }
        index += 1
        guard index < unit.endIndex else { return false }
        let raw = H264Units.removeEmulationPrevention(unit[index..<min(index + 24, unit.endIndex)])
        return raw.count >= 16 && Array(raw.prefix(16)) == uuid
    }

    /// Parses an ONVIF signing SEI NAL unit (from its header byte, no start code).
    /// - Throws: `MediaSigningError.malformed` naming what does not parse.
    public static func parse(_ unit: ArraySlice<UInt8>) throws -> SigningSEI {
        func fail(_ reason: String) -> MediaSigningError { .malformed("signing SEI: \(reason)") }
        guard unit.count > 2, H264Units.type(unit) == 6 else { throw fail("not an SEI NAL unit") }
        // The payload size tells how long the message is without emulation prevention: remove
        // it only when the unit is longer than that (the reference framework writes SEIs
        // without it, and a blind removal would corrupt one that holds 00 00 03).
        var headerIndex = unit.startIndex + 1
        guard unit[headerIndex] == 5 else { throw fail("payload type \(unit[headerIndex]), not user data unregistered (5)") }
        headerIndex += 1
        var payloadSize = 0
        while headerIndex < unit.endIndex, unit[headerIndex] == 0xFF, payloadSize < 1 << 20 { payloadSize += 255; headerIndex += 1 }
        guard headerIndex < unit.endIndex else { throw fail("cut short in its size") }
        payloadSize += Int(unit[headerIndex])
        headerIndex += 1
        let headerBytes = headerIndex - unit.startIndex
        let raw: [UInt8]
        if unit.count > headerBytes + payloadSize + 1 {
            raw = [unit[unit.startIndex]] + H264Units.removeEmulationPrevention(unit[(unit.startIndex + 1)...])
        } else {
            raw = Array(unit)
        }
        guard raw.count >= headerBytes + payloadSize else { throw fail("\(raw.count) bytes, its size says \(headerBytes + payloadSize)") }
        let payload = raw[headerBytes..<headerBytes + payloadSize]
        guard payload.count >= 17, Array(payload.prefix(16)) == uuid else { throw fail("not ONVIF's UUID") }
        var sei = SigningSEI()
        let reserved = payload[payload.startIndex + 16]
        sei.isCertificateSEI = reserved & 0x80 != 0
        var index = payload.startIndex + 17
        while index < payload.endIndex {
            guard index + 3 <= payload.endIndex else { throw fail("a TLV header cut short") }
            let tagByte = payload[index]
            let length = Int(payload[index + 1]) << 8 | Int(payload[index + 2])
            let valueStart = index + 3
            guard length >= 1, valueStart + length <= payload.endIndex else { throw fail("tag \(tagByte): length \(length) runs past the message") }
            let value = Array(payload[valueStart..<valueStart + length])
            guard let tag = Tag(rawValue: tagByte) else { throw fail("unknown tag \(tagByte)") }
            switch tag {
            case .general:
                // Version 1 has no end timestamp.
                let version = value[0]
                let fixed = version == 1 ? 19 : 27
                guard version == 1 || version == 2, value.count >= fixed, (value.count - fixed) % 2 == 0 else {
                    throw fail("general information of version \(version) and \(value.count) bytes")
                }
                let h = (value.count - fixed) / 2
                func integer(_ at: Int, _ count: Int) -> Int64 { value[at..<at + count].reduce(0) { $0 << 8 | Int64($1) } }
                var general = General(startTimestamp: integer(5, 8), endTimestamp: 0, counter: 0, hashCount: 0, gopHash: [], linkedHash: [])
                general.version = Array(value[1..<4])
                general.partialGOP = value[4] != 0
                var at = 13
                if version == 2 { general.endTimestamp = integer(13, 8); at = 21 }
                general.counter = UInt32(truncatingIfNeeded: integer(at, 4))
                general.hashCount = UInt16(truncatingIfNeeded: integer(at + 4, 2))
                general.gopHash = Array(value[(at + 6)..<(at + 6 + h)])
                general.linkedHash = Array(value[(at + 6 + h)..<(at + 6 + 2 * h)])
                sei.general = general
            case .hashList:
                let hashes = value.dropFirst()
                guard hashes.count % 32 == 0 else { throw fail("a hash list of \(hashes.count) bytes is not SHA-256 hashes") }
                sei.hashList = stride(from: hashes.startIndex, to: hashes.endIndex, by: 32).map { Array(hashes[$0..<$0 + 32]) }
            case .signature:
                guard value.count >= 3 else { throw fail("a signature TLV of \(value.count) bytes") }
                let signatureLength = Int(value[1]) << 8 | Int(value[2])
                guard 3 + signatureLength <= value.count else { throw fail("a signature of \(signatureLength) bytes in \(value.count)") }
                sei.signature = Array(value[3..<3 + signatureLength])
                sei.document = Array(raw[0..<index])  // `payload` keeps `raw`'s indices
                guard valueStart + length == payload.endIndex else { throw fail("TLVs after the signature") }
            case .cryptoInfo:
                guard value.count >= 2 else { throw fail("cryptographic information of \(value.count) bytes") }
                let oidLength = Int(value[1])
                guard 2 + oidLength <= value.count else { throw fail("a hash OID past its TLV") }
                sei.hashIsSHA256 = Array(value[2..<2 + oidLength]) == sha256OID
            case .vendorInfo:
                var at = 1
                var texts: [String] = []
                for _ in 0..<3 {
                    guard at < value.count, at + 1 + Int(value[at]) <= value.count else { throw fail("vendor information cut short") }
                    texts.append(String(decoding: value[(at + 1)..<(at + 1 + Int(value[at]))], as: UTF8.self))
                    at += 1 + Int(value[at])
                }
                sei.vendor = VendorInfo(firmware: texts[0], serial: texts[1], manufacturer: texts[2])
            case .certificates:
                guard value.count > 2 else { throw fail("an empty certificate chain") }
                sei.certificatePEM = Array(value[2...])
            case .arbitraryData:
                break
            }
            index = valueStart + length
        }
        return sei
    }
}

/// A signing stream that cannot be read.
public enum MediaSigningError: Error, CustomStringConvertible, Equatable, Sendable {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let reason): return reason
        }
    }
}
