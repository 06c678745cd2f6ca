// Trains the tutorial's LeNet-5 on MNIST with LeNetKit and saves the model.
//
//     swift run -c release train-lenet [EPOCHS] [DATA_DIR]
//
// MNIST is read from DATA_DIR (or ./data), and downloaded there when missing.
import Foundation
import LeNetKit

let arguments = CommandLine.arguments.dropFirst()
let epochs = arguments.first.flatMap { Int($0) } ?? 8
let dataDirectory = arguments.dropFirst().first

do {
    // 60,000 training and 10,000 test images, pixels scaled to [0, 1] as they are batched.
    let dataset = try Dataset.load(kind: .mnist, dataDirectory: dataDirectory, download: true)

    // The tutorial's settings: batch 32, plain SGD with learning rate 0.01, seed 0.
    var configuration = TrainingConfiguration()
    configuration.model = .lenet  // or .lenetBN: BatchNorm after each convolution, Dropout after fc1
    configuration.epochs = epochs

    let trainer = try Trainer(configuration: configuration, dataset: dataset)  // every CPU core
    print(ModelSummary(definition: trainer.network.definition, batchSize: configuration.batchSize).text)

    let start = Date()
    trainer.run { epoch in
        print(epoch.line)  // Epoch: 1, Train_acc:51.0%, Train_loss:1.466, Test_acc:90.5%, Test_loss:0.308
    }
    print("Done in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")

    // PyTorch's state_dict names: `load_state_dict(safetensors.torch.load_file(...))` reads it.
    try trainer.save(to: "lenet.safetensors")
    print("Saved lenet.safetensors")
} catch {
    // A missing or damaged data file, no network, a model that cannot be written: say which, exit 1.
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(1)
}
