import LibAV
import Capture
import Platform

/// What the burned-in caption shows and where.
public struct OverlaySettings: Equatable, Sendable {
    public enum Corner: String, CaseIterable, Sendable {
        case topLeft = "top-left", topRight = "top-right", bottomLeft = "bottom-left", bottomRight = "bottom-right"
    }

    /// One line of the caption. `{time}`, `{device}` and `{officer}` are replaced each frame.
    public var lines: [String]
    public var enabled: Bool
    public var corner: Corner
    /// Size of one font pixel in picture pixels; 0 picks one from the picture height.
    public var scale: Int

    public init(enabled: Bool = true, corner: Corner = .topLeft, scale: Int = 0,
                lines: [String] = ["{time}", "DEV {device} OFF {officer}"]) {
        self.enabled = enabled
        self.corner = corner
        self.scale = scale
        self.lines = lines
    }
}

/// Burns UTC date and time (to the second), device id and officer id into every picture before
/// it is encoded: white capitals on a black box, drawn into the planes with `Painter`.
public final class Overlay {
    public let settings: OverlaySettings
    public var deviceID: String
    public var officerID: String
    private var cachedSecond: Int64 = .min
    private var cachedLines: [String] = []

    public init(settings: OverlaySettings, deviceID: String, officerID: String) {
        self.settings = settings
        self.deviceID = deviceID
        self.officerID = officerID
    }

    /// Font pixel size for a picture: about 1/40 of the height per line of text.
    public func scale(forHeight height: Int) -> Int {
        settings.scale > 0 ? settings.scale : max(1, height / 360)
    }

    /// The caption lines for a moment in time, as drawn.
    public func lines(wallNanoseconds: Int64) -> [String] {
        let second = wallNanoseconds >= 0 ? wallNanoseconds / 1_000_000_000 : (wallNanoseconds - 999_999_999) / 1_000_000_000
        if second != cachedSecond {
            let time = Clock.overlayTimestamp(wallNanoseconds: wallNanoseconds)
            cachedLines = settings.lines.map {
                BitmapFont.displayed($0.replacingAll("{time}", with: time)
                    .replacingAll("{device}", with: deviceID)
                    .replacingAll("{officer}", with: officerID.isEmpty ? "-" : officerID))
            }
            cachedSecond = second
        }
        return cachedLines
    }

    /// Where line `index` of the caption starts, and the box around the caption, in a picture.
    public func layout(width: Int, height: Int, lines: [String]) -> (box: (x: Int, y: Int, width: Int, height: Int), textOrigin: (x: Int, y: Int), scale: Int) {
        let scale = scale(forHeight: height)
        let padding = 2 * scale
        let longest = lines.map(\.count).max() ?? 0
        let boxWidth = (longest * BitmapFont.cellWidth - 1) * scale + 2 * padding
        let boxHeight = (lines.count * BitmapFont.cellHeight - 2) * scale + 2 * padding
        let margin = 2 * padding
        var x = margin, y = margin
        if settings.corner == .topRight || settings.corner == .bottomRight { x = width - margin - boxWidth }
        if settings.corner == .bottomLeft || settings.corner == .bottomRight { y = height - margin - boxHeight }
        x = max(0, x) & ~1
        y = max(0, y) & ~1
        return ((x, y, boxWidth + (boxWidth & 1), boxHeight + (boxHeight & 1)), (x + padding, y + padding), scale)
    }

    /// Draws the caption for `wallNanoseconds` into `frame`.
    public func apply(to frame: VideoFrame, wallNanoseconds: Int64) {
        guard settings.enabled, !settings.lines.isEmpty else { return }
        let text = lines(wallNanoseconds: wallNanoseconds)
        let placement = layout(width: frame.width, height: frame.height, lines: text)
        Painter.fill(frame, x: placement.box.x, y: placement.box.y, width: placement.box.width, height: placement.box.height, color: .black)
        for (index, line) in text.enumerated() {
            Painter.drawText(line, into: frame, x: placement.textOrigin.x,
                             y: placement.textOrigin.y + index * BitmapFont.cellHeight * placement.scale, scale: placement.scale)
        }
    }
}

extension String {
    /// Replaces every occurrence of `target` (Foundation-free).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[rest.startIndex..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
