import LibAV
import Capture
import Platform
import TestSupport
import Testing
@testable import Pipeline

@Suite("Painter and overlay")
struct OverlayTests {
    @Test("text drawn with the built-in font reads back, in every pixel layout", arguments: PixelFormat.allCases)
    func textRoundTrip(pixelFormat: PixelFormat) throws {
        let frame = try VideoFrame(width: 320, height: 120, pixelFormat: pixelFormat)
        Painter.fill(frame, x: 0, y: 0, width: 320, height: 120, color: .black)
        let text = "2026-11-29 03:10:16 UTC #7/+_."
        Painter.drawText(text, into: frame, x: 4, y: 10, scale: 1)
        Painter.drawText("BC-0001", into: frame, x: 10, y: 40, scale: 3)
        #expect(String(Painter.readText(from: frame, x: 4, y: 10, scale: 1, count: text.count).map { $0 ?? "~" }) == text)
        #expect(String(Painter.readText(from: frame, x: 10, y: 40, scale: 3, count: 7).map { $0 ?? "~" }) == "BC-0001")
    }

    @Test("every glyph is distinct, so a reading is unambiguous")
    func glyphsDistinct() {
        let glyphs = BitmapFont.glyphs
        #expect(Set(glyphs.values.map { $0.map(String.init).joined(separator: ",") }).count == glyphs.count)
        #expect(glyphs.values.allSatisfy { $0.count == BitmapFont.glyphHeight && $0.allSatisfy { $0 < 32 } })
        #expect(BitmapFont.displayed("officer é") == "OFFICER ?")
    }

    @Test("fill writes the rectangle's colour and nothing outside it", arguments: PixelFormat.allCases)
    func fillIsClipped(pixelFormat: PixelFormat) throws {
        let frame = try VideoFrame(width: 64, height: 32, pixelFormat: pixelFormat)
        Painter.fill(frame, x: 0, y: 0, width: 64, height: 32, color: YUVColor(y: 50, u: 60, v: 70))
        Painter.fill(frame, x: 10, y: 4, width: 20, height: 8, color: YUVColor(y: 200, u: 100, v: 150))
        Painter.fill(frame, x: 60, y: 30, width: 100, height: 100, color: .white)  // clipped at the edge
        let luma = { (x: Int, y: Int) -> UInt8 in
            frame.withPlane(0) { bytes, stride in bytes[y * stride + x * (pixelFormat == .yuyv422 ? 2 : 1)] }
        }
        #expect(luma(10, 4) == 200 && luma(29, 11) == 200)
        #expect(luma(9, 4) == 50 && luma(30, 4) == 50 && luma(10, 3) == 50 && luma(10, 12) == 50)
        #expect(luma(63, 31) == 235 && luma(59, 31) == 50)
    }

    @Test("the caption fits inside the picture in every corner, at any size", arguments: OverlaySettings.Corner.allCases)
    func captionPlacement(corner: OverlaySettings.Corner) throws {
        for (width, height) in [(320, 240), (1280, 720), (1920, 1080)] {
            let overlay = Overlay(settings: OverlaySettings(corner: corner), deviceID: "BC-0001", officerID: "OFFICER-7")
            let lines = overlay.lines(wallNanoseconds: 1_796_000_000_000_000_000)
            let layout = overlay.layout(width: width, height: height, lines: lines)
            #expect(layout.box.x >= 0 && layout.box.y >= 0)
            #expect(layout.box.x + layout.box.width <= width && layout.box.y + layout.box.height <= height)
            #expect(layout.box.x % 2 == 0 && layout.box.y % 2 == 0, "even, for 4:2:0 chroma")
            #expect(layout.scale == max(1, height / 360))
            let frame = try VideoFrame(width: width, height: height, pixelFormat: .yuv420p)
            overlay.apply(to: frame, wallNanoseconds: 1_796_000_000_000_000_000)
            let read = Painter.readText(from: frame, x: layout.textOrigin.x, y: layout.textOrigin.y, scale: layout.scale, count: lines[0].count)
            #expect(String(read.map { $0 ?? "~" }) == lines[0])
        }
    }

    @Test("the caption shows UTC time to the second, device and officer, and changes each second")
    func captionContent() {
        let overlay = Overlay(settings: OverlaySettings(), deviceID: "bc-1", officerID: "")
        // 2026-11-29 03:10:16.999 UTC
        let instant: Int64 = 1_795_921_816_999_000_000
        #expect(overlay.lines(wallNanoseconds: instant) == ["2026-11-29 03:10:16 UTC", "DEV BC-1 OFF -"])
        #expect(overlay.lines(wallNanoseconds: instant + 1_000_000)[0] == "2026-11-29 03:10:17 UTC")
    }

    @Test("a disabled overlay leaves the picture untouched")
    func disabled() throws {
        let frame = try VideoFrame(width: 64, height: 64, pixelFormat: .nv12)
        let before = frame.packedBytes()
        Overlay(settings: OverlaySettings(enabled: false), deviceID: "X", officerID: "Y").apply(to: frame, wallNanoseconds: 0)
        #expect(frame.packedBytes() == before)
    }
}
