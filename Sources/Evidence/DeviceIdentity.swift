import Glibc
import LibCrypto
import Pipeline
import Platform
import Wire

/// The device's signing key and certificate as the daemon finds them at start.
public struct DeviceIdentity: Sendable {
    public let key: Ed25519PrivateKey
    public let certificate: DeviceCertificate?
    /// Why the device counts as unprovisioned (nil when it is provisioned).
    public let unprovisionedReason: String?
    public var isProvisioned: Bool { unprovisionedReason == nil }

    /// Loads the key (making one when there is none, so that even an unprovisioned device signs
    /// a verifiable chain) and checks the certificate names this device and this key.
    public static func load(keyPath: String, certificatePath: String, deviceID: String) throws -> DeviceIdentity {
        var reason: String? = nil
        let key: Ed25519PrivateKey
        if access(keyPath, F_OK) == 0 {
            key = try KeyFile.readSigningKey(keyPath)
        } else {
            key = try Ed25519PrivateKey()
            let folder = String(keyPath[..<(keyPath.lastIndex(of: "/") ?? keyPath.startIndex)])
            if !folder.isEmpty && mkdir(folder, 0o700) < 0 && errno != EEXIST { throw SystemError.file(path: folder, call: "mkdir", errno: errno) }
            try KeyFile.write(key, to: keyPath)
            reason = "no device key: made one at \(keyPath); it has no certificate"
        }
        var certificate: DeviceCertificate? = nil
        if access(certificatePath, F_OK) == 0 {
            let candidate = try DeviceCertificate.read(certificatePath)
            if candidate.deviceKey != key.publicKey {
                reason = reason ?? "the certificate \(certificatePath) is for another key"
            } else if candidate.deviceID != deviceID {
                reason = reason ?? "the certificate \(certificatePath) is for device \(candidate.deviceID), not \(deviceID)"
            } else {
                certificate = candidate
            }
        } else {
            reason = reason ?? "no certificate at \(certificatePath)"
        }
        return DeviceIdentity(key: key, certificate: certificate, unprovisionedReason: reason)
    }
}
