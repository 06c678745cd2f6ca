import ArgumentParser
import Foundation
import LeNetKit

extension ModelVariant: ExpressibleByArgument {}

/// The flags `train` and `experiment` share; defaults are the tutorial's settings.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Epochs to train (default 8; with --resume, the total the run was started with).")
    var epochs: Int?

    @Option(help: "Images per batch (training and test).")
    var batchSize = 32

    @Option(name: [.customLong("lr"), .customLong("learning-rate")], help: "SGD learning rate.")
    var learningRate: Float = 0.01

    @Option(help: "SGD momentum.")
    var momentum: Float = 0

    @Option(help: "SGD weight decay (L2).")
    var weightDecay: Float = 0

    @Option(help: "Seed for initialisation, shuffling and dropout.")
    var seed: UInt64 = 0

    @Option(help: "Compute threads (default: every core).")
    var threads: Int = ThreadPool.defaultThreadCount

    @Flag(help: "Never download; fail if the data files are missing.")
    var noDownload = false

    func validate() throws {
        guard epochs ?? 1 >= 1 else { throw ValidationError("--epochs must be at least 1") }
        try validateBatchSize(batchSize)
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must not be negative") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func configuration(model: ModelVariant) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = model
        configuration.epochs = epochs ?? configuration.epochs
        configuration.batchSize = batchSize
        configuration.learningRate = learningRate
        configuration.momentum = momentum
        configuration.weightDecay = weightDecay
        configuration.seed = seed
        configuration.device = .cpu(threads: threads)
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
/// need be), `resumeCommand` is printed and it throws exit code 130.
@discardableResult
func trainInRunFolder(_ trainer: Trainer, folder: String, resumeCommand: String) throws -> Double {
    let start = Date()
    StopRequest.install()
    let progress = RunReportFiles.attachProgress(to: trainer)  // only on a terminal
    while trainer.history.count < trainer.configuration.epochs {
        guard !StopRequest.isRequested, let record = trainer.runEpoch(stoppingWhen: { StopRequest.isRequested }) else {
            progress?.clear()
            try stopResumably(trainer, folder: folder, resumeCommand: resumeCommand)
        }
        progress?.clear()
        print(record.line)
        fflush(nil)  // one line per epoch, visible at once through pipes
        try RunCheckpoints(directory: folder).save(trainer)  // last, best, state: each atomic
        try RunFolder.writeHistory(trainer.history, to: folder)
        try RunReportFiles.writeCurves(trainer.history, to: folder)
    }
    let seconds = Date().timeIntervalSince(start)
    print("Done")
    print("Run time: \(formatRunTime(seconds: seconds))")
    fflush(nil)
    printToStandardError("Report: " + (try RunReportFiles.writeReport(trainer: trainer, folder: folder, runSeconds: seconds)))
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

/// `lenet train --resume FOLDER` with the data options the run was started with.
func resumeCommand(folder: String, data: DataOptions) -> String {
    var words = ["lenet", "train", "--resume", folder]
    if let directory = data.dataDirectory { words += ["--data-dir", directory] }
    if data.dataset != .mnist { words += ["--dataset", data.dataset.rawValue] }
    return words.map(shellQuoted).joined(separator: " ")
}

/// `word` as a shell reads it back: as it is when it is plain, else in single quotes.
private func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
        CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
