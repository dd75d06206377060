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

