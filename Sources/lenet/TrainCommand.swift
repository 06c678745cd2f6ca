import ArgumentParser
import Foundation
import LeNetKit

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train LeNet on MNIST with the tutorial's settings and print one line per epoch."
    )

    // Optional so that `--resume` can tell a model given from the default.
    @Option(name: .customLong("model"), help: "lenet (the tutorial's LeNet-5) or lenet-bn (with BatchNorm and Dropout). (default: lenet)")
    var givenModel: ModelVariant?

    var model: ModelVariant { givenModel ?? .lenet }

    @OptionGroup var work: WorkOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var runOptions: RunOptions

    @Option(help: "Run folder for history files and checkpoints (last, best, state); new or empty unless --overwrite. Default: runs/<yyyyMMdd-HHmmss-SSS>-<model>.")
    var output: String?

    @Flag(help: "Replace the run in an existing --output folder.")
    var overwrite = false

    @Option(help: ArgumentHelp("Continue the run in RUN_DIR exactly where it stopped, to the run's own total of epochs or to --epochs (the new total).", valueName: "RUN_DIR"))
    var resume: String?

    func run() throws {
        if resume != nil && overwrite { throw CommandError("--overwrite starts a new run; leave it out with --resume") }
        if resume != nil && runOptions.batchLimit != nil {
            throw CommandError("a resumed run keeps the batch limit it was started with; leave out --limit-batches and --dry-run")
        }
        // What can be wrong with the run folder is reported before any download or training:
        // the state to resume first (so a mistyped RUN_DIR is not created), then the folder
        // (made or taken, locked against other runs, a real write).
        let resuming = try resume.map { try stateToResume(in: $0) }
        if let resuming, resuming.state.epochsDone >= resuming.epochs, resuming.state.epochProgress.batchesDone == 0 {
            // A kill during the run's last save may have left the other files behind its
            // state: written again from it (under the folder's lock), they tell its epoch.
            let folder = try RunFolder.prepare(resume: resume, output: output, overwrite: false, name: model.rawValue)
            try RunCheckpoints(directory: folder).restoreCheckpoints(from: resuming.state)
            try RunFolder.writeHistory(resuming.state.history, to: folder)
            try RunReportFiles.writeCurves(resuming.state.history, to: folder)
            let further = resumeCommand(folder: resume ?? "", data: work.data) + " --epochs \(resuming.epochs + 1)"
            print("Nothing to do: \(resume ?? "") has trained all \(resuming.epochs) epochs; "
                  + "to train further, give the new total with --epochs: \(further)")
            return
        }
        let folder = try RunFolder.prepare(resume: resume, output: output, overwrite: overwrite, name: model.rawValue)
        do {
            let dataset = try work.loadDataset()
            let trainer: Trainer
            if let resuming {
                trainer = try Trainer(resuming: resuming.state, dataset: dataset, epochs: resuming.epochs, device: work.device)
            } else {
                trainer = try Trainer(configuration: training.configuration(model: model, batchSize: work.batchSize,
                                                                            batchLimit: runOptions.batchLimit),
                                      dataset: dataset, device: work.device)
            }
            if !runOptions.quiet { RunReportFiles.printSummary(trainer.configuration) }
            try trainInRunFolder(trainer, folder: folder, resumeCommand: resumeCommand(folder: folder, data: work.data),
                                 quiet: runOptions.quiet)
        } catch {
            RunFolder.removeUnusedFolders()  // a start that failed leaves no empty run folder behind
            throw error
        }
    }

    /// The run folder's training state and the total epochs to train it to (--epochs, else
    /// the run's own total), checked against the options.
    private func stateToResume(in folder: String) throws -> (state: TrainingState, epochs: Int) {
        if let output, output != folder { throw CommandError("--resume continues in RUN_DIR itself; leave out --output") }
        let state = try RunCheckpoints(directory: folder).loadState()
        // A resumed run goes on with its own settings; one given otherwise would be ignored.
        let differences = training.differences(from: state.configuration, model: givenModel, batchSize: work.givenBatchSize)
        if !differences.isEmpty {
            let (saved, given) = (differences.map(\.run), differences.map(\.given))
            throw CommandError("\(folder) was trained with \(saved.joined(separator: " ")), not \(given.joined(separator: " ")); --resume goes on with the run's own settings: leave those out, or start a new run")
        }
        let epochs = training.epochs ?? state.configuration.epochs
        let mustFinish = state.epochsDone + (state.epochProgress.batchesDone > 0 ? 1 : 0)
        guard epochs >= mustFinish else {
            throw CommandError("\(folder) has trained \(state.epochsDone) epochs\(mustFinish > state.epochsDone ? " and part of the next" : ""); --epochs is the total, so ask for at least \(mustFinish)")
        }
        guard epochs > state.epochsDone || state.epochProgress.batchesDone > 0 else { return (state, epochs) }  // nothing to do
        let batchSize = state.configuration.batchSize, allBatches = (state.trainCount + batchSize - 1) / batchSize
        let batches = min(allBatches, state.configuration.batchLimit ?? allBatches)
        let position = state.epochProgress.batchesDone > 0
            ? "in epoch \(state.epochsDone + 1) of \(epochs), after batch \(state.epochProgress.batchesDone) of \(batches)"
            : "after epoch \(state.epochsDone) of \(epochs)"
        printToStandardError("Resuming \(folder) \(position)")
        return (state, epochs)
    }
}
