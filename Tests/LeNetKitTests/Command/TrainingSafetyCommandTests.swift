import Foundation
@testable import LeNetKit
import Testing

/// `lenet train` end to end where a run could lose its files silently: a diverging run
/// stops before saving anything non-finite; `--resume` refuses settings that differ from
/// the run's instead of ignoring them.
@Suite struct TrainingSafetyCommandTests {
    /// 64 training images (2 steps an epoch), 8 test images.
    static func dataset() throws -> String {
        let directory = try DataFixtures.temporaryDirectory()
        _ = try DataFixtures.writeSmallDataset(in: directory, trainCount: 64, testCount: 8)
        return directory
    }

    static let runFiles = ["last.safetensors", "best.safetensors", "state.safetensors", "history.csv", "history.json", "curves.svg"]

    static func contents(of folder: String) -> [String: Data] {
        var files: [String: Data] = [:]
        for name in runFiles { files[name] = FileManager.default.contents(atPath: folder + "/" + name) }
        return files
    }

    @Test func aDivergingRunStopsWithOneLineAndSavesNothingOfThatEpoch() throws {
        let data = try Self.dataset(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let outcome = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "3",
                                                "--lr", "1e30", "--output", folder])
        #expect(outcome.status == 1, "exit \(outcome.status): \(outcome.stderr)")
        let lines = outcome.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(outcome.stderr)")
        let line = String(lines.first ?? "")
        #expect(line.contains("diverged in epoch 1") && line.contains("smaller --lr") && line.contains("nothing was saved"), "\(line)")
        #expect(!outcome.stdout.contains("Epoch:"))
        #expect(Self.contents(of: folder).isEmpty, "\(DataFixtures.files(in: folder))")
    }

    /// A run that diverges in its second epoch (its state's learning rate raised after the
    /// first) keeps every file of the first, byte for byte.
    @Test func aRunDivergingLaterKeepsTheLastFiniteEpochsFiles() throws {
        let data = try Self.dataset(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let first = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--output", folder])
        #expect(first.status == 0, "\(first.stderr)")
        let checkpoints = RunCheckpoints(directory: folder)
        var state = try checkpoints.loadState()
        state.configuration.learningRate = 1e30
        try state.write(to: checkpoints.statePath)
        let before = Self.contents(of: folder)
        #expect(before.count == Self.runFiles.count)

        let resumed = try CommandLineTests.run(["train", "--resume", folder, "--data-dir", data, "--no-download", "--epochs", "3"])
        #expect(resumed.status == 1, "exit \(resumed.status): \(resumed.stderr)")
        let errors = resumed.stderr.split(separator: "\n").filter { !$0.hasPrefix("Resuming ") }
        #expect(errors.count == 1, "\(resumed.stderr)")
        #expect(errors.first?.contains("diverged in epoch 2") == true && errors.first?.contains("keeps its files as they were before epoch 2") == true, "\(resumed.stderr)")
        #expect(!resumed.stdout.contains("Epoch:"))
        #expect(Self.contents(of: folder) == before)
    }

    @Test func resumeRefusesSettingsThatDifferFromTheRunsNamingEach() throws {
        let data = try Self.dataset(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let first = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--seed", "3",
                                              "--momentum", "0.5", "--output", folder])
        #expect(first.status == 0, "\(first.stderr)")
        let before = Self.contents(of: folder)
        let resume = ["train", "--resume", folder, "--data-dir", data, "--no-download", "--epochs", "2"]
        let cases: [(given: [String], says: [String])] = [
            (["--lr", "0.1"], ["--lr 0.01", "--lr 0.1"]),
            (["--model", "lenet-bn"], ["--model lenet", "--model lenet-bn"]),
            (["--batch-size", "16"], ["--batch-size 32", "--batch-size 16"]),
            (["--seed", "0"], ["--seed 3", "--seed 0"]),
            (["--momentum", "0"], ["--momentum 0.5", "--momentum 0.0"]),
            (["--weight-decay", "0.001"], ["--weight-decay 0.0", "--weight-decay 0.001"]),
            (["--learning-rate", "0.02", "--seed", "4"], ["--lr 0.01 --seed 3", "--lr 0.02 --seed 4"]),
        ]
        for (given, says) in cases {
            let outcome = try CommandLineTests.run(resume + given)
            #expect(outcome.status == 1, "\(given): exit \(outcome.status)")
            let lines = outcome.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(given): \(outcome.stderr)")
            for text in says + [folder] { #expect(outcome.stderr.contains(text), "\(given): \(outcome.stderr)") }
            #expect(!outcome.stdout.contains("Epoch:"))
        }
        #expect(Self.contents(of: folder) == before)

        // The run's own settings, given again, are no difference.
        let same = try CommandLineTests.run(resume + ["--seed", "3", "--lr", "0.01", "--momentum", "0.5", "--model", "lenet",
                                                      "--batch-size", "32", "--weight-decay", "0"])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(InterruptCommandTests.epochLines(same.stdout).map { $0.prefix(9) } == ["Epoch: 2,"])
    }
}
