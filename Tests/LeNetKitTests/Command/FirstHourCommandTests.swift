import Foundation
@testable import LeNetKit
import Testing

/// What a newcomer meets in the first hour, through the real `lenet` binary: hints that name
/// the command as it was run, smoke runs, --quiet, --version, negative numbers that reach
/// their validation message, help that says each thing once, no empty run folder left by a
/// failed start, and a finished run that says there is nothing to do.
@Suite struct FirstHourCommandTests {
    typealias Outcome = CommandLineTests.Outcome

    /// The hint names lenet as it was run: from PATH, by a relative path, or by `swift run`
    /// (which runs `.build/<platform>/<configuration>/lenet` from the package root, or
    /// `../.build/...` from a folder inside it).
    @Test func hintsNameTheCommandAsItWasRun() throws {
        let binary = try #require(CommandLineTests.lenet)
        let scratch = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // A package with a built lenet, as SwiftPM lays it out, and a plain bin/ folder.
        for folder in ["pkg/.build/x86_64-unknown-linux-gnu/release", "pkg/Sources", "bin"] {
            try FileManager.default.createDirectory(atPath: scratch + "/" + folder, withIntermediateDirectories: true)
        }
        try DataFixtures.write([], to: scratch + "/pkg/Package.swift")
        try FileManager.default.createSymbolicLink(atPath: scratch + "/pkg/.build/x86_64-unknown-linux-gnu/release/lenet",
                                                   withDestinationPath: binary)
        try FileManager.default.createSymbolicLink(atPath: scratch + "/bin/lenet", withDestinationPath: binary)
        let run = scratch + "/pkg/run"  // a folder holding a run: a new run there is refused with a resume hint
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try DataFixtures.write([1], to: run + "/history.csv")
        let cases: [(argument0: String, directory: String, program: String)] = [
            ("lenet", scratch, "lenet"),
            ("bin/lenet", scratch, "bin/lenet"),
            (".build/x86_64-unknown-linux-gnu/release/lenet", scratch + "/pkg", "swift run -c release lenet"),
            ("../.build/x86_64-unknown-linux-gnu/release/lenet", scratch + "/pkg/Sources", "swift run --package-path .. -c release lenet"),
        ]
        for (argument0, directory, program) in cases {
            let outcome = try CommandLineTests.run(["train", "--output", run, "--no-download"], as: argument0, in: directory)
            #expect(outcome.status == 1, "\(argument0): \(outcome.stderr)")
            #expect(outcome.stderr.contains("goes on with `\(program) train --resume \(run)`"), "\(argument0): \(outcome.stderr)")
        }
    }

    /// `--dry-run` and `--limit-batches` train a few batches an epoch and still print every
    /// epoch line and write the run folder; `--quiet` leaves only the epoch lines, Done and the
    /// run time. The report's Command is the command as typed, not the binary's path.
    @Test func smokeRunsPrintTheEpochLinesAndWriteTheRunFolder() throws {
        let data = try DataFixtures.mnistDirectory, scratch = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let train = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "2", "--limit-batches", "3",
                                                "--quiet", "--output", "run"], as: "lenet", in: scratch)
        #expect(train.status == 0, "\(train.stderr)")
        let lines = train.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(train.stdout)")
        #expect(lines.first?.hasPrefix("Epoch: 1, Train_acc:") == true && lines.dropFirst().first?.hasPrefix("Epoch: 2, ") == true)
        #expect(lines.dropFirst(2).first == "Done" && lines.last?.hasPrefix("Run time: ") == true)
        #expect(!train.stderr.contains("Report:"), "\(train.stderr)")
        let state = try RunCheckpoints(directory: scratch + "/run").loadState()
        #expect(state.epochsDone == 2 && state.configuration.batchLimit == 3)
        let report = try String(contentsOfFile: scratch + "/run/report.html", encoding: .utf8)
        #expect(report.contains("<td>lenet train --data-dir \(data) --no-download --epochs 2 --limit-batches 3 --quiet --output run</td>"))
        #expect(report.contains("Batch limit"))

        // Without --quiet: the summary first; and --dry-run is one batch an epoch, in experiment too.
        let loud = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--dry-run",
                                             "--output", scratch + "/dry"])
        #expect(loud.status == 0 && loud.stdout.contains("Total params: 61,706") && loud.stderr.contains("Report: "), "\(loud.stderr)")
        #expect(try RunCheckpoints(directory: scratch + "/dry").loadState().configuration.batchLimit == 1)
        let experiment = try CommandLineTests.run(["experiment", "--data-dir", data, "--no-download", "--epochs", "1", "--dry-run",
                                                   "--quiet", "--output", scratch + "/experiment"])
        #expect(experiment.status == 0, "\(experiment.stderr)")
        #expect(InterruptCommandTests.epochLines(experiment.stdout).count == 2 && experiment.stdout.contains("== lenet-bn"))
        #expect(!experiment.stderr.contains("Report:"))
        for model in ["lenet", "lenet-bn"] {
            #expect(try RunCheckpoints(directory: scratch + "/experiment/" + model).loadState().configuration.batchLimit == 1)
        }

        // A finished run: nothing to do, said plainly, and nothing trained or rewritten.
        let history = try String(contentsOfFile: scratch + "/run/history.csv", encoding: .utf8)
        let again = try CommandLineTests.run(["train", "--resume", "run", "--data-dir", data, "--no-download"], as: "lenet", in: scratch)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.hasPrefix("Nothing to do: run has trained all 2 epochs"), "\(again.stdout)")
        #expect(again.stdout.contains("lenet train --resume run --data-dir \(data) --epochs 3"))
        #expect(!again.stdout.contains("Done") && !again.stdout.contains("Epoch:"))
        #expect(try String(contentsOfFile: scratch + "/run/history.csv", encoding: .utf8) == history)
        // The limit is the run's own: it cannot be changed on resume.
        let changed = try CommandLineTests.run(["train", "--resume", "run", "--epochs", "3", "--dry-run", "--no-download"], as: "lenet", in: scratch)
        #expect(changed.status == 1 && changed.stderr.contains("batch limit"), "\(changed.stderr)")
    }

    /// A run that fails before its first save removes the folders it made (the `runs/` it
    /// made too); a folder the user made stays.
    @Test func aFailedStartLeavesNoEmptyRunFolder() throws {
        let scratch = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let missing = scratch + "-no-data"
        for arguments in [["train"], ["experiment"], ["train", "--output", "a/b/run"], ["experiment", "--output", "a/b/experiment"],
                          ["train", "--output", "r"]] {  // a one-letter name once trapped in Foundation's path code
            let outcome = try CommandLineTests.run(arguments + ["--data-dir", missing, "--no-download"], in: scratch)
            #expect(outcome.status == 1, "\(arguments): \(outcome.stderr)")
            #expect(DataFixtures.files(in: scratch).isEmpty, "\(arguments) left \(DataFixtures.files(in: scratch))")
        }
        try FileManager.default.createDirectory(atPath: scratch + "/mine", withIntermediateDirectories: true)
        let outcome = try CommandLineTests.run(["train", "--output", "mine", "--data-dir", missing, "--no-download"], in: scratch)
        #expect(outcome.status == 1)
        #expect(FileManager.default.fileExists(atPath: scratch + "/mine"))
        let predictions = try CommandLineTests.run(["evaluate", "--checkpoint", "missing.safetensors", "--predictions", "p"], in: scratch)
        #expect(predictions.status == 1 && predictions.stderr.hasPrefix("Error: missing.safetensors"), "\(predictions.stderr)")
    }

    /// A negative number is read as the option's value, so the user sees what is wrong with
    /// it rather than "Missing value".
    @Test func negativeNumbersReachTheirValidationMessage() throws {
        let cases: [([String], String)] = [
            (["train", "--lr", "-1"], "--lr must be a positive number"),
            (["train", "--learning-rate", "-0.1"], "--lr must be a positive number"),
            (["train", "--momentum", "-0.5"], "--momentum must be in [0, 1)"),
            (["train", "--weight-decay", "-1"], "--weight-decay must not be negative"),
            (["train", "--epochs", "-2"], "--epochs must be at least 1"),
            (["experiment", "--batch-size", "-32"], "--batch-size must be between 1"),
            (["train", "--threads", "-1"], "--threads must be between 1"),
            (["train", "--limit-batches", "-3"], "--limit-batches must be at least 1"),
            (["train", "--seed", "-1"], "-1"),
            (["summary", "--batch-size", "-1"], "--batch-size must be between 1"),
            (["samples", "--batch-size", "-1"], "--batch-size must be at least 1"),
            (["bench", "--inference-batch-size", "-1"], "--inference-batch-size must be between 1"),
            (["predict", "--checkpoint", "x", "--top", "-1", "x.png"], "--top must be between 1 and 10"),
            (["serve", "--checkpoint", "x", "--port", "-1"], "--port must be in 0...65535"),
            (["serve", "--checkpoint", "x", "--max-predictions", "-2"], "--max-predictions must be in 1...256"),
        ]
        for (arguments, message) in cases {
            let outcome = try CommandLineTests.run(arguments)
            #expect(outcome.status == 64, "\(arguments): \(outcome.status) \(outcome.stderr)")
            #expect(outcome.stderr.contains(message) && !outcome.stderr.contains("Missing value"), "\(arguments): \(outcome.stderr)")
        }
    }

    /// Every subcommand's help states each option's default at most once and names only
    /// options the subcommand takes; `lenet --version` prints the version.
    @Test func helpSaysEachThingOnceAndVersionPrints() throws {
        let commands = [["train"], ["experiment"], ["bench"], ["samples"], ["summary"], ["evaluate"], ["export"], ["predict"],
                        ["serve"], ["data", "download"], ["data", "verify"], ["data", "info"]]
        let separators = " \n(),.;:`'\"[]<>"
        func flags(_ text: Substring) -> [Substring] {
            text.split(whereSeparator: { separators.contains($0) }).filter { $0.hasPrefix("--") && $0.count > 2 }
        }
        for command in commands {
            let help = try CommandLineTests.run(command + ["--help"])
            #expect(help.status == 0, "\(command)")
            // Options as listed: a line starting "  -", continued by more-indented lines.
            var options: [String] = []
            for line in help.stdout.split(separator: "\n").map(String.init) {
                if line.hasPrefix("  -") {
                    options.append(line)
                } else if line.hasPrefix("        "), !options.isEmpty {
                    options[options.count - 1] += line
                }
            }
            #expect(!options.isEmpty, "\(command): \(help.stdout)")
            for option in options {
                #expect(option.lowercased().components(separatedBy: "default").count <= 2, "\(command): \(option)")
            }
            // Every --flag the text names is one of the command's own (the names where it is listed).
            let own = Set(options.flatMap { flags(Substring($0.trimmingCharacters(in: .whitespaces).components(separatedBy: "  ")[0])) })
            for flag in flags(Substring(help.stdout)) where flag != "--help" {
                #expect(own.contains(flag), "\(command): \(flag) is not an option of \(command)")
            }
        }
        let experiment = try CommandLineTests.run(["experiment", "--help"])
        #expect(!experiment.stdout.contains("--resume"))
        let version = try CommandLineTests.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil, "\(version.stdout)")
    }
}
