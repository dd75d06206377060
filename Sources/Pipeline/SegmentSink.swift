import Glibc

/// What a store needs to know to name and label a new segment.
public struct SegmentDescriptor: Equatable, Sendable {
    public var sequence: UInt64
    public var deviceID: String
    public var officerID: String
    /// Wall-clock time of the segment's first picture, UTC nanoseconds.
    public var startWallNanoseconds: Int64

    public init(sequence: UInt64, deviceID: String, officerID: String, startWallNanoseconds: Int64) {
        self.sequence = sequence
        self.deviceID = deviceID
        self.officerID = officerID
        self.startWallNanoseconds = startWallNanoseconds
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
/// moov, then one moof+mdat per GOP): the boundary at which a sink makes data durable, and at
/// which an encrypting sink closes a chunk. `finish` seals the segment.
public protocol SegmentSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func fragmentComplete() throws
    /// Makes the segment final and durable; returns where it is.
    func finish() throws -> String
}

/// Makes one sink per segment.
public protocol SegmentStore: AnyObject {
    func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink
}

/// Plain, unencrypted MP4 files: for tests and development only (the device stores sealed
/// segments). A segment is written as NAME.mp4.partial, each fragment made durable with
/// fdatasync, then fsynced, renamed to NAME.mp4 and the directory fsynced.
public final class PlainFileStore: SegmentStore {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        if mkdir(directory, 0o750) < 0 && errno != EEXIST {
            throw PipelineError.file(path: directory, call: "mkdir", errno: errno)
        }
    }

    public func makeSink(for segment: SegmentDescriptor) throws -> SegmentSink {
        try PlainFileSink(directory: directory, name: segment.baseName + ".mp4")
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
        fd = Glibc.open(partialPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        if fd < 0 { throw PipelineError.file(path: partialPath, call: "open", errno: errno) }
        if access(finalPath, F_OK) == 0 {
            Glibc.close(fd)
            unlink(partialPath)
            throw PipelineError.file(path: finalPath, call: "open", errno: EEXIST)
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw PipelineError.file(path: partialPath, call: "write", errno: errno)
            }
            offset += count
        }
        bytesWritten += bytes.count
    }

    public func fragmentComplete() throws {
        if fdatasync(fd) < 0 { throw PipelineError.file(path: partialPath, call: "fdatasync", errno: errno) }
        fragments += 1
    }

    public func finish() throws -> String {
        if fsync(fd) < 0 { throw PipelineError.file(path: partialPath, call: "fsync", errno: errno) }
        let status = Glibc.close(fd)
        fd = -1
        if status < 0 { throw PipelineError.file(path: partialPath, call: "close", errno: errno) }
        if rename(partialPath, finalPath) < 0 { throw PipelineError.file(path: finalPath, call: "rename", errno: errno) }
        try syncDirectory(directory)
        return finalPath
    }
}

/// fsync on a directory, so a rename in it survives power loss.
public func syncDirectory(_ path: String) throws {
    let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 { throw PipelineError.file(path: path, call: "open", errno: errno) }
    defer { Glibc.close(fd) }
    if fsync(fd) < 0 { throw PipelineError.file(path: path, call: "fsync", errno: errno) }
}
