import Foundation
import Platform
import TestSupport
import Testing

/// Every input a fuzzer once failed on (Tests/Fuzz/TARGET/) and every seed goes through its
/// target again in the plain build: a fixed parser stays fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static var fuzz: String {
        URL(fileURLWithPath: DaemonTests.daemonPath).deletingLastPathComponent().appendingPathComponent("bodycam-fuzz").path
    }

    @Test("each target takes its seeds and its regression inputs without a crash")
    func replay() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let root = LayoutTests.root.path
        let seeds = try DaemonTests.run(Self.fuzz, ["seeds", root, directory.path])
        #expect(seeds.status == 0, "\(seeds)")
        let targets = try DaemonTests.run(Self.fuzz, ["list"]).output.split(separator: "\n").map(String.init)
        #expect(targets.count == 9)
        for target in targets {
            let regressions = ((try? directoryEntries(root + "/Tests/Fuzz/" + target)) ?? []).map { root + "/Tests/Fuzz/" + target + "/" + $0 }
            let seeded = try directoryEntries(directory.path + "/" + target).map { directory.path + "/" + target + "/" + $0 }
            #expect(!seeded.isEmpty, "\(target) has seeds")
            let result = try DaemonTests.run(Self.fuzz, ["run", target] + regressions + seeded)
            #expect(result.status == 0 && result.output.contains("no crash"), "\(target): \(result)")
        }
    }
}
