import Glibc
import Capture
import Platform

/// What a store needs to know to name and label a new segment.
public struct SegmentDescriptor: Equatable, Sendable {
    public var sequence: UInt64
    public var deviceID: String
    public var officerID: String
    /// Wall-clock time of the segment's first picture, UTC nanoseconds.
    public var startWallNanoseconds: Int64
    /// CLOCK_MONOTONIC capture time of the first picture.
    public var startMonotonicNanoseconds: Int64
    public var codec: String
    public var width: Int
    public var height: Int
    public var framesPerSecond: Int
    /// The kernel's boot id that `startMonotonicNanoseconds` belongs to (`kernelBootID`).
    public var bootID: String

    public init(sequence: UInt64, deviceID: String, officerID: String, startWallNanoseconds: Int64,
                startMonotonicNanoseconds: Int64 = 0, codec: String = "h264", width: Int = 0, height: Int = 0, framesPerSecond: Int = 0,
                bootID: String = kernelBootID) {
        self.sequence = sequence
        self.deviceID = deviceID
        self.officerID = officerID
        self.startWallNanoseconds = startWallNanoseconds
        self.startMonotonicNanoseconds = startMonotonicNanoseconds
        self.codec = codec
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.bootID = bootID
    }

    /// "seg-000042-20261129T031016Z": sortable by sequence, readable by a person.
    public var baseName: String {
        let digits = String(sequence)
        let padded = digits.count >= 6 ? digits : String(repeating: "0", count: 6 - digits.count) + digits
        return "seg-\(padded)-\(Clock.compactUTC(wallNanoseconds: startWallNanoseconds))"
    }
}

/// Where the muxer's bytes go. The muxer calls `write` with bytes in order and
/// `fragmentComplete` each time everything written so far forms complete MP4 fragments (the
/// moov, then one moof+mdat per GOP): the boundary at which an encrypting sink closes a chunk
/// and writes it. `makeDurable` syncs what was written (after each fragment, or once for several
/// when the writer fell behind a stall). `finish` seals the segment.
public protocol SegmentSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// `frames` pictures covering `duration` (90 kHz ticks) were completed since the last call.
    /// The fragment is written to storage, not necessarily durable yet.
    func fragmentComplete(frames: Int, duration: Int64) throws
    /// Makes every complete fragment written so far durable (fdatasync).
    func makeDurable() throws
    /// Makes the segment final and durable; returns where it is.
    func finish() throws -> String
    /// Camera frames missing inside the segment (between its first and last picture), and
    /// whether that count is estimated (the driver's sequence numbers could not be trusted),
    /// told before `finish`.
    func noteDropped(frames: Int, estimated: Bool)
    /// The wall clock over the segment, told before `finish`.
    func noteClock(_ clock: SegmentClock)
}

extension SegmentSink {
    public func noteDropped(frames: Int, estimated: Bool) {}
    public func noteClock(_ clock: SegmentClock) {}
}

/// The wall clock over one segment, as its manifest states it (docs/FORMAT.md, "Manifest";
/// docs/POLICY.md, "Clock").
public struct SegmentClock: Equatable, Sendable {
    /// The kernel said the clock was synchronised at every reading while the segment was written.
    public var synchronised: Bool
    /// The largest estimated error the kernel gave meanwhile, microseconds.
    public var estimatedErrorMicroseconds: Int
    /// The clock was never before `Clock.earliestPlausibleWallNanoseconds` meanwhile.
    public var plausible: Bool
    /// The segment was closed early because the wall clock stepped by a second or more; the
    /// next segment starts on the new clock.
    public var cutByStep = false

    public init(starting reading: ClockReading) {
        synchronised = reading.synchronised
        estimatedErrorMicroseconds = reading.estimatedErrorMicroseconds
        plausible = reading.plausible
    }

    public init(synchronised: Bool, estimatedErrorMicroseconds: Int, plausible: Bool, cutByStep: Bool = false) {
        self.synchronised = synchronised
        self.estimatedErrorMicroseconds = estimatedErrorMicroseconds
        self.plausible = plausible
        self.cutByStep = cutByStep
    }

    /// Takes in a later reading during the segment.
    public mutating func fold(_ reading: ClockReading) {
        synchronised = synchronised && reading.synchronised
        estimatedErrorMicroseconds = max(estimatedErrorMicroseconds, reading.estimatedErrorMicroseconds)
        plausible = plausible && reading.plausible
    }
}

/// Makes one sink per segment.
public protocol SegmentStore: AnyObject {
    /// The sequence number the next segment takes (a store continues its numbering across
    /// restarts).
    var nextSequence: UInt64 { get }
    func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink
}

/// Plain, unencrypted MP4 files: for tests and development only (the device stores sealed
/// segments). A segment is written as NAME.mp4.partial, made durable with fdatasync as its
/// fragments complete, then fsynced, renamed to NAME.mp4 and the directory fsynced.
public final class PlainFileStore: SegmentStore {
    public let directory: String

    public private(set) var nextSequence: UInt64 = 1

    public init(directory: String) throws {
        self.directory = directory
        if mkdir(directory, 0o750) < 0 && errno != EEXIST {
            throw SystemError.file(path: directory, call: "mkdir", errno: errno)
        }
        nextSequence = (try highestSegmentSequence(in: directory) ?? 0) + 1
    }

    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        nextSequence = max(nextSequence, segment.sequence + 1)
        return try PlainFileSink(directory: directory, name: segment.baseName + ".mp4")
    }
}

public final class PlainFileSink: SegmentSink {
    public let finalPath: String
    public let partialPath: String
    private let directory: String
    private var fd: Int32
    public private(set) var bytesWritten = 0
    public private(set) var fragments = 0

    public init(directory: String, name: String) throws {
        self.directory = directory
        finalPath = directory + "/" + name
        partialPath = finalPath + ".partial"
        // O_EXCL: never overwrite anything already recorded.
        let descriptor = Glibc.open(partialPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        if descriptor < 0 { throw SystemError.file(path: partialPath, call: "open", errno: errno) }
        if access(finalPath, F_OK) == 0 {
            // Not ours yet (stored last, below): close it here, once; deinit will not run.
            _ = Glibc.close(descriptor)  // empty and about to be unlinked: nothing to lose
            unlink(partialPath)
            throw SystemError.file(path: finalPath, call: "open", errno: EEXIST)
        }
        fd = descriptor
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd, bytes, path: partialPath)
        bytesWritten += bytes.count
    }

    public func fragmentComplete(frames: Int, duration: Int64) throws {
        fragments += 1
    }

    public func makeDurable() throws {
        if fdatasync(fd) < 0 { throw SystemError.file(path: partialPath, call: "fdatasync", errno: errno) }
    }

    public func finish() throws -> String {
        if fsync(fd) < 0 { throw SystemError.file(path: partialPath, call: "fsync", errno: errno) }
        let status = Glibc.close(fd)
        fd = -1
        if status < 0 { throw SystemError.file(path: partialPath, call: "close", errno: errno) }
        if rename(partialPath, finalPath) < 0 { throw SystemError.file(path: finalPath, call: "rename", errno: errno) }
        try syncDirectory(directory)
        return finalPath
    }
}

/// The highest NNNNNN among "seg-NNNNNN-…" names in `directory`, if any.
public func highestSegmentSequence(in directory: String) throws -> UInt64? {
    try directoryEntries(directory).compactMap { SegmentName.sequence(of: $0) }.max()
}

/// Segment file names ("seg-000042-20261129T031016Z" plus a suffix), as `SegmentDescriptor`
/// makes them and as readers must find them: a name read from a store (a manifest's
/// `segment_file`, a folder entry) becomes a path only after `isValid`, so that no store can
/// name a file outside itself.
public enum SegmentName {
    /// The highest sequence a segment may have: a segment a second for 30,000 years. Anything
    /// above is not a segment of ours, and arithmetic on it cannot overflow.
    public static let maximumSequence: UInt64 = 999_999_999_999

    /// "seg-", 6 to 12 digits (1 … `maximumSequence`), "-", 1 to 32 of 0-9, T and Z.
    public static func isValid(baseName: String) -> Bool {
        parse(baseName) != nil
    }

    /// The sequence in a file name that starts with a valid base name ("seg-…" then "." and a
    /// suffix, or nothing); nil for any other name.
    public static func sequence(of fileName: String) -> UInt64? {
        parse(String(fileName.prefix { $0 != "." }))
    }

    private static func parse(_ base: String) -> UInt64? {
        let parts = base.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "seg", (6...12).contains(parts[1].utf8.count),
              parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              (1...32).contains(parts[2].utf8.count),
              parts[2].utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == UInt8(ascii: "T") || $0 == UInt8(ascii: "Z") }),
              let sequence = UInt64(parts[1]), (1...maximumSequence).contains(sequence) else { return nil }
        return sequence
    }
}
