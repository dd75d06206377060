import CShims
import Configuration
import Evidence
import Glibc
import LibCrypto
import Platform
import Synchronization
import Uplink
import Wire

/// The camera's uplink thread (docs/OFFICE.md, "The camera's uplink"): at a lower CPU and the
/// idle I/O priority, it sends the store to the office (`StoreUploader`) after every seal and at
/// each heartbeat, and a status heartbeat every `heartbeat_seconds` (while recording, every
/// `live_check_seconds`: its answer says whether an officer watches). A failed exchange is
/// retried with exponential backoff (1 s doubling to 5 min, each wait drawn between half and all
/// of it, so a fleet that lost the office together does not return together). Only changes of
/// the link are journaled (`uplink_connected`, `uplink_lost`) and each file the office refuses
/// (`uplink_refused`), so a dead link cannot fill the journal. Nothing here touches the pipeline.
final class UplinkLoop: Sendable {
    let settings: BodycamConfiguration.UplinkConfiguration
    /// Signalled at each seal and at stop.
    let wake: WakeEvent
    private let stopping = AtomicFlag()
    /// Whether the camera records (set from the recorder's events): heartbeats then come every
    /// `live_check_seconds`. An atomic, not the policy's state: this thread runs at a low
    /// priority and must not hold a lock the buttons' path takes.
    let recording = AtomicFlag()
    private let thread = Mutex<WorkerThread?>(nil)
    /// What `status` reports: whether the last exchange worked, when, and the last error.
    let state = Mutex(LinkState())

    struct LinkState: Sendable {
        var connected = false
        var lastExchangeUTC = ""
        var lastError = ""
        var bytesSent: Int64 = 0
        /// Offload acknowledgements received this run, and segments released under them.
        var acknowledgements = 0
        var released = 0
        /// Sending the segment being recorded to a viewer.
        var live = false
    }

    /// What acknowledgements are checked against: the authority's key and its revocation list.
    struct Trust: Sendable {
        let authority: Ed25519PublicKey
        let revocations: RevocationList?
    }
    /// Loaded at start; a failure (named) means no acknowledgement is asked for or applied,
    /// and uploads go on.
    let trust: Result<Trust, UplinkTrustError>
    struct UplinkTrustError: Error, Sendable { let reason: String }

    static let maximumBackoffSeconds = 300.0
    /// Live view: how often the segment being recorded is looked at, and how long the office's
    /// last "someone watches" holds.
    static let livePollSeconds = 0.1
    /// Acknowledgements fetched in one pass at most, and refused ones remembered (beyond it, no
    /// more are asked for until the next start).
    static let acknowledgementsPerPass = 8
    static let maximumRefusedAcknowledgements = 1024
    static let liveHoldNanoseconds: Int64 = 15_000_000_000
    /// After the office refuses live view, it is not tried again for this long.
    static let liveRefusedSeconds = 300
    /// The stop's last pass, in all.
    static let stopPassSeconds = 10

    init(settings: BodycamConfiguration.UplinkConfiguration) throws {
        self.settings = settings
        wake = try WakeEvent()
        do {
            let authority = try KeyFile.readVerifyingKey(settings.authority)
            let revocations = try settings.revocations.isEmpty ? nil
                : RevocationList.read(try readWholeFile(settings.revocations, limit: 16 << 20), authority: authority, what: settings.revocations)
            trust = .success(Trust(authority: authority, revocations: revocations))
        } catch {
            trust = .failure(UplinkTrustError(reason: "\(error)"))
        }
    }

    func start(_ body: @escaping @Sendable () -> Void) {
        thread.withLock { $0 = WorkerThread(name: "uplink", body) }
    }

    func stop() {
        stopping.set()
        wake.signal()
        let worker = thread.withLock { thread -> WorkerThread? in
            defer { thread = nil }
            return thread
        }
        worker?.join()
    }

    var isStopping: Bool { stopping.isSet }

    /// Waits `seconds` or until woken (true when woken).
    func wait(seconds: Double) -> Bool {
        var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 1, Int32(min(max(0, seconds * 1000), Double(Int32.max))))
        wake.reset()
        return ready > 0
    }

    /// The wait before retry `failures` (1, 2, …): 2^(failures−1) s up to 5 min, times a random
    /// factor in [0.5, 1).
    static func backoff(failures: Int, random: Double = Double.random(in: 0.5..<1)) -> Double {
        min(maximumBackoffSeconds, pow(2, Double(min(failures, 30) - 1))) * random
    }
}

extension Daemon {
    var uplinkLink: OfficeLink {
        let settings = configuration.uplink
        var link = OfficeLink(url: settings.office, certificatePath: settings.certificate, keyPath: settings.key, caPath: settings.ca)
        link.bandwidthBytesPerSecond = settings.bandwidthKbps * 125
        return link
    }

    /// The uplink thread's body.
    func uplinkRun(_ uplink: UplinkLoop) {
        let lowered = bc_lower_thread_priority(10)
        if lowered != 0 { Log.warning("uplink: cannot lower its priority: \(String(cString: strerror(lowered)))") }
        var uploader: StoreUploader? = nil
        var failures = 0
        var journaledState: Bool? = nil
        var refusedFiles: Set<String> = []
        var refusedAcknowledgements: Set<String> = []
        // Live view: while the office says someone watches (until `liveUntil`), the segment being
        // recorded is sent as it is written, checked every `livePollSeconds`.
        var liveUntil: Int64 = 0
        var liveRefusedUntil: Int64 = 0
        var cursor = StoreUploader.LiveCursor()
        var passDue = true
        var acknowledgementsFailing = false
        if case .failure(let problem) = uplink.trust {
            Log.error("uplink: cannot read the authority's key or revocations (\(problem.reason)): no offload acknowledgement is asked for; every segment stays")
            audit("uplink_trust_unreadable", ["reason": .string(bounded(problem.reason, limit: 300))])
        }
        // While recording, the heartbeat (whose answer says whether an officer watches) comes
        // at least every `live_check_seconds`, so live view starts within it.
        func interval() -> Double {
            let settings = uplink.settings
            return Double(uplink.recording.isSet ? min(settings.heartbeatSeconds, settings.liveCheckSeconds) : settings.heartbeatSeconds)
        }
        var lastHeartbeat: Int64? = nil
        var lastPass: Int64? = nil
        func nextHeartbeat() -> Int64 { lastHeartbeat.map { $0 + Int64(interval() * 1e9) } ?? 0 }
        while true {
            let stopping = uplink.isStopping
            // At stop, one last pass (the segment sealed at stop) if the link is up, bounded in
            // all to `UplinkLoop.stopPassSeconds` so that a slow or dying link cannot hold up the
            // stop (systemd gives the whole stop 30 s).
            if stopping && journaledState != true { return }
            do {
                if uploader == nil {
                    uploader = StoreUploader(client: try OfficeClient(uplinkLink), store: configuration.storagePath,
                                             deviceID: configuration.deviceID, pieceBytes: uplink.settings.pieceKiB << 10)
                }
                let client = uploader!.client
                if !stopping && Clock.monotonicNanoseconds() < liveUntil {
                    switch try uploader!.livePass(&cursor) {
                    case .nothingSent:
                        break  // the office's last word holds until `liveUntil`
                    case .watched(let watched):
                        liveUntil = watched ? Clock.monotonicNanoseconds() + UplinkLoop.liveHoldNanoseconds : 0
                        uplink.state.withLock { $0.live = watched }
                    case .refused(let reason):
                        // Off for a while: a refusal must not make the camera send the segment
                        // again at every heartbeat.
                        Log.warning("uplink: the office refused live view: \(bounded(reason, limit: 300)); off for \(UplinkLoop.liveRefusedSeconds) s")
                        audit("live_refused", ["reason": .string(bounded(reason, limit: 300))])
                        liveUntil = 0
                        liveRefusedUntil = Clock.monotonicNanoseconds() + Int64(UplinkLoop.liveRefusedSeconds) * 1_000_000_000
                        uplink.state.withLock { $0.live = false }
                    }
                }
                guard passDue || stopping || Clock.monotonicNanoseconds() >= nextHeartbeat() else {
                    // Between passes: live view's next look, or (live view over) the heartbeat.
                    let live = Clock.monotonicNanoseconds() < liveUntil
                    if !live { uplink.state.withLock { $0.live = false } }
                    let wait = live ? UplinkLoop.livePollSeconds : Double(max(0, nextHeartbeat() - Clock.monotonicNanoseconds())) / 1e9
                    if uplink.wait(seconds: wait) { passDue = true }
                    continue
                }
                // A pass after every seal and every `heartbeat_seconds`; a heartbeat that is only
                // a live check (while recording) goes alone.
                let passWanted = passDue || stopping
                    || lastPass.map { Clock.monotonicNanoseconds() - $0 >= Int64(uplink.settings.heartbeatSeconds) * 1_000_000_000 } ?? true
                passDue = false
                var pass = StoreUploader.Pass()
                if passWanted {
                    var deadline: Int64? = nil
                    if stopping {
                        try client.limitEachRequest(seconds: UplinkLoop.stopPassSeconds)
                        deadline = Clock.monotonicNanoseconds() + Int64(UplinkLoop.stopPassSeconds) * 1_000_000_000
                    }
                    // A pass in progress when the stop comes ends at the next piece; the stop's own
                    // pass follows.
                    pass = try uploader!.pass(deadline: deadline, cancelled: { !stopping && uplink.isStopping })
                    lastPass = Clock.monotonicNanoseconds()
                    for (name, reason) in pass.refused where refusedFiles.insert(name).inserted {
                        Log.error("uplink: the office refused \(name): \(reason)")
                        audit("uplink_refused", ["file": .string(name), "reason": .string(bounded(reason, limit: 300))])
                    }
                }
                if stopping || Clock.monotonicNanoseconds() >= nextHeartbeat() {
                    let body = try JSONCoding.encode(status()).canonical
                    let reply = try client.exchange("POST", "/v1/devices/\(configuration.deviceID)/heartbeat", body: body, contentType: "application/json")
                    lastHeartbeat = Clock.monotonicNanoseconds()
                    if reply.json?["live"]?.boolean == true && Clock.monotonicNanoseconds() >= liveUntil
                        && Clock.monotonicNanoseconds() >= liveRefusedUntil {
                        Log.notice("uplink: an officer watches: the recording goes live to the office")
                        liveUntil = Clock.monotonicNanoseconds() + UplinkLoop.liveHoldNanoseconds
                        cursor = StoreUploader.LiveCursor()
                    }
                }
                // Acknowledgements are their own exchange: an office that cannot give them (an
                // older one, a slow verification) does not take the uplink down; at a stop they
                // wait for the next start.
                if passWanted && !stopping {
                    do {
                        try exchangeAcknowledgements(uploader!, uplink, refused: &refusedAcknowledgements)
                        if acknowledgementsFailing { Log.notice("uplink: acknowledgements work again") }
                        acknowledgementsFailing = false
                    } catch {
                        if !acknowledgementsFailing { Log.warning("uplink: acknowledgements: \(bounded("\(error)", limit: 300)); asked again at the next pass") }
                        acknowledgementsFailing = true
                    }
                }
                failures = 0
                uplink.state.withLock {
                    $0.connected = true
                    $0.lastExchangeUTC = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
                    $0.bytesSent += pass.bytes
                }
                if journaledState != true {
                    Log.notice("uplink: connected to \(uplink.settings.office)")
                    audit("uplink_connected", ["office": .string(uplink.settings.office)])
                    journaledState = true
                }
            } catch StoreUploader.Interrupted.cancelled {
                passDue = true
                continue
            } catch StoreUploader.Interrupted.deadline {
                Log.notice("uplink: the last pass did not finish in \(UplinkLoop.stopPassSeconds) s; the rest goes after the next start")
                return
            } catch {
                uploader = nil
                failures += 1
                passDue = true
                liveUntil = 0
                let reason = bounded("\(error)", limit: 300)
                uplink.state.withLock {
                    $0.connected = false
                    $0.lastError = reason
                }
                if journaledState != false {
                    Log.warning("uplink: \(reason); retrying with backoff")
                    audit("uplink_lost", ["office": .string(uplink.settings.office), "reason": .string(reason)])
                    journaledState = false
                }
            }
            if stopping { return }
            if failures > 0 {
                // Woken only to stop: seals do not cut a backoff short.
                let deadline = Clock.monotonicNanoseconds() + Int64(UplinkLoop.backoff(failures: failures) * 1e9)
                while !uplink.isStopping && Clock.monotonicNanoseconds() < deadline {
                    _ = uplink.wait(seconds: Double(deadline - Clock.monotonicNanoseconds()) / 1e9)
                }
                if uplink.isStopping { return }
            } else if Clock.monotonicNanoseconds() < liveUntil {
                if uplink.wait(seconds: UplinkLoop.livePollSeconds) { passDue = true }
            } else {
                if uplink.wait(seconds: Double(max(0, nextHeartbeat() - Clock.monotonicNanoseconds())) / 1e9) { passDue = true }
            }
        }
    }

    /// Asks the office for acknowledgements of the segments still here (urgently when free
    /// space is below the reserve), and keeps each new one in the store (the vault checks it;
    /// a refused one is journaled there and not fetched again this run). At most
    /// `acknowledgementsPerPass` are fetched, each of at most 64 KiB: what an office says cannot
    /// make the camera hold or journal more. Deletion is housekeeping's (`releaseAcknowledged`).
    func exchangeAcknowledgements(_ uploader: StoreUploader, _ uplink: UplinkLoop, refused: inout Set<String>) throws {
        guard case .success(let trust) = uplink.trust, refused.count < UplinkLoop.maximumRefusedAcknowledgements,
              let from = try vault.firstUnacknowledged(authority: trust.authority, revocations: trust.revocations) else { return }
        let kept = Set(try directoryEntries(configuration.storagePath).filter(OffloadAcknowledgement.isFileName))
        let fetched = try uploader.acknowledgements(from: from, skip: kept.union(refused), urgent: storage.level != .ok,
                                                    limit: UplinkLoop.acknowledgementsPerPass)
        for (name, bytes) in fetched {
            do {
                let (ack, _) = try vault.receiveOffload(bytes, authority: trust.authority, revocations: trust.revocations)
                if ack.fileName != name { refused.insert(name) }
                uplink.state.withLock { $0.acknowledgements += 1 }
                Log.notice("uplink: the office acknowledged segments \(ack.entries.first?.sequence ?? 0)…\(ack.entries.last?.sequence ?? 0) (\(ack.fileName))")
            } catch let error as EvidenceError {
                refused.insert(name)
                Log.error("uplink: refused the acknowledgement \(name): \(bounded("\(error)", limit: 300))")
            }
        }
    }

    /// Deletes up to 16 segments that acknowledgements in the store name and whose retention
    /// has passed (`[uplink] retention_days` after their end), or that wait while free space is
    /// below the reserve. A wall clock behind a segment's end releases nothing early. Called by
    /// housekeeping at each check (at normal I/O priority, a few deletions a time, so that the
    /// watchdog's thread is never held long).
    func releaseAcknowledged() {
        guard let uplink, case .success(let trust) = uplink.trust else { return }
        let pressure = storage.level != .ok
        let keep = Int64(uplink.settings.retentionDays) * 86_400_000_000_000
        let now = Clock.wallNanoseconds()
        do {
            let released = try vault.releaseOffloaded(authority: trust.authority, revocations: trust.revocations, limit: 16) { _, endUTC in
                guard !pressure && keep > 0 else { return true }
                guard let end = ClockParse.nanoseconds(iso8601: endUTC) else { return false }
                return now >= end + keep
            }
            guard !released.isEmpty else { return }
            uplink.state.withLock { $0.released += released.count }
            Log.notice("offload: released \(released.count) acknowledged segment(s) (\(released.first!)…\(released.last!))"
                       + (pressure ? " for storage" : ""))
        } catch {
            Log.error("offload: \(error)")
        }
    }
}
