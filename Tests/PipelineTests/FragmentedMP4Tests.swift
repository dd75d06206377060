import Testing
@testable import Pipeline

/// The box walker live view runs on a camera's decrypted chunks (and `bodycamctl live` on the
/// office's answers): hostile sizes end the walk, never trap.
@Suite("FragmentedMP4: boxes from a hostile camera")
struct FragmentedMP4Tests {
    static func box(_ type: String, _ payload: [UInt8]) -> [UInt8] {
        let size = UInt32(8 + payload.count)
        return [UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)] + Array(type.utf8) + payload
    }

    @Test("a 64-bit size of Int.max after the first box, a size past the end, an 8-byte stsd, a tfdt at Int.max: no trap, no answer")
    func hostileSizes() {
        let huge: [UInt8] = [0, 0, 0, 1] + Array("mdat".utf8) + [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        let bytes = Self.box("free", []) + huge
        #expect(FragmentedMP4.children(bytes, 0..<bytes.count).map(\.type) == ["free"])
        let past = Self.box("moof", [0, 0, 0, 0x40] + Array("traf".utf8))
        #expect(FragmentedMP4.children(past, 8..<past.count).isEmpty)
        let moov = Self.box("moov", Self.box("trak", Self.box("mdia", Self.box("minf", Self.box("stbl", Self.box("stsd", []))))))
        #expect(FragmentedMP4.decoderConfiguration(moov, in: 8..<moov.count) == nil)
        var fragment = Self.box("moof", Self.box("traf", Self.box("tfdt", [1, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0])))
        #expect(FragmentedMP4.shiftDecodeTime(&fragment, by: 1 << 40) == nil)
        #expect(FragmentedMP4.shiftDecodeTime(&fragment, by: 15) == Int(Int64.max - 15))
        #expect(!FragmentedMP4.startsWithSyncSample(Self.box("moof", Self.box("traf", Self.box("trun", [0, 0, 0, 4])))))
    }

    @Test("a version-0 tfdt is moved in place; a trun's first-sample flags tell a keyframe")
    func edits() {
        var fragment = Self.box("moof", Self.box("traf", Self.box("tfhd", [0, 0, 0, 0, 0, 0, 0, 1]) + Self.box("tfdt", [0, 0, 0, 0, 0, 0, 0x0B, 0xB8])
                                                  + Self.box("trun", [0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0x02, 0, 0, 0])))
        #expect(FragmentedMP4.shiftDecodeTime(&fragment, by: 90_000) == 3000)
        #expect(FragmentedMP4.shiftDecodeTime(&fragment, by: 0) == 93_000)
        #expect(FragmentedMP4.startsWithSyncSample(fragment))
    }
}
