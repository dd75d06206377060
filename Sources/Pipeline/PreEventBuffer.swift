import Capture
import Platform
/// The last `seconds` of encoded video, kept while the camera is on but not recording, as whole
/// GOPs (each starting on a keyframe) so that a recording can open with them and begin about
/// `seconds` before the button press.
///
/// Bounded by time and by bytes; only whole GOPs are dropped, oldest first. The GOP being
/// built is never dropped, so with `seconds` 0 a recording starts at the latest keyframe
/// (at most one GOP early).
public struct PreEventBuffer {
    public let window: Int64
    public let maxBytes: Int
    private var gops: [[EncodedPacket]] = []
    public private(set) var byteCount = 0
    /// GOPs dropped to stay within the bounds, since creation.
    public private(set) var droppedGOPs = 0

    /// - Parameters:
    ///   - seconds: how much video to keep (0–120).
    ///   - maxBytes: a hard cap on the memory held, whatever the bit rate.
    ///   - ticksPerSecond: the packets' time base.
    public init(seconds: Int, maxBytes: Int, ticksPerSecond: Int64 = 90_000) {
        precondition((0...120).contains(seconds) && maxBytes > 0)
        window = Int64(seconds) * ticksPerSecond
        self.maxBytes = maxBytes
    }

    public var isEmpty: Bool { gops.isEmpty }
    public var gopCount: Int { gops.count }
    public var packetCount: Int { gops.reduce(0) { $0 + $1.count } }

    /// Ticks from the first buffered picture to the end of the last.
    public var duration: Int64 {
        guard let first = gops.first?.first, let last = gops.last?.last else { return 0 }
        return last.pts + last.duration - first.pts
    }

    public mutating func append(_ packet: EncodedPacket) {
        if packet.isKeyframe {
            gops.append([packet])
        } else if gops.isEmpty {
            return  // cannot be decoded without the keyframe before it
        } else {
            gops[gops.count - 1].append(packet)
        }
        byteCount += packet.data.count
        trim()
    }

    private mutating func trim() {
        guard let newest = gops.last?.last else { return }
        let end = newest.pts + newest.duration
        // Drop the oldest GOP while what remains still covers the window, or bytes overflow.
        while gops.count > 1 && (end - gops[1][0].pts >= window || byteCount > maxBytes) {
            byteCount -= gops[0].reduce(0) { $0 + $1.data.count }
            gops.removeFirst()
            droppedGOPs += 1
        }
    }

    /// Everything buffered, oldest first, starting on a keyframe; the buffer is left empty.
    public mutating func drain() -> [EncodedPacket] {
        defer {
            gops.removeAll()
            byteCount = 0
        }
        return gops.flatMap { $0 }
    }
}
