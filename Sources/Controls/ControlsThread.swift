import Glibc
import Policy
import Platform
import Wire

/// Reads button edges on a dedicated thread woken by the GPIO request descriptors (and an
/// eventfd for stop), debounces them, recognises gestures and hands each to `onEvent` on that
/// thread. Long-press and debounce deadlines are the only timeouts of its poll.
// `debouncer` and `gestures` are set before `start()` and copied into the thread; `thread` is
// written by `start()` and `stop()`, which the controls service calls in that order.
public final class ControlsThread: @unchecked Sendable {
    private let backend: GPIOBackend
    private let wake: WakeEvent
    private let stopped = AtomicFlag()
    private var thread: WorkerThread?
    public var debouncer = Debouncer()
    public var gestures = GestureRecognizer()

    public init(backend: GPIOBackend) throws {
        self.backend = backend
        wake = try WakeEvent()
    }

    /// Starts the thread; `onEvent` runs on it, `onError` too (a failed read is reported once
    /// and the thread goes on).
    public func start(onEvent: @escaping @Sendable (PolicyEvent) -> Void, onError: @escaping @Sendable (Error) -> Void) {
        let backend = self.backend, wake = self.wake, stopped = self.stopped
        let initialDebouncer = self.debouncer, initialGestures = self.gestures
        thread = WorkerThread(name: "controls") {
            // The thread's own copies: nothing else touches them while it runs.
            var debouncer = initialDebouncer, gestures = initialGestures
            var fds = (backend.eventDescriptors + [wake.fd]).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            while !stopped.isSet {
                let deadline = [debouncer.nextDeadline, gestures.nextDeadline].compactMap { $0 }.min()
                let timeout = deadline.map { Int32(clamping: max(0, ($0 - Clock.monotonicNanoseconds() + 999_999) / 1_000_000)) } ?? -1
                for index in fds.indices { fds[index].revents = 0 }
                if retryingInterrupts({ poll(&fds, nfds_t(fds.count), timeout) }) < 0 {
                    onError(GPIOError("poll on GPIO events: \(String(cString: strerror(errno)))"))
                    return
                }
                if stopped.isSet { return }
                do {
                    for edge in try backend.readEdges() {
                        for clean in debouncer.feed(edge) {
                            for event in gestures.feed(clean) { onEvent(event) }
                        }
                    }
                    let now = Clock.monotonicNanoseconds()
                    for clean in debouncer.settle(now: now, level: { (try? backend.isPressed($0)) ?? false }) {
                        for event in gestures.feed(clean) { onEvent(event) }
                    }
                    // Edges can be lost: once a burst is over, and before a long press is
                    // declared, what was taken is checked against the lines' real levels.
                    let held = gestures.longPressesDue(now: now)
                    for clean in debouncer.reconcile(now: now, held: held, level: { try? backend.isPressed($0) }) {
                        for event in gestures.feed(clean) { onEvent(event) }
                    }
                    for event in gestures.tick(now: now) { onEvent(event) }
                    if debouncer.nextDeadline == nil { backend.edgesTaken() }
                } catch {
                    onError(error)
                }
            }
        }
    }

    public func stop() {
        stopped.set()
        wake.signal()
        thread?.join()
        thread = nil
    }
}
