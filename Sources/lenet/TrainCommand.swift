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

    @Option(help: "Run folder for history files and checkpoints (last, best, state). Default: runs/<yyyyMMdd-HHmmss>-<model>.")
    var output: String?

    @Option(help: ArgumentHelp("Continue the run in RUN_DIR exactly where it stopped; --epochs is the total.", valueName: "RUN_DIR"))
    var resume: String?

    func run() throws {
        let folder = resume ?? output ?? Self.defaultRunFolder(model: model)
        if resume == nil { try RunFolder.prepare(folder) }  // an unwritable folder is reported before any download or training
        let dataset = try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory,
                                       download: !training.noDownload, progress: printToStandardError)
        let trainer = try makeTrainer(dataset: dataset, folder: folder)
        RunReportFiles.printSummary(trainer.configuration)
        try trainInRunFolder(trainer, folder: folder, resumeCommand: resumeCommand(folder: folder, data: data))
    }

    /// A fresh trainer, or with --resume one restored from the run folder's state.
    private func makeTrainer(dataset: Dataset, folder: String) throws -> Trainer {
        guard resume != nil else { return Trainer(configuration: training.configuration(model: model), dataset: dataset) }
        if let output, output != folder { throw CommandError("--resume continues in RUN_DIR itself; leave out --output") }
        let state = try RunCheckpoints(directory: folder).loadState()
        let epochs = training.epochs ?? state.configuration.epochs
        let mustFinish = state.epochsDone + (state.epochProgress.batchesDone > 0 ? 1 : 0)
        guard epochs >= mustFinish else {
            throw CommandError("\(folder) has trained \(state.epochsDone) epochs\(mustFinish > state.epochsDone ? " and part of the next" : ""); --epochs is the total, so ask for at least \(mustFinish)")
        }
        let position = state.epochProgress.batchesDone > 0
            ? "in epoch \(state.epochsDone + 1) after batch \(state.epochProgress.batchesDone)" : "after epoch \(state.epochsDone)"
        printToStandardError("Resuming \(folder) \(position) of \(epochs)")
        return try Trainer(resuming: state, dataset: dataset, epochs: epochs, device: .cpu(threads: training.threads))
    }

    /// runs/<yyyyMMdd-HHmmss>-<model>, local time.
    static func defaultRunFolder(model: ModelVariant, now: Date = Date()) -> String {
        RunFolder.defaultPath(name: model.rawValue, now: now)
    }
}
