import Evidence
import LibCrypto
import Platform
import Tokens
import Wire

/// The seed corpus of each target, made from the repository's own files (docs/vectors, the
/// shipped configuration and board profiles) and from documents the library issues, so that
/// the fuzzer starts from inputs that reach deep into each parser.
enum Seeds {
    /// (target, file name, bytes) for every seed; `root` is the repository.
    static func all(root: String) throws -> [(FuzzTarget, String, [UInt8])] {
        var seeds: [(FuzzTarget, String, [UInt8])] = []
        for name in try directoryEntries(root + "/docs/vectors") where name.hasSuffix(".json") {
            let vector = try JSONParser.parse(try readWholeFile(root + "/docs/vectors/" + name, limit: 1 << 20))
            let stem = String(name.dropLast(".json".count))
            if let file = vector["file"]?.string.flatMap(Base64.decode) { seeds.append((.segment, stem, file)) }
            if let journal = vector["journal"]?.string.flatMap(Base64.decode) { seeds.append((.journal, stem, journal)) }
            if let document = vector["document"]?.string.flatMap(Base64.decode) {
                seeds.append((.manifest, stem, document))
                seeds.append((.certificate, stem, document))
                seeds.append((.ack, stem, document))
                seeds.append((.token, stem, document))
            }
        }
        for folder in ["Hardware/config", "Hardware/boards"] {
            for name in try directoryEntries(root + "/" + folder) where name.hasSuffix(".toml") {
                seeds.append((.config, name, try readWholeFile(root + "/" + folder + "/" + name, limit: 1 << 20)))
            }
        }

        // Documents of every kind, as the tools issue them.
        let device = try Ed25519PrivateKey(), office = try X25519PrivateKey()
        let manifestBody: [String: JSONValue] = [
            "chunks": .integer(3), "ciphertext_bytes": .integer(4096), "ciphertext_sha256": .string(String(repeating: "ab", count: 32)),
            "clock_error_us": .integer(0), "clock_synced": .boolean(true), "codec": .string("h264"), "device_id": .string("BC-0001"),
            "duration_us": .integer(1_000_000), "duty_id": .string(""), "end_monotonic_ns": .integer(2_000_000_000),
            "end_utc": .string("2026-06-01T00:00:01.000000Z"), "fps": .integer(30), "frames": .integer(30), "frames_dropped": .integer(0),
            "height": .integer(240), "marks": .array([.object(["label": .string("x"), "monotonic_ns": .integer(1), "source": .string("button"),
                                                              "utc": .string("2026-06-01T00:00:00.500000Z")])]),
            "officer_id": .string("OFC-1"), "plaintext_bytes": .integer(4000),
            "previous_manifest_sha256": .string(String(repeating: "0", count: 64)), "recipients": .array([.string(office.publicKey.keyID)]),
            "recovered": .boolean(false), "segment_file": .string("seg-000001-20260601T000000Z.bcseg"), "sequence": .integer(1),
            "software": .string("bodycam"), "start_monotonic_ns": .integer(1_000_000_000), "start_utc": .string("2026-06-01T00:00:00.000000Z"),
            "torn_tail_bytes": .integer(0), "unprovisioned": .boolean(false), "width": .integer(320),
        ]
        let manifestDocument = try SignedDocument.sign(type: Manifest.type, body: .object(manifestBody), with: device)
        seeds.append((.manifest, "issued", manifestDocument.bytes))
        let manifest = try Manifest(document: manifestDocument)
        let now = Int64(1_780_000_000) * 1_000_000_000
        seeds.append((.ack, "issued", try OffloadAcknowledgement.issue(deviceID: "BC-0001", manifests: [manifest], key: device).document.bytes))
        // One signed by an office key the authority (here the device key) certified, which carries the certificate.
        let officeKey = try Ed25519PrivateKey(seed: SecretBytes(try SHA256.hash(Array("fuzz office key".utf8))))
        let keyCertificate = try KeyCertificate.issue(holder: "office-1", key: officeKey.publicKey, purpose: KeyCertificate.offloadAcknowledgement,
                                                      authority: device, notBefore: "2026-01-01T00:00:00.000000Z", notAfter: "2027-01-01T00:00:00.000000Z")
        seeds.append((.ack, "office-key", try OffloadAcknowledgement.issue(deviceID: "BC-0001", manifests: [manifest], key: officeKey,
                                                                           certificate: keyCertificate, now: now).document.bytes))
        seeds.append((.certificate, "issued", try DeviceCertificate.issue(deviceID: "BC-0001", deviceKey: device.publicKey, authority: device,
                                                                          notBefore: "2026-01-01T00:00:00.000000Z",
                                                                          notAfter: "2027-01-01T00:00:00.000000Z").document.bytes))
        seeds.append((.token, "stop", try AuthorizationToken.issue(.stop, deviceID: "BC-0001", issuer: "sgt", key: device, minutes: 5, now: now).document.bytes))
        seeds.append((.token, "duty", try AuthorizationToken.issue(.duty, deviceID: "BC-0001", issuer: "sgt", key: device, minutes: 5,
                                                                   action: "start", officerID: "OFC-1", dutyID: "D-1", now: now).document.bytes))
        for (type, raw) in [(KeyFile.ed25519Secret, device.seed.bytes), (KeyFile.ed25519Public, device.publicKey.raw),
                            (KeyFile.x25519Secret, office.rawPrivate.bytes), (KeyFile.x25519Public, office.publicKey.raw)] {
            seeds.append((.keyfile, String(type.prefix { $0 != "/" }), Array("\(type) \(Base64.encode(raw))\n".utf8)))
        }
        let requests = [#"{"cmd":"status"}"#, #"{"cmd":"stop","token":"AAAA","version":1}"#, #"{"cmd":"mark","label":"stop at gate 3"}"#,
                        #"{"cmd":"sim","button":"REC_BTN","action":"hold","ms":3500}"#, #"{"cmd":"sim","battery":15}"#,
                        #"{"cmd":"sim","dock":true}"#, #"{"cmd":"install_certificate","certificate":"Ym9keWNhbQ=="}"#]
        for (index, request) in requests.enumerated() { seeds.append((.request, "request-\(index)", Array(request.utf8))) }
        return seeds
    }
}
