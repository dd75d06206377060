// libav's headers are included by every libav module; Clang merges their declarations and
// Swift only finds a merged one through a module this file imports, so import them all.
import CAVCodec
import CAVUtil
import CShims
import CSwScale

/// An error returned by a libav* call: the call that failed, its code and libav's own message
/// (av_strerror).
public struct AVError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var message: String { AVError.message(for: code) }

    public var description: String { "\(operation) failed: \(message) (\(code))" }

    /// AVERROR(EAGAIN): the codec wants the other side of send/receive first.
    package static let again = bc_averror(EAGAIN)
    /// AVERROR_EOF: the codec is fully drained.
    package static let endOfFile = bc_averror_eof()

    static func message(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        bc_av_strerror(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Returns `code` when it is not negative, throws `AVError` otherwise.
@discardableResult
package func avCheck(_ code: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
    if code < 0 { throw AVError(operation(), code: code) }
    return code
}

/// The outcome of one receive call on a codec: EAGAIN and EOF are results, not errors.
public enum CodecResult<Value> {
    case value(Value)
    /// The codec needs more input before it has output (AVERROR(EAGAIN)).
    case needsInput
    /// The codec was flushed and has nothing left (AVERROR_EOF).
    case endOfStream
}

/// Keeps libav's own logging quiet unless asked: the daemon reports errors through its own
/// channel, with context.
public enum LibAVLogging {
    public static func setQuiet(_ quiet: Bool) {
        av_log_set_level(quiet ? AV_LOG_ERROR : AV_LOG_INFO)
    }
}
