import Glibc
import Synchronization
import CShims

/// A flag set from one thread and read from another.
public final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { value.load(ordering: .acquiring) }
    public func set() { value.store(true, ordering: .releasing) }
    public func clear() { value.store(false, ordering: .releasing) }
}

/// A counter written by one thread and read by others.
public final class AtomicCounter: Sendable {
    private let count = Atomic<Int>(0)
    public init() {}
    public var value: Int { count.load(ordering: .acquiring) }
    /// Adds one; returns the new value.
    @discardableResult
    public func increment() -> Int { count.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue }
    public func store(_ value: Int) { count.store(value, ordering: .releasing) }
}

/// A pthread mutex and condition variable, heap-allocated so their addresses never move.
final class ConditionLock {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Only inside `withLock`.
    func wait() { pthread_cond_wait(condition, mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// What a bounded queue does when a producer finds it full.
public enum OverflowPolicy: Sendable {
    /// The producer waits (files, benchmarks: nothing may be lost).
    case block
    /// The oldest item is discarded and counted (live cameras: the newest picture matters most,
    /// and the driver must get its buffers back).
    case dropOldest
}

/// A fixed-capacity FIFO between one producer thread and one consumer thread.
public final class BoundedQueue<Element> {
    private let lock = ConditionLock()
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    public let capacity: Int
    public let policy: OverflowPolicy
    /// Items discarded under `.dropOldest` since the last `takeDropped()`.
    private var dropped = 0

    public init(capacity: Int, policy: OverflowPolicy) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.policy = policy
    }

    private var count: Int { items.count - head }

    /// Adds an item; returns false when the queue was closed.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        lock.withLock {
            while !closed && count >= capacity {
                if policy == .dropOldest {
                    head += 1
                    dropped += 1
                } else {
                    lock.wait()
                }
            }
            guard !closed else { return false }
            if head > 64 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            items.append(element)
            lock.broadcast()
            return true
        }
    }

    /// The oldest item; blocks while empty. nil once closed and empty.
    public func pop() -> Element? {
        lock.withLock {
            while count == 0 && !closed { lock.wait() }
            guard count > 0 else { return nil }
            let element = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
            lock.broadcast()
            return element
        }
    }

    /// Wakes every waiter; later pushes are refused, pops drain what is left.
    public func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }

    public func takeDropped() -> Int {
        lock.withLock {
            defer { dropped = 0 }
            return dropped
        }
    }
}

/// A joinable POSIX thread running one closure: for the blocking C loops (DQBUF, codec) that
/// must not run on the cooperative pool.
public final class WorkerThread {
    private var thread: pthread_t = 0
    private var joined = false

    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) { self.name = name; self.body = body }
    }

    public init(name: String, _ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            bc_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        precondition(status == 0, "pthread_create(\(name)) failed: \(status)")
    }

    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit { assert(joined, "WorkerThread released without join()") }
}

/// An eventfd used to wake a thread blocked in poll(2): the stop signal for capture loops.
public final class WakeEvent {
    public let fd: Int32

    public init() throws {
        fd = bc_eventfd()
        if fd < 0 { throw PipelineError.system(call: "eventfd", errno: errno) }
    }

    deinit { Glibc.close(fd) }

    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    public func reset() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
    }
}
