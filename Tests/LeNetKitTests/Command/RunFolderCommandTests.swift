import Foundation
@testable import LeNetKit
import Testing

/// Two runs never write into the same run folder: default names do not collide, a folder is
/// locked while a run uses it, an existing run is replaced only when asked; what a killed
/// run left is cleaned up; outputs that are links or devices are refused; the report needs
/// no writable $TMPDIR. Through the real `lenet` binary.
@Suite struct RunFolderCommandTests {
    static func smallData() throws -> String {
        let directory = try DataFixtures.temporaryDirectory()
        _ = try DataFixtures.writeSmallDataset(in: directory, trainCount: 64, testCount: 8)
        return directory
    }

    /// Two runs started together in one folder, without --output, each get their own run folder.
    @Test func concurrentRunsWithDefaultNamesGetTheirOwnFolders() throws {
        let data = try Self.smallData(), cwd = try DataFixtures.temporaryDirectory()
        let arguments = ["train", "--data-dir", data, "--no-download", "--epochs", "1"]
        let runs = try [InterruptCommandTests.Running(arguments, in: cwd), InterruptCommandTests.Running(arguments, in: cwd)]
        for outcome in try runs.map({ try $0.finish() }) { #expect(outcome.status == 0, "\(outcome.stderr)") }
        let folders = try FileManager.default.contentsOfDirectory(atPath: cwd + "/runs").sorted()
        #expect(folders.count == 2, "\(folders)")
        for folder in folders {
            // runs/<yyyyMMdd-HHmmss-SSS>-lenet, each with its own one-epoch history.
            #expect(folder.range(of: #"^[0-9]{8}-[0-9]{6}-[0-9]{3}-lenet$"#, options: .regularExpression) != nil, "\(folder)")
            let history = try String(contentsOfFile: cwd + "/runs/" + folder + "/history.csv", encoding: .utf8)
            #expect(history.split(separator: "\n").count == 2, "\(folder): \(history)")
        }
    }

    /// While a run trains in a folder, a second run there is refused (with --overwrite too, and
    /// --resume), saying which process holds it; an existing run is kept unless --overwrite.
    @Test func aFolderInUseIsRefusedAndAnExistingRunIsOnlyReplacedWhenAsked() throws {
        let data = try Self.smallData(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let train = ["train", "--data-dir", data, "--no-download", "--output", folder]
        let first = try InterruptCommandTests.Running(train + ["--epochs", "500"])
        first.waitForFirstEpoch()
        for arguments in [train + ["--epochs", "1", "--overwrite"],
                          ["train", "--resume", folder, "--data-dir", data, "--no-download", "--epochs", "600"]] {
            let second = try CommandLineTests.run(arguments)
            #expect(second.status == 1, "\(arguments): \(second.stderr)")
            #expect(second.stderr.contains("\(folder): the run folder is in use by another lenet run (pid \(first.process.processIdentifier))"),
                    "\(second.stderr)")
            #expect(!second.stdout.contains("Epoch:"))
        }
        kill(first.process.processIdentifier, SIGINT)
        #expect(try first.finish().status == 130)

        // Ended, the run stays unless --overwrite is given.
        let again = try CommandLineTests.run(train + ["--epochs", "1"])
        #expect(again.status == 1 && again.stderr.contains("\(folder): the run folder already holds a run"), "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder + "/state.safetensors"))
        let replaced = try CommandLineTests.run(train + ["--epochs", "1", "--overwrite"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try RunCheckpoints(directory: folder).loadState().epochsDone == 1)
        let history = try String(contentsOfFile: folder + "/history.csv", encoding: .utf8)
        #expect(history.split(separator: "\n").count == 2, "\(history)")
        let bothFlags = try CommandLineTests.run(["train", "--resume", folder, "--overwrite", "--data-dir", data, "--no-download"])
        #expect(bothFlags.status != 0 && bothFlags.stderr.contains("--overwrite"), "\(bothFlags.stderr)")
    }

    /// Temporary files that a killed run left (its writer's process gone) are removed when the
    /// next run starts in the folder; a live process's are not touched.
    @Test func temporaryFilesOfAKilledRunAreRemovedAtTheNextStart() throws {
        let data = try Self.smallData(), folder = try DataFixtures.temporaryDirectory() + "/run"
        let first = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--output", folder])
        #expect(first.status == 0, "\(first.stderr)")
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let stale = "last.safetensors.part-\(gone.processIdentifier)-12345"
        let live = "notes.txt.part-\(getpid())-777"
        for name in [stale, live] { try DataFixtures.write([1, 2, 3], to: folder + "/" + name) }
        let resumed = try CommandLineTests.run(["train", "--resume", folder, "--data-dir", data, "--no-download", "--epochs", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(!names.contains(stale) && names.contains(live), "\(names)")
    }

    /// An output that is a symbolic link, a FIFO or a device is refused before the work, and
    /// left as it was: not replaced by a file, not written through.
    @Test func outputsThatAreLinksOrDevicesAreRefused() throws {
        let directory = try DataFixtures.temporaryDirectory()
        let checkpoint = directory + "/model.safetensors"
        try Checkpoint(store: ParameterStore(definition: .lenet(.lenet)), variant: .lenet).write(to: checkpoint)
        let target = directory + "/target.onnx", link = directory + "/link.onnx", fifo = directory + "/fifo.png"
        try DataFixtures.write([7], to: target)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect(mkfifo(fifo, 0o644) == 0)
        let export = try CommandLineTests.run(["export", "--checkpoint", checkpoint, "--onnx", link])
        BadInputCommandTests.expectCleanFailure(export, naming: link, says: "symbolic link", "export to a link")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try FileIOTestSupport.bytes(target) == [7])
        let samples = try CommandLineTests.run(["samples", "--data-dir", (try DataFixtures.mnistDirectory), "--output", fifo])
        BadInputCommandTests.expectCleanFailure(samples, naming: fifo, says: "FIFO", "samples to a FIFO")
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
        let device = try CommandLineTests.run(["export", "--checkpoint", checkpoint, "--onnx", "/dev/null"])
        BadInputCommandTests.expectCleanFailure(device, naming: "/dev/null", says: "device", "export to a device")
    }

    /// The run report is written with no usable $TMPDIR: every file goes to the run folder.
    @Test func theReportNeedsNoWritableTemporaryDirectory() throws {
        let data = try Self.smallData(), scratch = try DataFixtures.temporaryDirectory()
        let folder = scratch + "/run"
        let outcome = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--output", folder],
                                               environment: ["TMPDIR": scratch + "/no/such/folder"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let report = try String(contentsOfFile: folder + "/report.html", encoding: .utf8)
        #expect(report.contains("data:image/png;base64,"))
    }
}
