import Glibc

/// Monotonic and wall-clock time, without Foundation (the daemon stays small).
public enum Clock {
    /// 2026-11-01T00:00:00Z in nanoseconds since 1970: no wall clock earlier than the time this
    /// software was written can be right (a board without a battery-backed clock boots in 1970).
    public static let earliestPlausibleWallNanoseconds: Int64 = 1_793_491_200 * 1_000_000_000

    /// CLOCK_MONOTONIC in nanoseconds: the clock V4L2 stamps buffers with.
    public static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// CLOCK_REALTIME in nanoseconds since the Unix epoch (UTC).
    public static func wallNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` (clock_nanosleep, TIMER_ABSTIME, so
    /// pacing does not drift with the time spent between calls).
    public static func sleep(untilMonotonic deadline: Int64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }

    /// "2026-11-29 03:10:16" (UTC, to the second) for the burned-in overlay.
    public static func overlayTimestamp(wallNanoseconds: Int64) -> String {
        let parts = utcParts(wallNanoseconds)
        return "\(parts.year)-\(pad(parts.month))-\(pad(parts.day)) \(pad(parts.hour)):\(pad(parts.minute)):\(pad(parts.second)) UTC"
    }

    /// "2026-11-29T03:10:16.250000Z": ISO 8601 as libavformat's creation_time expects.
    public static func iso8601(wallNanoseconds: Int64) -> String {
        let parts = utcParts(wallNanoseconds)
        let micros = Int((wallNanoseconds % 1_000_000_000 + 1_000_000_000) % 1_000_000_000 / 1_000)
        return "\(parts.year)-\(pad(parts.month))-\(pad(parts.day))T\(pad(parts.hour)):\(pad(parts.minute)):\(pad(parts.second)).\(pad(micros, 6))Z"
    }

    /// "20261129T031016Z", for file names.
    public static func compactUTC(wallNanoseconds: Int64) -> String {
        let parts = utcParts(wallNanoseconds)
        return "\(parts.year)\(pad(parts.month))\(pad(parts.day))T\(pad(parts.hour))\(pad(parts.minute))\(pad(parts.second))Z"
    }

    struct UTCParts { var year, month, day, hour, minute, second: Int }

    static func utcParts(_ wallNanoseconds: Int64) -> UTCParts {
        var seconds = time_t(wallNanoseconds >= 0 ? wallNanoseconds / 1_000_000_000 : (wallNanoseconds - 999_999_999) / 1_000_000_000)
        var broken = tm()
        gmtime_r(&seconds, &broken)
        return UTCParts(year: Int(broken.tm_year) + 1900, month: Int(broken.tm_mon) + 1, day: Int(broken.tm_mday),
                        hour: Int(broken.tm_hour), minute: Int(broken.tm_min), second: Int(broken.tm_sec))
    }

    static func pad(_ value: Int, _ width: Int = 2) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// Maps capture instants (CLOCK_MONOTONIC) to wall-clock time. The recorder takes a new anchor
/// every second and at every clock step (docs/POLICY.md, "Clock"); a segment keeps the anchor it
/// was opened with, so a step never bends the timeline inside a segment.
public struct ClockAnchor: Equatable, Sendable {
    public let monotonicNanoseconds: Int64
    public let wallNanoseconds: Int64

    public init(monotonicNanoseconds: Int64, wallNanoseconds: Int64) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.wallNanoseconds = wallNanoseconds
    }

    public static func now() -> ClockAnchor {
        ClockAnchor(monotonicNanoseconds: Clock.monotonicNanoseconds(), wallNanoseconds: Clock.wallNanoseconds())
    }

    public func wall(atMonotonic monotonic: Int64) -> Int64 {
        wallNanoseconds + (monotonic - monotonicNanoseconds)
    }

    /// Wall time minus monotonic time: what a clock step changes.
    public var offset: Int64 { wallNanoseconds - monotonicNanoseconds }
}

/// What the device knew of its wall clock at one moment: an anchor, the kernel's
/// synchronisation state, and whether the time can be right at all.
public struct ClockReading: Equatable, Sendable {
    public var anchor: ClockAnchor
    public var synchronised: Bool
    /// The kernel's estimated error (adjtimex `esterror`), microseconds.
    public var estimatedErrorMicroseconds: Int
    /// False when the wall clock is before `Clock.earliestPlausibleWallNanoseconds`.
    public var plausible: Bool
    /// The clock stepped by a second or more since the reading before this one.
    public var stepped: Bool

    public init(anchor: ClockAnchor, synchronised: Bool, estimatedErrorMicroseconds: Int, plausible: Bool, stepped: Bool = false) {
        self.anchor = anchor
        self.synchronised = synchronised
        self.estimatedErrorMicroseconds = estimatedErrorMicroseconds
        self.plausible = plausible
        self.stepped = stepped
    }

    /// `anchor` with the kernel's state `sync`; plausible when the anchor's wall time is not
    /// before `Clock.earliestPlausibleWallNanoseconds`.
    public init(anchor: ClockAnchor, sync: ClockSync, stepped: Bool = false) {
        self.init(anchor: anchor, synchronised: sync.synchronised, estimatedErrorMicroseconds: sync.estimatedErrorMicroseconds,
                  plausible: anchor.wallNanoseconds >= Clock.earliestPlausibleWallNanoseconds, stepped: stepped)
    }
}

/// "4.9" for (4.93, 1): fixed-point text without Foundation.
public func formatDecimal(_ value: Double, places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let whole = String(scaled / Int(scale))
    let fraction = String(scaled % Int(scale))
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard places > 0 else { return sign + whole }
    return sign + whole + "." + String(repeating: "0", count: places - fraction.count) + fraction
}
