import Evidence
import Glibc
import Synchronization
import LibCrypto
import Platform
import Policy
import Wire

/// A signed authorisation a supervisor gives a device (docs/FORMAT.md, "Tokens"): to stop a
/// recording, or to start or end a duty.
public struct AuthorizationToken: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case stop = "bodycam-stop-token/1"
        case duty = "bodycam-duty-token/1"
    }
    public let kind: Kind
    public let document: SignedDocument
    public let deviceID: String
    public let nonce: String
    public let notBefore: String
    public let notAfter: String
    public let issuer: String
    /// Duty tokens: "start" or "end"; stop tokens: "stop".
    public let action: String
    public let officerID: String
    public let dutyID: String

    public static func == (a: AuthorizationToken, b: AuthorizationToken) -> Bool { a.document == b.document }

    public init(document: SignedDocument, kind: Kind) throws {
        self.kind = kind
        self.document = document
        let what = kind == .stop ? "stop token" : "duty token"
        guard let object = document.body.object else { throw EvidenceError.malformed(what: what, reason: "body is not an object") }
        func string(_ key: String) throws -> String {
            guard let value = object[key]?.string else { throw EvidenceError.malformed(what: what, reason: "\(key): missing or not a string") }
            return value
        }
        deviceID = try string("device_id")
        nonce = try string("nonce")
        guard Hex.decode(nonce)?.count == 16 else { throw EvidenceError.malformed(what: what, reason: "nonce: not 16 bytes of hex") }
        notBefore = try string("not_before")
        notAfter = try string("not_after")
        for (key, value) in [("not_before", notBefore), ("not_after", notAfter)] where ClockParse.nanoseconds(iso8601: value) == nil {
            throw EvidenceError.malformed(what: what, reason: "\(key): not a time written YYYY-MM-DDTHH:MM:SS.ffffffZ")
        }
        issuer = try string("issuer")
        if kind == .duty {
            action = try string("action")
            guard action == "start" || action == "end" else { throw EvidenceError.malformed(what: what, reason: "action must be start or end") }
            officerID = try string("officer_id")
            dutyID = try string("duty_id")
        } else {
            action = "stop"
            officerID = ""
            dutyID = ""
        }
    }

    /// What the recording policy needs of the token.
    public var grant: TokenGrant {
        TokenGrant(action: action, issuer: issuer, nonce: nonce, officerID: officerID, dutyID: dutyID)
    }

    /// Parses either kind from a file's bytes.
    public static func parse(_ bytes: [UInt8]) throws -> AuthorizationToken {
        let text = String(decoding: bytes.prefix(40), as: UTF8.self)
        let kind: Kind = text.hasPrefix(Kind.duty.rawValue) ? .duty : .stop
        return try AuthorizationToken(document: SignedDocument.parse(bytes, expectedType: kind.rawValue, what: kind == .stop ? "stop token" : "duty token"), kind: kind)
    }

    /// The supervisor side (`bodycamctl token`): a token valid from now for `minutes`.
    public static func issue(_ kind: Kind, deviceID: String, issuer: String, key: Ed25519PrivateKey, minutes: Int,
                             action: String = "stop", officerID: String = "", dutyID: String = "",
                             now: Int64 = Clock.wallNanoseconds()) throws -> AuthorizationToken {
        var body: [String: JSONValue] = [
            "device_id": .string(deviceID), "issuer": .string(issuer), "nonce": .string(Hex.encode(try randomBytes(16))),
            "not_after": .string(Clock.iso8601(wallNanoseconds: now + Int64(minutes) * 60_000_000_000)),
            "not_before": .string(Clock.iso8601(wallNanoseconds: now - 60_000_000_000)),
        ]
        if kind == .duty {
            body["action"] = .string(action)
            body["officer_id"] = .string(officerID)
            body["duty_id"] = .string(dutyID)
        }
        return try AuthorizationToken(document: SignedDocument.sign(type: kind.rawValue, body: .object(body), with: key), kind: kind)
    }
}

/// Checks tokens against the device's trust store (supervisor Ed25519 public keys) and the
/// nonces already used. Used nonces are rebuilt from the audit journal at start, so a replay is
/// refused across restarts too.
public final class TokenVerifier: Sendable {
    public let deviceID: String
    private struct State {
        var supervisors: [Ed25519PublicKey]
        var usedNonces: Set<String>
    }
    private let state: Mutex<State>
    /// The supervisors' keys trusted now.
    public var supervisors: [Ed25519PublicKey] { state.withLock { $0.supervisors } }

    public init(deviceID: String, supervisors: [Ed25519PublicKey], usedNonces: Set<String> = []) {
        self.deviceID = deviceID
        state = Mutex(State(supervisors: supervisors, usedNonces: usedNonces))
    }

    /// The member of a journal record's fields that names a token's nonce.
    public static let nonceMember = "nonce"

    /// The nonce a journal record names (every accepted token is journaled with its nonce).
    public static func usedNonce(in record: JournalRecord) -> String? {
        record.fields[nonceMember]?.string
    }

    /// Loads every `*.pub` Ed25519 key in a folder.
    public static func loadSupervisors(folder: String) throws -> [Ed25519PublicKey] {
        try directoryEntries(folder).filter { $0.hasSuffix(".pub") }.map { try KeyFile.readVerifyingKey(folder + "/" + $0) }
    }

    /// Trusts these supervisor keys from now on (a reload of the trust store); used nonces stay used.
    public func replaceSupervisors(_ keys: [Ed25519PublicKey]) {
        state.withLock { $0.supervisors = keys }
    }

    /// Checks a token; on success marks its nonce used (the caller journals it) and returns what
    /// the policy needs of it. `clockTrusted` false (docs/POLICY.md, "An untrusted clock"): a duty
    /// token outside its validity by this clock is taken and flagged (`clockUnchecked`), since
    /// refusing it would keep the camera from recording; a stop token is refused, naming the clock.
    public func grant(_ bytes: [UInt8], expecting kind: AuthorizationToken.Kind, now: String,
                      clockTrusted: Bool = true) -> Result<TokenGrant, TokenRefusal> {
        var unchecked = false
        return check(bytes, expecting: kind, now: now, clockTrusted: clockTrusted, unchecked: &unchecked).map { token in
            var grant = token.grant
            grant.clockUnchecked = unchecked
            return grant
        }
    }

    /// Checks a token; on success marks its nonce used (the caller journals it).
    public func check(_ bytes: [UInt8], expecting kind: AuthorizationToken.Kind, now: String) -> Result<AuthorizationToken, TokenRefusal> {
        var unchecked = false
        return check(bytes, expecting: kind, now: now, clockTrusted: true, unchecked: &unchecked)
    }

    private func check(_ bytes: [UInt8], expecting kind: AuthorizationToken.Kind, now: String, clockTrusted: Bool,
                       unchecked: inout Bool) -> Result<AuthorizationToken, TokenRefusal> {
        guard let token = try? AuthorizationToken.parse(bytes) else { return .failure(.malformed) }
        guard token.kind == kind else { return .failure(.wrongKind) }
        guard supervisors.contains(where: { token.document.isSigned(by: $0) }) else { return .failure(.unknownSigner) }
        guard token.deviceID == deviceID else { return .failure(.wrongDevice) }
        if now < token.notBefore || now > token.notAfter {
            if clockTrusted { return .failure(now < token.notBefore ? .notYetValid : .expired) }
            guard kind == .duty else { return .failure(.clockUntrusted) }
            unchecked = true
        }
        // Check and mark in one step, so two requests with one token cannot both pass.
        let fresh = state.withLock { $0.usedNonces.insert(token.nonce).inserted }
        return fresh ? .success(token) : .failure(.replayed)
    }
}
