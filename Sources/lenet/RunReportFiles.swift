import Foundation
import LeNetKit

/// What `train` and `experiment` show a person: the summary first, a progress line on a
/// terminal, and curves.svg and report.html in the run folder.
enum RunReportFiles {
    /// A progress line for `trainer`, only when standard output is a terminal.
    static func attachProgress(to trainer: Trainer) -> TerminalProgress? {
        guard TerminalProgress.isTerminal() else { return nil }
        let progress = TerminalProgress(imagesPerBatch: trainer.configuration.batchSize, totalImages: trainer.dataset.train.count)
        trainer.onBatch = { [unowned trainer] done, total in
            progress.update(done: done, total: total) {
                let epoch = trainer.epochProgress
                let images = min(done * trainer.configuration.batchSize, trainer.dataset.train.count)
                return (epoch.trainLossSum / Double(done), Double(epoch.trainCorrect) / Double(images))
            }
        }
        return progress
    }

    static func printSummary(_ configuration: TrainingConfiguration) {
        print(ModelSummary(definition: .lenet(configuration.model), batchSize: configuration.batchSize).text)
    }

    /// curves.svg from the history so far (rewritten after every epoch).
    static func writeCurves(_ history: [EpochRecord], to folder: String) throws {
        try write(TrainingCurves.svg(history: history), to: folder, name: "curves.svg")
    }

    /// Evaluates the trained model on the test set and writes curves.svg and report.html.
    /// Returns the report's path.
    @discardableResult
    static func writeReport(trainer: Trainer, folder: String, runSeconds: Double, timings: [ReportField] = []) throws -> String {
        let configuration = trainer.configuration, dataset = trainer.dataset
        let evaluationStart = Date()
        let evaluation = Evaluation(network: trainer.network, split: dataset.test, batchSize: configuration.batchSize)
        let results = ClassificationResults(evaluation: evaluation, split: dataset.test, classNames: dataset.kind.classNames,
                                            mistakes: 20, seconds: Date().timeIntervalSince(evaluationStart))
        let samples = SampleBatch(firstBatchOf: dataset.train, batchSize: configuration.batchSize, seed: configuration.seed)
        let report = RunReport(
            title: "LeNet training run: \(configuration.model.rawValue)",
            settings: settings(configuration, device: trainer.device, dataset: dataset, folder: folder),
            machine: .current(), summary: ModelSummary(definition: trainer.network.definition, batchSize: configuration.batchSize),
            history: trainer.history, runSeconds: runSeconds, classNames: dataset.kind.classNames, results: results,
            samples: ReportImage.samples(samples, limit: 20, classNames: dataset.kind.classNames),
            samplesNote: "The first \(min(20, samples.count)) images of the first training batch (batch size \(configuration.batchSize), "
                + "seed \(configuration.seed)), as `\(Invocation.command(["samples", "--seed", "\(configuration.seed)", "--batch-size", "\(configuration.batchSize)"]))` shows them.",
            timings: timings, trainImages: trainer.imagesPerEpoch)
        try writeCurves(trainer.history, to: folder)
        return try write(try report.html(), to: folder, name: "report.html")
    }

    /// The comparison report of `experiment`: report.html and curves.svg with both variants overlaid.
    @discardableResult
    static func writeComparison(runs: [ComparisonReport.Run], table: String, configuration: TrainingConfiguration,
                                device: ComputeDevice, dataset: Dataset, folder: String) throws -> String {
        var fields = settings(configuration, device: device, dataset: dataset, folder: folder)
        fields.removeAll { $0.name == "Model" }
        let report = ComparisonReport(title: "LeNet experiment: " + runs.map(\.name).joined(separator: " vs "),
                                      settings: fields, machine: .current(), runs: runs, comparisonTable: table)
        try write(report.curvesSVG, to: folder, name: "curves.svg")
        return try write(report.html(), to: folder, name: "report.html")
    }

    static func settings(_ c: TrainingConfiguration, device: ComputeDevice, dataset: Dataset, folder: String) -> [ReportField] {
        var fields: [ReportField] = [
            .init("Model", c.model.rawValue), .init("Epochs", "\(c.epochs)"), .init("Batch size", "\(c.batchSize)"),
            .init("Learning rate", "\(c.learningRate)"), .init("Momentum", "\(c.momentum)"),
            .init("Weight decay", "\(c.weightDecay)"), .init("Seed", "\(c.seed)"), .init("Device", device.name),
            .init("Dataset", "\(dataset.kind.rawValue) (\(dataset.train.count) train, \(dataset.test.count) test)"),
            .init("Data directory", dataset.directory), .init("Run folder", folder),
            .init("Command", Invocation.typed),
            .init("Report written", ISO8601DateFormatter().string(from: Date())),
        ]
        if let limit = c.batchLimit {  // a smoke run says so beside its figures
            fields.insert(.init("Batch limit", "the first \(limit) training and test batch\(limit == 1 ? "" : "es") of each epoch"), at: 3)
        }
        return fields
    }

    @discardableResult
    private static func write(_ text: String, to folder: String, name: String) throws -> String {
        let path = (folder as NSString).appendingPathComponent(name)
        try LocalFile.writeFile(text, to: path)  // atomic, in the run folder: no $TMPDIR needed
        return path
    }
}
