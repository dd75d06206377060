import Evidence
import Platform
import ServiceLifecycle
import UnixSignals

/// Takes SIGTERM and SIGINT from swift-service-lifecycle's UnixSignalsSequence (a dispatch
/// signal source; the sequence buffers what arrives before it is read, so a signal during
/// start-up is acted on once the parts run) and turns each into a system stop.
struct SignalService: Service, CustomStringConvertible {
    let description = "signals"
    let signals: UnixSignalsSequence
    let stop: @Sendable (String) -> Void

    func run() async throws {
        for await signal in signals.cancelOnGracefulShutdown() {
            let name = signal == .sigterm ? "SIGTERM" : "SIGINT"
            Log.notice("\(name): shutting down, sealing the open segment")
            stop(name)
        }
    }
}

extension Daemon {
    /// The daemon's parts as swift-service-lifecycle services, in dependency order: the group
    /// starts them in this order and shuts them down in the reverse one. The pipeline is last,
    /// so it is the first to stop and seals the open segment while the controls, the socket and
    /// the journal still work; the indicators and PWR_HOLD are first, so the power is released
    /// after everything else. The group ends when the pipeline does: on SIGTERM, SIGINT or
    /// --duration, on a power-off, at the end of the source or on a failure.
    func services(signals: UnixSignalsSequence) -> [(name: String, service: Service)] {
        // The uplink stops after the pipeline has sealed, so its last pass sends the last segment.
        let uplinkService: [(name: String, service: Service)] = uplink.map { uplink in
            [("uplink", ThreadService("uplink", start: { uplink.start { self.uplinkRun(uplink) } }, stop: { uplink.stop() }))]
        } ?? []
        return [
            ("indicators", ThreadService("indicators and power hold", stop: { self.finish() })),
            ("control socket", ThreadService("control socket", start: { self.socket.start { self.handle($0) } },
                                             stop: { self.socket.stop() })),
            ("controls", ThreadService("controls", start: { self.startControls() }, stop: { self.controls.stop() })),
            ("housekeeping", ThreadService("housekeeping and watchdog", start: { self.startHousekeeping() },
                                           stop: { self.housekeeping.stop() })),
            ("signals", SignalService(signals: signals, stop: { self.systemStop(reason: $0) })),
        ] + uplinkService + [
            ("pipeline", PipelineService(run: {
                do {
                    try self.recorder.run()
                } catch {
                    Log.error("\(error)")
                    self.audit("pipeline_failed", ["error": .string("\(error)")])
                    self.runState.fail()
                }
                self.runState.shuttingDown.set()
                self.housekeeping.wake.signal()
                self.notifier.stopping("sealing and stopping")
            }, shutdown: {
                self.runState.shuttingDown.set()
                self.recorder.shutdown()
            })),
        ]
    }

    /// The housekeeping thread, and the watchdog's under systemd's watchdog.
    func startHousekeeping() {
        var watchdog: (@Sendable () -> Void)? = nil
        if let interval = notifier.watchdogInterval { watchdog = { self.watchdogLoop(interval: interval) } }
        housekeeping.start({ self.housekeepingLoop() }, watchdog: watchdog)
    }

    func startControls() {
        controls.start(onEvent: { event in
            if case .button(let button, let gesture, _) = event, gesture != .release { Log.info("\(button.rawValue) \(gesture.rawValue)") }
            self.engine.handle(event)
        }, onError: { Log.error("controls: \($0)") })
    }

    /// Last of all: the shutdown record, the indicators, and after a power-off PWR_HOLD.
    func finish() {
        if let summary = drops.take() { reportDrops(summary) }
        for frames in housekeeping.takeStalls() { audit("pipeline_stalled", ["frames": .integer(Int64(frames))]) }
        for summary in refusals.takeEnded(at: nil) { effects.journalSummary(summary) }
        // A system stop (service stop, power-down sequence), not an officer's stop.
        let reason = runState.shutdownReason
        audit(AuditJournal.finalKind, ["reason": .string(reason), "segments": .integer(Int64(recorder.segments.count))])
        let segments = recorder.segments
        Log.info("\(segments.count) segments, \(segments.reduce(0) { $0 + $1.frames }) frames recorded in \(configuration.storagePath)")
        indicators.close()
        // Everything is sealed and journaled, so the power may go.
        if reason == "power off" {
            Log.notice("releasing PWR_HOLD")
            indicators.holdPower(false)
        }
        do { try gpio.close() } catch { Log.error("GPIO: \(error)") }
    }
}
