import ArgumentParser
import Foundation
import LeNetKit

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a checkpoint on the test set: accuracy, loss, confusion matrix, precision and recall.",
        discussion: "The checkpoint is a .safetensors file with PyTorch's state_dict names, written by `lenet train` (last.safetensors, best.safetensors) or by safetensors.torch.save_file(model.state_dict()). The model (lenet or lenet-bn) is inferred from the file."
    )

    @Option(help: "The checkpoint to evaluate (.safetensors).")
    var checkpoint: String

    @OptionGroup var work: WorkOptions

    @Option(help: "Write each test image's predicted class to this file, one per line, in test-set order.")
    var predictions: String?

    func run() throws {
        if let predictions { try RunFolder.checkCanWrite(file: predictions) }  // before the work, not after
        let model = try Checkpoint(contentsOf: checkpoint)
        let dataset = try work.loadDataset()
        let network = try model.makeNetwork(device: work.device, maxBatch: work.batchSize)
        let evaluation = Evaluation(network: network, split: dataset.test, batchSize: work.batchSize)

        var about = [model.variant.rawValue]
        if let epoch = model.info.epoch { about.append("epoch \(epoch)") }
        if let seed = model.info.seed { about.append("seed \(seed)") }
        print("Checkpoint: \(checkpoint) (\(about.joined(separator: ", ")))")
        print(String(format: "Test_acc:%.1f%%, Test_loss:%.3f", evaluation.accuracy * 100, evaluation.loss))
        print("Correct: \(evaluation.correct)/\(evaluation.labels.count)")
        print("")
        print(Self.report(evaluation, classNames: dataset.kind.classNames))

        if let predictions {
            let text = evaluation.predictions.map { String($0) }.joined(separator: "\n") + "\n"
            try LocalFile.writeFile(text, to: predictions)
            printToStandardError("Wrote \(evaluation.predictions.count) predictions to \(predictions)")
        }
    }

    /// The confusion matrix (rows: true class, columns: predicted class) and per-class
    /// precision and recall.
    static func report(_ evaluation: Evaluation, classNames: [String]) -> String {
        let classes = evaluation.classes
        let names = (0..<classes).map { $0 < classNames.count ? classNames[$0] : String($0) }
        let matrix = evaluation.confusionMatrix
        let cell = max(5, String(matrix.joined().max() ?? 0).count + 1)
        let label = max("true\\pred".count, names.map(\.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        func left(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }
        var lines = ["Confusion matrix (rows: true class, columns: predicted class)"]
        lines.append(left("true\\pred", label) + (0..<classes).map { pad(String($0), cell) }.joined())
        for truth in 0..<classes {
            lines.append(left(names[truth], label) + matrix[truth].map { pad(String($0), cell) }.joined())
        }
        lines.append("")
        lines.append(left("class", label) + pad("precision", 11) + pad("recall", 9) + pad("images", 8))
        let (precision, recall) = (evaluation.precision, evaluation.recall)
        func percent(_ value: Double?) -> String { value.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
        for c in 0..<classes {
            lines.append(left(names[c], label) + pad(percent(precision[c]), 11) + pad(percent(recall[c]), 9)
                         + pad(String(matrix[c].reduce(0, +)), 8))
        }
        return lines.joined(separator: "\n")
    }
}
