import Evidence
import Glibc
import Platform
import Synchronization
import Wire

/// Why the office refused to write an upload.
public enum UploadConflict: Error, Equatable, CustomStringConvertible {
    /// The piece starts beyond what the office holds: the device must resume at `size`.
    case gap(size: Int64)
    /// The piece overlaps what the office holds with other bytes: a file of evidence never
    /// changes once written, so this is refused (and journaled), never merged.
    case differs(at: Int64, size: Int64)
    public var description: String {
        switch self {
        case .gap(let size): return "the office holds \(size) bytes of this file: resume there"
        case .differs(let at, let size): return "byte \(at) differs from the office's copy (\(size) bytes): evidence is never overwritten"
        }
    }
}

/// The office's copy of each device's store (docs/OFFICE.md, "The office's store"), written
/// only by uploads: appended at an offset, durable (fdatasync, and the folder synced for a new
/// file) before the upload is answered, so an acknowledged byte survives a power cut. Safe from
/// any thread; writes to one device are serialised.
public final class OfficeStore: Sendable {
    public let root: String
    private let locks = Mutex<[String: DeviceLock]>([:])
    private final class DeviceLock: Sendable { let mutex = Mutex(()) }

    public init(root: String) throws {
        self.root = root
        for folder in [root, root + "/devices", root + "/status"] {
            if mkdir(folder, 0o750) < 0 && errno != EEXIST { throw SystemError.file(path: folder, call: "mkdir", errno: errno) }
        }
    }

    /// Device ids as the configuration allows them: letters, digits, '-' and '_', 1 to 32.
    public static func isDeviceID(_ id: String) -> Bool {
        (1...32).contains(id.utf8.count) && id.utf8.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F }
    }

    /// The files a device may upload (docs/FORMAT.md, "Store layout"): its journal, key and
    /// certificate, and sealed segments with their manifests. A name is at most 128 bytes of
    /// letters, digits, '-', '_' and '.', never starting with '.': it can name nothing outside
    /// the device's folder.
    public static func isUploadName(_ name: String) -> Bool {
        guard (1...128).contains(name.utf8.count), name.utf8.first != 0x2E,
              name.utf8.allSatisfy({ isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) else { return false }
        return ["journal.log", "device.pub", "device.certificate"].contains(name) || name.hasSuffix(".bcseg") || name.hasSuffix(".manifest")
    }

    /// An offload acknowledgement the office issued (`offload-ACKID.ack`, 8 bytes of hex): the
    /// office writes these into a device's folder, the device reads them; it never uploads one.
    public static func isAcknowledgementName(_ name: String) -> Bool { OffloadAcknowledgement.isFileName(name) }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    public func deviceFolder(_ device: String) -> String { root + "/devices/" + device }

    /// The files a device sends whole and may replace: its certificate (renewed) and its public
    /// key (replaced after a loss). Every other file only grows.
    public static let replaceable: Set<String> = ["device.certificate", "device.pub"]

    /// Replaces `device`'s file `name` (one of `replaceable`) with `bytes`, durably. Different
    /// bytes than before keep the old file beside it as `NAME.replaced-UTC` (returned); the
    /// same bytes change nothing (nil).
    public func replace(device: String, name: String, bytes: [UInt8]) throws -> String? {
        precondition(OfficeStore.isDeviceID(device) && OfficeStore.replaceable.contains(name))
        return try withDevice(device) {
            let folder = deviceFolder(device)
            if mkdir(folder, 0o750) == 0 {
                try syncDirectory(root + "/devices")
            } else if errno != EEXIST {
                throw SystemError.file(path: folder, call: "mkdir", errno: errno)
            }
            let path = folder + "/" + name
            var kept: String? = nil
            if access(path, F_OK) == 0 {
                if try readWholeFile(path, limit: 1 << 20, followLinks: false) == bytes { return nil }
                let stamp = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds()).filter { $0.isNumber || $0 == "T" || $0 == "Z" }
                kept = name + ".replaced-" + stamp
                if link(path, folder + "/" + kept!) < 0 { throw SystemError.file(path: folder + "/" + kept!, call: "link", errno: errno) }
            }
            try writeFileAtomically(path, bytes, mode: 0o640)
            try syncDirectory(folder)
            return kept
        }
    }

    private func withDevice<T>(_ device: String, _ body: () throws -> T) rethrows -> T {
        let lock = locks.withLock { locks in
            if let lock = locks[device] { return lock }
            let lock = DeviceLock()
            locks[device] = lock
            return lock
        }
        return try lock.mutex.withLock { _ in try body() }
    }

    /// What `device`'s folder holds now, file by file (name → inode, size, modification and
    /// change times): equal fingerprints mean no file was written, replaced, added or removed
    /// since, by this process or anyone (what lets a verification be reused).
    public func fingerprint(of device: String) throws -> [String: [Int64]] {
        let folder = deviceFolder(device)
        guard access(folder, F_OK) == 0 else { return [:] }
        var result: [String: [Int64]] = [:]
        for name in try directoryEntries(folder) {
            var status = stat()
            guard lstat(folder + "/" + name, &status) == 0 else { continue }
            result[name] = [Int64(status.st_ino), Int64(status.st_size), Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec),
                            Int64(status.st_ctim.tv_sec) * 1_000_000_000 + Int64(status.st_ctim.tv_nsec)]
        }
        return result
    }

    /// Makes `files` of `device` (name → the size each must have) durable — each synced, and the
    /// folder — and runs `body` while no upload to the device can change them; throws when a
    /// file is missing or has another size.
    public func durably<T>(device: String, files: [String: Int64], _ body: () throws -> T) throws -> T {
        precondition(OfficeStore.isDeviceID(device))
        return try withDevice(device) {
            let folder = deviceFolder(device)
            for (name, size) in files.sorted(by: { $0.key < $1.key }) {
                let path = folder + "/" + name
                let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
                defer { close(fd) }
                var status = stat()
                if fstat(fd, &status) < 0 { throw SystemError.file(path: path, call: "fstat", errno: errno) }
                guard Int64(status.st_size) == size else {
                    throw SystemError.file(path: path, call: "size \(status.st_size), expected \(size)", errno: EINVAL)
                }
                if fdatasync(fd) < 0 { throw SystemError.file(path: path, call: "fdatasync", errno: errno) }
            }
            try syncDirectory(folder)
            return try body()
        }
    }

    /// The files the office holds for `device`, name → size in bytes (empty for a device never seen).
    public func files(of device: String) throws -> [String: Int64] {
        let folder = deviceFolder(device)
        guard access(folder, F_OK) == 0 else { return [:] }
        var result: [String: Int64] = [:]
        for name in try directoryEntries(folder) where OfficeStore.isUploadName(name) || OfficeStore.isAcknowledgementName(name) {
            var status = stat()
            if lstat(folder + "/" + name, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG { result[name] = Int64(status.st_size) }
        }
        return result
    }

    /// Writes `bytes` at `offset` of `device`'s file `name` and returns the file's new size.
    /// Bytes the office already holds must be equal (a repeat is harmless); a piece that would
    /// leave a gap or change a byte is refused with `UploadConflict`.
    public func write(device: String, name: String, offset: Int64, bytes: [UInt8]) throws -> Int64 {
        precondition(OfficeStore.isDeviceID(device) && OfficeStore.isUploadName(name))
        return try withDevice(device) {
            let folder = deviceFolder(device)
            var created = false
            if mkdir(folder, 0o750) == 0 {
                try syncDirectory(root + "/devices")
            } else if errno != EEXIST {
                throw SystemError.file(path: folder, call: "mkdir", errno: errno)
            }
            let path = folder + "/" + name
            var fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if fd < 0 && errno == ENOENT {
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
                created = fd >= 0
            }
            if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
            defer { close(fd) }
            var status = stat()
            if fstat(fd, &status) < 0 { throw SystemError.file(path: path, call: "fstat", errno: errno) }
            let size = Int64(status.st_size)
            guard offset <= size else { throw UploadConflict.gap(size: size) }
            let overlap = Int(min(size - offset, Int64(bytes.count)))
            if overlap > 0 {
                let held = try readBytes(fd, count: overlap, at: offset, path: path, exact: true)
                if let first = (0..<overlap).first(where: { held[$0] != bytes[$0] }) {
                    throw UploadConflict.differs(at: offset + Int64(first), size: size)
                }
            }
            guard overlap < bytes.count else {
                // A repeat: what it names is held; make sure it is durable before saying so.
                if fdatasync(fd) < 0 { throw SystemError.file(path: path, call: "fdatasync", errno: errno) }
                return size
            }
            var written = 0
            let rest = bytes[overlap...]
            while written < rest.count {
                let count = rest.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, rest.count - written, off_t(size) + off_t(written)) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    let code = errno
                    _ = ftruncate(fd, off_t(size))  // nothing half-written stays
                    throw SystemError.file(path: path, call: "pwrite", errno: code)
                }
                written += count
            }
            if fdatasync(fd) < 0 {
                // Not durable: not held either (a later listing must not count it).
                let code = errno
                _ = ftruncate(fd, off_t(size))
                throw SystemError.file(path: path, call: "fdatasync", errno: code)
            }
            if created { try syncDirectory(folder) }
            return size + Int64(written)
        }
    }

    /// Keeps an acknowledgement the office issued in `device`'s folder (durably, as `name`).
    /// Call inside `durably`.
    public func keepAcknowledgement(device: String, name: String, bytes: [UInt8]) throws {
        precondition(OfficeStore.isDeviceID(device) && OfficeStore.isAcknowledgementName(name))
        let folder = deviceFolder(device)
        try writeFileAtomically(folder + "/" + name, bytes, mode: 0o640, exclusive: true)
        try syncDirectory(folder)
    }

    /// Up to `length` bytes of `device`'s file `name` from `offset` (fewer at its end).
    public func read(device: String, name: String, offset: Int64, length: Int) throws -> [UInt8] {
        precondition(OfficeStore.isDeviceID(device) && (OfficeStore.isUploadName(name) || OfficeStore.isAcknowledgementName(name)))
        let path = deviceFolder(device) + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        return try readBytes(fd, count: length, at: offset, path: path)
    }

    /// Keeps a device's last heartbeat (`status/ID.json`: the status it sent and when it came).
    public func keepStatus(device: String, status: JSONValue, receivedUTC: String) throws {
        let document = JSONValue.object(["device_id": .string(device), "received_utc": .string(receivedUTC), "status": status])
        try writeFileAtomically(root + "/status/" + device + ".json", document.canonical, mode: 0o640)
    }

    /// A device's last heartbeat as kept (nil: none yet).
    public func status(of device: String) -> JSONValue? {
        guard let bytes = try? readWholeFile(root + "/status/" + device + ".json", limit: 1 << 20) else { return nil }
        return try? JSONParser.parse(bytes)
    }

    /// Every device the office has heard from (uploads or heartbeats), sorted.
    public func devices() throws -> [String] {
        var found = Set<String>()
        for (folder, suffix) in [(root + "/devices", ""), (root + "/status", ".json")] {
            for name in try directoryEntries(folder) where name.hasSuffix(suffix) {
                let id = String(name.dropLast(suffix.count))
                if OfficeStore.isDeviceID(id) { found.insert(id) }
            }
        }
        return found.sorted()
    }
}
