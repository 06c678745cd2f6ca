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

/// Trains one model, printing the tutorial's line after each epoch.
func trainAndReport(_ configuration: TrainingConfiguration, dataset: Dataset) -> (Trainer, seconds: Double) {
    let start = Date()
    let trainer = Trainer(configuration: configuration, dataset: dataset)
    let progress = RunReportFiles.attachProgress(to: trainer)  // only on a terminal
    trainer.run { record in
        progress?.clear()
        print(record.line)
        fflush(nil)  // one line per epoch, visible at once through pipes
    }
    return (trainer, Date().timeIntervalSince(start))
}
