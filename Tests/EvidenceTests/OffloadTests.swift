import Synchronization
import Capture
import LibAV
import Platform
import TestSupport
import Wire
import Foundation
import LibCrypto
import Testing
@testable import Evidence
@testable import Pipeline

@Suite("Offload and storage")
struct OffloadTests {
    func manifests(_ store: String) throws -> [Manifest] {
        try names(store, suffix: ".manifest").map { try Manifest.read(try readWholeFile(store + "/" + $0), what: $0) }.sorted { $0.sequence < $1.sequence }
    }

    @Test("an acknowledgement from the authority deletes exactly the segments it names; the store still verifies")
    func acknowledged() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let acked = Array(try manifests(store).prefix(2))
        let ack = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: acked, key: pristine.keys.authority)
        let result = try vault.applyOffload(ack.document.bytes, authority: pristine.keys.authority.publicKey)
        #expect(result.deleted == [1, 2] && result.refused.isEmpty)
        #expect(try names(store, suffix: ".bcseg").count == 3)
        #expect(try names(store, suffix: ".manifest").count == 5, "manifests stay")
        let report = try StoreVerifier.verify(store: store, authority: pristine.keys.authority.publicKey)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.offloaded == [1, 2] && report.verifiedSequences == [3, 4, 5])
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil)
        #expect(journal.records.filter { $0.kind == "segment_offloaded" }.count == 2)
        // Without the acknowledgement in the store, the deletions are unproven.
        try FileManager.default.removeItem(atPath: store + "/" + ack.fileName)
        let unproven = try StoreVerifier.verify(store: store, authority: pristine.keys.authority.publicKey)
        #expect(Set(unproven.problems.map(\.code)) == ["offload_unproven", "segment_missing"])
    }

    @Test("forged, foreign and mismatched acknowledgements are refused and journaled; nothing is deleted")
    func refused() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let all = try manifests(store)
        let forged = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: all, key: Ed25519PrivateKey())
        #expect(throws: EvidenceError.badSignature(what: "offload acknowledgement \(forged.ackID): not signed by the authority \(pristine.keys.authority.publicKey.keyID)")) {
            try vault.applyOffload(forged.document.bytes, authority: pristine.keys.authority.publicKey)
        }
        let foreign = try OffloadAcknowledgement.issue(deviceID: "BC-OTHER", manifests: all, key: pristine.keys.authority)
        #expect(throws: EvidenceError.self) { try vault.applyOffload(foreign.document.bytes, authority: pristine.keys.authority.publicKey) }
        #expect(throws: EvidenceError.self) { try vault.applyOffload(Array("garbage".utf8), authority: pristine.keys.authority.publicKey) }
        // An entry whose hash does not match what the device holds.
        var body = try #require(try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: [all[0]], key: pristine.keys.authority).document.body.object)
        body["segments"] = .array([.object(["sequence": .integer(1), "ciphertext_sha256": .string(String(repeating: "ab", count: 32))])])
        let mismatched = try SignedDocument.sign(type: OffloadAcknowledgement.type, body: .object(body), with: pristine.keys.authority)
        let result = try vault.applyOffload(mismatched.bytes, authority: pristine.keys.authority.publicKey)
        #expect(result.deleted.isEmpty && result.refused.count == 1)
        #expect(try names(store, suffix: ".bcseg").count == 5)
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: pristine.keys.device.publicKey)
        #expect(journal.records.filter { $0.kind == "offload_refused" }.count == 4)
        #expect(journal.problems.isEmpty)
    }

    /// An office key and the authority's certificate for it, valid over 2026 unless told.
    func officeKey(purpose: String = KeyCertificate.offloadAcknowledgement, authority: Ed25519PrivateKey = Pristine.shared.keys.authority,
                   from: String = "2026-01-01T00:00:00.000000Z", to: String = "2026-12-31T23:59:59.000000Z") throws -> (Ed25519PrivateKey, KeyCertificate) {
        let key = try Ed25519PrivateKey()
        return (key, try KeyCertificate.issue(holder: "office-1", key: key.publicKey, purpose: purpose, authority: authority, notBefore: from, notAfter: to))
    }

    static let midYear = ClockParse.nanoseconds(iso8601: "2026-06-01T00:00:00.000000Z")!

    @Test("an office key the authority certified signs acknowledgements: kept in the store, segments released only when due, the store verifies")
    func certifiedOfficeKey() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let authority = pristine.keys.authority.publicKey
        let (key, certificate) = try officeKey()
        #expect(try vault.firstUnacknowledged(authority: authority) == 1)
        let ack = try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: Array(try manifests(store).prefix(3)), key: key,
                                                   certificate: certificate, now: OffloadTests.midYear)
        let (received, refused) = try vault.receiveOffload(ack.document.bytes, authority: authority)
        #expect(received.ackID == ack.ackID && refused.isEmpty)
        #expect(FileManager.default.fileExists(atPath: store + "/" + ack.fileName))
        #expect(try vault.firstUnacknowledged(authority: authority) == 4)
        // Retention: nothing is due yet; then segment 2 only; then the rest.
        #expect(try vault.releaseOffloaded(authority: authority, due: { _, _ in false }) == [])
        #expect(try names(store, suffix: ".bcseg").count == 5)
        #expect(try vault.releaseOffloaded(authority: authority, due: { sequence, _ in sequence == 2 }) == [2])
        #expect(try vault.releaseOffloaded(authority: authority, due: { _, _ in true }) == [1, 3])
        #expect(try vault.firstUnacknowledged(authority: authority) == 4)
        let report = try StoreVerifier.verify(store: store, authority: authority)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.offloaded == [1, 2, 3] && report.verifiedSequences == [4, 5])
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: pristine.keys.device.publicKey)
        #expect(journal.records.filter { $0.kind == "offload_received" }.count == 1)
        #expect(journal.records.filter { $0.kind == "segment_offloaded" }.map { $0.fields["sequence"]?.integer } == [2, 1, 3])
        // Receiving the same acknowledgement again changes nothing.
        _ = try vault.receiveOffload(ack.document.bytes, authority: authority)
        #expect(AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: nil).records.filter { $0.kind == "offload_received" }.count == 1)
    }

    @Test("office keys the authority does not stand behind are refused with the reason: another purpose, another authority, outside the validity, revoked, a key the certificate does not name")
    func uncertifiedOfficeKeys() throws {
        let pristine = Pristine.shared
        let store = try pristine.copy()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let vault = try makeVault(store, keys: pristine.keys)
        let authority = pristine.keys.authority.publicKey
        let all = try manifests(store)
        func attempt(_ key: Ed25519PrivateKey, _ certificate: KeyCertificate, now: Int64 = OffloadTests.midYear, revocations: RevocationList? = nil) -> String {
            do {
                var body = try #require(try OffloadAcknowledgement.issue(deviceID: "BC-EV-1", manifests: all, key: pristine.keys.authority,
                                                                         now: now).document.body.object)
                body["signer_certificate"] = .string(Base64.encode(certificate.document.bytes))
                let document = try SignedDocument.sign(type: OffloadAcknowledgement.type, body: .object(body), with: key)
                _ = try vault.receiveOffload(document.bytes, authority: authority, revocations: revocations)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let (wrongPurpose, wrongPurposeCertificate) = try officeKey(purpose: "export-report")
        #expect(attempt(wrongPurpose, wrongPurposeCertificate).contains("is for export-report, not offload-acknowledgement"))
        let (foreign, foreignCertificate) = try officeKey(authority: try Ed25519PrivateKey())
        #expect(attempt(foreign, foreignCertificate).contains("is not the authority's"))
        let (expired, expiredCertificate) = try officeKey(to: "2026-03-01T00:00:00.000000Z")
        #expect(attempt(expired, expiredCertificate).contains("is valid from 2026-01-01T00:00:00.000000Z to 2026-03-01T00:00:00.000000Z, not at 2026-06-01"))
        let (revoked, revokedCertificate) = try officeKey()
        let list = try RevocationList.issue([.init(serial: revokedCertificate.serial, revokedUTC: "2026-05-01T00:00:00.000000Z", reason: "stolen")],
                                            key: pristine.keys.authority)
        #expect(attempt(revoked, revokedCertificate, revocations: list).contains("is revoked"))
        let (_, goodCertificate) = try officeKey()
        #expect(attempt(try Ed25519PrivateKey(), goodCertificate).contains("not signed by the key its certificate names"))
        #expect(attempt(revoked, revokedCertificate) == "accepted", "the control: the same acknowledgement without the revocation")
        let journal = AuditJournal.parse(try readWholeFile(store + "/journal.log"), key: pristine.keys.device.publicKey)
        #expect(journal.records.filter { $0.kind == "offload_refused" }.count == 5)
        #expect(try names(store, suffix: ".bcseg").count == 5, "receiving deletes nothing")
        #expect(try names(store, suffix: ".ack").count == 1)
    }

    @Test("the storage monitor reports each change of level once")
    func storageLevels() throws {
        let space = Mutex<Int64>(10_000)
        let monitor = StorageMonitor(path: "/", reserveBytes: 5_000, floorBytes: 1_000, freeBytes: { _ in space.withLock { $0 } })
        #expect(try monitor.check() == nil)
        space.withLock { $0 = 4_000 }
        #expect(try monitor.check().map { $0.level } == .low)
        #expect(try monitor.check() == nil)
        space.withLock { $0 = 999 }
        #expect(try monitor.check().map { $0.level } == .critical)
        space.withLock { $0 = 6_000 }
        #expect(try monitor.check().map { $0.level } == .ok)
        let real = StorageMonitor(path: NSTemporaryDirectory(), reserveBytes: 2, floorBytes: 1)
        #expect(try real.check() == nil, "any real disk has more than two bytes free")
    }
}
