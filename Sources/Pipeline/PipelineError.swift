import Glibc

/// Failures of the pipeline's own stages (device and codec failures keep their own types:
/// `V4L2Error`, `AVError`).
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case system(call: String, errno: Int32)
    case file(path: String, call: String, errno: Int32)
    case truncatedRawFrame(path: String, frameIndex: Int, got: Int, expected: Int)
    case fileTooLarge(path: String, limit: Int)

    public var description: String {
        switch self {
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
        case .file(let path, let call, let code): return "\(path): \(call): \(String(cString: strerror(code)))"
        case .truncatedRawFrame(let path, let index, let got, let expected):
            return "\(path): frame \(index) is cut short: \(got) of \(expected) bytes (wrong size or pixel format?)"
        case .fileTooLarge(let path, let limit): return "\(path): larger than \(limit) bytes"
        }
    }
}

/// Reads a whole file (read(2) until EOF, retrying EINTR). Throws `PipelineError.file`, or
/// `.fileTooLarge` past `limit` bytes.
public func readWholeFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw PipelineError.file(path: path, call: "open", errno: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(fd, &chunk, chunk.count)
        if count < 0 {
            if errno == EINTR { continue }
            throw PipelineError.file(path: path, call: "read", errno: errno)
        }
        if count == 0 { return bytes }
        bytes += chunk[0..<count]
        if bytes.count > limit { throw PipelineError.fileTooLarge(path: path, limit: limit) }
    }
}
