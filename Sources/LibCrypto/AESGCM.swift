import CCrypto

/// AES-256-GCM with a 12-byte nonce and a 16-byte tag (EVP_aes_256_gcm). One context per key,
/// reused for every message under that key. Owns its EVP_CIPHER_CTX.
public final class AES256GCM {
    public static let tagSize = 16
    public static let nonceSize = 12
    private let context: OpaquePointer

    public init(key: SecretBytes) throws {
        guard key.count == 32 else { throw CryptoError("AES-256-GCM", detail: "key must be 32 bytes") }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        self.context = context
        // Encrypt and decrypt share the key schedule: set it once for encryption; `open`
        // re-initialises for decryption with the same key.
        try key.withUnsafeBytes {
            try check(EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, -1),
                      "EVP_CipherInit_ex(aes-256-gcm)")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `plaintext` into `output` (plaintext.count + 16 bytes: ciphertext, then tag).
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: UnsafeRawBufferPointer,
                     into output: UnsafeMutableRawBufferPointer) throws {
        precondition(nonce.count == AES256GCM.nonceSize && output.count == plaintext.count + AES256GCM.tagSize)
        try check(EVP_CipherInit_ex(context, nil, nil, nil, nonce, 1), "EVP_EncryptInit_ex(nonce)")
        var length: Int32 = 0
        if aad.count > 0 {
            try check(EVP_CipherUpdate(context, nil, &length, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count)), "EVP_EncryptUpdate(aad)")
        }
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        if plaintext.count > 0 {
            try check(EVP_CipherUpdate(context, out, &written, plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(plaintext.count)),
                      "EVP_EncryptUpdate")
        }
        var final: Int32 = 0
        try check(EVP_CipherFinal_ex(context, out + Int(written), &final), "EVP_EncryptFinal_ex")
        try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(AES256GCM.tagSize), out + plaintext.count), "EVP_CTRL_GCM_GET_TAG")
    }

    /// Encrypts `buffer` in place (EVP allows the same buffer for input and output) and returns
    /// the 16-byte tag: no second copy of a fragment, and no plaintext left behind in memory.
    public func sealInPlace(_ buffer: UnsafeMutableRawBufferPointer, nonce: [UInt8], aad: UnsafeRawBufferPointer) throws -> [UInt8] {
        precondition(nonce.count == AES256GCM.nonceSize)
        try check(EVP_CipherInit_ex(context, nil, nil, nil, nonce, 1), "EVP_EncryptInit_ex(nonce)")
        var length: Int32 = 0
        if aad.count > 0 {
            try check(EVP_CipherUpdate(context, nil, &length, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count)), "EVP_EncryptUpdate(aad)")
        }
        var written: Int32 = 0
        if buffer.count > 0 {
            let bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            try check(EVP_CipherUpdate(context, bytes, &written, bytes, Int32(buffer.count)), "EVP_EncryptUpdate")
        }
        // GCM adds no bytes at the end; EVP still wants somewhere to write them.
        var scratch = [UInt8](repeating: 0, count: 16)
        var final: Int32 = 0
        try check(EVP_CipherFinal_ex(context, &scratch, &final), "EVP_EncryptFinal_ex")
        var tag = [UInt8](repeating: 0, count: AES256GCM.tagSize)
        try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(AES256GCM.tagSize), &tag), "EVP_CTRL_GCM_GET_TAG")
        return tag
    }

    /// Encrypts `plaintext`; returns ciphertext followed by the tag.
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: plaintext.count + AES256GCM.tagSize) { buffer, count in
            try aad.withUnsafeBytes { try seal(plaintext, nonce: nonce, aad: $0, into: UnsafeMutableRawBufferPointer(buffer)) }
            count = plaintext.count + AES256GCM.tagSize
        }
    }

    public func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try seal($0, nonce: nonce, aad: aad) }
    }

    /// Decrypts ciphertext+tag into `output` (sealed.count − 16 bytes); throws when the tag does
    /// not authenticate (and `output` must then be discarded).
    public func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        precondition(nonce.count == AES256GCM.nonceSize)
        guard sealed.count >= AES256GCM.tagSize else { throw CryptoError("AES-256-GCM open", detail: "shorter than a tag") }
        let bodyCount = sealed.count - AES256GCM.tagSize
        precondition(output.count == bodyCount)
        try check(EVP_CipherInit_ex(context, nil, nil, nil, nonce, 0), "EVP_DecryptInit_ex(nonce)")
        var length: Int32 = 0
        if aad.count > 0 {
            try check(EVP_CipherUpdate(context, nil, &length, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count)), "EVP_DecryptUpdate(aad)")
        }
        let base = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var scratch: UInt8 = 0
        let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? withUnsafeMutablePointer(to: &scratch) { $0 }
        var written: Int32 = 0
        if bodyCount > 0 { try check(EVP_CipherUpdate(context, out, &written, base, Int32(bodyCount)), "EVP_DecryptUpdate") }
        var tag = Array(UnsafeBufferPointer(start: base + bodyCount, count: AES256GCM.tagSize))
        try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(AES256GCM.tagSize), &tag), "EVP_CTRL_GCM_SET_TAG")
        var final: Int32 = 0
        if EVP_CipherFinal_ex(context, out + Int(written), &final) != 1 {
            ERR_clear_error()
            throw CryptoError("AES-256-GCM open", detail: "authentication failed")
        }
    }

    /// Decrypts ciphertext+tag; throws when the tag does not authenticate.
    public func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        guard sealed.count >= AES256GCM.tagSize else { throw CryptoError("AES-256-GCM open", detail: "shorter than a tag") }
        return try [UInt8](unsafeUninitializedCapacity: sealed.count - AES256GCM.tagSize) { buffer, count in
            try aad.withUnsafeBytes { try open(sealed, nonce: nonce, aad: $0, into: UnsafeMutableRawBufferPointer(buffer)) }
            count = sealed.count - AES256GCM.tagSize
        }
    }

    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try sealed.withUnsafeBytes { try open($0, nonce: nonce, aad: aad) }
    }
}
