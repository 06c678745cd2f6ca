import ArgumentParser
import LeNetKit

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Show the model as torchinfo does: layers, output shapes, parameters, mult-adds and memory."
    )

    @Option(help: "lenet (the tutorial's LeNet-5) or lenet-bn (with BatchNorm and Dropout).")
    var model: ModelVariant = .lenet

    @Option(parsing: .unconditional, help: "Batch size of the shapes, mult-adds and memory.")
    var batchSize = 32

    func validate() throws {
        try validateBatchSize(batchSize)
    }

    func run() throws {
        print(ModelSummary(definition: .lenet(model), batchSize: batchSize, device: .cpu(threads: 1)).text, terminator: "")
    }
}
