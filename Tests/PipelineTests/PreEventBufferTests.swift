import Capture
import Platform
import TestSupport
import Testing
@testable import Pipeline

@Suite("Pre-event buffer")
struct PreEventBufferTests {
    /// `seconds` of packets at 30 fps, GOP 30, `size` bytes each.
    func packets(seconds: Int, size: Int = 100, fps: Int = 30) -> [EncodedPacket] {
        (0..<(seconds * fps)).map { index in
            EncodedPacket(data: [UInt8](repeating: UInt8(index % 256), count: size), pts: Int64(index * 3000), dts: Int64(index * 3000),
                          duration: 3000, isKeyframe: index % fps == 0)
        }
    }

    @Test("keeps the newest whole GOPs covering the window, dropping only whole GOPs, oldest first")
    func timeBound() {
        var buffer = PreEventBuffer(seconds: 3, maxBytes: 1 << 30)
        for packet in packets(seconds: 10) { buffer.append(packet) }
        let drained = buffer.drain()
        let firstPts = drained.first?.pts
        #expect(drained.first?.isKeyframe == true)
        #expect(drained.count == 90)
        #expect(firstPts == Int64(7 * 90_000))
        #expect(zip(drained, drained.dropFirst()).allSatisfy { $1.pts == $0.pts + 3000 }, "contiguous")
        #expect(buffer.isEmpty && buffer.byteCount == 0)
        #expect(buffer.droppedGOPs == 7)
    }

    @Test("mid-GOP, the window is covered by the GOP in progress plus whole older ones")
    func windowMidGOP() {
        var buffer = PreEventBuffer(seconds: 2, maxBytes: 1 << 30)
        for packet in packets(seconds: 5).prefix(135) { buffer.append(packet) }  // 4.5 s
        // Ends at 4.5 s; GOP starts at 2 s leave 2.5 s ≥ 2 s; starting at 3 s would leave 1.5 s.
        let drained = buffer.drain()
        #expect(drained.first?.pts == Int64(2 * 90_000))
    }

    @Test("the byte cap drops whole GOPs too, but never the one in progress")
    func byteBound() {
        var buffer = PreEventBuffer(seconds: 120, maxBytes: 10_000)
        for packet in packets(seconds: 10, size: 100) { buffer.append(packet) }
        // 3,000 bytes per GOP: at most three GOPs fit under 10,000.
        #expect(buffer.byteCount <= 10_000)
        #expect(buffer.gopCount == 3)
        var huge = PreEventBuffer(seconds: 120, maxBytes: 10)
        for packet in packets(seconds: 2, size: 100) { huge.append(packet) }
        #expect(huge.gopCount == 1 && huge.packetCount == 30)
    }

    @Test("packets before the first keyframe are not kept (they cannot be decoded)")
    func startsOnKeyframe() {
        var buffer = PreEventBuffer(seconds: 5, maxBytes: 1 << 20)
        for packet in packets(seconds: 2).dropFirst(10) { buffer.append(packet) }
        let drained = buffer.drain()
        #expect(drained.count == 30)
        #expect(drained.first?.isKeyframe == true && drained.first?.pts == 30 * 3000)
    }

    @Test("with 0 seconds only the GOP in progress is kept")
    func zeroSeconds() {
        var buffer = PreEventBuffer(seconds: 0, maxBytes: 1 << 20)
        for packet in packets(seconds: 3).prefix(75) { buffer.append(packet) }
        #expect(buffer.gopCount == 1 && buffer.packetCount == 15)
        #expect(buffer.duration == 15 * 3000)
    }
}
