import Foundation
@testable import LeNetKit
import Testing

/// The `lenet` command end to end: what a user sees on bad input (one line naming the
/// file, a non-zero exit, no crash) and the tutorial's batch-shape line.
@Suite struct CommandLineTests {
    /// The `lenet` binary SwiftPM built beside this test bundle.
    static let lenet: String? = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("lenet").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    struct Outcome { var status: Int32; var stdout: String; var stderr: String }

    /// Runs the built `lenet` with `arguments`. With `argument0`, runs it through
    /// `/usr/bin/env`, which passes argv[0] as given, as a shell does (found on PATH, where
    /// the binary's folder is put first, when it has no slash, else relative to `directory`).
    static func run(_ arguments: [String], as argument0: String? = nil, in directory: String? = nil,
                    environment: [String: String] = [:]) throws -> Outcome {
        let binary = try #require(lenet, "lenet binary not found beside the tests")
        var environment = environment
        let process = Process()
        if let argument0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [argument0] + arguments
            environment["PATH"] = (binary as NSString).deletingLastPathComponent + ":"
                + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                       stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Each malformed file, replacing one of a small valid dataset's four files.
    static let malformed: [(name: String, file: Int, bytes: [UInt8], says: String)] = [
        ("wrong magic", 0, DataFixtures.imageFile(count: 3, magic: 0x804), "magic"),
        ("truncated", 0, Array(DataFixtures.imageFile(count: 3).dropLast(5)), "truncated"),
        ("count mismatch", 1, DataFixtures.labelFile(count: 4), "4"),
        ("label 10", 3, DataFixtures.labelFile(count: 2, labels: [1, 10]), "label 10"),
        ("empty file", 2, [], "empty"),
        ("bad gzip", 1, [0x1F, 0x8B, 8, 0, 1, 2, 3, 4, 5, 6], "gzip"),
    ]

    /// The real MNIST files, decompressed under their raw names into a fresh directory.
    static func realMNISTCopy() throws -> (directory: String, paths: [String]) {
        let directory = try DataFixtures.temporaryDirectory()
        let paths = DataFixtures.rawNames(dotted: false).map { directory + "/" + $0 }
        for path in paths {
            let source = (try DataFixtures.mnistDirectory) + "/" + (path as NSString).lastPathComponent + ".gz"
            try DataFixtures.write(try IDXFile.readContent(source), to: path)
        }
        return (directory, paths)
    }

    @Test(arguments: malformed.indices)
    func badDataGivesOneLineNamingTheFile(index: Int) throws {
        let (name, file, bytes, says) = Self.malformed[index]
        // `train` on a small dataset with one bad file; `data verify` on real MNIST with one bad
        // file (on the small one it would first report the other files' checksums).
        let small = try DataFixtures.temporaryDirectory()
        let smallPaths = try DataFixtures.writeSmallDataset(in: small, replace: [file: bytes])
        let (real, realPaths) = try Self.realMNISTCopy()
        defer { for directory in [small, real] { try? FileManager.default.removeItem(atPath: directory) } }
        try DataFixtures.write(bytes, to: realPaths[file])
        let cases = [(["train", "--epochs", "1", "--no-download", "--output", small + "/run", "--data-dir", small], smallPaths[file]),
                     (["data", "verify", "--data-dir", real], realPaths[file])]
        for (arguments, badPath) in cases {
            let outcome = try Self.run(arguments)
            let lines = outcome.stderr.split(separator: "\n")
            #expect(outcome.status == 1, "\(name), \(arguments[0]): exit \(outcome.status)")
            // A trap would end the process by a signal, not with status 1 and one line.
            #expect(lines.count == 1, "\(name), \(arguments[0]): \(outcome.stderr)")
            let line = String(lines.first ?? "")
            #expect(line.contains(badPath), "\(name): \(line)")
            #expect(line.lowercased().contains(says), "\(name): \(line)")
        }
    }

    @Test func samplesPrintsTheTutorialsBatchShapeAndWritesAPNG() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + "/samples.png"
        let outcome = try Self.run(["samples", "--data-dir", (try DataFixtures.mnistDirectory), "--output", output])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.split(separator: "\n").first == "Batch shape: [32, 1, 28, 28]")
        let png = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR: 10 images of 56 + 4 across; 2 rows of an image, its label (10 px) and gaps.
        let height: Int = 4 + 2 * (56 + 4 + 10 + 4)  // 152 (an Int: `UInt8(4 + 2 * ...)` took the type checker 13 s)
        #expect(Array(png[16..<24]) == [0, 0, 2, 92, 0, 0, 0, UInt8(height)])  // 604 x 152
    }

    /// `samples --terminal` fits the drawing to the width: $COLUMNS here (the output is a pipe).
    @Test func samplesDrawingFitsTheTerminalsWidth() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["samples", "--data-dir", (try DataFixtures.mnistDirectory), "--output", directory + "/samples.png", "--terminal"]
        let narrow = try Self.run(arguments, environment: ["COLUMNS": "50"])
        #expect(narrow.status == 0, "\(narrow.stderr)")
        // After the shape and "Wrote" lines, up to the final newline; blank rows of a digit count.
        let drawing = narrow.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).dropLast()
        #expect(drawing.count == 7 * 15, "\(narrow.stdout)")  // 20 images, 3 a line: 7 lines of images, 15 text lines each
        #expect(drawing.allSatisfy { $0.count <= 50 }, "\(narrow.stdout)")
        #expect(drawing.contains { $0.count > 29 })  // 3 images side by side, not 1
    }

    @Test func invalidFlagsAreRefusedBeforeAnyWork() throws {
        for arguments in [["train", "--epochs", "0"], ["train", "--lr", "-1"], ["train", "--model", "resnet"],
                          ["train", "--batch-size", "0"], ["train", "--batch-size", "65537"], ["experiment", "--threads", "0"]] {
            let outcome = try Self.run(arguments + ["--data-dir", "/nonexistent"])
            #expect(outcome.status == 64, "\(arguments): \(outcome.status)")  // EX_USAGE
            #expect(!outcome.stderr.isEmpty)
        }
        for arguments in [["predict", "--checkpoint", "/nonexistent", "--top", "11", "x.png"],
                          ["serve", "--checkpoint", "/nonexistent", "--port", "70000"],
                          ["serve", "--checkpoint", "/nonexistent", "--idle-timeout", "0"],
                          ["serve", "--checkpoint", "/nonexistent", "--max-predictions", "0"],
                          ["serve", "--checkpoint", "/nonexistent", "--max-waiting", "-1"],
                          ["evaluate", "--checkpoint", "/nonexistent", "--batch-size", "0"]] {
            let outcome = try Self.run(arguments)
            #expect(outcome.status == 64, "\(arguments): \(outcome.status)")
            #expect(!outcome.stderr.contains("/nonexistent"), "\(arguments): a file was read before the flags were checked")
        }
    }
}
