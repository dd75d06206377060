import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire

/// The encrypted segment file (docs/FORMAT.md, "Sealed segment"):
///
///     "bodycam-segment/1\n"  u32 header length  header (canonical JSON)
///     chunk*: u32 sealed length  u32 frames  u32 duration (90 kHz)  u8 flags  sealed bytes
///
/// Each chunk is one MP4 fragment (or a piece of one over `maxChunk`), sealed with
/// AES-256-GCM under a payload key derived from the segment's data key and the header hash,
/// nonce = 88-bit chunk counter ‖ last flag, the 13-byte chunk header as associated data.
public enum SealedSegmentFormat {
    public static let versionLine = Array("bodycam-segment/1\n".utf8)
    public static let chunkHeaderSize = 13
    public static let lastChunkFlag: UInt8 = 1
    /// Largest plaintext in one chunk (4 MiB): bounds memory on both sides.
    public static let maxChunk = 4 << 20
    public static let maxHeader = 64 << 10
    /// Largest segment file a reader loads (1 GiB: an hour at 2 Mbit/s); larger is not ours.
    public static let maximumFileBytes = 1 << 30
    /// The longest time a reader accepts in a segment (a header's monotonic start, the sum of its
    /// chunks' ticks), about 100 years in nanoseconds: adding a duration to it never overflows.
    public static let maximumNanoseconds: Int64 = 100 * 366 * 86_400 * 1_000_000_000
    /// The same bound in 90 kHz ticks.
    public static let maximumTicks: Int64 = maximumNanoseconds / 1_000_000_000 * 90_000
    static let payloadInfo = "bodycam-segment/1 payload"
    static let wrapInfo = "bodycam-segment/1 wrap"

    static func nonce(counter: UInt64, last: Bool) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { nonce[10 - index] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(index))) }
        nonce[11] = last ? 1 : 0
        return nonce
    }

    static func chunkHeader(sealedLength: Int, frames: Int, ticks: Int64, last: Bool) -> [UInt8] {
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(sealedLength))
        header.appendBigEndian(UInt32(clamping: frames))
        header.appendBigEndian(UInt32(clamping: ticks))
        header.append(last ? lastChunkFlag : 0)
        return header
    }

    /// Wraps `dataKey` to one recipient: X25519 with a fresh ephemeral key, HKDF-SHA-256 over the
    /// shared secret (salt = ephemeral ‖ recipient public key), AES-256-GCM with a zero nonce.
    static func wrap(_ dataKey: SecretBytes, to recipient: X25519PublicKey) throws -> JSONValue {
        let ephemeral = try X25519PrivateKey()
        let shared = try ephemeral.sharedSecret(with: recipient)
        let wrapKey = try HKDF.sha256(key: shared, salt: ephemeral.publicKey.raw + recipient.raw, info: wrapInfo)
        let wrapped = try dataKey.withUnsafeBytes {
            try AES256GCM(key: wrapKey).seal($0, nonce: [UInt8](repeating: 0, count: 12), aad: Array(wrapInfo.utf8))
        }
        return .object(["ephemeral": .string(Base64.encode(ephemeral.publicKey.raw)),
                        "key_id": .string(recipient.keyID),
                        "wrapped_key": .string(Base64.encode(wrapped))])
    }

    static func unwrap(_ entry: JSONValue, with identity: X25519PrivateKey, what: String) throws -> SecretBytes {
        let fields = try Fields(entry, what: what + " recipient")
        let ephemeral = try X25519PublicKey(raw: try fields.bytes("ephemeral", base64: 32))
        let wrapped = try fields.bytes("wrapped_key", base64: 48)
        let shared = try identity.sharedSecret(with: ephemeral)
        let wrapKey = try HKDF.sha256(key: shared, salt: ephemeral.raw + identity.publicKey.raw, info: wrapInfo)
        do {
            return SecretBytes(try AES256GCM(key: wrapKey).open(wrapped, nonce: [UInt8](repeating: 0, count: 12), aad: Array(wrapInfo.utf8)))
        } catch {
            throw EvidenceError.decryption(what: what, reason: "the data key does not unwrap with this identity")
        }
    }
}

/// What a sealed (or recovered) segment file holds, read without any key.
public struct SealedSegmentLayout {
    public struct Chunk: Equatable {
        public var offset: Int
        public var sealedLength: Int
        public var frames: Int
        public var ticks: Int64
        public var isLast: Bool
        var headerBytes: [UInt8]
    }
    public let header: JSONValue
    public let headerBytes: [UInt8]
    public let headerHash: [UInt8]
    public let chunks: [Chunk]
    /// Bytes after the last complete chunk that do not form a chunk (a write cut by power loss,
    /// or damage).
    public let tornTail: Int
    /// Bytes after a chunk flagged last (never legitimate).
    public let trailingData: Int
    public var isSealed: Bool { chunks.last?.isLast == true }
    /// Frames and ticks the chunk headers count. The headers are authenticated only when a chunk
    /// is decrypted, so these sums saturate (at `Manifest.maximumCount` and
    /// `SealedSegmentFormat.maximumTicks`) instead of trusting them with arithmetic.
    public var frames: Int { Int(chunks.reduce(Int64(0)) { min($0 + Int64($1.frames), Manifest.maximumCount) }) }
    public var ticks: Int64 { chunks.reduce(0) { min($0 + $1.ticks, SealedSegmentFormat.maximumTicks) } }

    public var deviceID: String? { header["device_id"]?.string }
    public var sequence: Int64? { header["sequence"]?.integer }

    /// A run of this many zero bytes cannot be ciphertext (AES-GCM output is uniformly random:
    /// 2^-512 at a given place), but is what a power cut leaves where a written page never
    /// reached the disk.
    public static let zeroRun = 64

    /// Parses the header and walks the chunk headers. Throws when the file is not a segment or
    /// its header is unreadable; a bad chunk header ends the walk (`tornTail`). With
    /// `zeroFilledIsTorn` (recovery, which has no key), a chunk whose sealed bytes hold a
    /// zero-filled run (`zeroRun`) ends the walk too: its header reached the disk, its payload did
    /// not.
    public init(_ bytes: [UInt8], what: String, zeroFilledIsTorn: Bool = false) throws {
        func fail(_ reason: String) -> EvidenceError { .malformed(what: what, reason: reason) }
        let version = SealedSegmentFormat.versionLine
        guard bytes.count >= version.count + 4, Array(bytes[0..<version.count]) == version else { throw fail("not a bodycam-segment/1 file") }
        let headerLength = Int(readBigEndian(bytes[version.count...], as: UInt32.self))
        guard headerLength > 0, headerLength <= SealedSegmentFormat.maxHeader else { throw fail("header length \(headerLength) is out of range") }
        let headerEnd = version.count + 4 + headerLength
        guard bytes.count >= headerEnd else { throw fail("header cut short") }
        let json = Array(bytes[(version.count + 4)..<headerEnd])
        do { header = try JSONParser.parse(json) } catch { throw fail("header: \(error)") }
        guard header.canonical == json else { throw fail("header is not canonical JSON") }
        headerBytes = Array(bytes[0..<headerEnd])
        headerHash = try SHA256.hash(headerBytes)
        var chunks: [Chunk] = []
        var offset = headerEnd
        var torn = 0
        var trailing = 0
        while offset < bytes.count {
            if chunks.last?.isLast == true {
                trailing = bytes.count - offset
                break
            }
            guard bytes.count - offset >= SealedSegmentFormat.chunkHeaderSize else { torn = bytes.count - offset; break }
            let slice = bytes[offset...]
            let sealedLength = Int(readBigEndian(slice, as: UInt32.self))
            let flags = bytes[offset + 12]
            // A chunk header that cannot be right, or a chunk that runs past the end, ends the
            // readable part: everything from here is a torn write (or damage), never decrypted.
            guard sealedLength >= AES256GCM.tagSize, sealedLength <= SealedSegmentFormat.maxChunk + AES256GCM.tagSize,
                  flags & ~SealedSegmentFormat.lastChunkFlag == 0,
                  bytes.count - offset - SealedSegmentFormat.chunkHeaderSize >= sealedLength,
                  !zeroFilledIsTorn || !SealedSegmentLayout.holdsZeroRun(bytes, from: offset + SealedSegmentFormat.chunkHeaderSize, count: sealedLength)
            else {
                torn = bytes.count - offset
                break
            }
            chunks.append(Chunk(offset: offset, sealedLength: sealedLength,
                                frames: Int(readBigEndian(bytes[(offset + 4)...], as: UInt32.self)),
                                ticks: Int64(readBigEndian(bytes[(offset + 8)...], as: UInt32.self)),
                                isLast: flags & SealedSegmentFormat.lastChunkFlag != 0,
                                headerBytes: Array(bytes[offset..<(offset + SealedSegmentFormat.chunkHeaderSize)])))
            offset += SealedSegmentFormat.chunkHeaderSize + sealedLength
        }
        self.chunks = chunks
        tornTail = torn
        trailingData = trailing
    }

    /// Whether `bytes[from..<from + count]` holds `zeroRun` zero bytes in a row.
    static func holdsZeroRun(_ bytes: [UInt8], from start: Int, count: Int) -> Bool {
        var run = 0
        for index in start..<(start + count) {
            if bytes[index] == 0 {
                run += 1
                if run >= zeroRun { return true }
            } else {
                run = 0
            }
        }
        return false
    }

    /// A recovered segment's authentic part: every chunk up to the first that does not
    /// authenticate, decrypted, and how many chunks from there on were not (a torn write that
    /// recovery could not see without the key: its header on disk, its payload not). A segment
    /// that was sealed gets no such leniency (`decrypt`): a chunk that fails there is tampering.
    public func decryptAuthenticPrefix(_ bytes: [UInt8], identity: X25519PrivateKey, what: String) throws -> (plaintext: [UInt8], lostChunks: Int) {
        let cipher = try payloadCipher(identity: identity, allowUnsealed: true, what: what)
        var plaintext: [UInt8] = []
        for (index, chunk) in chunks.enumerated() {
            var opened = [UInt8](repeating: 0, count: chunk.sealedLength - AES256GCM.tagSize)
            do {
                try opened.withUnsafeMutableBytes { try open(chunk, index: index, in: bytes, cipher: cipher, into: $0, what: what) }
            } catch {
                // The MP4 header (chunk 0) is needed for any picture.
                if index == 0 { throw error }
                return (plaintext, chunks.count - index)
            }
            plaintext += opened
        }
        return (plaintext, 0)
    }

    /// Decrypts every chunk in order with the office's identity. A segment without its last
    /// chunk is refused unless `allowUnsealed` (a recovered segment, whose manifest says how
    /// many chunks it has).
    public func decrypt(_ bytes: [UInt8], identity: X25519PrivateKey, allowUnsealed: Bool, what: String) throws -> [UInt8] {
        let cipher = try payloadCipher(identity: identity, allowUnsealed: allowUnsealed, what: what)
        let total = chunks.reduce(0) { $0 + $1.sealedLength - AES256GCM.tagSize }
        // Decrypted straight into one buffer: the footage is copied once.
        return try [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            var offset = 0
            for (index, chunk) in chunks.enumerated() {
                let length = chunk.sealedLength - AES256GCM.tagSize
                let output = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[offset..<(offset + length)])
                try open(chunk, index: index, in: bytes, cipher: cipher, into: output, what: what)
                offset += length
            }
            count = total
        }
    }

    private func open(_ chunk: Chunk, index: Int, in bytes: [UInt8], cipher: AES256GCM, into output: UnsafeMutableRawBufferPointer, what: String) throws {
        let start = chunk.offset + SealedSegmentFormat.chunkHeaderSize
        do {
            try bytes.withUnsafeBytes { all in
                try chunk.headerBytes.withUnsafeBytes { aad in
                    try cipher.open(UnsafeRawBufferPointer(rebasing: all[start..<(start + chunk.sealedLength)]),
                                    nonce: SealedSegmentFormat.nonce(counter: UInt64(index), last: chunk.isLast), aad: aad, into: output)
                }
            }
        } catch {
            throw EvidenceError.decryption(what: what, reason: "chunk \(index) does not authenticate (altered, reordered or from another segment)")
        }
    }

    private func payloadCipher(identity: X25519PrivateKey, allowUnsealed: Bool, what: String) throws -> AES256GCM {
        let keyID = identity.publicKey.keyID
        guard let entry = header["recipients"]?.array?.first(where: { $0["key_id"]?.string == keyID }) else {
            throw EvidenceError.decryption(what: what, reason: "not encrypted to identity \(keyID)")
        }
        let dataKey = try SealedSegmentFormat.unwrap(entry, with: identity, what: what)
        let payloadKey = try HKDF.sha256(key: dataKey, salt: headerHash, info: SealedSegmentFormat.payloadInfo)
        dataKey.wipe()
        let cipher = try AES256GCM(key: payloadKey)
        payloadKey.wipe()
        if trailingData > 0 { throw EvidenceError.decryption(what: what, reason: "\(trailingData) bytes after the last chunk") }
        if !isSealed && !allowUnsealed { throw EvidenceError.decryption(what: what, reason: "the last chunk is missing (truncated)") }
        return cipher
    }

    /// The plaintext of each chunk from `first` on (chunk 0 is the MP4 header, then one fragment
    /// per chunk).
    public func decryptChunks(_ bytes: [UInt8], identity: X25519PrivateKey, allowUnsealed: Bool, what: String, from first: Int = 0) throws -> [[UInt8]] {
        let cipher = try payloadCipher(identity: identity, allowUnsealed: allowUnsealed, what: what)
        return try chunks.enumerated().dropFirst(first).map { index, chunk in
            try [UInt8](unsafeUninitializedCapacity: chunk.sealedLength - AES256GCM.tagSize) { buffer, count in
                try open(chunk, index: index, in: bytes, cipher: cipher, into: UnsafeMutableRawBufferPointer(buffer), what: what)
                count = chunk.sealedLength - AES256GCM.tagSize
            }
        }
    }
}

/// What a sealing sink reports when its segment is final.
public struct SealedSegmentResult: Sendable {
    public var path: String
    public var fileName: String
    public var ciphertextSHA256: [UInt8]
    public var ciphertextBytes: Int
    public var plaintextBytes: Int
    public var chunks: Int
    public var frames: Int
    public var ticks: Int64
    /// Camera frames missing inside the segment; unknown (nil) for a recovered one.
    public var framesDropped: Int? = nil
    /// `framesDropped` is estimated (the driver's sequence numbers could not be trusted).
    public var framesDroppedEstimated = false
    /// The wall clock over the segment; unknown (nil) for a recovered one.
    public var clock: SegmentClock? = nil
}

/// The encrypting half of a sealed segment, without any I/O: makes the version line and
/// header, and turns plaintext chunks into chunk header ‖ sealed bytes with consecutive nonces.
public final class StreamSealer {
    /// Version line, header length and header: the first bytes of the file.
    public let headerBytes: [UInt8]
    private let cipher: AES256GCM
    public private(set) var chunks: UInt64 = 0
    public private(set) var isFinished = false

    /// Derives the payload key from `dataKey` and the header, then wipes the data key.
    public init(header: JSONValue, dataKey: SecretBytes) throws {
        let json = header.canonical
        var bytes = SealedSegmentFormat.versionLine
        bytes.appendBigEndian(UInt32(json.count))
        bytes += json
        headerBytes = bytes
        let payloadKey = try HKDF.sha256(key: dataKey, salt: try SHA256.hash(bytes), info: SealedSegmentFormat.payloadInfo)
        cipher = try AES256GCM(key: payloadKey)
        payloadKey.wipe()
        dataKey.wipe()
    }

    /// One chunk sealed in place: `buffer` (at most `maxChunk` bytes of plaintext) becomes the
    /// ciphertext; returns the chunk header that goes before it and the tag that goes after.
    public func sealInPlace(_ buffer: UnsafeMutableRawBufferPointer, frames: Int, ticks: Int64, last: Bool) throws -> (header: [UInt8], tag: [UInt8]) {
        precondition(!isFinished, "a chunk after the last one")
        precondition(buffer.count <= SealedSegmentFormat.maxChunk)
        let header = SealedSegmentFormat.chunkHeader(sealedLength: buffer.count + AES256GCM.tagSize, frames: frames, ticks: ticks, last: last)
        let nonce = SealedSegmentFormat.nonce(counter: chunks, last: last)
        let tag = try header.withUnsafeBytes { try cipher.sealInPlace(buffer, nonce: nonce, aad: $0) }
        chunks += 1
        isFinished = last
        return (header, tag)
    }

    /// One chunk: at most `maxChunk` bytes of plaintext; `last` ends the stream.
    public func seal(_ plaintext: UnsafeRawBufferPointer, frames: Int, ticks: Int64, last: Bool) throws -> [UInt8] {
        precondition(!isFinished, "a chunk after the last one")
        precondition(plaintext.count <= SealedSegmentFormat.maxChunk)
        let header = SealedSegmentFormat.chunkHeader(sealedLength: plaintext.count + AES256GCM.tagSize, frames: frames, ticks: ticks, last: last)
        let total = header.count + plaintext.count + AES256GCM.tagSize
        let nonce = SealedSegmentFormat.nonce(counter: chunks, last: last)
        // One allocation, no zero-fill: the chunk header, then the cipher writes in place.
        let chunk = try [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.copyBytes(from: header)
            try header.withUnsafeBytes {
                try cipher.seal(plaintext, nonce: nonce, aad: $0, into: UnsafeMutableRawBufferPointer(rebasing: raw[header.count...]))
            }
            count = total
        }
        chunks += 1
        isFinished = last
        return chunk
    }
}

/// A `SegmentSink` that never lets plaintext reach storage: MP4 bytes are held in memory until
/// their fragment completes, then sealed as one chunk and written; `makeDurable` syncs them.
/// A fresh data key per segment, wrapped to every recipient and wiped once sealed.
public final class SealingSink: SegmentSink {
    public let partialPath: String
    public let finalPath: String
    public let fileName: String
    private var fd: Int32
    private let sealer: StreamSealer
    private var pending: [UInt8] = []
    private let hasher: SHA256
    private var ciphertextBytes = 0
    private var plaintextBytes = 0
    private var frames = 0
    private var ticks: Int64 = 0
    private var dropped = 0
    private var droppedEstimated = false
    private var clock: SegmentClock?
    /// Sticky: after a failure partway through a fragment (some chunks written, the buffer
    /// partly sealed in place) nothing more may be sealed or written; every call throws it.
    private var failure: Error?
    private let onSealed: (SealedSegmentResult) throws -> Void

    public init(directory: String, fileName: String, header: JSONValue, dataKey: SecretBytes,
                onSealed: @escaping (SealedSegmentResult) throws -> Void) throws {
        self.fileName = fileName
        finalPath = directory + "/" + fileName
        partialPath = finalPath + ".partial"
        self.onSealed = onSealed
        sealer = try StreamSealer(header: header, dataKey: dataKey)
        hasher = try SHA256()
        if access(finalPath, F_OK) == 0 { throw SystemError.file(path: finalPath, call: "open", errno: EEXIST) }
        // The descriptor is acquired last; from here on deinit owns it.
        fd = open(partialPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        if fd < 0 { throw SystemError.file(path: partialPath, call: "open", errno: errno) }
        try append(sealer.headerBytes)
    }

    deinit {
        if fd >= 0 { close(fd) }
        _ = pending.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    private func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd, bytes, path: partialPath)
        hasher.update(bytes)
        ciphertextBytes += bytes.count
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        pending.append(contentsOf: bytes)
    }

    /// Runs `body`; a failure in it is kept and thrown by every later call.
    private func sticky<R>(_ body: () throws -> R) throws -> R {
        if let failure { throw failure }
        do {
            return try body()
        } catch {
            failure = error
            throw error
        }
    }

    /// Seals `plaintext` in place as one chunk and writes header, ciphertext and tag.
    private func sealChunk(_ plaintext: UnsafeMutableRawBufferPointer, frames: Int, ticks: Int64, last: Bool) throws {
        let (header, tag) = try sealer.sealInPlace(plaintext, frames: frames, ticks: ticks, last: last)
        try append(header)
        try append(UnsafeRawBufferPointer(plaintext))
        try append(tag)
        plaintextBytes += plaintext.count
    }

    public func fragmentComplete(frames fragmentFrames: Int, duration: Int64) throws {
        try sticky { try sealFragment(frames: fragmentFrames, duration: duration) }
    }

    private func sealFragment(frames fragmentFrames: Int, duration: Int64) throws {
        try pending.withUnsafeMutableBytes { all in
            var start = 0
            repeat {
                let end = min(all.count, start + SealedSegmentFormat.maxChunk)
                let isEnd = end == all.count
                try sealChunk(UnsafeMutableRawBufferPointer(rebasing: all[start..<end]), frames: isEnd ? fragmentFrames : 0,
                              ticks: isEnd ? duration : 0, last: false)
                start = end
            } while start < all.count
        }
        // Sealed in place: what is left in the buffer is ciphertext, already on storage.
        pending.removeAll(keepingCapacity: true)
        frames += fragmentFrames
        ticks += duration
    }

    public func makeDurable() throws {
        try sticky {
            if fdatasync(fd) < 0 { throw SystemError.file(path: partialPath, call: "fdatasync", errno: errno) }
        }
    }

    public func noteDropped(frames count: Int, estimated: Bool) {
        dropped = count
        droppedEstimated = estimated
    }
    public func noteClock(_ clock: SegmentClock) { self.clock = clock }

    /// Seals with an empty last chunk, fsyncs, renames NAME.partial → NAME, fsyncs the folder,
    /// then hands the result to the vault (which writes the manifest).
    public func finish() throws -> String {
        try sticky { try seal() }
    }

    private func seal() throws -> String {
        if !pending.isEmpty { try sealFragment(frames: 0, duration: 0) }
        try sealChunk(UnsafeMutableRawBufferPointer(start: nil, count: 0), frames: 0, ticks: 0, last: true)
        if fsync(fd) < 0 { throw SystemError.file(path: partialPath, call: "fsync", errno: errno) }
        let status = close(fd)
        fd = -1
        if status < 0 { throw SystemError.file(path: partialPath, call: "close", errno: errno) }
        if rename(partialPath, finalPath) < 0 { throw SystemError.file(path: finalPath, call: "rename", errno: errno) }
        try syncDirectory(String(finalPath[..<finalPath.lastIndex(of: "/")!]))
        try onSealed(SealedSegmentResult(path: finalPath, fileName: fileName, ciphertextSHA256: try hasher.finish(),
                                         ciphertextBytes: ciphertextBytes, plaintextBytes: plaintextBytes,
                                         chunks: Int(sealer.chunks), frames: frames, ticks: ticks, framesDropped: dropped,
                                         framesDroppedEstimated: droppedEstimated, clock: clock))
        return finalPath
    }
}

extension Manifest {
    /// Reads the segment this manifest names from `folder` (not through a link) and decrypts it
    /// with the office's identity: what every export starts from. A recovered segment gives every
    /// chunk up to the first that the power cut left unauthenticated, and how many were lost
    /// (`decryptAuthenticPrefix`); any other segment must decrypt whole (`decrypt`).
    /// - Throws: `SystemError` (unreadable), `EvidenceError` (not authentic, wrong key).
    public func decryptSegment(in folder: String, identity: X25519PrivateKey) throws -> (plaintext: [UInt8], lostChunks: Int) {
        let bytes = try readWholeFile(folder + "/" + segmentFile, limit: SealedSegmentFormat.maximumFileBytes, followLinks: false)
        let layout = try SealedSegmentLayout(bytes, what: segmentFile, zeroFilledIsTorn: recovered)
        if recovered { return try layout.decryptAuthenticPrefix(bytes, identity: identity, what: segmentFile) }
        return (try layout.decrypt(bytes, identity: identity, allowUnsealed: false, what: segmentFile), 0)
    }
}
