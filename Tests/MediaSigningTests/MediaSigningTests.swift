import H264
import Capture
import Crypto
import Foundation
import LibAV
import LibCrypto
import MediaSigning
import PKI
import Pipeline
import Testing
import TestSupport
import X509

/// A CA, a device's media-signing key and certificate, and a signed stream of five GOPs.
struct SignedStream {
    let caPEM: [UInt8]
    let signingKeyPEM: [UInt8]
    let leafPEM: [UInt8]
    /// Access units in Annex B, each with whether it is a keyframe.
    let plain: [(data: [UInt8], keyframe: Bool)]
    var signed: [(data: [UInt8], keyframe: Bool)]

    static func make(device: String = "BC-MS-1", frames: Int = 150, subject: TLSSubject? = nil) throws -> SignedStream {
        let ca = try TLSAuthority.create(name: "test authority")
        let key = P256.Signing.PrivateKey()
        let leaf = try ca.issue(subject ?? .mediaSigning(deviceID: device), publicKey: key.publicKey, days: 30)
        let caPEM = Array((try ca.certificate.serializeAsPEM().pemString + "\n").utf8)
        let leafPEM = Array((try leaf.serializeAsPEM().pemString + "\n").utf8)
        let keyPEM = Array(key.pemRepresentation.utf8)
        let plain = try encode(frames: frames)
        let stream = SignedStream(caPEM: caPEM, signingKeyPEM: keyPEM, leafPEM: leafPEM, plain: plain, signed: [])
        return try stream.signedAgain(device: device)
    }

    /// The same pictures signed by a fresh signer with the same key (as after a restart).
    func signedAgain(device: String = "BC-MS-1") throws -> SignedStream {
        let signer = MediaSigner(key: try ECDSASigningKey(pem: signingKeyPEM), certificatePEM: leafPEM,
                                 vendor: .init(firmware: "bodycam test", serial: device, manufacturer: "bodycam"))
        let start = Int64(Date().timeIntervalSince1970 * 1e9)
        var copy = self
        copy.signed = plain.enumerated().map { index, unit in
            (signer.process(accessUnit: unit.data, unixNanoseconds: start + Int64(index) * 33_333_333), unit.keyframe)
        }
        return copy
    }

    /// The test pattern through libx264 (zerolatency: several slices a picture), one IDR a second.
    static func encode(frames: Int) throws -> [(data: [UInt8], keyframe: Bool)] {
        _ = quietLibAV
        let format = FrameFormat(width: 320, height: 240, pixelFormat: .yuv420p, framesPerSecond: 30)
        let source = try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames)
        let encoder = try makeVideoEncoder(settings: VideoEncoderSettings(), format: format)
        try source.start()
        var packets: [EncodedPacket] = []
        while let captured = try source.nextFrame() { packets += try encoder.encode(captured.frame) }
        packets += try encoder.flush()
        return packets.map { ($0.data, $0.isKeyframe) }
    }

    func validate(_ units: [(data: [UInt8], keyframe: Bool)], roots: [UInt8]? = nil, expecting device: String? = nil) throws -> MediaValidationReport {
        let validator = MediaValidator(roots: try X509Certificate.chain(pem: roots ?? caPEM), expectedDevice: device)
        for unit in units { validator.add(accessUnit: H264Units.annexB(unit.data)) }
        return validator.finish()
    }

    /// The access units from the `gop`th IDR (0-based) on.
    func fromGOP(_ gop: Int, of units: [(data: [UInt8], keyframe: Bool)]) -> [(data: [UInt8], keyframe: Bool)] {
        let starts = units.indices.filter { units[$0].keyframe }
        return Array(units[starts[gop]...])
    }
}

@Suite("ONVIF Media Signing", .serialized)
struct MediaSigningTests {
    @Test("a signed stream validates as authentic: every GOP but the last (whose SEI comes with the next) verified, the signer's certificate trusted")
    func authentic() throws {
        let stream = try SignedStream.make()
        let gops = stream.plain.filter(\.keyframe).count
        #expect(gops == 5)
        let report = try stream.validate(stream.signed, expecting: "BC-MS-1")
        #expect(report.authenticity == .authentic, "\(report.problems)")
        #expect(report.certificateTrusted && report.signer?.contains("CN=BC-MS-1") == true)
        #expect(report.verifiedGOPs == gops - 1 && report.signedGOPs == gops - 1)
        #expect(report.unsignedTrailingPictures == 30)
        #expect(report.gops.map(\.counter) == (1...UInt32(gops - 1)).map { $0 })
        // The SEIs are all the signer added: every other byte is the encoder's.
        // In the access unit after each IDR but the first.
        let keyframes = stream.signed.indices.filter { stream.signed[$0].keyframe }
        #expect(keyframes.dropFirst().allSatisfy { H264Units.annexB(stream.signed[$0 + 1].data).contains(where: SigningSEI.isSigningSEI) })
        #expect(stream.signed.filter { H264Units.annexB($0.data).contains(where: SigningSEI.isSigningSEI) }.count == gops - 1)
        #expect(zip(stream.plain, stream.signed).allSatisfy { plain, signed in
            H264Units.annexB(signed.data).filter { !SigningSEI.isSigningSEI($0) }.map(Array.init) == H264Units.annexB(plain.data).map(Array.init)
        })
    }

    @Test("a clip cut at any GOP validates: its first SEI signs a GOP outside it")
    func cutClip() throws {
        let stream = try SignedStream.make()
        for gop in 1...3 {
            let report = try stream.validate(stream.fromGOP(gop, of: stream.signed))
            #expect(report.authenticity == .authentic, "from GOP \(gop): \(report.problems)")
            #expect(report.gops.first?.result == "outside")
            #expect(report.verifiedGOPs == 4 - gop)
        }
    }

    @Test("one byte changed in a P-frame: not authentic, naming the picture")
    func changedByte() throws {
        var stream = try SignedStream.make()
        let index = 45  // a P-frame of the second GOP
        #expect(!stream.signed[index].keyframe)
        var data = stream.signed[index].data
        let slice = H264Units.annexB(data).first(where: H264Units.isSlice)!
        data[slice.startIndex + slice.count / 2] ^= 0x10
        stream.signed[index].data = data
        let report = try stream.validate(stream.signed)
        #expect(report.authenticity == .notAuthentic)
        #expect(report.problems.contains { $0.contains("picture \(index) is not what was signed") }, "\(report.problems)")
    }

    @Test("a GOP dropped from the middle: not authentic")
    func droppedGOP() throws {
        let stream = try SignedStream.make()
        let starts = stream.signed.indices.filter { stream.signed[$0].keyframe }
        let cut = Array(stream.signed[..<starts[2]] + stream.signed[starts[3]...])
        let report = try stream.validate(cut)
        #expect(report.authenticity == .notAuthentic, "\(report.problems)")
        #expect(!report.problems.isEmpty)
    }

    @Test("encoded again (the SEIs gone): not signed; signed by a key another CA certified: not authentic")
    func reencodedAndForeign() throws {
        let stream = try SignedStream.make()
        let reencoded = try stream.validate(stream.plain)
        #expect(reencoded.authenticity == .notSigned)
        #expect(reencoded.problems.first?.contains("not signed") == true)
        let other = try SignedStream.make(device: "BC-OTHER")
        let foreign = try stream.validate(other.signed)
        #expect(foreign.authenticity == .notAuthentic)
        #expect(foreign.problems.contains { $0.contains("not trusted") }, "\(foreign.problems)")
        // The same CA, another device than the file claims.
        let wrongDevice = try other.validate(other.signed, expecting: "BC-MS-1")
        #expect(wrongDevice.authenticity == .notAuthentic)
        #expect(wrongDevice.problems.contains { $0.contains("signed by BC-OTHER, not by BC-MS-1") }, "\(wrongDevice.problems)")
    }

    @Test("the SEI reads back as written; emulation prevention keeps start codes out of it; an altered SEI fails its signature")
    func seiRoundTrip() throws {
        let stream = try SignedStream.make()
        let second = stream.signed.indices.filter { stream.signed[$0].keyframe }[1] + 1
        let unit = try #require(H264Units.annexB(stream.signed[second].data).first(where: SigningSEI.isSigningSEI))
        // No start code inside the unit: 00 00 0x (x ≤ 2) never appears.
        #expect(!zip(unit.indices.dropLast(2), unit.indices.dropFirst(2)).contains { unit[$0] == 0 && unit[$0 + 1] == 0 && unit[$1] <= 2 })
        let sei = try SigningSEI.parse(unit)
        #expect(sei.general?.counter == 1 && sei.general?.linkedHash == [UInt8](repeating: 0, count: 32))
        #expect(sei.hashIsSHA256 && sei.certificatePEM == stream.leafPEM && sei.vendor?.serial == "BC-MS-1")
        #expect(sei.hashList?.count == Int(sei.general?.hashCount ?? 0) && (sei.hashList?.count ?? 0) >= 30)
        #expect(sei.general?.version == [26, 6, 0])
        // One byte of the vendor information changed: the signature no longer verifies.
        var altered = stream
        let keyframe = altered.signed.indices.filter { altered.signed[$0].keyframe }[1] + 1
        var data = altered.signed[keyframe].data
        let inData = H264Units.annexB(data).first(where: SigningSEI.isSigningSEI)!
        let at = data[inData.startIndex...].firstRange(of: Array("bodycam test".utf8))!.lowerBound
        data[at] = UInt8(ascii: "B")
        altered.signed[keyframe].data = data
        let report = try altered.validate(altered.signed)
        #expect(report.authenticity == .notAuthentic)
        #expect(report.problems.contains { $0.contains("signature does not verify") }, "\(report.problems)")
    }

    /// Every access unit index with a signing SEI in it.
    func carriers(_ stream: SignedStream) -> [Int] {
        stream.signed.indices.filter { H264Units.annexB(stream.signed[$0].data).contains(where: SigningSEI.isSigningSEI) }
    }

    @Test("an SEI moved to the end of its GOP and pictures inserted after it: not authentic")
    func movedSEIAndInsertedPictures() throws {
        let stream = try SignedStream.make()
        let carrier = carriers(stream)[0]  // the picture after the second IDR: it signs the first GOP
        var units = stream.signed.map { H264Units.annexB($0.data).map(Array.init) }
        let sei = units[carrier].first { SigningSEI.isSigningSEI($0[...]) }!
        units[carrier].removeAll { SigningSEI.isSigningSEI($0[...]) }
        units[carrier - 2].append(sei)  // after the first GOP's last picture, before the second IDR
        let forged = Array(repeating: units[100], count: 5)  // P-frames from later on
        units.insert(contentsOf: forged, at: carrier - 1)
        let validator = MediaValidator(roots: try X509Certificate.chain(pem: stream.caPEM))
        for unit in units { validator.add(accessUnit: unit.map { $0[...] }) }
        let report = validator.finish()
        #expect(report.authenticity == .notAuthentic, "\(report.problems)")
        #expect(report.problems.contains { $0.contains("no signature can cover") }, "\(report.problems)")
    }

    @Test("pictures before the first IDR, and pictures after the last SEI once it is stripped: not authentic")
    func uncoveredEnds() throws {
        let stream = try SignedStream.make()
        let prefixed = Array(stream.signed[40..<45]) + stream.signed
        let early = try stream.validate(prefixed)
        #expect(early.authenticity == .notAuthentic && early.problems.contains { $0.contains("no signature can cover") }, "\(early.problems)")
        // The last SEI gone, and a second of pictures after it.
        var stripped = stream.signed
        let last = carriers(stream).last!
        stripped[last].data = H264Units.annexB(stripped[last].data).filter { !SigningSEI.isSigningSEI($0) }.flatMap { [0, 0, 0, 1] + Array($0) }
        stripped += Array(stream.signed[100..<130])
        let late = try stream.validate(stripped)
        #expect(late.authenticity == .notAuthentic, "\(late.problems)")
        #expect(late.problems.contains { $0.contains("a GOP whose signature is not in the stream") }, "\(late.problems)")
        // The last SEI gone and nothing added: its GOP's pictures came, its signature did not.
        var cut = stream.signed
        cut[last].data = stripped[last].data
        #expect(try stream.validate(cut).authenticity == .notAuthentic)
        // A whole GOP added after the genuine stream (an IDR and 29 pictures): the last genuine GOP's SEI
        // should have come after that IDR, and no signature covers the added one.
        let forged = stream.signed + Array(stream.plain[0..<30])
        let added = try stream.validate(forged)
        #expect(added.authenticity == .notAuthentic, "\(added.problems)")
        // Ending with the IDR that closed the last GOP (a stream stopped there) is the dangling end: authentic.
        let endsAtIDR = try stream.validate(stream.signed + [stream.plain[0]])
        #expect(endsAtIDR.authenticity == .authentic && endsAtIDR.unsignedTrailingPictures == 31, "\(endsAtIDR.problems)")
    }

    @Test("a TLS certificate of the same CA does not sign media")
    func notAMediaSigningCertificate() throws {
        let stream = try SignedStream.make(subject: .device(id: "BC-MS-1"))
        let report = try stream.validate(stream.signed, expecting: "BC-MS-1")
        #expect(report.authenticity == .notAuthentic)
        #expect(report.problems.contains { $0.contains("not a media-signing certificate") }, "\(report.problems)")
    }

    @Test("the camera's signer starting again (a restart) is reported with the GOP it left unsigned; the rest is authentic")
    func signingRestart() throws {
        let first = try SignedStream.make()
        let second = try first.signedAgain()
        let report = try first.validate(first.signed + second.signed)
        #expect(report.authenticity == .authentic, "\(report.problems)")
        #expect(report.signingRestarts.count == 1 && report.unsignedPicturesAtRestarts == 30)
        #expect(report.verifiedGOPs == 8)
    }

    @Test("an SEI with a long hash list is still found; out-of-range timestamps do not trap")
    func longListsAndHostileTimes() throws {
        let stream = try SignedStream.make()
        let key = try ECDSASigningKey(pem: stream.signingKeyPEM)
        var sei = SigningSEI()
        sei.hashIsSHA256 = true
        sei.hashList = (0..<400).map { [UInt8](repeating: UInt8($0 % 251), count: 32) }
        sei.general = .init(startTimestamp: Int64.min, endTimestamp: Int64.max, counter: 1, hashCount: 400,
                            gopHash: [UInt8](repeating: 1, count: 32), linkedHash: [UInt8](repeating: 0, count: 32))
        let unit = try sei.encode(maximumSignatureBytes: key.maximumSignatureBytes, sign: { try key.sign(digest: $0) }, hash: { try SHA256.hash($0) })
        #expect(unit.count > 12_800)
        #expect(SigningSEI.isSigningSEI(unit[...]))
        #expect(try SigningSEI.parse(unit[...]).hashList?.count == 400)
        #expect(SigningSEI.unixSeconds(timestamp: Int64.min) < 0 && SigningSEI.unixSeconds(timestamp: Int64.max) > 0)
        let validator = MediaValidator(roots: try X509Certificate.chain(pem: stream.caPEM))
        validator.add(accessUnit: [unit[...]])
        #expect(validator.finish().authenticity == .notAuthentic)
    }
}
