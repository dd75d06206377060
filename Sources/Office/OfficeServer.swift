import Evidence
import Glibc
import LibCrypto
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PKI
import Platform
import Synchronization
import X509

/// `bodycam-office`: HTTPS/1.1 with mutual TLS (swift-nio-ssl, TLS 1.2 or newer) on SwiftNIO.
/// Clients must present a certificate that chains to the authority's CA (docs/PKI.md); each
/// request is then answered by `OfficeService` on a thread pool, so that no event loop waits on
/// a disk. Start with `start()`, end with `stop()` (from any thread).
public final class OfficeServer: Sendable {
    public let configuration: OfficeConfiguration
    public let service: OfficeService
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let tls: NIOSSLContext
    private let channel = Mutex<Channel?>(nil)
    private let stopped = Mutex(false)

    /// Loads the TLS identity and trust, the authority key and revocation list, and opens the
    /// store and its access journal (making the journal's key at first start). Errors name the file.
    public init(configuration: OfficeConfiguration) throws {
        self.configuration = configuration
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let roots: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(configuration.certificatePath)
            key = try NIOSSLPrivateKey(file: configuration.keyPath, format: .pem)
            roots = try NIOSSLCertificate.fromPEMFile(configuration.caPath)
        } catch {
            throw PKIError.malformed(what: "office TLS files (\(configuration.certificatePath), \(configuration.keyPath), \(configuration.caPath))",
                                     reason: "\(error)")
        }
        guard !chain.isEmpty, !roots.isEmpty else {
            throw PKIError.malformed(what: configuration.certificatePath, reason: "no certificate in the file")
        }
        var tlsConfiguration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates(roots))
        tlsConfiguration.minimumTLSVersion = .tlsv12
        tls = try NIOSSLContext(configuration: tlsConfiguration)

        let authority = try KeyFile.readVerifyingKey(configuration.authorityPath)
        var revocations: RevocationList? = nil
        if !configuration.revocationsPath.isEmpty {
            revocations = try RevocationList.read(try readWholeFile(configuration.revocationsPath, limit: 16 << 20), authority: authority,
                                                  what: configuration.revocationsPath)
        }
        let store = try OfficeStore(root: configuration.storePath)
        let journalKey: Ed25519PrivateKey
        if access(configuration.journalKeyPath, F_OK) == 0 {
            journalKey = try KeyFile.readSigningKey(configuration.journalKeyPath)
        } else {
            journalKey = try Ed25519PrivateKey()
            try KeyFile.write(journalKey, to: configuration.journalKeyPath)
        }
        let publicPath = configuration.storePath + "/access.pub"
        if access(publicPath, F_OK) != 0 { try KeyFile.write(journalKey.publicKey, to: publicPath) }
        let journal = try AuditJournal(path: configuration.storePath + "/access.log", key: journalKey)
        service = OfficeService(store: store, journal: journal, authority: authority, revocations: revocations,
                                maximumBodyBytes: configuration.maximumBodyBytes)
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads > 0 ? configuration.eventLoopThreads : System.coreCount)
        pool = NIOThreadPool(numberOfThreads: configuration.ioThreads)
        pool.start()
    }

    /// Binds and serves; returns the TCP port (the one chosen when the configuration says 0).
    @discardableResult
    public func start() throws -> Int {
        let tls = self.tls
        let service = self.service
        let pool = self.pool
        let limit = configuration.maximumBodyBytes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    // A peer that goes quiet (a handshake never finished, a stalled upload) is
                    // closed after two minutes.
                    try operations.addHandler(IdleStateHandler(readTimeout: .seconds(120)))
                    try operations.addHandler(NIOSSLServerHandler(context: tls))
                    try operations.configureHTTPServerPipeline(withErrorHandling: true)
                    try operations.addHandler(OfficeHTTPHandler(service: service, pool: pool, maximumBodyBytes: limit))
                }
            }
        let bound = try bootstrap.bind(host: configuration.listenHost, port: configuration.listenPort).wait()
        channel.withLock { $0 = bound }
        let port = bound.localAddress?.port ?? configuration.listenPort
        try service.journal.append(kind: "office_started", fields: [
            "listen": .string("\(configuration.listenHost):\(port)"), "store": .string(configuration.storePath),
        ])
        Log.notice("bodycam-office listening on \(configuration.listenHost):\(port), store \(configuration.storePath)")
        return port
    }

    /// Blocks until the server's channel is closed (by `stop()`).
    public func wait() throws {
        guard let bound = channel.withLock({ $0 }) else { return }
        try bound.closeFuture.wait()
    }

    /// Stops listening, lets requests in flight finish, journals the stop and ends the threads.
    /// Only the first call acts.
    public func stop(reason: String = "stopped") {
        guard stopped.withLock({ stopped in defer { stopped = true }; return !stopped }) else { return }
        if let bound = channel.withLock({ channel in defer { channel = nil }; return channel }) {
            try? bound.close().wait()
        }
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        _ = try? service.journal.append(kind: AuditJournal.finalKind, fields: ["reason": .string(reason)])
    }
}

/// One connection's requests: reads a request whole (bounded by the configured body size),
/// resolves the caller from the peer certificate once, answers on the thread pool.
/// Runs on the connection's event loop.
final class OfficeHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: OfficeService
    private let pool: NIOThreadPool
    private let maximumBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var caller: Result<Caller, OfficeRefusal>?

    init(service: OfficeService, pool: NIOThreadPool, maximumBodyBytes: Int) {
        self.service = service
        self.pool = pool
        self.maximumBodyBytes = maximumBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body = []
            tooLarge = (request.headers.first(name: "content-length").flatMap { Int($0) } ?? 0) > maximumBodyBytes
        case .body(var buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > maximumBodyBytes {
                tooLarge = true
                body = []
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let request = head else { return }
            head = nil
            answer(request, context: context)
        }
    }

    private func peerCaller(context: ChannelHandlerContext) -> Result<Caller, OfficeRefusal> {
        if let caller { return caller }
        let identity: Result<TLSIdentity, OfficeRefusal>
        do {
            guard let peer = try context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate else {
                throw OfficeRefusal(403, "no client certificate")
            }
            identity = .success(try TLSIdentity(Certificate(derEncoded: try peer.toDERBytes())))
        } catch let refusal as OfficeRefusal {
            identity = .failure(refusal)
        } catch {
            identity = .failure(OfficeRefusal(403, "the client certificate is not one of the authority's: \(error)"))
        }
        let result = service.caller(for: identity)
        caller = result
        return result
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        var caller = peerCaller(context: context)
        if tooLarge, case .success = caller {
            caller = .failure(OfficeRefusal(413, "a request body is at most \(maximumBodyBytes) bytes"))
        }
        let request = OfficeRequest(method: head.method.rawValue, target: head.uri, body: body, peer: peer, caller: caller)
        body = []
        let keepAlive = head.isKeepAlive && !tooLarge
        let service = self.service
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) { service.respond(to: request) }.whenComplete { result in
            let (handler, context) = bound.value
            let reply = (try? result.get()) ?? OfficeReply(503, .object(["error": .string("the office is stopping")]))
            handler.write(reply, version: head.version, keepAlive: keepAlive, context: context)
        }
    }

    private func write(_ reply: OfficeReply, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: reply.contentType)
        headers.add(name: "content-length", value: String(reply.body.count))
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        headers.add(name: "cache-control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: reply.status), headers: headers))),
                      promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: reply.body.count)
        buffer.writeBytes(reply.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tlsError = error as? NIOSSLError {
            let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            let service = self.service
            pool.submit { _ in service.journalRefusedHandshake(peer: peer, reason: "\(tlsError)") }
        }
        context.close(promise: nil)
    }
}
