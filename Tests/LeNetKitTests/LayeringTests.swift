import Foundation
import Testing

/// The library's folders depend on each other one way, as the README draws it:
/// files -> Data -> Training (Models, Engine) -> Output. A type named in a folder that sits
/// below the folder declaring it is a dependency the wrong way; this test reads the
/// sources and names each one.
@Suite struct LayeringTests {
    static let library = DataFixtures.packageRoot + "/LeNetKit/Sources/LeNetKit"

    /// Folder -> the folders whose types it must not name.
    static let forbidden: [String: [String]] = [
        "Support": ["Engine", "Models", "Training", "Inference", "Output", "Export", "Benchmark"],
        "Data": ["Engine/CPU", "Models", "Training", "Inference", "Output", "Export", "Benchmark"],
        "Engine": ["Training", "Inference", "Output", "Export", "Benchmark"],
        "Models": ["Training", "Inference", "Output", "Export", "Benchmark"],
        "Training": ["Inference", "Output", "Export", "Benchmark"],
    ]

    /// Swift files under `folder`, relative to the library.
    static func files(in folder: String) -> [String] {
        let root = library + "/" + folder
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return paths.filter { $0.hasSuffix(".swift") }.map { folder + "/" + $0 }
    }

    /// Types declared in a file (struct, class, enum, protocol, typealias).
    static func declaredTypes(_ source: String) -> Set<String> {
        let pattern = #/(?m)^\s*(?:@\w+\s+)*(?:(?:public|internal|private|fileprivate|final|indirect)\s+)*(?:struct|class|enum|protocol|typealias|actor)\s+([A-Z]\w*)/#
        return Set(source.matches(of: pattern).map { String($0.output.1) })
    }

    static func source(_ file: String) throws -> String {
        // Comments and string literals may name anything; only code counts.
        try String(contentsOfFile: library + "/" + file, encoding: .utf8)
            .replacing(#/"(?:[^"\\\n]|\\.)*"/#, with: "\"\"")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "//").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            .joined(separator: "\n")
    }

    @Test func noFolderNamesATypeOfAFolderAboveIt() throws {
        var violations: [String] = []
        for (folder, above) in Self.forbidden {
            var banned: [String: String] = [:]  // type -> file declaring it
            for upper in above {
                for file in Self.files(in: upper) where !file.contains("/ONNX/") {
                    for type in Self.declaredTypes(try Self.source(file)) { banned[type] = file }
                }
            }
            // A type of the same name declared here is this folder's own.
            for file in Self.files(in: folder) { for type in Self.declaredTypes(try Self.source(file)) { banned[type] = nil } }
            for file in Self.files(in: folder) {
                let code = try Self.source(file)
                for (type, declaredIn) in banned where code.contains(try Regex("\\b\(type)\\b")) {
                    violations.append("\(file) names \(type) (\(declaredIn))")
                }
            }
        }
        #expect(violations.isEmpty, "\(violations.sorted().joined(separator: "\n"))")
    }

    /// Outside Engine/CPU/, only the factory in Engine/Network.swift names a CPU backend type.
    @Test func onlyTheFactoryNamesTheCPUBackend() throws {
        var cpuTypes: Set<String> = []
        for file in Self.files(in: "Engine/CPU") { cpuTypes.formUnion(Self.declaredTypes(try Self.source(file))) }
        #expect(cpuTypes.contains("CPUNetwork") && cpuTypes.contains("ThreadPool"))
        var namers: [String] = []
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.library)
        for file in folders.flatMap({ Self.files(in: $0) }) where !file.hasPrefix("Engine/CPU/") && !file.contains("/ONNX/") {
            let code = try Self.source(file)
            let own = Self.declaredTypes(code)
            for type in cpuTypes.subtracting(own) where code.contains(try Regex("\\b\(type)\\b")) { namers.append("\(file): \(type)") }
        }
        #expect(namers == ["Engine/Network.swift: CPUNetwork"])
    }
}
