import ArgumentParser
import Foundation
import LeNetKit

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Train LeNet and LeNet with BatchNorm and Dropout with the same seed, then compare them."
    )

    @OptionGroup var data: DataOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Run folder: one subfolder of history files per model.")
    var output: String?

    func run() throws {
        let dataset = try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory,
                                       download: !training.noDownload, progress: printToStandardError)
        if let output { try RunFolder.prepare(output) }
        var rows: [(ModelVariant, [EpochRecord], Double)] = []
        for model in ModelVariant.allCases {
            print("== \(model.rawValue)")
            let (trainer, seconds) = trainAndReport(training.configuration(model: model), dataset: dataset)
            print("Done")
            print("Run time: \(formatRunTime(seconds: seconds))")
            if let output {
                let folder = (output as NSString).appendingPathComponent(model.rawValue)
                try RunFolder.prepare(folder)
                try RunFolder.writeHistory(trainer.history, to: folder)
            }
            rows.append((model, trainer.history, seconds))
        }
        print("")
        print(ExperimentComparison(rows.map { .init(model: $0.0, history: $0.1, seconds: $0.2) }).table)
    }
}
