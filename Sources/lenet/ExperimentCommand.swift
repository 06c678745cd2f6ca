import ArgumentParser
import Foundation
import LeNetKit

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Train LeNet and LeNet with BatchNorm and Dropout with the same seed, then compare them."
    )

    @OptionGroup var work: WorkOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var runOptions: RunOptions

    @Option(help: "Run folder: the comparison report, and one subfolder per model; new or empty unless --overwrite. Default: runs/<yyyyMMdd-HHmmss-SSS>-experiment.")
    var output: String?

    @Flag(help: "Replace the experiment in an existing --output folder.")
    var overwrite = false

    func run() throws {
        // An unwritable or busy folder is reported before any download or training. Each
        // model's subfolder is locked too, against a `train --resume` of it meanwhile.
        let output = try RunFolder.prepare(output: self.output, overwrite: overwrite, name: "experiment")
        do {
            try experiment(in: output)
        } catch {
            RunFolder.removeUnusedFolders()  // a start that failed leaves no empty run folders behind
            throw error
        }
    }

    private func experiment(in output: String) throws {
        let folders = ModelVariant.allCases.map { (output as NSString).appendingPathComponent($0.rawValue) }
        for folder in folders { try RunFolder.prepare(folder, overwrite: true) }
        let dataset = try work.loadDataset()
        let configuration = { (model: ModelVariant) in
            training.configuration(model: model, batchSize: work.batchSize, batchLimit: runOptions.batchLimit)
        }
        let device = try work.device  // one GPU runtime, its kernels compiled once, for both models
        var rows: [(ModelVariant, [EpochRecord], Double)] = []
        var reportRuns: [ComparisonReport.Run] = []
        for (model, folder) in zip(ModelVariant.allCases, folders) {
            print("== \(model.rawValue)")
            let trainer = try Trainer(configuration: configuration(model), dataset: dataset, device: device)
            // Stopped, one model can be finished with `lenet train --resume`; the comparison needs a new experiment.
            let seconds = try trainInRunFolder(trainer, folder: folder, resumeCommand: resumeCommand(folder: folder, data: work.data),
                                               quiet: runOptions.quiet)
            rows.append((model, trainer.history, seconds))
            reportRuns.append(.init(name: model.rawValue, history: trainer.history, seconds: seconds,
                                    summary: ModelSummary(definition: trainer.network.definition, batchSize: work.batchSize),
                                    reportLink: "\(model.rawValue)/report.html"))
        }
        let table = ExperimentComparison(rows.map { .init(model: $0.0, history: $0.1, seconds: $0.2) }).table
        print("")
        print(table)
        fflush(nil)
        let report = try RunReportFiles.writeComparison(runs: reportRuns, table: table, configuration: configuration(.lenet),
                                                        device: device,
                                                        dataset: dataset, folder: output)
        if !runOptions.quiet { printToStandardError("Report: \(report)") }
    }
}
