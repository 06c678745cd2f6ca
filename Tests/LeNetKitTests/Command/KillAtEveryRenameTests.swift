import Foundation
@testable import LeNetKit
import Testing

/// `lenet train` killed (SIGKILL) at each rename it does in turn, the moment before the
/// file would replace the old one: strace's fault injection stops the N-th `rename` for
/// N = 1, 2, ... until the run finishes unharmed. After each kill no file is ahead of the
/// state, a `--resume` finishes the run, and then every file tells the same epoch and the
/// checkpoints are byte for byte a straight run's. Needs strace (Debian's `strace` package).
@Suite struct KillAtEveryRenameTests {
    static let strace: String? = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { $0 + "/strace" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs `lenet arguments` under strace with the `n`-th rename replaced by SIGKILL; true when it was killed.
    static func killedAtRename(_ n: Int, _ arguments: [String]) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(strace))
        process.arguments = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
                             "-e", "inject=rename:signal=SIGKILL:when=\(n)",
                             try #require(CommandLineTests.lenet)] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // LeakSanitizer cannot work under ptrace: in a sanitizer build (Scripts/ci/sanitizers.sh)
        // it would end lenet with a fatal error here. The other command tests check for leaks.
        var environment = ProcessInfo.processInfo.environment
        environment["ASAN_OPTIONS"] = [environment["ASAN_OPTIONS"], "detect_leaks=0"].compactMap { $0 }.joined(separator: ":")
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return true }
        #expect(process.terminationStatus == 0, "rename \(n): exit \(process.terminationStatus), \(arguments)")
        return false
    }

    /// The epoch each file of `folder` tells (nil: the file is not there).
    struct Epochs: Equatable, CustomStringConvertible {
        var state, last, csv, json: Int?
        init(_ folder: String) throws {
            let path = { (name: String) in folder + "/" + name }
            let exists = { (name: String) in FileManager.default.fileExists(atPath: path(name)) }
            state = exists("state.safetensors") ? try TrainingState(contentsOf: path("state.safetensors")).epochsDone : nil
            last = exists("last.safetensors") ? try Checkpoint(contentsOf: path("last.safetensors")).info.epoch : nil
            csv = exists("history.csv")
                ? try String(contentsOfFile: path("history.csv"), encoding: .utf8).split(separator: "\n").count - 1 : nil
            json = exists("history.json")
                ? (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("history.json")))) as? [Any])?.count : nil
        }
        var description: String { "state \(state as Any), last \(last as Any), history.csv \(csv as Any), history.json \(json as Any)" }
        /// Nothing tells a later epoch than the state.
        var nothingAheadOfTheState: Bool { [last, csv, json].allSatisfy { ($0 ?? 0) <= (state ?? 0) } }
        static func all(_ epoch: Int) -> (Int?, Int?, Int?, Int?) { (epoch, epoch, epoch, epoch) }
        var tuple: (Int?, Int?, Int?, Int?) { (state, last, csv, json) }
    }

    static func expectFinished(_ folder: String, like straight: String, epochs: Int, _ context: String) throws {
        let told = try Epochs(folder)
        #expect(told.tuple == Epochs.all(epochs), "\(context): \(told)")
        for name in ["last.safetensors", "best.safetensors"] {
            #expect(FileManager.default.contentsEqual(atPath: folder + "/" + name, andPath: straight + "/" + name),
                    "\(context): \(name) differs from the straight run's")
        }
    }

    static func copyRun(_ source: String, to destination: String) throws {
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where !name.hasPrefix(".") {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: destination + "/" + name)
        }
    }

    @Test(.enabled(if: KillAtEveryRenameTests.strace != nil, "strace is not installed"))
    func killedAtAnyRenameTheRunResumesToAStraightRunsFiles() throws {
        let data = try TrainingSafetyCommandTests.dataset(), scratch = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let common = ["--data-dir", data, "--no-download"]
        let train = ["train"] + common + ["--seed", "3"]
        let straight = scratch + "/straight"
        let straightRun = try CommandLineTests.run(train + ["--epochs", "2", "--output", straight])
        #expect(straightRun.status == 0, "\(straightRun.stderr)")
        let straightLines = InterruptCommandTests.epochLines(straightRun.stdout)
        #expect(straightLines.count == 2)

        // A fresh 2-epoch run, killed at rename n, then resumed (or started again when it
        // was killed before its first state).
        var n = 1
        while n < 60 {
            let folder = scratch + "/fresh-\(n)"
            guard try Self.killedAtRename(n, train + ["--epochs", "2", "--output", folder]) else { break }
            let told = try Epochs(folder)
            #expect(told.nothingAheadOfTheState, "fresh run killed at rename \(n): \(told)")
            let again = told.state == nil
                ? try CommandLineTests.run(train + ["--epochs", "2", "--output", folder, "--overwrite"])
                : try CommandLineTests.run(["train", "--resume", folder] + common)
            #expect(again.status == 0, "rename \(n): \(again.stderr)")
            let lines = InterruptCommandTests.epochLines(again.stdout)
            #expect(straightLines.hasSuffix(lines), "rename \(n): \(lines)")
            try Self.expectFinished(folder, like: straight, epochs: 2, "fresh run killed at rename \(n)")
            n += 1
        }
        #expect(n > 10, "the run finished before rename \(n): fewer renames than its files")
        try Self.expectFinished(scratch + "/fresh-\(n)", like: straight, epochs: 2, "the run strace did not kill")

        // A 1-epoch run extended to 2 by `--resume --epochs 2`, killed at rename n; a resume
        // to the run's own total (what the state says) must leave every file at the state's
        // epoch, and one to 2 epochs must finish it as a straight run.
        let base = scratch + "/base"
        #expect(try CommandLineTests.run(train + ["--epochs", "1", "--output", base]).status == 0)
        n = 1
        while n < 60 {
            let folder = scratch + "/extended-\(n)"
            try Self.copyRun(base, to: folder)
            guard try Self.killedAtRename(n, ["train", "--resume", folder, "--epochs", "2"] + common) else { break }
            let told = try Epochs(folder)
            #expect(told.nothingAheadOfTheState, "extended resume killed at rename \(n): \(told)")
            let own = try CommandLineTests.run(["train", "--resume", folder] + common)
            #expect(own.status == 0, "rename \(n): \(own.stderr)")
            let settled = try Epochs(folder), epoch = try #require(settled.state)
            #expect(settled.tuple == Epochs.all(epoch), "extended resume killed at rename \(n), resumed to its own total: \(settled)")
            let finished = try CommandLineTests.run(["train", "--resume", folder, "--epochs", "2"] + common)
            #expect(finished.status == 0, "rename \(n): \(finished.stderr)")
            try Self.expectFinished(folder, like: straight, epochs: 2, "extended resume killed at rename \(n)")
            n += 1
        }
        #expect(n > 5, "the extended resume finished before rename \(n)")
    }
}

extension Array where Element: Equatable {
    func hasSuffix(_ suffix: [Element]) -> Bool { suffix.count <= count && Array(self[(count - suffix.count)...]) == suffix }
}
