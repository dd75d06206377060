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

/// A pthread mutex and condition variable, heap-allocated so their addresses never move: the one
/// condition type, for the few places that must block until another thread acts (the bounded
/// queue, the indicators' timed patterns, the simulator's hand-over). Everything that only needs
/// mutual exclusion uses `Synchronization.Mutex`.
// Sendable: the pthread objects are made once and only used through pthread calls, which are
// safe from any thread; the pointers themselves never change.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        // Timed waits count CLOCK_MONOTONIC, so a wall-clock step neither ends nor stretches them.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Only inside `withLock`.
    public func wait() { pthread_cond_wait(condition, mutex) }
    /// Only inside `withLock`: waits for a broadcast or until CLOCK_MONOTONIC reaches
    /// `deadline` (ns); false once the deadline has passed.
    public func wait(untilMonotonic deadline: Int64) -> Bool {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &target) != ETIMEDOUT
    }
    public func broadcast() { pthread_cond_broadcast(condition) }
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
// Every member is read and written under `lock`; the elements cross threads, hence Sendable.
public final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    public let capacity: Int
    public let policy: OverflowPolicy
    /// Items discarded under `.dropOldest` since the last `takeDropped()`.
    private var dropped = 0
    /// Under `.dropOldest`: called (under the lock, on the pushing thread) with each discarded
    /// item and the item that now comes first after it, so what the discarded one carried (a
    /// count of what was lost before it, say) is passed on rather than lost with it.
    private let carry: (@Sendable (Element, inout Element) -> Void)?

    public init(capacity: Int, policy: OverflowPolicy, carry: (@Sendable (Element, inout Element) -> Void)? = nil) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.policy = policy
        self.carry = carry
    }

    private var count: Int { items.count - head }

    /// Adds an item; returns false when the queue was closed.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        var element = element
        return lock.withLock {
            while !closed && count >= capacity {
                if policy == .dropOldest {
                    let discarded = items[head]
                    head += 1
                    dropped += 1
                    if let carry {
                        if count > 0 { carry(discarded, &items[head]) } else { carry(discarded, &element) }
                    }
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
// `thread` and `joined` are written by init and by `join()`, which one owner calls once.
public final class WorkerThread: @unchecked Sendable {
    private var thread: pthread_t = 0
    private var joined = false

    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
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
public final class WakeEvent: Sendable {
    public let fd: Int32

    public init() throws {
        fd = bc_eventfd()
        if fd < 0 { throw SystemError.system(call: "eventfd", errno: errno) }
    }

    // An eventfd holds no data: a failed close(2) loses nothing.
    deinit { _ = Glibc.close(fd) }

    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    public func reset() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
    }
}
