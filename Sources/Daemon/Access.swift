import ControlProtocol
import Glibc
import Configuration
import Capture
import Pipeline
import Evidence
import Tokens
import Policy
import Controls
import LibAV
import Platform
import Wire
import CShims

/// Who may ask what of the control socket, decided from the peer's credentials (SO_PEERCRED):
/// root everything; the daemon's own user and the technicians' group status, diagnostics and
/// marks; anyone who can reach the socket may present a stop or duty token (the token is the
/// authorisation); simulation and key or configuration changes are root only.
public struct ControlAccess: Sendable {
    public let technicianGroup: gid_t?
    public let daemonUID: uid_t

    /// `technicianGroupName` is looked up once; when it does not exist only root and the daemon's
    /// user are technicians.
    public init(technicianGroupName: String, daemonUID: uid_t = getuid()) {
        var group = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        getgrnam_r(technicianGroupName, &group, &buffer, buffer.count, &result)
        technicianGroup = result != nil ? group.gr_gid : nil
        self.daemonUID = daemonUID
    }

    /// The groups of a user (primary and supplementary), by uid.
    static func groups(of uid: uid_t, primary: gid_t) -> [gid_t] {
        var password = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &password, &buffer, buffer.count, &result) == 0, result != nil, let name = password.pw_name else { return [primary] }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(name, primary, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, primary, &groups, &count)
        }
        return Array(groups.prefix(Int(max(count, 0))))
    }

    public func role(of peer: Peer) -> ControlRole {
        if peer.uid == 0 { return .root }
        if peer.uid == daemonUID { return .technician }
        if let technicianGroup, peer.gid == technicianGroup || ControlAccess.groups(of: peer.uid, primary: peer.gid).contains(technicianGroup) {
            return .technician
        }
        return .anyone
    }

    public func allows(_ command: ControlCommand, peer: Peer) -> Bool {
        let have = role(of: peer)
        switch command.requiredRole {
        case .anyone: return true
        case .technician: return have != .anyone
        case .root: return have == .root
        }
    }
}
