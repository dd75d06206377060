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

/// Reads a whole regular file, at most `limit` bytes (default 1 GiB); never blocks on a FIFO or reads a device
/// without end. `followLinks: false` also refuses a symbolic link at `path` (for files that came
/// from outside: a store, an acknowledgement). Throws `SystemError.file`, `.notRegularFile` or
/// `.fileTooLarge`.
public func readWholeFile(_ path: String, limit: Int = 1 << 30, followLinks: Bool = true) throws -> [UInt8] {
    let (fd, status) = try openRegularFile(path, followLinks: followLinks)
    defer { _ = Glibc.close(fd) }  // read only: a failed close(2) loses nothing
    guard status.st_size >= 0, Int(status.st_size) <= limit, Int(status.st_size) < Int.max else {
        throw SystemError.fileTooLarge(path: path, limit: limit)
    }
    // One byte more than the size the file claims, so that a file that grew is noticed.
    var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
    var filled = 0
    while true {
        if filled == bytes.count { bytes += [UInt8](repeating: 0, count: max(1 << 16, bytes.count)) }
        let count = bytes.withUnsafeMutableBytes { buffer in
            retryingInterrupts { Glibc.read(fd, buffer.baseAddress! + filled, buffer.count - filled) }
        }
        if count < 0 { throw SystemError.file(path: path, call: "read", errno: errno) }
        if count == 0 { break }
        filled += count
        if filled > limit { throw SystemError.fileTooLarge(path: path, limit: limit) }
    }
    bytes.removeLast(bytes.count - filled)
    return bytes
}

/// Opens a plain file to read, and its fstat: O_NONBLOCK, so a FIFO planted in its place does not
/// hang the open, and anything but a regular file is refused (`SystemError.notRegularFile`);
/// without `followLinks`, a link is refused too (O_NOFOLLOW). The caller closes the descriptor.
public func openRegularFile(_ path: String, followLinks: Bool = true) throws -> (fd: Int32, status: stat) {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW))
    if fd < 0 { throw SystemError.file(path: path, call: "open", errno: errno) }
    var status = stat()
    if fstat(fd, &status) < 0 {
        let code = errno
        _ = Glibc.close(fd)
        throw SystemError.file(path: path, call: "fstat", errno: code)
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
        _ = Glibc.close(fd)
        throw SystemError.notRegularFile(path: path)
    }
    return (fd, status)
}

/// write(2) until every byte is out (short writes and EINTR retried); failures name `path`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    _ = try system(path, "write") { try FileDescriptor(rawValue: fd).writeAll(bytes) }
}

/// Writes a file so that it is either absent or complete after a crash: a fresh temporary file in
/// the same folder (O_CREAT | O_EXCL | O_NOFOLLOW under a random name, with `mode` from its
/// first byte, so nothing planted there is written through), fsync, then rename over `path`
/// (which replaces a link there rather than following it), fsync the folder. `exclusive`
/// refuses to replace an existing file or link (EEXIST), atomically (link(2)).
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o640, exclusive: Bool = false) throws {
    var temporary = ""
    var fd: FileDescriptor? = nil
    for _ in 0..<8 where fd == nil {
        temporary = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do {
            fd = try FileDescriptor.open(FilePath(temporary), .writeOnly, options: [.create, .exclusiveCreate, .noFollow, .closeOnExec],
                                         permissions: FilePermissions(rawValue: mode))
        } catch let error as Errno where error == .fileExists {
            continue
        } catch let error as Errno {
            throw SystemError.file(path: temporary, call: "open", errno: error.rawValue)
        }
    }
    guard let fd else { throw SystemError.file(path: path + ".tmp-*", call: "open", errno: EEXIST) }
    do {
        try fd.closeAfter {
            _ = try system(temporary, "write") { try fd.writeAll(bytes) }
            if fsync(fd.rawValue) < 0 { throw SystemError.file(path: temporary, call: "fsync", errno: errno) }
        }
    } catch {
        unlink(temporary)
        throw SystemError.file(path: temporary, call: "close", error)
    }
    do {
        try publishFile(temporary, as: path, exclusive: exclusive)
    } catch {
        unlink(temporary)
        throw error
    }
}

/// Gives a complete, durable file (`temporary`, fsynced by its writer) its name `path` on the same
/// file system, then fsyncs `path`'s folder. `exclusive` refuses to replace an existing file or link
/// (EEXIST), atomically (link(2), then `temporary` is unlinked); otherwise rename(2), which
/// replaces a link at `path` rather than following it. On failure `temporary` is left for the
/// caller. Throws `SystemError` naming the path.
public func publishFile(_ temporary: String, as path: String, exclusive: Bool) throws {
    if exclusive {
        // link(2) fails if the name exists, as a file or a link: nobody's file is replaced.
        if link(temporary, path) < 0 { throw SystemError.file(path: path, call: "create", errno: errno) }
        unlink(temporary)
    } else if rename(temporary, path) < 0 {
        throw SystemError.file(path: path, call: "rename", errno: errno)
    }
    let slash = path.lastIndex(of: "/")
    try syncDirectory(slash.map { String(path[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? ".")
}

/// A new folder inside `parent` that only this user can enter (mkdtemp(3): a random name,
/// mode 0700), for files a library writes by name (libavformat): nothing can be planted in it.
/// Returns its path; the caller removes it (`removePrivateFolder`).
public func makePrivateFolder(in parent: String, prefix: String) throws -> String {
    var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw SystemError.file(path: parent, call: "mkdtemp", errno: errno)
    }
    return String(cString: made)
}

/// Removes a folder made by `makePrivateFolder` and the plain files left in it (best effort: a
/// failed export's leftovers).
public func removePrivateFolder(_ path: String) {
    for name in (try? directoryEntries(path)) ?? [] { unlink(path + "/" + name) }
    rmdir(path)
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

/// pread(2) of `count` bytes at `offset` (EINTR retried): fewer only where the file ends, or
/// with `exact`, an EIO error naming `path` there.
public func readBytes(_ fd: Int32, count: Int, at offset: Int64, path: String, exact: Bool = false) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
        if read < 0 && errno == EINTR { continue }
        if read < 0 { throw SystemError.file(path: path, call: "pread", errno: errno) }
        if read == 0 {
            if exact { throw SystemError.file(path: path, call: "pread", errno: EIO) }
            break
        }
        done += read
    }
    return done == count ? bytes : Array(bytes[..<done])
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
