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
        var shiftTicks = 0
        var createdNanoseconds: Int64 = 0
        /// The first relayed segment's creation time: the stream's time 0.
        var originNanoseconds: Int64? = nil
        var items: [Item] = []
        var nextIndex = 1
        /// The stream's codec as Media Source Extensions name it (RFC 6381), from the avcC.
        var codec = ""
        var viewerSeen: Int64? = nil
    }

    /// The office's identity (exports on the office's page decrypt with it too).
    let identity: X25519PrivateKey
    private let feeds = Mutex<[String: Feed]>([:])

    public init(identity: X25519PrivateKey) {
        self.identity = identity
    }

    /// Whether someone watches `device` (asked within `viewerTimeoutNanoseconds`).
    public func isWatched(_ device: String, now: Int64 = Clock.monotonicNanoseconds()) -> Bool {
        feeds.withLock { $0[device]?.viewerSeen.map { now - $0 < LiveRelay.viewerTimeoutNanoseconds } ?? false }
    }

    /// Takes `bytes` at `offset` of the sealed segment `segment` the camera is writing, and
    /// relays every chunk that is now whole. Returns the bytes held of that segment; while no
    /// one watches nothing is held (and what was is let go), and the answer is nil. A new
    /// segment must start at 0; a piece that would leave a gap is refused with the size held
    /// (`UploadConflict.gap`), one that differs from what is held too (`.differs`). A chunk
    /// that does not authenticate throws `EvidenceError`, and the segment is dropped.
    public func receive(device: String, segment: String, offset: Int64, bytes: [UInt8], now: Int64 = Clock.monotonicNanoseconds()) throws -> Int64? {
        try feeds.withLock { feeds in
            var feed = feeds[device] ?? Feed()
            defer { feeds[device] = feed }
            guard let seen = feed.viewerSeen, now - seen < LiveRelay.viewerTimeoutNanoseconds else {
                feed = Feed()
                return nil
            }
            if segment != feed.segment {
                guard offset == 0 else { throw UploadConflict.gap(size: 0) }
                feed.segment = segment
                feed.received = []
                feed.chunksRelayed = 0
            }
            let held = Int64(feed.received.count)
            guard offset <= held else { throw UploadConflict.gap(size: held) }
            let overlap = Int(min(held - offset, Int64(bytes.count)))
            if overlap > 0, feed.received[Int(offset)..<(Int(offset) + overlap)].elementsEqual(bytes[0..<overlap]) == false {
                // Not the bytes held: the segment starts over (the camera resumes at 0).
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
        let opened = try layout.decryptChunks(feed.received, identity: identity, allowUnsealed: true, what: feed.segment, from: feed.chunksRelayed)
        for (offset, plaintext) in opened.enumerated() {
            let index = feed.chunksRelayed + offset
            if index == 0 {
                feed.timescale = FragmentedMP4.timescale(initSegment: plaintext) ?? 90_000
                feed.createdNanoseconds = layout.header["created_utc"]?.string.flatMap { ClockParse.nanoseconds(iso8601: $0) } ?? Clock.wallNanoseconds()
                let origin = feed.originNanoseconds ?? feed.createdNanoseconds
                feed.originNanoseconds = origin
                feed.shiftTicks = Int(max(0, feed.createdNanoseconds - origin) / 1_000_000 * Int64(feed.timescale) / 1000)
                // ftyp and moov only.
                let boxes = FragmentedMP4.children(plaintext, 0..<plaintext.count)
                let header = boxes.filter { $0.type == "ftyp" || $0.type == "moov" }.reduce(into: [UInt8]()) { $0 += plaintext[$1.start..<$1.end] }
                if let moov = boxes.first(where: { $0.type == "moov" }),
                   let avcC = FragmentedMP4.decoderConfiguration(plaintext, in: moov.payload..<moov.end), avcC.count >= 4 {
                    feed.codec = "avc1." + Hex.encode(Array(avcC[1...3]))
                }
                append(Item(index: 0, bytes: header, isInit: true, sync: false, capturedNanoseconds: feed.createdNanoseconds), to: &feed)
            } else {
                var fragment = FragmentedMP4.fragmentBoxes(plaintext)
                guard !fragment.isEmpty else { continue }
                let time = FragmentedMP4.shiftDecodeTime(&fragment, by: feed.shiftTicks) ?? 0
                let captured = feed.createdNanoseconds + Int64(time) * 1_000_000_000 / Int64(feed.timescale)
                append(Item(index: 0, bytes: fragment, isInit: false, sync: FragmentedMP4.startsWithSyncSample(fragment), capturedNanoseconds: captured),
                       to: &feed)
            }
        }
        feed.chunksRelayed = layout.chunks.count
    }

    private func append(_ item: Item, to feed: inout Feed) {
        var item = item
        item.index = feed.nextIndex
        feed.nextIndex += 1
        feed.items.append(item)
        if feed.items.count > LiveRelay.keptItems { feed.items.removeFirst(feed.items.count - LiveRelay.keptItems) }
    }

    /// What a viewer that has the stream up to item `after` gets now (and the viewer is
    /// counted as watching): the items after it; or, for a new viewer (`after` 0) or one too far
    /// behind, the current segment's init segment and its fragments from the last that opens on
    /// a keyframe. `next` is what to ask after next time; `captured` the capture time of the
    /// last fragment's first picture (nil when there is none). Empty while nothing new came.
    /// `origin`: the wall time of the stream's time 0 (a picture shown at stream time t was
    /// captured at origin + t); `codec`: as Media Source Extensions name it.
    public func poll(device: String, after: Int, now: Int64 = Clock.monotonicNanoseconds())
        -> (bytes: [UInt8], next: Int, captured: Int64?, origin: Int64?, codec: String) {
        feeds.withLock { feeds in
            var feed = feeds[device] ?? Feed()
            feed.viewerSeen = now
            feeds[device] = feed
            var chosen: ArraySlice<Item>
            if after > 0, let first = feed.items.first, after >= first.index - 1 {
                chosen = feed.items.drop { $0.index <= after }
            } else if let start = feed.items.lastIndex(where: \.isInit) {
                let fragments = feed.items[(start + 1)...]
                let from = fragments.lastIndex(where: \.sync) ?? fragments.startIndex
                chosen = ArraySlice([feed.items[start]] + feed.items[from...])
            } else {
                chosen = []
            }
            let bytes = chosen.reduce(into: [UInt8]()) { $0 += $1.bytes }
            return (bytes, chosen.last?.index ?? max(0, after), chosen.last { !$0.isInit }?.capturedNanoseconds, feed.originNanoseconds, feed.codec)
        }
    }
}
