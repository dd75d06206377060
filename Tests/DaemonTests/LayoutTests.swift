import Foundation
import Testing

/// The package's shape as the docs give it: Package.swift declares every module a target
/// imports; docs/ARCHITECTURE.md's module table is Package.swift's; the README's layout names
/// every folder.
@Suite("Layout: Package.swift, docs/ARCHITECTURE.md and the README agree with the code")
struct LayoutTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String { try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8) }

    /// Target name → the module names it declares (package products by the module they provide).
    static func declaredDependencies() throws -> [String: Set<String>] {
        let manifest = try read("Package.swift")
        let products = ["systemPackage": "SystemPackage", "logging": "Logging", "serviceLifecycle": "ServiceLifecycle",
                        "unixSignals": "UnixSignals", "argumentParser": "ArgumentParser",
                        "x509": "X509", "crypto": "Crypto", "asn1": "SwiftASN1",
                        "nioCore": "NIOCore", "nioPosix": "NIOPosix", "nioHTTP1": "NIOHTTP1", "nioSSL": "NIOSSL"]
        let target = try Regex(#"\.(?:target|executableTarget|testTarget)\(\s*name: "([^"]+)"(?:,\s*dependencies: \[([^\]]*)\])?"#)
        var result: [String: Set<String>] = [:]
        for match in manifest.matches(of: target) {
            let name = String(match.output[1].substring!)
            let list = match.output[2].substring ?? ""
            let items = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            result[name] = Set(items.map { $0.hasPrefix("\"") ? String($0.dropFirst().dropLast()) : products[$0] ?? $0 })
        }
        return result
    }

    @Test("every module a target imports is a dependency Package.swift declares for it")
    func importsDeclared() throws {
        let declared = try Self.declaredDependencies()
        let fileManager = FileManager.default
        let modules = Set(try fileManager.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path))
            .union(["SystemPackage", "Logging", "ServiceLifecycle", "UnixSignals", "ArgumentParser", "X509", "Crypto", "SwiftASN1",
                    "NIOCore", "NIOPosix", "NIOHTTP1", "NIOSSL"])
        let importLine = try Regex(#"(?m)^(?:@testable )?import (\w+)$"#)
        for (folder, targets) in [("Sources", Set(declared.keys)), ("Tests", Set(declared.keys))] {
            for name in targets {
                let directory = Self.root.appendingPathComponent("\(folder)/\(name)")
                guard let files = try? fileManager.contentsOfDirectory(atPath: directory.path) else { continue }
                for file in files where file.hasSuffix(".swift") {
                    let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                    for match in text.matches(of: importLine) {
                        let module = String(match.output[1].substring!)
                        guard modules.contains(module), module != name else { continue }
                        #expect(declared[name]?.contains(module) == true, "\(folder)/\(name)/\(file) imports \(module), which Package.swift does not declare for \(name)")
                    }
                }
            }
        }
    }

    @Test("docs/ARCHITECTURE.md's module table is Package.swift's graph")
    func architectureTable() throws {
        let declared = try Self.declaredDependencies()
        let rows = try Self.read("docs/ARCHITECTURE.md").split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| module") }
        var checked = 0
        for row in rows {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 2, let dependencies = declared[cells[0]] else { continue }
            let listed = cells[1] == "—" ? [] : Set(cells[1].split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " }) })
            #expect(listed == dependencies, "\(cells[0]): the docs say \(listed.sorted()), Package.swift \(dependencies.sorted())")
            checked += 1
        }
        #expect(checked >= 12)
    }

    @Test("the README's layout names every folder of Sources/ and Tests/")
    func readmeLayout() throws {
        let readme = try Self.read("README.md")
        let layout = String(readme[readme.range(of: "## Layout")!.lowerBound...])
        for folder in ["Sources", "Tests"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent(folder).path) {
                let named = layout.contains("\(folder)/\(name)") || (folder == "Sources" && layout.contains(name)) || (folder == "Tests" && layout.contains(name))
                #expect(named, "README's layout does not name \(folder)/\(name)")
            }
        }
    }
}
