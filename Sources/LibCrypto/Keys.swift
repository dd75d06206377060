import CCrypto

/// One EVP_PKEY (X25519 or Ed25519), owned: freed with EVP_PKEY_free.
// OpenSSL EVP_PKEY objects may be used from several threads at once once they are made, as
// long as none modifies them (OpenSSL 3, "Threads"): these classes never do after init.
final class PKey: @unchecked Sendable {
    let raw: OpaquePointer

    init(taking raw: OpaquePointer) { self.raw = raw }
    deinit { EVP_PKEY_free(raw) }

    static func generate(_ type: Int32, name: String) throws -> PKey {
        guard let context = EVP_PKEY_CTX_new_id(type, nil) else { throw CryptoError("EVP_PKEY_CTX_new_id(\(name))") }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_keygen_init(context), "EVP_PKEY_keygen_init(\(name))")
        var key: OpaquePointer? = nil
        try check(EVP_PKEY_keygen(context, &key), "EVP_PKEY_keygen(\(name))")
        return PKey(taking: key!)
    }

    static func privateKey(_ type: Int32, name: String, raw bytes: UnsafeRawBufferPointer) throws -> PKey {
        guard bytes.count == 32 else { throw CryptoError("\(name) private key", detail: "must be 32 bytes, not \(bytes.count)") }
        guard let key = EVP_PKEY_new_raw_private_key(type, nil, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) else {
            throw CryptoError("EVP_PKEY_new_raw_private_key(\(name))")
        }
        return PKey(taking: key)
    }

    static func publicKey(_ type: Int32, name: String, raw bytes: [UInt8]) throws -> PKey {
        guard bytes.count == 32 else { throw CryptoError("\(name) public key", detail: "must be 32 bytes, not \(bytes.count)") }
        guard let key = EVP_PKEY_new_raw_public_key(type, nil, bytes, 32) else { throw CryptoError("EVP_PKEY_new_raw_public_key(\(name))") }
        return PKey(taking: key)
    }

    func publicBytes() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = 32
        EVP_PKEY_get_raw_public_key(raw, &bytes, &length)
        return bytes
    }

    func privateBytes() -> SecretBytes {
        let secret = SecretBytes(count: 32)
        var length = 32
        secret.withUnsafeMutableBytes { _ = EVP_PKEY_get_raw_private_key(raw, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length) }
        return secret
    }
}

/// An Ed25519 signing key (device identity, authority, supervisors).
public final class Ed25519PrivateKey: Sendable {
    let key: PKey
    public let publicKey: Ed25519PublicKey

    public init() throws {
        key = try PKey.generate(EVP_PKEY_ED25519, name: "Ed25519")
        publicKey = try Ed25519PublicKey(raw: key.publicBytes())
    }

    /// From the 32-byte seed (RFC 8032 "private key").
    public init(seed: SecretBytes) throws {
        key = try seed.withUnsafeBytes { try PKey.privateKey(EVP_PKEY_ED25519, name: "Ed25519", raw: $0) }
        publicKey = try Ed25519PublicKey(raw: key.publicBytes())
    }

    public var seed: SecretBytes { key.privateBytes() }

    /// EVP_DigestSign with no digest (Ed25519 hashes internally).
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        try check(EVP_DigestSignInit(context, nil, nil, nil, key.raw), "EVP_DigestSignInit(Ed25519)")
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        try check(EVP_DigestSign(context, &signature, &length, message, message.count), "EVP_DigestSign(Ed25519)")
        return signature
    }
}

public final class Ed25519PublicKey: Equatable, Sendable {
    let key: PKey
    public let raw: [UInt8]
    /// The key's id (docs/FORMAT.md, "Key files"): the first 8 bytes of SHA-256 of `raw`, hex.
    public let keyID: String

    public init(raw: [UInt8]) throws {
        keyID = try keyIdentifier(raw)
        key = try PKey.publicKey(EVP_PKEY_ED25519, name: "Ed25519", raw: raw)
        self.raw = raw
    }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.raw) == 1 else { return false }
        let ok = EVP_DigestVerify(context, signature, 64, message, message.count) == 1
        ERR_clear_error()
        return ok
    }

    public static func == (a: Ed25519PublicKey, b: Ed25519PublicKey) -> Bool { a.raw == b.raw }
}

/// An X25519 key agreement key: the evidence office's identity (private) and the recipients
/// the device encrypts to (public).
public final class X25519PrivateKey: Sendable {
    let key: PKey
    public let publicKey: X25519PublicKey

    public init() throws {
        key = try PKey.generate(EVP_PKEY_X25519, name: "X25519")
        publicKey = try X25519PublicKey(raw: key.publicBytes())
    }

    public init(raw: SecretBytes) throws {
        key = try raw.withUnsafeBytes { try PKey.privateKey(EVP_PKEY_X25519, name: "X25519", raw: $0) }
        publicKey = try X25519PublicKey(raw: key.publicBytes())
    }

    public var rawPrivate: SecretBytes { key.privateBytes() }

    /// X25519(this private key, peer public key) via EVP_PKEY_derive. Rejects an all-zero
    /// result (a low-order peer key).
    public func sharedSecret(with peer: X25519PublicKey) throws -> SecretBytes {
        try X25519PrivateKey.derive(key, peer.key)
    }

    static func derive(_ key: PKey, _ peer: PKey) throws -> SecretBytes {
        guard let context = EVP_PKEY_CTX_new(key.raw, nil) else { throw CryptoError("EVP_PKEY_CTX_new(X25519)") }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_derive_init(context), "EVP_PKEY_derive_init(X25519)")
        try check(EVP_PKEY_derive_set_peer(context, peer.raw), "EVP_PKEY_derive_set_peer(X25519)")
        let secret = SecretBytes(count: 32)
        var length = 32
        try secret.withUnsafeMutableBytes {
            try check(EVP_PKEY_derive(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length), "EVP_PKEY_derive(X25519)")
        }
        if secret.withUnsafeBytes({ $0.allSatisfy { $0 == 0 } }) { throw CryptoError("X25519", detail: "low-order public key") }
        return secret
    }
}

public final class X25519PublicKey: Equatable, Sendable {
    let key: PKey
    public let raw: [UInt8]
    /// The key's id (docs/FORMAT.md, "Key files"): the first 8 bytes of SHA-256 of `raw`, hex.
    public let keyID: String

    /// Throws `CryptoError` when `raw` is not 32 bytes or is a low-order point (RFC 7748,
    /// section 6.1: the all-zero key and the other points of small order give an all-zero shared
    /// secret whatever the private key): such a key could never be sealed to, so it is refused
    /// when it is loaded, not at the first recording.
    public init(raw: [UInt8]) throws {
        keyID = try keyIdentifier(raw)
        key = try PKey.publicKey(EVP_PKEY_X25519, name: "X25519", raw: raw)
        self.raw = raw
        // Every scalar X25519 uses is a multiple of the cofactor (clamping), so one trial
        // agreement with a fresh key tells a low-order point from a usable one.
        let trial = try PKey.generate(EVP_PKEY_X25519, name: "X25519")
        do {
            _ = try X25519PrivateKey.derive(trial, key)
        } catch {
            ERR_clear_error()
            throw CryptoError("X25519 public key \(keyID)", detail: "a low-order point: nothing can be sealed to it")
        }
    }

    public static func == (a: X25519PublicKey, b: X25519PublicKey) -> Bool { a.raw == b.raw }
}

/// The first 8 bytes of SHA-256 of a raw public key, in lower-case hex.
func keyIdentifier(_ raw: [UInt8]) throws -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: try SHA256.hash(raw).prefix(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
}
