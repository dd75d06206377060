import Glibc
import SystemPackage

// Files through swift-system's FileDescriptor: its calls retry EINTR themselves
// (`retryOnInterrupt`, on by default) and report `Errno`, which this file turns into
// `SystemError`s naming the path and the call.

extension SystemError {
    /// `error` (an `Errno` from swift-system, or anything else) as a failure of `call` on `path`.
    public static func file(path: String, call: String, _ error: Error) -> SystemError {
        if let errno = error as? Errno { return .file(path: path, call: call, errno: errno.rawValue) }
        if let error = error as? SystemError { return error }
        return .file(path: path, call: call, errno: EIO)
    }
}

/// Runs a swift-system call, naming `path` and `call` when it fails.
@inline(__always)
func system<T>(_ path: String, _ call: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch { throw SystemError.file(path: path, call: call, error) }
}

/// Reads a whole file. Throws `SystemError.file`, or `.fileTooLarge` past `limit` bytes.
public func readWholeFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    let fd = try system(path, "open") { try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) }
    // Read only: a failed close(2) loses nothing.
    defer { try? fd.close() }
    var status = stat()
    if fstat(fd.rawValue, &status) < 0 { throw SystemError.file(path: path, call: "fstat", errno: errno) }
    if Int(status.st_size) > limit { throw SystemError.fileTooLarge(path: path, limit: limit) }
    // One byte more than the size the file claims, so that a file that grew is noticed.
    var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
    var filled = 0
    while true {
        if filled == bytes.count { bytes += [UInt8](repeating: 0, count: max(1 << 16, bytes.count)) }
        let count = try system(path, "read") {
            try bytes.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
        }
        if count == 0 { break }
        filled += count
        if filled > limit { throw SystemError.fileTooLarge(path: path, limit: limit) }
    }
    bytes.removeLast(bytes.count - filled)
    return bytes
}

/// write(2) until every byte is out (short writes and EINTR retried); failures name `path`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    _ = try system(path, "write") { try FileDescriptor(rawValue: fd).writeAll(bytes) }
}

/// Writes a file so that it is either absent or complete after a crash: a temporary name in the
/// same folder, fsync, rename over `path`, fsync the folder. `exclusive` refuses to replace an
/// existing file.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o640, exclusive: Bool = false) throws {
    if exclusive && access(path, F_OK) == 0 { throw SystemError.file(path: path, call: "create", errno: EEXIST) }
    let temporary = path + ".tmp"
    let fd = try system(temporary, "open") {
        try FileDescriptor.open(FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                permissions: FilePermissions(rawValue: mode))
    }
    do {
        try fd.closeAfter {
            _ = try system(temporary, "write") { try fd.writeAll(bytes) }
            if fsync(fd.rawValue) < 0 { throw SystemError.file(path: temporary, call: "fsync", errno: errno) }
        }
    } catch {
        unlink(temporary)
        throw SystemError.file(path: temporary, call: "close", error)
    }
    if exclusive {
        // link(2) fails if the name exists: no race between the check above and the rename.
        if link(temporary, path) < 0 {
            let code = errno
            unlink(temporary)
            throw SystemError.file(path: path, call: "create", errno: code)
        }
        unlink(temporary)
    } else if rename(temporary, path) < 0 {
        let code = errno
        unlink(temporary)
        throw SystemError.file(path: path, call: "rename", errno: code)
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
    let fd = try system(path, "open") { try FileDescriptor.open(FilePath(path), .readOnly, options: [.directory, .closeOnExec]) }
    try fd.closeAfter {
        if fsync(fd.rawValue) < 0 { throw SystemError.file(path: path, call: "fsync", errno: errno) }
    }
}

/// read(2) into `buffer` until it is full or the file ends (EINTR retried); the bytes read.
public func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
    let descriptor = FileDescriptor(rawValue: fd)
    var filled = 0
    while filled < buffer.count {
        let count = try system(path, "read") { try descriptor.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])) }
        if count == 0 { break }
        filled += count
    }
    return filled
}

/// Reads from a socket or pipe until a newline, the end of the stream, a failure (a receive
/// timeout among them) or `limit` bytes: the bytes before the newline, and whether the
/// newline came.
public func readLine(_ fd: Int32, limit: Int) -> (line: [UInt8], complete: Bool) {
    let descriptor = FileDescriptor(rawValue: fd)
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < limit {
        guard let count = try? chunk.withUnsafeMutableBytes({ try descriptor.read(into: $0) }), count > 0 else { break }
        bytes += chunk[0..<count]
        if let newline = bytes.firstIndex(of: 0x0A) { return (Array(bytes[..<newline]), true) }
    }
    return (Array(bytes.prefix(limit)), false)
}
