import ArgumentParser
import Foundation
import LeNetKit

extension ModelVariant: @retroactive ExpressibleByArgument {}

/// The options of every command that loads the data and computes: train, experiment,
/// evaluate and bench. One definition, one validation.
struct WorkOptions: ParsableArguments {
    @OptionGroup var data: DataOptions

    // Optional so that `train --resume` can tell a batch size given from the default.
    @Option(name: .customLong("batch-size"), parsing: .unconditional,
            help: "Images per batch (for evaluation too: the loss is the mean of per-batch means). (default: \(TrainingConfiguration().batchSize))")
    var givenBatchSize: Int?

    var batchSize: Int { givenBatchSize ?? TrainingConfiguration().batchSize }

    @Option(parsing: .unconditional, help: "Compute threads of the CPU backend (default: one per physical core, \(ComputeDevice.defaultThreads) here).")
    var threads: Int?

    @Flag(help: "Never download; fail if the data files are missing.")
    var noDownload = false

    @OptionGroup var deviceChoice: DeviceOptions

    /// More threads than this only wait: the work of a batch is cut into a few fixed slices.
    static let maxThreads = 256

    func validate() throws {
        try validateBatchSize(batchSize)
        guard (1...Self.maxThreads).contains(threads ?? 1) else {
            throw ValidationError("--threads must be between 1 and \(Self.maxThreads)")
        }
    }

    /// Where the work runs: the CPU backend on --threads threads, or the GPU --device names.
    var device: ComputeDevice {
        get throws { try deviceChoice.makeDevice(cpuThreads: threads ?? ComputeDevice.defaultThreads) }
    }

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

    // The settings below are optional, their defaults (the tutorial's, from
    // TrainingConfiguration) applied in `configuration`: `train --resume` refuses the ones
    // given that differ from the run's, and must tell them from defaults.
    @Option(name: [.customLong("lr"), .customLong("learning-rate")], parsing: .unconditional,
            help: "SGD learning rate. (default: \(TrainingConfiguration().learningRate))")
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "SGD momentum. (default: \(TrainingConfiguration().momentum))")
    var momentum: Float?

    @Option(parsing: .unconditional, help: "SGD weight decay (L2). (default: \(TrainingConfiguration().weightDecay))")
    var weightDecay: Float?

    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and dropout. (default: \(TrainingConfiguration().seed))")
    var seed: UInt64?

    func validate() throws {
        guard epochs ?? 1 >= 1 else { throw ValidationError("--epochs must be at least 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--lr must be a positive number") }
        if let momentum, !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1)") }
        if let weightDecay, !(weightDecay >= 0) { throw ValidationError("--weight-decay must not be negative") }
    }

    func configuration(model: ModelVariant, batchSize: Int, batchLimit: Int? = nil) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.batchLimit = batchLimit
        configuration.model = model
        configuration.epochs = epochs ?? configuration.epochs
        configuration.batchSize = batchSize
        configuration.learningRate = learningRate ?? configuration.learningRate
        configuration.momentum = momentum ?? configuration.momentum
        configuration.weightDecay = weightDecay ?? configuration.weightDecay
        configuration.seed = seed ?? configuration.seed
        return configuration
    }

    /// The settings given on the command line that differ from `run`'s, each as
    /// (the run's, the one given): `--lr 0.01`, `--lr 0.1`. Epochs are not a setting of
    /// the run here: with --resume they are the new total.
    func differences(from run: TrainingConfiguration, model: ModelVariant?, batchSize: Int?) -> [(run: String, given: String)] {
        var differences: [(run: String, given: String)] = []
        func compare<T: Equatable>(_ option: String, _ given: T?, _ saved: T, _ text: (T) -> String) {
            if let given, given != saved { differences.append(("\(option) \(text(saved))", "\(option) \(text(given))")) }
        }
        compare("--model", model, run.model, \.rawValue)
        compare("--batch-size", batchSize, run.batchSize) { String($0) }
        compare("--lr", learningRate, run.learningRate) { String($0) }
        compare("--momentum", momentum, run.momentum) { String($0) }
        compare("--weight-decay", weightDecay, run.weightDecay) { String($0) }
        compare("--seed", seed, run.seed) { String($0) }
        return differences
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
    // Resumed: the state is what counts, and a kill during the last save may have left
    // the other files behind it; written again from it, they all tell its epoch.
    if !trainer.history.isEmpty { try saveEpochFiles(trainer, folder: folder, state: false) }
    let progress = quiet ? nil : RunReportFiles.attachProgress(to: trainer)  // only on a terminal
    let outcome = try trainer.run(stoppingWhen: { StopRequest.isRequested }) { record in
        progress?.clear()
        print(record.line)
        fflush(nil)  // one line per epoch, visible at once through pipes
        try saveEpochFiles(trainer, folder: folder, state: true)
    }
    progress?.clear()
    if outcome == .stopped { try stopResumably(trainer, folder: folder, resumeCommand: resumeCommand) }
    if case .diverged(let epoch) = outcome { throw divergence(epoch: epoch, trainer: trainer, folder: folder) }
    let seconds = Date().timeIntervalSince(start)
    print("Done")
    print("Run time: \(formatRunTime(seconds: seconds))")
    fflush(nil)
    let report = try RunReportFiles.writeReport(trainer: trainer, folder: folder, runSeconds: seconds)
    if !quiet { printToStandardError("Report: " + report) }
    return seconds
}

/// The files of a finished epoch, each written atomically, the state first (the commit
/// point a resume starts from), then last, best, the history and the curves.
private func saveEpochFiles(_ trainer: Trainer, folder: String, state: Bool) throws {
    let checkpoints = RunCheckpoints(directory: folder)
    try state ? checkpoints.save(trainer) : checkpoints.restoreCheckpoints(trainer)
    try RunFolder.writeHistory(trainer.history, to: folder)
    try RunReportFiles.writeCurves(trainer.history, to: folder)
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

/// Why a run stopped at a non-finite loss and what the folder still holds: the trainer
/// returned before saving anything of that epoch (a resumed run's state may be mid-epoch).
private func divergence(epoch: Int, trainer: Trainer, folder: String) -> CommandError {
    let saved = FileManager.default.fileExists(atPath: RunCheckpoints(directory: folder).statePath)
    let kept = saved ? "\(folder) keeps its files as they were before epoch \(epoch)" : "nothing was saved"
    return CommandError("training diverged in epoch \(epoch): the loss is NaN or infinite; \(kept); start a new run with a smaller --lr than \(trainer.configuration.learningRate)")
}

/// `lenet train --resume FOLDER` (lenet named as the user ran it) with the data options
/// the run was started with.
func resumeCommand(folder: String, data: DataOptions) -> String {
    var words = ["train", "--resume", folder]
    if let directory = data.dataDirectory { words += ["--data-dir", directory] }
    if data.dataset != .mnist { words += ["--dataset", data.dataset.rawValue] }
    return Invocation.command(words)
}
