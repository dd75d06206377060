import CCrypto
import Glibc

/// An OpenSSL libcrypto call that failed, with the library's own error queue text.
public struct CryptoError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let detail: String

    init(_ operation: String) {
        self.operation = operation
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        detail = messages.joined(separator: "; ")
    }

    init(_ operation: String, detail: String) {
        self.operation = operation
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? "\(operation) failed" : "\(operation) failed: \(detail)" }
}

@inline(__always)
func check(_ status: Int32, _ operation: @autoclosure () -> String) throws {
    if status != 1 { throw CryptoError(operation()) }
}

/// Bytes that must not outlive their use (data keys, private keys): kept in their own
/// allocation and wiped with OPENSSL_cleanse when released.
public final class SecretBytes {
    private let pointer: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        pointer = .allocate(byteCount: max(count, 1), alignment: 16)
        pointer.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count)
        pointer.copyBytes(from: bytes)
    }

    /// Fresh random bytes (RAND_bytes).
    public static func random(count: Int) throws -> SecretBytes {
        let secret = SecretBytes(count: count)
        try secret.withUnsafeMutableBytes { try check(RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count)), "RAND_bytes") }
        return secret
    }

    public let count: Int

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: pointer[0..<count]))
    }

    func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(rebasing: pointer[0..<count]))
    }

    /// A copy as an array, for keys that are written to a file (private key files only).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Wipes now (also done on release).
    public func wipe() { OPENSSL_cleanse(pointer.baseAddress, pointer.count) }

    deinit {
        wipe()
        pointer.deallocate()
    }
}

public func randomBytes(_ count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    try check(RAND_bytes(&bytes, Int32(count)), "RAND_bytes")
    return bytes
}

/// SHA-256 (EVP_Digest), one shot or incremental.
/// SHA-256 through EVP_Digest*. An OpenSSL failure (no memory for the context, a provider
/// refusing) is a thrown `CryptoError`, never a trap: `init` throws when the context cannot be
/// made, and a failed update is sticky and thrown by `finish`.
public final class SHA256 {
    private let context: OpaquePointer
    private var failed: CryptoError?

    public init() throws {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("EVP_MD_CTX_new") }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw CryptoError("EVP_DigestInit_ex(sha256)")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 && failed == nil && EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) != 1 {
            failed = CryptoError("EVP_DigestUpdate(sha256)")
        }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The 32-byte digest; throws the first failure of any call before it.
    public func finish() throws -> [UInt8] {
        if let failed { throw failed }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1, length == 32 else { throw CryptoError("EVP_DigestFinal_ex(sha256)") }
        return digest
    }

    public static func hash(_ bytes: [UInt8]) throws -> [UInt8] {
        let hasher = try SHA256()
        hasher.update(bytes)
        return try hasher.finish()
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        let hasher = try SHA256()
        hasher.update(bytes)
        return try hasher.finish()
    }
}

/// HKDF-SHA-256 (RFC 5869) through EVP_PKEY_HKDF.
public enum HKDF {
    public static func sha256(key: UnsafeRawBufferPointer, salt: [UInt8], info: [UInt8], length: Int) throws -> SecretBytes {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw CryptoError("EVP_PKEY_CTX_new_id(HKDF)") }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_derive_init(context), "EVP_PKEY_derive_init(HKDF)")
        try check(EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()), "EVP_PKEY_CTX_set_hkdf_md")
        try check(EVP_PKEY_CTX_set1_hkdf_salt(context, salt, Int32(salt.count)), "EVP_PKEY_CTX_set1_hkdf_salt")
        try check(EVP_PKEY_CTX_set1_hkdf_key(context, key.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(key.count)), "EVP_PKEY_CTX_set1_hkdf_key")
        try check(EVP_PKEY_CTX_add1_hkdf_info(context, info, Int32(info.count)), "EVP_PKEY_CTX_add1_hkdf_info")
        let output = SecretBytes(count: length)
        var outputLength = length
        try output.withUnsafeMutableBytes {
            try check(EVP_PKEY_derive(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &outputLength), "EVP_PKEY_derive(HKDF)")
        }
        return output
    }

    public static func sha256(key: SecretBytes, salt: [UInt8], info: String, length: Int = 32) throws -> SecretBytes {
        try key.withUnsafeBytes { try sha256(key: $0, salt: salt, info: Array(info.utf8), length: length) }
    }
}
