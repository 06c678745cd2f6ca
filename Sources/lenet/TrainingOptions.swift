import ArgumentParser
import Foundation
import LeNetKit

extension ModelVariant: ExpressibleByArgument {}

/// The options of every command that loads the data and computes: train, experiment,
/// evaluate and bench. One definition, one validation.
struct WorkOptions: ParsableArguments {
    @OptionGroup var data: DataOptions

    @Option(parsing: .unconditional, help: "Images per batch (for evaluation too: the loss is the mean of per-batch means).")
    var batchSize = 32

    @Option(parsing: .unconditional, help: "Compute threads (default: every core, \(ComputeDevice.availableCores) here).")
    var threads: Int?

    @Flag(help: "Never download; fail if the data files are missing.")
    var noDownload = false

    /// More threads than this only wait: the work of a batch is cut into a few fixed slices.
    static let maxThreads = 256

    func validate() throws {
        try validateBatchSize(batchSize)
        guard (1...Self.maxThreads).contains(threads ?? 1) else {
            throw ValidationError("--threads must be between 1 and \(Self.maxThreads)")
        }
    }

    /// Where the work runs.
    var device: ComputeDevice { .cpu(threads: threads ?? ComputeDevice.availableCores) }

    /// The dataset, downloaded if missing unless --no-download; download messages on standard error.
    func loadDataset() throws -> Dataset {
        try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory, download: !noDownload,
                         progress: printToStandardError)
    }
}

/// The flags `train` and `experiment` share besides `WorkOptions`; defaults are the tutorial's settings.
struct TrainingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Epochs to train (default: 8).")
    var epochs: Int?

    @Option(name: [.customLong("lr"), .customLong("learning-rate")], parsing: .unconditional, help: "SGD learning rate.")
    var learningRate: Float = 0.01

    @Option(parsing: .unconditional, help: "SGD momentum.")
    var momentum: Float = 0

    @Option(parsing: .unconditional, help: "SGD weight decay (L2).")
    var weightDecay: Float = 0

    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and dropout.")
    var seed: UInt64 = 0

    func validate() throws {
        guard epochs ?? 1 >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must not be negative") }
    }

    func configuration(model: ModelVariant, batchSize: Int, batchLimit: Int? = nil) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.batchLimit = batchLimit
        configuration.model = model
        configuration.epochs = epochs ?? configuration.epochs
        configuration.batchSize = batchSize
        configuration.learningRate = learningRate
        configuration.momentum = momentum
        configuration.weightDecay = weightDecay
        configuration.seed = seed
        return configuration
    }
}

/// --batch-size for every command that takes one: activations are sized by it, so it is
/// capped at `TrainingConfiguration.maxBatchSize`.
func validateBatchSize(_ batchSize: Int) throws {
    guard (1...TrainingConfiguration.maxBatchSize).contains(batchSize) else {
        throw ValidationError("--batch-size must be between 1 and \(TrainingConfiguration.maxBatchSize)")
    }
}

/// Trains `trainer` to its configured epochs in `folder` (made and checked beforehand with
/// `RunFolder.prepare`, before the data is loaded): after each epoch the tutorial's
/// line, the checkpoints (last, best, state), the history files and the curves; then
/// `Done`, the run time and the report. Returns the seconds of the whole run.
///
/// Ctrl-C or SIGTERM stops it after the current step: the state is saved (mid-epoch if
/// need be), `resumeCommand` is printed and it throws exit code 130. `quiet`: no progress
/// line and no `Report:` line.
@discardableResult
func trainInRunFolder(_ trainer: Trainer, folder: String, resumeCommand: String, quiet: Bool = false) throws -> Double {
    let start = Date()
    StopRequest.install()
    let progress = quiet ? nil : RunReportFiles.attachProgress(to: trainer)  // only on a terminal
    let outcome = try trainer.run(stoppingWhen: { StopRequest.isRequested }) { record in
        progress?.clear()
        print(record.line)
        fflush(nil)  // one line per epoch, visible at once through pipes
        try RunCheckpoints(directory: folder).save(trainer)  // last, best, state: each atomic
        try RunFolder.writeHistory(trainer.history, to: folder)
        try RunReportFiles.writeCurves(trainer.history, to: folder)
    }
    progress?.clear()
    if outcome == .stopped { try stopResumably(trainer, folder: folder, resumeCommand: resumeCommand) }
    let seconds = Date().timeIntervalSince(start)
    print("Done")
    print("Run time: \(formatRunTime(seconds: seconds))")
    fflush(nil)
    let report = try RunReportFiles.writeReport(trainer: trainer, folder: folder, runSeconds: seconds)
    if !quiet { printToStandardError("Report: " + report) }
    return seconds
}

/// Saves the state where training stopped, says where and how to go on, and exits 130
/// (the shell's code for a run ended by Ctrl-C).
private func stopResumably(_ trainer: Trainer, folder: String, resumeCommand: String) throws -> Never {
    let checkpoints = RunCheckpoints(directory: folder)
    try checkpoints.saveState(trainer)
    let epoch = trainer.history.count + 1, done = trainer.epochProgress.batchesDone
    let position = done > 0 ? "after batch \(done) of \(trainer.batchesPerEpoch) in epoch \(epoch)"
                            : "after epoch \(trainer.history.count)"
    printToStandardError("Interrupted \(position); saved \(checkpoints.statePath)")
    printToStandardError("Resume with: \(resumeCommand)")
    throw ExitCode(130)
}

/// `lenet train --resume FOLDER` (lenet named as the user ran it) with the data options
/// the run was started with.
func resumeCommand(folder: String, data: DataOptions) -> String {
    var words = ["train", "--resume", folder]
    if let directory = data.dataDirectory { words += ["--data-dir", directory] }
    if data.dataset != .mnist { words += ["--dataset", data.dataset.rawValue] }
    return Invocation.command(words)
}
