import ArgumentParser
import LeNetKit

@main
struct LeNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lenet",
        abstract: "Train and run LeNet-5 on MNIST, from scratch, in Swift.",
        subcommands: [TrainCommand.self, ExperimentCommand.self, BenchCommand.self, SamplesCommand.self, DataCommand.self, SummaryCommand.self, EvaluateCommand.self, ExportCommand.self, PredictCommand.self, ServeCommand.self]
    )
}
