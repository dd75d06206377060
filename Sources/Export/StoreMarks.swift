import Evidence
import Platform
import Wire

extension ExportMark {
    /// Every mark the manifests hold (docs/FORMAT.md, "Manifest": `marks`), once each, in time
    /// order. A mark's time is its manifest segment's start plus the mark's distance from it on
    /// CLOCK_MONOTONIC when both are known (so a corrected start corrects the mark too), else the
    /// `utc` the device wrote. Entries that are not marks as the format writes them are skipped
    /// (the member is informative).
    /// - Parameter startUTC: each segment's start (ns since 1970 UTC) by sequence, corrected.
    public static func marks(in manifests: [Manifest], startUTC: [Int64: Int64]) -> [ExportMark] {
        var seen: Set<String> = []
        var marks: [ExportMark] = []
        for manifest in manifests {
            for entry in manifest.document.body["marks"]?.array ?? [] {
                guard let label = entry["label"]?.string, let source = entry["source"]?.string, let utc = entry["utc"]?.string,
                      var when = ClockParse.nanoseconds(iso8601: utc) else { continue }
                let monotonic = entry["monotonic_ns"]?.integer
                if let monotonic, let start = manifest.startMonotonicNanoseconds, let corrected = startUTC[manifest.sequence] {
                    let (delta, overflow) = monotonic.subtractingReportingOverflow(start)
                    if !overflow, let moved = ClockParse.inRange(corrected, plus: delta) { when = moved }
                }
                // A late mark is in two manifests: once in its own segment's, once in the next.
                let key = "\(label)|\(source)|\(monotonic.map(String.init) ?? utc)"
                if seen.insert(key).inserted { marks.append(ExportMark(label: label, source: source, utcNanoseconds: when)) }
            }
        }
        return marks.sorted { $0.utcNanoseconds < $1.utcNanoseconds }
    }
}
