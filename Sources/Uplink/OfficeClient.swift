import CCurl
import CCurlShims
import Glibc
import Platform
import Wire

/// Where and how a camera reaches the office (docs/OFFICE.md): the office's base URL and the
/// device's TLS files as `bodycamctl authority issue device` writes them.
public struct OfficeLink: Equatable, Sendable {
    /// `https://HOST[:PORT]`, no path.
    public var url: String
    /// The client certificate chain (PEM) and its P-256 key (PKCS #8 PEM); empty: none (the
    /// office refuses such a client, which is what a test of that needs).
    public var certificatePath: String
    public var keyPath: String
    /// The authority's CA certificate: the only one the office's certificate may chain to.
    public var caPath: String
    /// Upload cap in bytes per second (0: none).
    public var bandwidthBytesPerSecond: Int = 0
    /// Connecting gives up after this many seconds; a transfer that moves less than one byte a
    /// second for `stallSeconds` is abandoned.
    public var connectTimeoutSeconds: Int = 15
    public var stallSeconds: Int = 60
    public init(url: String, certificatePath: String, keyPath: String, caPath: String) {
        self.url = url
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.caPath = caPath
    }
}

public struct OfficeResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    public var body: [UInt8]
    /// The answer's headers, names in lower case.
    public var headers: [String: String] = [:]
    /// The body as JSON, when it is JSON.
    public var json: JSONValue? { try? JSONParser.parse(body) }
    /// The office's `error` member, or the status.
    public var message: String { json?["error"]?.string ?? "HTTP \(status)" }
}

public enum UplinkError: Error, CustomStringConvertible, Equatable {
    /// The exchange did not complete (no route, TLS refused, timed out…): libcurl's words.
    case transport(String)
    /// The office answered with an error status.
    case refused(status: Int, message: String)
    public var description: String {
        switch self {
        case .transport(let message): return "cannot reach the office: \(message)"
        case .refused(let status, let message): return "the office refused (\(status)): \(message)"
        }
    }
}

/// An HTTPS client of the office with the device's certificate: libcurl (the embedded
/// standard, Debian's build against OpenSSL, the same libcrypto the evidence uses), one easy
/// handle, so the TLS connection is kept between requests. Trusts only `caPath`. Not shared
/// between threads: each thread that talks to the office has its own.
public final class OfficeClient {
    public let link: OfficeLink
    private let handle: UnsafeMutableRawPointer
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    /// The largest answer read (16 MiB): a longer one is cut off as an error.
    public static let maximumResponseBytes = 16 << 20

    /// libcurl, loaded and initialised once for the process: nil, or why it could not be.
    private static let loadFailure: String? = {
        var reason = [CChar](repeating: 0, count: 256)
        guard bc_curl_load(&reason, reason.count) == 0 else {
            return "libcurl could not be loaded: " + String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let code = bc_curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return code == CURLE_OK ? nil : "libcurl did not start: " + String(cString: bc_curl_easy_strerror(code))
    }()

    public init(_ link: OfficeLink) throws {
        if let failure = OfficeClient.loadFailure { throw UplinkError.transport(failure) }
        guard let handle = bc_curl_easy_init() else { throw UplinkError.transport("libcurl did not start: curl_easy_init failed") }
        self.link = link
        self.handle = handle
        for (option, value) in [(CURLOPT_SSLCERT, link.certificatePath), (CURLOPT_SSLKEY, link.keyPath), (CURLOPT_CAINFO, link.caPath),
                                (CURLOPT_PROTOCOLS_STR, "https")] where !value.isEmpty {
            try check(value.withCString { bc_curl_set_pointer(handle, option, $0) }, "setting up")
        }
        // Only the authority's CA: no system bundle folder either.
        try check(bc_curl_set_pointer(handle, CURLOPT_CAPATH, nil), "setting up")
        try check(bc_curl_set_long(handle, CURLOPT_NOSIGNAL, 1), "setting up")
        try check(bc_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, link.connectTimeoutSeconds), "setting up")
        try check(bc_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1), "setting up")
        try check(bc_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, link.stallSeconds), "setting up")
        try check(bc_curl_set_long(handle, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2)), "setting up")
        if link.bandwidthBytesPerSecond > 0 {
            try check(bc_curl_set_offset(handle, CURLOPT_MAX_SEND_SPEED_LARGE, curl_off_t(link.bandwidthBytesPerSecond)), "setting up")
        }
        try check(errorBuffer.withUnsafeMutableBufferPointer { bc_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, $0.baseAddress) }, "setting up")
    }

    deinit { bc_curl_easy_cleanup(handle) }

    /// From now on each request gives up after `seconds` in all (0: no limit but the stall one).
    public func limitEachRequest(seconds: Int) throws {
        try check(bc_curl_set_long(handle, CURLOPT_TIMEOUT, seconds), "setting up")
    }

    private func check(_ code: CURLcode, _ what: String) throws {
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw UplinkError.transport("\(what): " + (detail.isEmpty ? String(cString: bc_curl_easy_strerror(code)) : detail))
        }
    }

    /// Sends one request to `path` (with its query) and returns the answer, whatever its status.
    /// Throws `UplinkError.transport` when no answer came.
    public func send(_ method: String, _ path: String, body: [UInt8] = [], contentType: String = "application/octet-stream") throws -> OfficeResponse {
        final class Sink {
            var bytes: [UInt8] = []
            var headers: [String: String] = [:]
        }
        let sink = Sink()
        errorBuffer[0] = 0
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        // No "Expect: 100-continue" (it would wait a second before every upload).
        for header in ["Content-Type: \(contentType)", "Expect:"] { headers = bc_curl_slist_append(headers, header) }
        defer { bc_curl_slist_free_all(headers) }
        let write: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard sink.bytes.count + length <= OfficeClient.maximumResponseBytes else { return 0 }
            if length > 0, let data { sink.bytes += UnsafeRawBufferPointer(start: data, count: length) }
            return length
        }
        // Header lines, "name: value", one per call (the last response's, after any redirect or 100).
        let header: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data, length > 0 else { return length }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            if line.hasPrefix("HTTP/") { sink.headers = [:] }
            if let colon = line.firstIndex(of: ":"), sink.headers.count < 64 {
                var value = line[line.index(after: colon)...]
                while value.first?.isWhitespace == true { value.removeFirst() }
                while value.last?.isWhitespace == true { value.removeLast() }
                sink.headers[line[..<colon].lowercased()] = String(value)
            }
            return length
        }
        try check(bc_curl_set_write_function(handle, write), "setting up")
        try check(bc_curl_set_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque()), "setting up")
        try check(bc_curl_set_header_function(handle, header), "setting up")
        try check(bc_curl_set_pointer(handle, CURLOPT_HEADERDATA, Unmanaged.passUnretained(sink).toOpaque()), "setting up")
        try check(bc_curl_set_pointer(handle, CURLOPT_HTTPHEADER, headers), "setting up")
        try check((link.url + path).withCString { bc_curl_set_pointer(handle, CURLOPT_URL, $0) }, "setting up")
        let code: CURLcode = try body.withUnsafeBytes { bytes in
            if method == "GET" && body.isEmpty {
                try check(bc_curl_set_pointer(handle, CURLOPT_CUSTOMREQUEST, nil), "setting up")
                try check(bc_curl_set_long(handle, CURLOPT_HTTPGET, 1), "setting up")
            } else {
                try check(bc_curl_set_long(handle, CURLOPT_POST, 1), "setting up")
                try check(bc_curl_set_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "setting up")
                // An empty body still needs a pointer (NULL would make libcurl read a callback).
                try check(bc_curl_set_pointer(handle, CURLOPT_POSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)), "setting up")
                try check(method.withCString { bc_curl_set_pointer(handle, CURLOPT_CUSTOMREQUEST, $0) }, "setting up")
            }
            return bc_curl_easy_perform(handle)
        }
        try check(code, "\(method) \(path)")
        var status = 0
        try check(bc_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status), "reading the answer")
        return OfficeResponse(status: status, body: sink.bytes, headers: sink.headers)
    }

    /// `send`, and an error status thrown as `UplinkError.refused`.
    public func exchange(_ method: String, _ path: String, body: [UInt8] = [], contentType: String = "application/octet-stream") throws -> OfficeResponse {
        let response = try send(method, path, body: body, contentType: contentType)
        guard (200..<300).contains(response.status) else { throw UplinkError.refused(status: response.status, message: response.message) }
        return response
    }
}
