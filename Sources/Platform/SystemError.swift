import Glibc
import SystemPackage

/// A failed system call, with what it was called on: the project's one error for the kernel's
/// answers (devices and libraries keep their own: `V4L2Error`, `AVError`, `GPIOError`).
public enum SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `call` failed with `errno`, on nothing a path names (eventfd, socket, pthread_create).
    case system(call: String, errno: Int32)
    /// `call` failed with `errno` on the file, folder or socket at `path`.
    case file(path: String, call: String, errno: Int32)
    /// A file read whole was larger than the reader allows.
    case fileTooLarge(path: String, limit: Int)
    /// A folder, FIFO, device or socket where a regular file was expected.
    case notRegularFile(path: String)

    public var description: String {
        switch self {
        case .system(let call, let code): return "\(call): \(Errno(rawValue: code))"
        case .file(let path, let call, let code): return "\(path): \(call): \(Errno(rawValue: code))"
        case .fileTooLarge(let path, let limit): return "\(path): larger than \(limit) bytes"
        case .notRegularFile(let path): return "\(path): not a regular file"
        }
    }

    /// The errno of a failed call, when there is one.
    public var errno: Errno? {
        switch self {
        case .system(_, let code), .file(_, _, let code): return Errno(rawValue: code)
        case .fileTooLarge, .notRegularFile: return nil
        }
    }
}
