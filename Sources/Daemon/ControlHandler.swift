import CShims
import ControlProtocol
import Controls
import Evidence
import Glibc
import LibCrypto
import Platform
import Policy
import Tokens
import Wire

extension Daemon {
    /// Answers one connection of the control socket (docs/CONTROL.md): on a "control-request"
    /// thread for a complete line, on the socket's thread for one refused before it was read.
    /// Every request that changes something is journaled with the peer's uid and pid; every
    /// refusal with what was refused and why (at a bounded rate per uid, `RefusalLimiter`); an
    /// accepted `status` is not journaled (it reads, changes nothing and shows no footage).
    func handle(_ connection: ControlConnection) -> ControlResponse {
        let peer = connection.peer
        let who = "\(DaemonEffects.controlSocketSource)\(peer.uid) pid \(peer.pid)"
        func refuse(_ command: String, _ reason: String, answer: String? = nil) -> ControlResponse {
            journalRefusal(peer: peer, command: command, reason: reason)
            return .failure(answer ?? reason)
        }
        if let problem = connection.problem {
            return refuse(visibleCommand(connection.line) ?? "?", "\(problem): not carried out")
        }
        // The line is parsed once; the envelope (for access) and the request are read from it.
        guard let value = try? JSONParser.parse(connection.line),
              let envelope = try? JSONCoding.decode(ControlRequest.Envelope.self, from: value) else {
            let reason = connection.line.isEmpty ? "an empty request line" : "not a JSON object with a \"cmd\" string"
            return refuse(visibleCommand(connection.line) ?? "?", reason, answer: ControlRequestError.notJSON.description)
        }
        guard let command = ControlCommand(rawValue: envelope.cmd) else {
            return refuse(envelope.cmd, "unknown command", answer: ControlRequestError.unknownCommand(bounded(envelope.cmd)).description)
        }
        guard socketAccess.allows(command, peer: peer) else {
            return refuse(command.rawValue, "needs \(command.requiredRole.rawValue)",
                          answer: "permission denied: \(command.rawValue) needs \(command.requiredRole.rawValue)")
        }
        let request: ControlRequest
        do {
            request = try ControlRequest.parse(value)
        } catch {
            let response = refuse(command.rawValue, "\(error)")
            // A token that cannot even be read is still a denied stop or duty change: the policy
            // journals it as such.
            if command == .stop { engine.handle(.stopToken(.failure(.malformed), source: who)) }
            if command == .duty { engine.handle(.dutyToken(.failure(.malformed), source: who)) }
            return response
        }
        // Nobody would learn the outcome: a request whose client has gone is not carried out.
        if connection.clientGone {
            return refuse(command.rawValue, "the client left before it was carried out")
        }
        // What the policy decides on a token is journaled by the policy, with this peer as its
        // source (a denial through the peer's refusal share); `status` changes nothing.
        if ![.status, .stop, .duty].contains(command) {
            audit("control_request", ["uid": .integer(Int64(peer.uid)), "pid": .integer(Int64(peer.pid)),
                                      "cmd": .string(command.rawValue), "accepted": .boolean(true)])
        }
        return perform(request, peer: peer, source: who)
    }

    /// Journals a refused request, or counts it when its uid has had its share of full records
    /// this window (`RefusalLimiter`).
    func journalRefusal(peer: Peer, command: String, reason: String) {
        let cmd = bounded(command), why = bounded(reason, limit: 160)
        effects.journalRefusal(uid: peer.uid, kind: "control_request",
                               fields: ["uid": .integer(Int64(peer.uid)), "pid": .integer(Int64(peer.pid)), "cmd": .string(cmd),
                                        "accepted": .boolean(false), "reason": .string(why)],
                               command: cmd, reason: why)
    }

    /// The policy's decision on a request: `ok` unless it was denied or refused.
    func outcome(_ actions: [PolicyAction]) -> ControlResponse {
        let kinds = actions.compactMap { action -> String? in if case .journal(let kind, _) = action { return kind } else { return nil } }
        let refused = kinds.contains { $0.hasSuffix("_denied") || $0.hasSuffix("_refused") }
        return ControlResponse(ok: !refused, decision: kinds, state: engine.state.rawValue)
    }

    func perform(_ request: ControlRequest, peer: Peer, source who: String) -> ControlResponse {
        func refuse(_ reason: String) -> ControlResponse {
            journalRefusal(peer: peer, command: request.command.rawValue, reason: reason)
            return .failure(reason)
        }
        let now = Clock.iso8601(wallNanoseconds: Clock.wallNanoseconds())
        switch request {
        case .status:
            return ControlResponse(ok: true, state: engine.state.rawValue, status: status())
        case .stop(let token):
            return outcome(engine.handle(.stopToken(tokens.grant(token, expecting: .stop, now: now, clockTrusted: clockTrusted()), source: who)))
        case .duty(let token):
            return outcome(engine.handle(.dutyToken(tokens.grant(token, expecting: .duty, now: now, clockTrusted: clockTrusted()), source: who)))
        case .mark(let label):
            return outcome(engine.handle(.markRequest(label: label, source: who)))
        case .reloadSupervisors:
            return reloadSupervisors(source: who)
        case .installCertificate(let bytes):
            return installCertificate(bytes, now: now, source: who)
        case .simulateButton(let name, let action, let milliseconds):
            guard let simulated else { return refuse("controls.backend is not \"simulated\"") }
            guard let button = Button(rawValue: name) else {
                return refuse("no button \(bounded(name)): \(Button.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            // Each edge is answered once the controls thread has taken it and the policy acted.
            switch action {
            case .press: simulated.press(button, waitUntilTaken: true)
            case .release: simulated.release(button, waitUntilTaken: true)
            case .click, .hold:
                let hold = Int64(milliseconds ?? (action == .hold ? 3500 : 120)) * 1_000_000
                let pressedAt = Clock.monotonicNanoseconds()
                simulated.press(button, waitUntilTaken: true)
                // The contact stays closed this long, as a finger would hold it (or until the
                // socket stops: the finger lets go).
                _ = socket.wait(untilMonotonic: pressedAt + hold)
                simulated.release(button, waitUntilTaken: true)
            }
            return ControlResponse(ok: true, state: engine.state.rawValue)
        case .simulateBattery(let percent):
            guard simulated != nil else { return refuse("controls.backend is not \"simulated\"") }
            runState.batteryPercent = percent
            return outcome(engine.handle(.battery(percent: percent)))
        case .simulateDock(let connected):
            guard simulated != nil else { return refuse("controls.backend is not \"simulated\"") }
            return outcome(engine.handle(.dock(connected: connected)))
        }
    }

    /// Whether the wall clock can be trusted to check a token's validity: the kernel says it is
    /// synchronised (NTP), and it is not before this software was written.
    func clockTrusted() -> Bool {
        ClockSync.read().synchronised && Clock.wallNanoseconds() >= Clock.earliestPlausibleWallNanoseconds
    }

    func status() -> StatusReport {
        let freeBytes = (try? freeSpace(configuration.storagePath)) ?? 0
        let bytesPerSecond = Int64(configuration.encoder.bitrateKbps ?? 4000) * 125
        let synced = ClockSync.read().synchronised
        var alarms: [String] = []
        if storage.level != .ok { alarms.append("storage \(storage.level.rawValue)") }
        let battery = runState.batteryPercent
        if let battery, battery <= configuration.policy.lowBatteryPercent { alarms.append("battery low") }
        if !synced { alarms.append("clock not synchronised") }
        if Clock.wallNanoseconds() < Clock.earliestPlausibleWallNanoseconds { alarms.append("clock implausible") }
        if let identityAlarm { alarms.append(identityAlarm) }
        if runState.cameraMissing { alarms.append("camera missing") }
        if runState.cameraBelowConfiguration { alarms.append("camera below configuration") }
        if runState.storageBacklog { alarms.append("storage too slow") }
        if let uplink, uplink.state.withLock({ !$0.connected && !$0.lastError.isEmpty }) { alarms.append("uplink down") }
        if let uplink, case .failure = uplink.trust { alarms.append("acknowledgements unchecked") }
        let sealed = vault.sealedSummary
        var report = StatusReport(state: engine.state.rawValue, officerID: engine.officerID, dutyID: engine.dutyID,
                                  segmentsSealed: sealed.count, nextSequence: vault.nextSequence, lastSealUTC: sealed.lastEndUTC,
                                  preEventMilliseconds: recorder.preEventMilliseconds, frames: recorder.framesEncoded,
                                  storageFreeBytes: freeBytes, hoursLeft: freeBytes / max(1, bytesPerSecond) / 3600,
                                  batteryPercent: battery, clockSynced: synced, alarms: alarms)
        report.writeQueueMilliseconds = recorder.writeQueueFill.milliseconds
        report.writeQueuePeakMilliseconds = recorder.writeQueuePeak.milliseconds
        report.framesShed = recorder.framesShed
        let head = vault.journal.head
        report.journalRecords = head?.records ?? 0
        report.journalHeadSHA256 = head?.sha256 ?? ""
        return report
    }

    /// The supervisors' keys (policy.supervisors) were changed by root: trust what is there now.
    func reloadSupervisors(source who: String) -> ControlResponse {
        do {
            let keys = try Daemon.trustedSupervisors(configuration)
            let before = Set(tokens.supervisors.map { $0.keyID })
            let after = keys.map { $0.keyID }
            tokens.replaceSupervisors(keys)
            audit("supervisors_reloaded", ["key_ids": .array(after.sorted().map(JSONValue.string)),
                                           "added": .integer(Int64(Set(after).subtracting(before).count)),
                                           "removed": .integer(Int64(before.subtracting(after).count)), "source": .string(who)])
            Log.notice("supervisor keys reloaded: \(after.count) trusted")
            return ControlResponse(ok: true, keyIDs: after.sorted())
        } catch {
            audit("supervisors_reload_failed", ["error": .string("\(error)"), "source": .string(who)])
            return .failure("the supervisors' keys were not reloaded (the old ones stay trusted): \(error)")
        }
    }

    /// A certificate the authority issued for this device's key (a first one, or a renewal).
    func installCertificate(_ bytes: [UInt8], now: String, source who: String) -> ControlResponse {
        let refuse = { (reason: String) -> ControlResponse in
            self.audit("certificate_refused", ["reason": .string(reason), "source": .string(who)])
            return .failure(reason)
        }
        guard let certificate = try? DeviceCertificate(document: SignedDocument.parse(bytes, expectedType: DeviceCertificate.type, what: "certificate")) else {
            return refuse("not a device certificate")
        }
        guard certificate.deviceKey == devicePublicKey else { return refuse("the certificate is for another key than this device's") }
        guard certificate.deviceID == configuration.deviceID else {
            return refuse("the certificate is for device \(certificate.deviceID), not \(configuration.deviceID)")
        }
        guard now <= certificate.notAfter else { return refuse("the certificate expired at \(certificate.notAfter)") }
        do {
            try writeFileAtomically(configuration.certificatePath, certificate.document.bytes)
            try writeFileAtomically(configuration.storagePath + "/device.certificate", certificate.document.bytes)
        } catch {
            return refuse("cannot write the certificate: \(error)")
        }
        let hash = Hex.encode(certificate.document.sha256)
        audit("certificate_installed", ["serial": .string(certificate.serial), "authority_key_id": .string(certificate.authorityKeyID),
                                        "not_after": .string(certificate.notAfter), "sha256": .string(hash), "source": .string(who)])
        Log.notice("certificate \(certificate.serial) installed; manifests are signed as provisioned from the next start")
        return ControlResponse(ok: true, serial: certificate.serial, takesEffect: "at the next start of bodycamd")
    }
}
