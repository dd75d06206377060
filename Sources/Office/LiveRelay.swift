import Evidence
import Glibc
import LibCrypto
import Pipeline
import Platform
import Synchronization
import Wire

/// Live view at the office (docs/OFFICE.md, "Live view"): while an officer with the `live` role
/// watches a device, the camera also sends the open segment's sealed bytes as they are written;
/// the relay decrypts each chunk as soon as it is whole, with the office's identity (which lives
/// only here), and hands viewers one continuous fragmented MP4 stream: the init segment, then
/// fragments whose decode times carry on across the camera's segments. Nothing of it is
/// written to disk; evidence arrives separately, sealed, with its manifest. Safe from any thread.
public final class LiveRelay: Sendable {
    /// A viewer that has not asked for this long no longer holds the camera in live mode.
    public static let viewerTimeoutNanoseconds: Int64 = 15_000_000_000
    /// The most of one segment held for live view (a minute at 8 Mb/s is 60 MiB).
    public static let maximumSegmentBytes = 96 << 20
    /// Items kept for viewers that are behind.
    static let keptItems = 240

    /// One piece of the stream: an init segment (ftyp, moov) or a fragment (moof, mdat).
    struct Item: Sendable {
        var index: Int
        var bytes: [UInt8]
        var isInit: Bool
        var sync: Bool
        /// The wall time its first picture was captured, ns (fragments).
        var capturedNanoseconds: Int64
    }

    struct Feed: Sendable {
        var segment = ""
        var received: [UInt8] = []
        var chunksRelayed = 0
        var timescale = 90_000
        /// Where the current segment starts on the stream's timeline (its timescale), and the
        /// stream's length before it in 90 kHz ticks: each segment follows the last one's
        /// duration (the chunk headers' ticks), whatever the wall clock did between them.
        var shiftTicks = 0
        var streamTicks: Int64 = 0
        var segmentTicks: Int64 = 0
        var createdNanoseconds: Int64 = 0
        var started = false
        /// Pieces of a fragment larger than one chunk (all but its last carry no frames).
        var pending: [UInt8] = []
        var items: [Item] = []
        var itemBytes = 0
        /// The next item's number; a viewer whose `after` is at or past it (the feed was let go
        /// and started over) is served as a new one.
        var nextIndex = 1
        var viewerSeen: Int64? = nil
        /// The stream's codec as Media Source Extensions name it (RFC 6381), from the avcC.
        var codec = ""

    }

    /// The office's identity (exports on the office's page decrypt with it too).
    let identity: X25519PrivateKey
    private let feeds = Mutex<[String: Feed]>([:])
    /// Items held per device at most, in bytes (the init segment of the current segment stays).
    static let maximumItemBytes = 64 << 20
    /// Chunks of one segment relayed at most.
    static let maximumChunks = 20_000
    /// Timescales above this are not a camera's (90 kHz is usual).
    static let maximumTimescale = 10_000_000

    public init(identity: X25519PrivateKey) {
        self.identity = identity
    }

    /// Whether someone watches `device` (asked within `viewerTimeoutNanoseconds`). Feeds no one
    /// watches any more are let go here.
    public func isWatched(_ device: String, now: Int64 = Clock.monotonicNanoseconds()) -> Bool {
        feeds.withLock { feeds in
            LiveRelay.sweep(&feeds, now: now)
            return feeds[device] != nil
        }
    }

    private static func watched(_ feed: Feed, now: Int64) -> Bool {
        feed.viewerSeen.map { now - $0 < LiveRelay.viewerTimeoutNanoseconds } ?? false
    }

    private static func sweep(_ feeds: inout [String: Feed], now: Int64) {
        for (device, feed) in feeds where !watched(feed, now: now) { feeds[device] = nil }
    }

    /// Takes `bytes` at `offset` of the sealed segment `segment` the camera is writing, and
    /// relays every chunk that is now whole. Returns the bytes held of that segment; while no
    /// one watches nothing is held, and the answer is nil. A new segment must start at 0; a
    /// piece that would leave a gap, or that differs from what is held (the segment then
    /// starts over), is refused with the size to resume at (`UploadConflict.gap`). A chunk that
    /// does not authenticate throws `EvidenceError`, and the segment is dropped.
    public func receive(device: String, segment: String, offset: Int64, bytes: [UInt8], now: Int64 = Clock.monotonicNanoseconds()) throws -> Int64? {
        try feeds.withLock { feeds in
            // Taken out of the dictionary while it changes, so that its buffers are not copied.
            guard var feed = feeds.removeValue(forKey: device), LiveRelay.watched(feed, now: now) else { return nil }
            defer { feeds[device] = feed }
            if segment != feed.segment {
                guard offset == 0 else { throw UploadConflict.gap(size: 0) }
                feed.streamTicks += feed.segmentTicks
                feed.segment = segment
                feed.received = []
                feed.chunksRelayed = 0
                feed.segmentTicks = 0
                feed.pending = []
            }
            let held = Int64(feed.received.count)
            guard offset <= held else { throw UploadConflict.gap(size: held) }
            let overlap = Int(min(held - offset, Int64(bytes.count)))
            if overlap > 0, feed.received[Int(offset)..<(Int(offset) + overlap)].elementsEqual(bytes[0..<overlap]) == false {
                feed.segment = ""
                feed.received = []
                throw UploadConflict.gap(size: 0)
            }
            guard feed.received.count + bytes.count - overlap <= LiveRelay.maximumSegmentBytes else {
                throw OfficeRefusal(413, "a segment is relayed live up to \(LiveRelay.maximumSegmentBytes >> 20) MiB")
            }
            feed.received += bytes[overlap...]
            do {
                try relay(&feed)
            } catch {
                feed.segment = ""
                feed.received = []
                throw error
            }
            return Int64(feed.received.count)
        }
    }

    /// Decrypts the chunks of `feed.received` that are whole and not yet relayed.
    private func relay(_ feed: inout Feed) throws {
        guard let layout = try? SealedSegmentLayout(feed.received, what: feed.segment), layout.chunks.count > feed.chunksRelayed else { return }
        guard layout.chunks.count <= LiveRelay.maximumChunks else {
            throw OfficeRefusal(413, "a segment is relayed live up to \(LiveRelay.maximumChunks) chunks")
        }
        let opened = try layout.decryptChunks(feed.received, identity: identity, allowUnsealed: true, what: feed.segment, from: feed.chunksRelayed)
        for (offset, plaintext) in opened.enumerated() {
            let index = feed.chunksRelayed + offset
            let chunk = layout.chunks[index]
            feed.segmentTicks = min(feed.segmentTicks + max(0, chunk.ticks), SealedSegmentFormat.maximumTicks)
            if index == 0 {
                // ftyp and moov only.
                let boxes = FragmentedMP4.children(plaintext, 0..<plaintext.count)
                let header = boxes.filter { $0.type == "ftyp" || $0.type == "moov" }.reduce(into: [UInt8]()) { $0 += plaintext[$1.start..<$1.end] }
                let moov = boxes.first { $0.type == "moov" }
                feed.timescale = moov.flatMap { _ in FragmentedMP4.timescale(initSegment: plaintext) }
                    .flatMap { (1...LiveRelay.maximumTimescale).contains($0) ? $0 : nil } ?? 90_000
                if let moov, let avcC = FragmentedMP4.decoderConfiguration(plaintext, in: moov.payload..<moov.end), avcC.count >= 4 {
                    feed.codec = "avc1." + Hex.encode(Array(avcC[1...3]))
                }
                feed.createdNanoseconds = layout.header["created_utc"]?.string.flatMap { ClockParse.nanoseconds(iso8601: $0) } ?? Clock.wallNanoseconds()
                // The stream's length so far in this segment's timescale (both bounded: no overflow).
                feed.shiftTicks = Int(feed.streamTicks / 90_000 * Int64(feed.timescale) + feed.streamTicks % 90_000 * Int64(feed.timescale) / 90_000)
                feed.started = true
                append(Item(index: 0, bytes: header, isInit: true, sync: false, capturedNanoseconds: feed.createdNanoseconds), to: &feed)
                continue
            }
            // A fragment larger than a chunk comes in pieces; the last carries its frames.
            feed.pending += plaintext
            guard chunk.frames > 0 || chunk.isLast, feed.started else { continue }
            var fragment = FragmentedMP4.fragmentBoxes(feed.pending)
            feed.pending = []
            guard !fragment.isEmpty, let time = FragmentedMP4.shiftDecodeTime(&fragment, by: feed.shiftTicks) else { continue }
            let seconds = Double(time) / Double(feed.timescale)
            let captured = feed.createdNanoseconds + Int64(min(max(seconds, 0), 1e9) * 1e9)
            append(Item(index: 0, bytes: fragment, isInit: false, sync: FragmentedMP4.startsWithSyncSample(fragment), capturedNanoseconds: captured),
                   to: &feed)
        }
        feed.chunksRelayed = layout.chunks.count
    }

    private func append(_ item: Item, to feed: inout Feed) {
        var item = item
        item.index = feed.nextIndex
        feed.nextIndex += 1
        feed.items.append(item)
        feed.itemBytes += item.bytes.count
        // Bounded by count and by bytes; the current segment's init segment stays.
        let current = feed.items.lastIndex(where: \.isInit) ?? 0
        var drop = 0
        var bytes = feed.itemBytes
        while drop < current && (feed.items.count - drop > LiveRelay.keptItems || bytes > LiveRelay.maximumItemBytes) {
            bytes -= feed.items[drop].bytes.count
            drop += 1
        }
        if drop > 0 {
            feed.items.removeFirst(drop)
            feed.itemBytes = bytes
        }
    }

    /// What a viewer that has the stream up to item `after` gets now (and the viewer is
    /// counted as watching): the items after it; or, for a new viewer (`after` 0), one too far
    /// behind, or one ahead of the stream (it started over), the current segment's init segment
    /// and its fragments from the last that opens on a keyframe. `next` is what to ask after
    /// next time; `captured` the capture time of the last fragment's first picture (nil when
    /// there is none); `origin` the wall time of the stream's time 0 as the current segment
    /// places it (a picture shown at stream time t was captured at origin + t); `codec` as
    /// Media Source Extensions name it. Empty while nothing new came.
    public func poll(device: String, after: Int, now: Int64 = Clock.monotonicNanoseconds())
        -> (bytes: [UInt8], next: Int, captured: Int64?, origin: Int64?, codec: String) {
        feeds.withLock { feeds in
            LiveRelay.sweep(&feeds, now: now)
            var feed = feeds.removeValue(forKey: device) ?? Feed()
            feed.viewerSeen = now
            defer { feeds[device] = feed }
            var chosen: ArraySlice<Item>
            if after > 0, after < feed.nextIndex, let first = feed.items.first, after >= first.index - 1 {
                chosen = feed.items.drop { $0.index <= after }
            } else if let start = feed.items.lastIndex(where: \.isInit) {
                let fragments = feed.items[(start + 1)...]
                let from = fragments.lastIndex(where: \.sync) ?? fragments.startIndex
                chosen = ArraySlice([feed.items[start]] + feed.items[from...])
            } else {
                chosen = []
            }
            let bytes = chosen.reduce(into: [UInt8]()) { $0 += $1.bytes }
            let origin = feed.started ? feed.createdNanoseconds - Int64(Double(feed.shiftTicks) / Double(feed.timescale) * 1e9) : nil
            return (bytes, chosen.last?.index ?? min(max(0, after), feed.nextIndex - 1), chosen.last { !$0.isInit }?.capturedNanoseconds, origin, feed.codec)
        }
    }
}
