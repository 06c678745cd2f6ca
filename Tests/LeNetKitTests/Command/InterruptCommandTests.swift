import Foundation
@testable import LeNetKit
import Testing

/// Ctrl-C during `lenet train`, end to end: the real binary gets SIGINT, stops after
/// the step it is in, saves a resumable state, says how to resume and exits 130; the
/// resumed run then ends with the same lines and checkpoint bytes as a run never stopped.
/// Also: an output folder that cannot be written is reported before any training.
@Suite struct InterruptCommandTests {
    /// A synthetic dataset of 6,400 training images (200 steps an epoch) and 64 test images.
    static func dataset() throws -> String {
        let directory = try DataFixtures.temporaryDirectory()
        _ = try DataFixtures.writeSmallDataset(in: directory, trainCount: 6400, testCount: 64)
        return directory
    }

    static func trainArguments(data: String, output: String, epochs: Int) -> [String] {
        ["train", "--data-dir", data, "--no-download", "--epochs", "\(epochs)", "--seed", "3", "--output", output]
    }

    /// A `lenet` process writing to files, so that a test can watch its output while it runs.
    struct Running {
        let process: Process
        let outPath: String, errPath: String

        init(_ arguments: [String], in directory: String? = nil) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(CommandLineTests.lenet, "lenet binary not found beside the tests"))
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
            let logs = try DataFixtures.temporaryDirectory()
            (outPath, errPath) = (logs + "/stdout", logs + "/stderr")
            for path in [outPath, errPath] { try DataFixtures.write([], to: path) }
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            try process.run()
        }

        /// Waits (up to 5 minutes, or until the process ends) for the first epoch line.
        func waitForFirstEpoch() {
            let deadline = Date().addingTimeInterval(300)
            while process.isRunning, Date() < deadline,
                  !((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").contains("Epoch: 1,") {
                Thread.sleep(forTimeInterval: 0.005)
            }
        }

        func finish() throws -> CommandLineTests.Outcome {
            process.waitUntilExit()
            return CommandLineTests.Outcome(status: process.terminationStatus,
                                            stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                                            stderr: try String(contentsOfFile: errPath, encoding: .utf8))
        }
    }

    /// Starts `lenet train`, sends `signal` once the first epoch line is out, waits for the end.
    static func interruptedRun(_ arguments: [String], signal: Int32 = SIGINT) throws -> CommandLineTests.Outcome {
        let run = try Running(arguments)
        run.waitForFirstEpoch()
        kill(run.process.processIdentifier, signal)
        return try run.finish()
    }

    static func epochLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("Epoch:") }
    }

    @Test func ctrlCSavesAResumableStateAndTheResumedRunEqualsAStraightOne() throws {
        let data = try Self.dataset(), runs = try DataFixtures.temporaryDirectory()
        let (stoppedFolder, straightFolder) = (runs + "/stopped", runs + "/straight")
        // Many epochs asked for, so the signal always lands while training.
        let stopped = try Self.interruptedRun(Self.trainArguments(data: data, output: stoppedFolder, epochs: 50))
        #expect(stopped.status == 130, "exit \(stopped.status): \(stopped.stderr)")
        // lenet as the test runs it: by its path in .build (the hint's program is FirstHourCommandTests' subject).
        let resumeLine = " train --resume \(stoppedFolder) --data-dir \(data)\n"
        #expect(stopped.stderr.contains("Interrupted after "), "\(stopped.stderr)")
        #expect(stopped.stderr.contains("Resume with: ") && stopped.stderr.contains(resumeLine), "\(stopped.stderr)")
        #expect(!stopped.stdout.contains("Done"))
        let state = try RunCheckpoints(directory: stoppedFolder).loadState()
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: stoppedFolder).filter { $0.contains(".tmp") || $0.contains(".part-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")

        // Finish one epoch past the stop, with --epochs as the new total.
        let total = state.epochsDone + 2
        let resumed = try CommandLineTests.run(["train", "--resume", stoppedFolder, "--data-dir", data, "--no-download",
                                                "--epochs", "\(total)"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        // Where it goes on, in words that cannot be misread: the epoch of the total, the batch of the epoch's 200.
        let position = state.epochProgress.batchesDone > 0
            ? "in epoch \(state.epochsDone + 1) of \(total), after batch \(state.epochProgress.batchesDone) of 200"
            : "after epoch \(state.epochsDone) of \(total)"
        #expect(resumed.stderr.contains("Resuming \(stoppedFolder) \(position)\n"), "\(resumed.stderr)")
        let straight = try CommandLineTests.run(Self.trainArguments(data: data, output: straightFolder, epochs: total))
        #expect(straight.status == 0, "\(straight.stderr)")
        #expect(Self.epochLines(stopped.stdout) + Self.epochLines(resumed.stdout) == Self.epochLines(straight.stdout))
        for file in ["last.safetensors", "best.safetensors"] {
            let same = FileManager.default.contentsEqual(atPath: stoppedFolder + "/" + file, andPath: straightFolder + "/" + file)
            #expect(same, "\(file) differs between the resumed and the straight run")
        }
    }

    /// `--resume` without `--epochs` trains to the total the run was started with.
    @Test func resumeWithoutEpochsKeepsTheRunsOwnTotal() throws {
        let data = try Self.dataset(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let stopped = try Self.interruptedRun(Self.trainArguments(data: data, output: folder, epochs: 3))
        guard stopped.status == 130 else {  // the run may have finished all 3 epochs first on a fast machine
            #expect(stopped.status == 0, "\(stopped.stderr)")
            return
        }
        let resumed = try CommandLineTests.run(["train", "--resume", folder, "--data-dir", data, "--no-download"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(Self.epochLines(stopped.stdout + resumed.stdout).count == 3)
        #expect(Self.epochLines(resumed.stdout).last?.hasPrefix("Epoch: 3,") == true)
    }

    /// SIGHUP (a closed terminal, a dropped SSH session) stops the run as Ctrl-C does: saved, resumable.
    @Test func hangUpSavesAResumableStateLikeCtrlC() throws {
        let data = try Self.dataset(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let stopped = try Self.interruptedRun(Self.trainArguments(data: data, output: folder, epochs: 50), signal: SIGHUP)
        #expect(stopped.status == 130, "exit \(stopped.status): \(stopped.stderr)")
        #expect(stopped.stderr.contains("Resume with: ") && stopped.stderr.contains(" train --resume \(folder)"), "\(stopped.stderr)")
        #expect(try RunCheckpoints(directory: folder).loadState().epochsDone >= 1)
    }

    @Test func unwritableOutputFolderIsReportedBeforeAnyWork() throws {
        let data = try Self.dataset(), scratch = try DataFixtures.temporaryDirectory()
        // A plain file where the folder should be (permissions would not stop root).
        let blocker = scratch + "/not-a-folder"
        try DataFixtures.write([1, 2, 3], to: blocker)
        for output in [blocker, blocker + "/run"] {
            for command in ["train", "experiment"] {
                let outcome = try CommandLineTests.run([command, "--data-dir", data + "/missing", "--no-download",
                                                        "--epochs", "1", "--output", output])
                #expect(outcome.status == 1, "\(command) \(output): exit \(outcome.status)")
                // The folder is reported, not the missing data: it is checked first.
                #expect(outcome.stderr.contains(output) && outcome.stderr.contains("run folder"), "\(outcome.stderr)")
                #expect(!outcome.stdout.contains("Epoch:"))
            }
        }
    }
}
