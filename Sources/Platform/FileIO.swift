import Glibc

/// Reads a whole file (read(2) until EOF, retrying EINTR). Throws `SystemError.file`, or
/// `.fileTooLarge` past `limit` bytes.
public func readWholeFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
    defer { close(fd) }
    var status = stat()
    if fstat(fd, &status) < 0 { throw SystemError.file(path: path, call: "fstat", errno: errno) }
    if Int(status.st_size) > limit { throw SystemError.fileTooLarge(path: path, limit: limit) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(status.st_size) + 1)
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        // Straight into the array's spare capacity when it has room (the usual case: the size
        // was known), else through the bounce buffer.
        let spare = bytes.capacity - bytes.count
        var count = 0
        if spare > 0 {
            let before = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: spare))
            count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + before, spare) }
            bytes.removeLast(spare - max(count, 0))
        } else {
            count = read(fd, &chunk, chunk.count)
            if count > 0 { bytes += chunk[0..<count] }
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw SystemError.file(path: path, call: "read", errno: errno)
        }
        if count == 0 { return bytes }
        if bytes.count > limit { throw SystemError.fileTooLarge(path: path, limit: limit) }
    }
}

/// write(2) until every byte is out, retrying EINTR and short writes; failures name `path`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if count < 0 {
            if errno == EINTR { continue }
            throw SystemError.file(path: path, call: "write", errno: errno)
        }
        offset += count
    }
}

/// Writes a file so that it is either absent or complete after a crash: a temporary name in the
/// same folder, fsync, rename over `path`, fsync the folder. `exclusive` refuses to replace an
/// existing file.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o640, exclusive: Bool = false) throws {
    if exclusive && access(path, F_OK) == 0 { throw SystemError.file(path: path, call: "create", errno: EEXIST) }
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    if fd < 0 { throw SystemError.file(path: temporary, call: "open", errno: errno) }
    do {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: temporary) }
    } catch {
        close(fd)
        unlink(temporary)
        throw error
    }
    if fsync(fd) < 0 {
        let code = errno
        close(fd)
        throw SystemError.file(path: temporary, call: "fsync", errno: code)
    }
    if close(fd) < 0 { throw SystemError.file(path: temporary, call: "close", errno: errno) }
    if exclusive {
        // link(2) fails if the name exists: no race between the check above and the rename.
        if link(temporary, path) < 0 {
            let code = errno
            unlink(temporary)
            throw SystemError.file(path: path, call: "create", errno: code)
        }
        unlink(temporary)
    } else if rename(temporary, path) < 0 {
        throw SystemError.file(path: path, call: "rename", errno: errno)
    }
    let slash = path.lastIndex(of: "/")
    try syncDirectory(slash.map { String(path[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? ".")
}

/// The names in a folder (readdir), without "." and "..", sorted.
public func directoryEntries(_ path: String) throws -> [String] {
    guard let handle = opendir(path) else { throw SystemError.file(path: path, call: "opendir", errno: errno) }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// fsync on a directory, so a rename in it survives power loss.
public func syncDirectory(_ path: String) throws {
    let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
    if fsync(fd) < 0 {
        let code = errno
        _ = Glibc.close(fd)
        throw SystemError.file(path: path, call: "fsync", errno: code)
    }
    if Glibc.close(fd) < 0 { throw SystemError.file(path: path, call: "close", errno: errno) }
}
