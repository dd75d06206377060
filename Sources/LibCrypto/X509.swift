import CCrypto
import Glibc

/// An ECDSA P-256 private key read from PEM (PKCS #8 or SEC 1), for ONVIF Media Signing: it
/// signs a digest the caller computed (EVP_PKEY_sign on a prehashed SHA-256), giving a DER
/// `ECDSA-Sig-Value` (SEC 1, at most 72 bytes for P-256).
public final class ECDSASigningKey: Sendable {
    let key: PKey
    /// The largest signature it makes (EVP_PKEY_get_size: 72 for P-256).
    public let maximumSignatureBytes: Int

    /// - Throws: `CryptoError` for text that is not a PEM private key, or a key that is not
    ///   P-256.
    public init(pem: [UInt8]) throws {
        let key: OpaquePointer = try pem.withUnsafeBytes { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { throw CryptoError("BIO_new_mem_buf") }
            defer { BIO_free(bio) }
            // A password callback that refuses: an encrypted key is an error, never a prompt.
            guard let key = PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in -1 }, nil) else {
                ERR_clear_error()
                throw CryptoError("PEM_read_bio_PrivateKey", detail: "not an unencrypted PEM private key")
            }
            return key
        }
        self.key = PKey(taking: key)
        guard EVP_PKEY_is_a(key, "EC") == 1, ECDSASigningKey.curveName(key) == "prime256v1" else {
            throw CryptoError("media signing key", detail: "not an ECDSA P-256 key")
        }
        maximumSignatureBytes = Int(EVP_PKEY_get_size(key))
    }

    static func curveName(_ key: OpaquePointer) -> String? {
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(key, "group", &name, name.count, &length) == 1 else { return nil }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// ECDSA over `digest` (32 bytes of SHA-256), DER-encoded.
    public func sign(digest: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_PKEY_CTX_new(key.raw, nil) else { throw CryptoError("EVP_PKEY_CTX_new") }
        defer { EVP_PKEY_CTX_free(context) }
        try check(EVP_PKEY_sign_init(context), "EVP_PKEY_sign_init")
        var length = maximumSignatureBytes
        var signature = [UInt8](repeating: 0, count: length)
        try check(EVP_PKEY_sign(context, &signature, &length, digest, digest.count), "EVP_PKEY_sign")
        return Array(signature.prefix(length))
    }
}

/// One X.509 certificate (OpenSSL X509), owned.
public final class X509Certificate: @unchecked Sendable {
    // Read-only after init: OpenSSL's X509 objects may be read from several threads.
    let raw: OpaquePointer

    private init(taking raw: OpaquePointer) { self.raw = raw }
    deinit { X509_free(raw) }

    /// Every certificate of a PEM text (`-----BEGIN CERTIFICATE-----` blocks), in order.
    /// - Throws: `CryptoError` when there is none.
    public static func chain(pem: [UInt8]) throws -> [X509Certificate] {
        try pem.withUnsafeBytes { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { throw CryptoError("BIO_new_mem_buf") }
            defer { BIO_free(bio) }
            var certificates: [X509Certificate] = []
            while certificates.count < 16, let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(X509Certificate(taking: certificate))
            }
            ERR_clear_error()
            guard !certificates.isEmpty else { throw CryptoError("PEM_read_bio_X509", detail: "no certificate in the PEM text") }
            return certificates
        }
    }

    /// The certificate as PEM text.
    public var pem: [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509(bio, raw) == 1 else { return [] }
        var pointer: UnsafeMutablePointer<CChar>? = nil
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// The subject, one line (X509_NAME_oneline: "/CN=…/O=…").
    public var subject: String {
        var buffer = [CChar](repeating: 0, count: 512)
        X509_NAME_oneline(X509_get_subject_name(raw), &buffer, Int32(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The values of the subject's entries of one kind, in order (`NID_commonName`,
    /// `NID_organizationalUnitName`, …), as UTF-8.
    public func subjectEntries(_ nid: Int32) -> [String] {
        guard let name = X509_get_subject_name(raw) else { return [] }
        var values: [String] = []
        var index: Int32 = -1
        while values.count < 16 {
            index = X509_NAME_get_index_by_NID(name, nid, index)
            guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else { break }
            var utf8: UnsafeMutablePointer<UInt8>? = nil
            let length = ASN1_STRING_to_UTF8(&utf8, data)
            guard length >= 0, let utf8 else { continue }
            values.append(String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self))
            CRYPTO_free(utf8, nil, 0)
        }
        ERR_clear_error()
        return values
    }

    /// The serial number's magnitude in lower-case hex without leading zero bytes (as the
    /// authority's revocation list writes it, docs/PKI.md); "" when it has none.
    public var serialHex: String {
        guard let serial = X509_get0_serialNumber(raw), let data = ASN1_STRING_get0_data(serial) else { return "" }
        let bytes = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(serial)))
        let digits = Array("0123456789abcdef")
        return String(bytes.drop { $0 == 0 }.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// The subject's common names and organisational units.
    public var commonNames: [String] { subjectEntries(NID_commonName) }
    public var organizationalUnits: [String] { subjectEntries(NID_organizationalUnitName) }

    /// Whether `key` is this certificate's key (X509_check_private_key).
    public func matches(_ key: ECDSASigningKey) -> Bool {
        defer { ERR_clear_error() }
        return X509_check_private_key(raw, key.key.raw) == 1
    }

    /// Issued by itself (a root CA): its subject is its issuer.
    public var isSelfSigned: Bool { X509_NAME_cmp(X509_get_subject_name(raw), X509_get_issuer_name(raw)) == 0 }

    /// Whether `signature` (DER `ECDSA-Sig-Value`) is this certificate's key's ECDSA signature
    /// of `digest`.
    public func verify(signature: [UInt8], digest: [UInt8]) -> Bool {
        defer { ERR_clear_error() }
        guard let key = X509_get0_pubkey(raw), let context = EVP_PKEY_CTX_new(key, nil) else { return false }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_verify_init(context) == 1 else { return false }
        return EVP_PKEY_verify(context, signature, signature.count, digest, digest.count) == 1
    }

    /// Why this certificate does not chain to one of `roots` through `intermediates` at
    /// `time` (seconds since 1970: the recording's, not today's), by OpenSSL's X509_verify_cert;
    /// nil when it does.
    public func chainRefusal(intermediates: [X509Certificate], roots: [X509Certificate], at time: Int64) -> String? {
        defer { ERR_clear_error() }
        guard let store = X509_STORE_new() else { return "X509_STORE_new failed" }
        defer { X509_STORE_free(store) }
        for root in roots { X509_STORE_add_cert(store, root.raw) }
        guard let untrusted = OPENSSL_sk_new_null() else { return "sk_X509_new_null failed" }
        defer { OPENSSL_sk_free(untrusted) }
        for certificate in intermediates { OPENSSL_sk_push(untrusted, UnsafeRawPointer(certificate.raw)) }  // not owned: freed with sk_free
        guard let context = X509_STORE_CTX_new() else { return "X509_STORE_CTX_new failed" }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, raw, untrusted) == 1 else { return "X509_STORE_CTX_init failed" }
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(context), time_t(time))
        if X509_verify_cert(context) == 1 { return nil }
        let code = X509_STORE_CTX_get_error(context)
        if code == X509_V_OK { return "the chain could not be checked" }
        return String(cString: X509_verify_cert_error_string(Int(code)))
    }
}
