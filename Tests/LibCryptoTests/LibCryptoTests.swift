import LibCrypto
import Testing

func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

@Suite("libcrypto layer against published test vectors")
struct LibCryptoTests {
    @Test("SHA-256 (FIPS 180-2 'abc')")
    func sha256() throws {
        #expect(hexString(try SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let incremental = try SHA256()
        incremental.update(Array("a".utf8))
        incremental.update(Array("bc".utf8))
        #expect(try incremental.finish() == SHA256.hash(Array("abc".utf8)))
    }

    @Test("HKDF-SHA-256 (RFC 5869 test case 1)")
    func hkdf() throws {
        let key = SecretBytes([UInt8](repeating: 0x0b, count: 22))
        let output = try key.withUnsafeBytes {
            try HKDF.sha256(key: $0, salt: hex("000102030405060708090a0b0c"), info: hex("f0f1f2f3f4f5f6f7f8f9"), length: 42)
        }
        #expect(hexString(output.bytes) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test("X25519 (RFC 7748 section 6.1)")
    func x25519() throws {
        let alice = try X25519PrivateKey(raw: SecretBytes(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")))
        let bob = try X25519PrivateKey(raw: SecretBytes(hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")))
        #expect(hexString(alice.publicKey.raw) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(hexString(bob.publicKey.raw) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(hexString(try alice.sharedSecret(with: bob.publicKey).bytes) == shared)
        #expect(hexString(try bob.sharedSecret(with: alice.publicKey).bytes) == shared)
        #expect(throws: CryptoError.self) { try alice.sharedSecret(with: X25519PublicKey(raw: [UInt8](repeating: 0, count: 32))) }
    }

    @Test("X25519 public keys of low order are refused when loaded (the known points of small order and their non-canonical forms)",
          arguments: [
              "0000000000000000000000000000000000000000000000000000000000000000",  // 0
              "0100000000000000000000000000000000000000000000000000000000000000",  // 1
              "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
              "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  // order 8
              "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1
              "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p
              "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p + 1
          ])
    func lowOrderRefused(point: String) throws {
        #expect(throws: CryptoError.self) { _ = try X25519PublicKey(raw: hex(point)) }
        // A usable key of the same length loads.
        _ = try X25519PublicKey(raw: X25519PrivateKey().publicKey.raw)
    }

    @Test("Ed25519 (RFC 8032 test 1), and a flipped bit fails")
    func ed25519() throws {
        let key = try Ed25519PrivateKey(seed: SecretBytes(hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")))
        #expect(hexString(key.publicKey.raw) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = try key.sign([])
        #expect(hexString(signature) == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        #expect(key.publicKey.isValidSignature(signature, for: []))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!key.publicKey.isValidSignature(flipped, for: []))
        #expect(!key.publicKey.isValidSignature(signature, for: [0]))
        #expect(!(try Ed25519PrivateKey()).publicKey.isValidSignature(signature, for: []))
    }

    @Test("AES-256-GCM (GCM spec test cases 13 and 14), and tampering is refused")
    func aesGCM() throws {
        let cipher = try AES256GCM(key: SecretBytes(count: 32))
        let nonce = [UInt8](repeating: 0, count: 12)
        #expect(hexString(try cipher.seal([], nonce: nonce, aad: [])) == "530f8afbc74536b9a963b4f1c4cb738b")
        let sealed = try cipher.seal([UInt8](repeating: 0, count: 16), nonce: nonce, aad: [])
        #expect(hexString(sealed) == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
        #expect(try cipher.open(sealed, nonce: nonce, aad: []) == [UInt8](repeating: 0, count: 16))
        var tampered = sealed
        tampered[3] ^= 0x80
        #expect(throws: CryptoError.self) { try cipher.open(tampered, nonce: nonce, aad: []) }
        #expect(throws: CryptoError.self) { try cipher.open(sealed, nonce: nonce, aad: [1]) }
        var other = nonce
        other[11] = 1
        #expect(throws: CryptoError.self) { try cipher.open(sealed, nonce: other, aad: []) }
        let withAAD = try cipher.seal(Array("footage".utf8), nonce: other, aad: Array("header".utf8))
        #expect(try cipher.open(withAAD, nonce: other, aad: Array("header".utf8)) == Array("footage".utf8))
    }
}
