import ArgumentParser
import Foundation
import LeNetKit

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train LeNet on MNIST with the tutorial's settings and print one line per epoch."
    )

    @Option(help: "lenet (the tutorial's LeNet-5) or lenet-bn (with BatchNorm and Dropout).")
    var model: ModelVariant = .lenet

    @OptionGroup var data: DataOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Run folder for history.csv and history.json.")
    var output: String?

    func run() throws {
        let dataset = try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory,
                                       download: !training.noDownload, progress: printToStandardError)
        if let output { try RunFolder.prepare(output) }
        let (trainer, seconds) = trainAndReport(training.configuration(model: model), dataset: dataset)
        print("Done")
        print("Run time: \(formatRunTime(seconds: seconds))")
        if let output { try RunFolder.writeHistory(trainer.history, to: output) }
    }
}
