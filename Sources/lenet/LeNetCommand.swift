import ArgumentParser
import LeNetKit

@main
struct LeNetCommand: AsyncParsableCommand {
    /// lenet's version, printed by `lenet --version`: raise it with each release.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "lenet",
        abstract: "Train and run LeNet-5 on MNIST, from scratch, in Swift.",
        version: version,
        subcommands: [TrainCommand.self, ExperimentCommand.self, BenchCommand.self, SamplesCommand.self, DataCommand.self, SummaryCommand.self, EvaluateCommand.self, ExportCommand.self, PredictCommand.self, ServeCommand.self, DevicesCommand.self]
    )
}
