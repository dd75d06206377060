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
    private let verifyPool: NIOThreadPool
    private let livePool: NIOThreadPool
    private let channel = Mutex<Channel?>(nil)
    private let stopped = Mutex(false)
    let limits: ConnectionLimits

    /// Loads the TLS identity and trust, the authority key and revocation list, and opens the
    /// store and its access journal (making the journal's key at first start). Errors name the file.
    public init(configuration: OfficeConfiguration) throws {
        self.configuration = configuration
        func load<T>(_ path: String, _ what: String, _ read: () throws -> T) throws -> T {
            do { return try read() } catch { throw PKIError.malformed(what: path, reason: "cannot read the office's \(what): \(error)") }
        }
        let chain = try load(configuration.certificatePath, "certificate") { try NIOSSLCertificate.fromPEMFile(configuration.certificatePath) }
        let key = try load(configuration.keyPath, "TLS key") { try NIOSSLPrivateKey(file: configuration.keyPath, format: .pem) }
        let roots = try load(configuration.caPath, "CA certificate") { try NIOSSLCertificate.fromPEMFile(configuration.caPath) }
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
        let publicPath = configuration.storePath + "/access.pub"
        if access(configuration.journalKeyPath, F_OK) == 0 {
            journalKey = try KeyFile.readSigningKey(configuration.journalKeyPath)
            if access(publicPath, F_OK) == 0, try KeyFile.readVerifyingKey(publicPath) != journalKey.publicKey {
                throw PKIError.malformed(what: configuration.journalKeyPath, reason: "it is not the key of \(publicPath), which verifies the access journal")
            }
        } else {
            // A key made anew where a journal already is would sign records its public key
            // does not verify: a lost key is a problem to name, not to paper over.
            for path in [publicPath, configuration.storePath + "/access.log"] where access(path, F_OK) == 0 {
                throw PKIError.malformed(what: configuration.journalKeyPath,
                                         reason: "missing, while \(path) exists: the access journal's key was lost or moved; restore it")
            }
            journalKey = try Ed25519PrivateKey()
            try KeyFile.write(journalKey, to: configuration.journalKeyPath)
        }
        if access(publicPath, F_OK) != 0 { try KeyFile.write(journalKey.publicKey, to: publicPath) }
        let journal = try AuditJournal(path: configuration.storePath + "/access.log", key: journalKey)
        var acknowledger: OfficeService.Acknowledger? = nil
        if !configuration.offloadKeyPath.isEmpty {
            let key = try load(configuration.offloadKeyPath, "offload acknowledgement key") { try KeyFile.readSigningKey(configuration.offloadKeyPath) }
            let certificate = try load(configuration.offloadCertificatePath, "offload key certificate") {
                try KeyCertificate.read(configuration.offloadCertificatePath)
            }
            // A key its devices would refuse is named now, not at each acknowledgement.
            let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
            if let reason = certificate.refusal(authority: authority, purpose: KeyCertificate.offloadAcknowledgement, at: now, revocations: revocations) {
                throw PKIError.malformed(what: configuration.offloadCertificatePath, reason: reason)
            }
            guard certificate.key == key.publicKey else {
                throw PKIError.malformed(what: configuration.offloadCertificatePath, reason: "it certifies another key than \(configuration.offloadKeyPath)")
            }
            acknowledger = OfficeService.Acknowledger(key: key, certificate: certificate, afterSeconds: configuration.acknowledgeAfterSeconds)
        }
        var live: LiveRelay? = nil
        if !configuration.identityPath.isEmpty {
            live = LiveRelay(identity: try load(configuration.identityPath, "identity (live view)") { try KeyFile.readIdentity(configuration.identityPath) })
        }
        service = OfficeService(store: store, journal: journal, authority: authority, revocations: revocations,
                                maximumBodyBytes: configuration.maximumBodyBytes, acknowledger: acknowledger, live: live)
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads > 0 ? configuration.eventLoopThreads : System.coreCount)
        pool = NIOThreadPool(numberOfThreads: configuration.ioThreads)
        pool.start()
        // Verification reads a whole store: one at a time, on a thread of its own, so it never
        // holds up uploads.
        verifyPool = NIOThreadPool(numberOfThreads: 1)
        verifyPool.start()
        // Viewers' long polls wait up to 2 s each: threads of their own, so they never hold up
        // uploads (beyond 16 at once, they queue).
        livePool = NIOThreadPool(numberOfThreads: 16)
        livePool.start()
        limits = ConnectionLimits(connections: configuration.maximumConnections, bufferedBytes: configuration.maximumBufferedBytes)
    }

    /// Binds and serves; returns the TCP port (the one chosen when the configuration says 0).
    @discardableResult
    public func start() throws -> Int {
        let tls = self.tls
        let service = self.service
        let pools = (io: pool, verify: verifyPool, live: livePool)
        let limit = configuration.maximumBodyBytes
        let limits = self.limits
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // Beyond the connection cap a new connection is closed at once (and counted).
                guard limits.openConnection() else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in limits.closeConnection() }
                return channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    // A peer that goes quiet (a handshake never finished, a stalled upload) is
                    // closed after two minutes.
                    try operations.addHandler(IdleStateHandler(readTimeout: .seconds(120)))
                    try operations.addHandler(NIOSSLServerHandler(context: tls))
                    try operations.configureHTTPServerPipeline(withErrorHandling: true)
                    try operations.addHandler(OfficeHTTPHandler(service: service, pools: pools, maximumBodyBytes: limit, limits: limits))
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

    /// Stops listening, lets requests in flight finish (up to 10 s: their bytes are made durable
    /// and journaled before they are answered), closes the connections, journals the stop and
    /// ends the threads. Only the first call acts.
    public func stop(reason: String = "stopped") {
        guard stopped.withLock({ stopped in defer { stopped = true }; return !stopped }) else { return }
        if let bound = channel.withLock({ channel in defer { channel = nil }; return channel }) {
            try? bound.close().wait()
        }
        limits.waitForRequests(untilMonotonic: Clock.monotonicNanoseconds() + 10_000_000_000)
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        try? verifyPool.syncShutdownGracefully()
        try? livePool.syncShutdownGracefully()
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
    private let pools: (io: NIOThreadPool, verify: NIOThreadPool, live: NIOThreadPool)
    private let maximumBodyBytes: Int
    private let limits: ConnectionLimits
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Bytes of `body` counted against the server's buffer budget.
    private var reserved = 0
    private var refusal: OfficeRefusal?
    private var caller: Result<Caller, OfficeRefusal>?
    /// A request is being answered: the idle timer does not close the connection meanwhile.
    private var busy = false

    init(service: OfficeService, pools: (io: NIOThreadPool, verify: NIOThreadPool, live: NIOThreadPool), maximumBodyBytes: Int, limits: ConnectionLimits) {
        self.service = service
        self.pools = pools
        self.maximumBodyBytes = maximumBodyBytes
        self.limits = limits
    }

    private func release() {
        limits.release(reserved)
        reserved = 0
    }

    func handlerRemoved(context: ChannelHandlerContext) { release() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body = []
            release()
            refusal = (request.headers.first(name: "content-length").flatMap { Int($0) } ?? 0) > maximumBodyBytes
                ? OfficeRefusal(413, "a request body is at most \(maximumBodyBytes) bytes") : nil
        case .body(var buffer):
            guard refusal == nil else { return }
            if body.count + buffer.readableBytes > maximumBodyBytes {
                refusal = OfficeRefusal(413, "a request body is at most \(maximumBodyBytes) bytes")
            } else if !limits.reserve(buffer.readableBytes) {
                refusal = OfficeRefusal(503, "the office is holding as many uploads as it may: try again")
            } else {
                reserved += buffer.readableBytes
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
                return
            }
            body = []
            release()
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
        let refused = refusal != nil
        if let refusal, case .success = caller { caller = .failure(refusal) }
        let request = OfficeRequest(method: head.method.rawValue, target: head.uri, body: body, peer: peer, caller: caller)
        body = []
        let keepAlive = head.isKeepAlive && !refused
        let service = self.service
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let pool = OfficeService.isVerification(request.target) ? pools.verify
            : OfficeService.isLivePoll(request.target) && head.method == .GET ? pools.live : pools.io
        busy = true
        limits.beginRequest()
        pool.runIfActive(eventLoop: context.eventLoop) { service.respond(to: request) }.whenComplete { result in
            let (handler, context) = bound.value
            handler.busy = false
            handler.release()
            let reply = (try? result.get()) ?? OfficeReply(503, .object(["error": .string("the office is stopping")]))
            if let device = reply.verifyDevice {
                handler.pools.verify.submit { state in if state == .active { service.verifyOnArrival(of: device) } }
            }
            handler.write(reply, version: head.version, keepAlive: keepAlive, context: context)
            handler.limits.endRequest()
        }
    }

    private func write(_ reply: OfficeReply, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: reply.contentType)
        headers.add(name: "content-length", value: String(reply.body.count))
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        headers.add(name: "cache-control", value: "no-store")
        for (name, value) in reply.headers { headers.add(name: name, value: value) }
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
            if !busy { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Only a handshake the office refused is a refusal (`handshakeFailed`: no certificate,
        // another CA's, an expired one); a peer that connects and leaves (`eofDuringHandshake`)
        // or a link that drops later (`uncleanShutdown`) is not.
        // The journal takes at most `OfficeService.refusedHandshakesPerMinute` a minute; the
        // rest are counted into the next record.
        if case NIOSSLError.handshakeFailed = error, service.admitRefusedHandshake() {
            let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            let service = self.service
            let reason = "\(error)"
            pools.io.submit { _ in service.journalRefusedHandshake(peer: peer, reason: reason) }
        }
        context.close(promise: nil)
    }
}

/// The server's bounds on what clients can make it hold: connections, and bytes of request
/// bodies buffered at once (each connection buffers one body, up to the body limit); and the
/// count of requests being answered, which `stop()` waits to reach zero.
final class ConnectionLimits: Sendable {
    private struct State {
        var connections = 0
        var buffered = 0
        var requests = 0
    }
    private let state = Mutex(State())
    private let idle = ConditionLock()
    let maximumConnections: Int
    let maximumBufferedBytes: Int

    init(connections: Int, bufferedBytes: Int) {
        maximumConnections = connections
        maximumBufferedBytes = bufferedBytes
    }

    func openConnection() -> Bool {
        state.withLock { state in
            guard state.connections < maximumConnections else { return false }
            state.connections += 1
            return true
        }
    }
    func closeConnection() { state.withLock { $0.connections -= 1 } }
    var connections: Int { state.withLock { $0.connections } }

    func reserve(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard state.buffered + bytes <= maximumBufferedBytes else { return false }
            state.buffered += bytes
            return true
        }
    }
    func release(_ bytes: Int) { if bytes > 0 { state.withLock { $0.buffered -= bytes } } }
    var bufferedBytes: Int { state.withLock { $0.buffered } }

    func beginRequest() { idle.withLock { state.withLock { $0.requests += 1 } } }
    func endRequest() {
        idle.withLock {
            if state.withLock({ state in state.requests -= 1; return state.requests }) == 0 { idle.broadcast() }
        }
    }
    /// Waits until no request is being answered, or the deadline.
    func waitForRequests(untilMonotonic deadline: Int64) {
        idle.withLock {
            while state.withLock({ $0.requests }) > 0 {
                if !idle.wait(untilMonotonic: deadline) { return }
            }
        }
    }
}
