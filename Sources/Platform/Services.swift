import Dispatch
import ServiceLifecycle

/// A long-running part of the daemon as a swift-service-lifecycle service. Each part is a
/// blocking loop on its own thread (a C library's poll, a V4L2 dequeue), so the service only
/// starts it, waits for the group's graceful shutdown, and then stops it and waits for its
/// thread, off the cooperative pool.
public struct ThreadService: Service, CustomStringConvertible {
    public let description: String
    let start: @Sendable () -> Void
    let stop: @Sendable () -> Void

    public init(_ name: String, start: @escaping @Sendable () -> Void = {}, stop: @escaping @Sendable () -> Void) {
        description = name
        self.start = start
        self.stop = stop
    }

    public func run() async throws {
        start()
        try? await gracefulShutdown()
        await offPool(stop)
    }
}

/// The recording pipeline as a service: it runs on its own thread until it ends by itself (a
/// system stop, a power-off, the end of its source, a failure), which shuts the group down, or
/// until the group shuts down, which asks it to seal and stop.
public struct PipelineService: Service, CustomStringConvertible {
    public let description = "pipeline"
    let run: @Sendable () -> Void
    let shutdown: @Sendable () -> Void

    /// `run` blocks until the pipeline ends; `shutdown` asks it to end (from any thread).
    public init(run: @escaping @Sendable () -> Void, shutdown: @escaping @Sendable () -> Void) {
        self.run = run
        self.shutdown = shutdown
    }

    public func run() async throws {
        let thread = ThreadBox()
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                thread.value = WorkerThread(name: "pipeline") {
                    run()
                    finished.resume()
                }
            }
        } onGracefulShutdown: {
            shutdown()
        }
        await offPool { thread.value?.join() }
    }
}

// Written once, by the continuation's body before the thread starts; read after the thread has
// finished (the continuation's resume orders the two).
private final class ThreadBox: @unchecked Sendable {
    var value: WorkerThread?
}

/// Runs blocking work (a thread's join) on a Dispatch thread, not on the cooperative pool.
public func offPool(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async {
            work()
            done.resume()
        }
    }
}
