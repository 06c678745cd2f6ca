import ArgumentParser
import Foundation
import LeNetKit

extension ModelVariant: ExpressibleByArgument {}

/// The flags `train` and `experiment` share; defaults are the tutorial's settings.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Epochs to train.")
    var epochs = 8

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
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must not be negative") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func configuration(model: ModelVariant) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = model
        configuration.epochs = epochs
        configuration.batchSize = batchSize
        configuration.learningRate = learningRate
        configuration.momentum = momentum
        configuration.weightDecay = weightDecay
        configuration.seed = seed
        configuration.device = .cpu(threads: threads)
        return configuration
    }
}

/// Trains `trainer` to its configured epochs in `folder`: after each epoch the tutorial's
/// line, the checkpoints (last, best, state), the history files and the curves; then
/// `Done`, the run time and the report. Returns the seconds of the whole run.
@discardableResult
func trainInRunFolder(_ trainer: Trainer, folder: String) throws -> Double {
    let start = Date()
    try RunFolder.prepare(folder)
    let progress = RunReportFiles.attachProgress(to: trainer)  // only on a terminal
    while trainer.history.count < trainer.configuration.epochs {
        let record = trainer.runEpoch()
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
