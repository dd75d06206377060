import CGPIOD
import Glibc
import Platform
import Wire
import Policy

/// The GPIO chips and lines the kernel offers (`bodycamctl gpio list`, selftest).
public enum GPIOInventory {
    public struct Line: Sendable {
        public var offset: Int
        public var name: String
        /// Who holds the line now ("bodycamd" while the daemon runs), or "" when free.
        public var consumer: String
        public var isOutput: Bool
    }
    public struct Chip: Sendable {
        public var name: String
        public var label: String
        public var lines: [Line]
    }

    /// Every /dev/gpiochip*, through gpiod_chip_open_by_name.
    public static func chips() -> [Chip] {
        // No /dev listing means no chips to show.
        let names = ((try? directoryEntries("/dev")) ?? []).filter { $0.hasPrefix("gpiochip") }
        return names.compactMap { name in
            guard let chip = gpiod_chip_open_by_name(name) else { return nil }
            defer { gpiod_chip_close(chip) }
            let lines = (0..<gpiod_chip_num_lines(chip)).compactMap { offset -> Line? in
                guard let line = gpiod_chip_get_line(chip, offset) else { return nil }
                return Line(offset: Int(offset), name: gpiod_line_name(line).map { String(cString: $0) } ?? "",
                            consumer: gpiod_line_consumer(line).map { String(cString: $0) } ?? "",
                            isOutput: gpiod_line_direction(line) == Int32(GPIOD_LINE_DIRECTION_OUTPUT))
            }
            return Chip(name: name, label: String(cString: gpiod_chip_label(chip)), lines: lines)
        }
    }

    /// Where a function's line is, or why it cannot be found (without requesting it).
    public static func locate(_ spec: LineSpec) -> Result<String, GPIOError> {
        if let chipName = spec.chip, let offset = spec.offset {
            guard let chip = gpiod_chip_open_lookup(chipName) else { return .failure(GPIOError("\(spec.name): chip \(chipName) not found")) }
            defer { gpiod_chip_close(chip) }
            return offset < gpiod_chip_num_lines(chip) ? .success("\(chipName):\(offset)") : .failure(GPIOError("\(spec.name): \(chipName) has no line \(offset)"))
        }
        guard let line = gpiod_line_find(spec.name) else { return .failure(GPIOError("\(spec.name): no line of that name on any chip")) }
        defer { gpiod_line_close_chip(line) }
        let chip = gpiod_line_get_chip(line).map { String(cString: gpiod_chip_name($0)) } ?? "?"
        return .success("\(chip):\(gpiod_line_offset(line))")
    }
}
