import Foundation
@testable import LeNetKit
import Testing

/// Bad input to every command that reads a file, through the real `lenet` binary: a
/// non-zero exit (never a signal: no trap), an error line naming the file and what is
/// wrong, and nothing half-written or lost. RELIABILITY.md lists these cases.
@Suite struct BadInputCommandTests {
    typealias Outcome = CommandLineTests.Outcome

    /// A directory with an untrained lenet checkpoint and files that are not checkpoints.
    struct Files {
        let directory: String
        var checkpoint: String { directory + "/model.safetensors" }
        var picture: String { InferenceDecoderTests.directory + "/gray8.png" }
        /// A named pipe: opening it for reading would wait for a writer forever.
        var fifo: String { directory + "/fifo.safetensors" }
        /// Wrong kinds of file, each with a word its error must contain.
        var badCheckpoints: [(path: String, says: String)] {
            [(directory + "/missing.safetensors", "no such file"), (picture, "not a safetensors file"),
             (directory + "/cut.safetensors", "truncated file"), (directory + "/empty.safetensors", "0 bytes"),
             (directory, "not a regular file"), (fifo, "FIFO")]
        }

        init() throws {
            directory = try DataFixtures.temporaryDirectory()
            let checkpoint = try Checkpoint(store: ParameterStore(definition: .lenet(.lenet)), variant: .lenet)
            try checkpoint.write(to: self.checkpoint)
            let bytes = try checkpoint.safeTensorsFile.serialized()
            try DataFixtures.write(Array(bytes.prefix(bytes.count / 2)), to: directory + "/cut.safetensors")
            try DataFixtures.write([], to: directory + "/empty.safetensors")
            guard mkfifo(fifo, 0o644) == 0 else { throw CocoaError(.fileWriteUnknown) }
        }
    }

    /// The exit status, and stderr's lines, for a run that must fail cleanly.
    static func expectCleanFailure(_ outcome: Outcome, naming path: String, says: String,
                                   _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(outcome.status == 1, "\(context): exit \(outcome.status) \(outcome.stderr)", sourceLocation: sourceLocation)
        let line = outcome.stderr.split(separator: "\n").first { $0.contains(path) } ?? ""
        #expect(!line.isEmpty, "\(context): no error line names \(path): \(outcome.stderr)", sourceLocation: sourceLocation)
        #expect(line.lowercased().contains(says.lowercased()), "\(context): \(line)", sourceLocation: sourceLocation)
    }

    @Test func everyCommandRefusesAFileThatIsNotACheckpoint() throws {
        let files = try Files()
        let onnx = files.directory + "/out.onnx"
        for (bad, says) in files.badCheckpoints {
            let commands: [[String]] = [
                ["predict", "--checkpoint", bad, files.picture],
                ["evaluate", "--checkpoint", bad, "--data-dir", (try DataFixtures.mnistDirectory), "--no-download"],
                ["export", "--checkpoint", bad, "--onnx", onnx],
                ["serve", "--checkpoint", bad, "--port", "0"],
            ]
            for arguments in commands {
                let outcome = try CommandLineTests.run(arguments)
                Self.expectCleanFailure(outcome, naming: bad, says: says, "\(arguments[0]) \(bad)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: onnx), "export wrote a file from a bad checkpoint")
    }

    @Test func predictReportsEachBadPictureAndStillClassifiesTheOthers() throws {
        let files = try Files()
        let empty = files.directory + "/no-pictures"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let bad: [(path: String, says: String)] = [
            (InferenceDecoderTests.directory + "/bad-crc.png", "png"),
            (InferenceDecoderTests.directory + "/bad-truncated.pgm", "truncated"),
            (files.directory + "/missing.png", "no such file"),
            (empty, "directory holds no"),
            (files.checkpoint, "not a png"),
            (files.fifo, "FIFO"),
        ]
        let outcome = try CommandLineTests.run(["predict", "--checkpoint", files.checkpoint, files.picture] + bad.map(\.path)
                                               + [files.picture])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.split(separator: "\n").filter { $0.hasPrefix(files.picture + ":") }.count == 2,
                "the good pictures were not both classified: \(outcome.stdout)")
        for (path, says) in bad { Self.expectCleanFailure(outcome, naming: path, says: says, "predict \(path)") }
        // Each error line starts as every other command's does.
        for path in bad.map(\.path) {
            let line = outcome.stderr.split(separator: "\n").first { $0.contains(path) } ?? ""
            #expect(line.hasPrefix("Error: "), "\(line)")
        }
        #expect(outcome.stderr.contains("\(bad.count) images failed"))
    }

    @Test func unwritableOutputsFailBeforeWritingAnything() throws {
        let files = try Files()
        let blocker = files.directory + "/a-file"
        try DataFixtures.write([0], to: blocker)
        let export = try CommandLineTests.run(["export", "--checkpoint", files.checkpoint, "--onnx", blocker + "/model.onnx"])
        Self.expectCleanFailure(export, naming: blocker + "/model.onnx", says: "is not a folder", "export into a file")
        let evaluate = try CommandLineTests.run(["evaluate", "--checkpoint", files.checkpoint, "--data-dir", (try DataFixtures.mnistDirectory),
                                                 "--no-download", "--predictions", blocker + "/predictions.txt"])
        Self.expectCleanFailure(evaluate, naming: blocker + "/predictions.txt", says: "is not a folder", "evaluate into a file")
        #expect(!evaluate.stdout.contains("Test_acc"), "evaluate worked before saying it cannot write its output")
        let nowhere = try CommandLineTests.run(["export", "--checkpoint", files.checkpoint, "--onnx", files.directory + "/no/such/model.onnx"])
        Self.expectCleanFailure(nowhere, naming: files.directory + "/no/such/model.onnx", says: "does not exist", "export into a missing folder")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: files.directory).filter { $0.contains("tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    /// A damaged state file is refused and left as it was: the run can still be repaired.
    @Test func resumeRefusesADamagedStateAndChangesNothing() throws {
        let data = try DataFixtures.temporaryDirectory(), run = try DataFixtures.temporaryDirectory() + "/run"
        _ = try DataFixtures.writeSmallDataset(in: data, trainCount: 64, testCount: 8)
        let first = try CommandLineTests.run(["train", "--data-dir", data, "--no-download", "--epochs", "1", "--output", run])
        #expect(first.status == 0, "\(first.stderr)")
        let state = run + "/state.safetensors"
        let bytes = try FileIOTestSupport.bytes(state)
        let damages: [(String, [UInt8], String)] = [
            ("cut short", Array(bytes.prefix(bytes.count - 7)), "past the end"),
            ("a model checkpoint", try FileIOTestSupport.bytes(run + "/last.safetensors"), "not a lenet training state"),
            ("flipped header byte", bytes.enumerated().map { $0.offset == 20 ? $0.element ^ 0x55 : $0.element }, "not valid JSON"),
        ]
        for (name, damaged, says) in damages {
            try DataFixtures.write(damaged, to: state)
            let before = try FileManager.default.contentsOfDirectory(atPath: run).sorted()
            let outcome = try CommandLineTests.run(["train", "--resume", run, "--data-dir", data, "--no-download", "--epochs", "2"])
            Self.expectCleanFailure(outcome, naming: state, says: says, "resume from a state \(name)")
            #expect(try FileIOTestSupport.bytes(state) == damaged, "\(name): the state was rewritten")
            #expect(try FileManager.default.contentsOfDirectory(atPath: run).sorted() == before, "\(name): files changed")
        }
        let elsewhere = try CommandLineTests.run(["train", "--resume", data, "--data-dir", data, "--no-download"])
        Self.expectCleanFailure(elsewhere, naming: data, says: "no training state", "resume from a folder without a run")
        let mistyped = run + "-typo"
        let missing = try CommandLineTests.run(["train", "--resume", mistyped, "--data-dir", data, "--no-download"])
        Self.expectCleanFailure(missing, naming: mistyped, says: "no training state", "resume from a folder that does not exist")
        #expect(!FileManager.default.fileExists(atPath: mistyped), "resuming a mistyped folder created it")
        // The data the run was trained on must match.
        try DataFixtures.write(bytes, to: state)
        let other = try DataFixtures.temporaryDirectory()
        _ = try DataFixtures.writeSmallDataset(in: other, trainCount: 65, testCount: 8)
        let mismatch = try CommandLineTests.run(["train", "--resume", run, "--data-dir", other, "--no-download", "--epochs", "2"])
        Self.expectCleanFailure(mismatch, naming: state, says: "64 training", "resume on other data")
    }

    @Test func serveOnAPortInUseSaysSo() throws {
        let files = try Files()
        let server = try InferenceServeTests.Server()
        let port = try #require(server.base.port)
        let outcome = try CommandLineTests.run(["serve", "--checkpoint", files.checkpoint, "--port", "\(port)"])
        #expect(outcome.status == 1, "exit \(outcome.status): \(outcome.stderr)")
        #expect(outcome.stderr.contains("127.0.0.1:\(port)") && outcome.stderr.contains("in use"), "\(outcome.stderr)")
    }
}
