import Foundation
import LeNetKit
import Testing

/// The training loop on the first 2,000 training and 500 test images of MNIST.
@Suite struct TrainerTests {
    static func run(seed: UInt64, threads: Int, model: ModelVariant = .lenet) throws -> [String] {
        try history(seed: seed, threads: threads, model: model).map(\.line)
    }

    static func history(seed: UInt64, threads: Int, model: ModelVariant) throws -> [EpochRecord] {
        let full = try DataFixtures.mnist.get()
        var configuration = TrainingConfiguration()
        configuration.model = model
        configuration.epochs = 2
        configuration.seed = seed
        configuration.device = .cpu(threads: threads)
        let trainer = Trainer(configuration: configuration, dataset: Dataset(train: full.train.prefix(2000),
                                                                              test: full.test.prefix(500)))
        trainer.run()
        return trainer.history
    }

    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func sameSeedPrintsTheSameLinesAtAnyThreadCount(model: ModelVariant) throws {
        let first = try Self.run(seed: 3, threads: 2, model: model)
        #expect(try Self.run(seed: 3, threads: 2, model: model) == first)
        #expect(try Self.run(seed: 3, threads: 1, model: model) == first)
        #expect(try Self.run(seed: 3, threads: 8, model: model) == first)
        #expect(try Self.run(seed: 4, threads: 2, model: model) != first)
    }

    @Test func trainingLowersTheLoss() throws {
        // 126 steps of plain SGD at 0.01 move LeNet's test loss below chance level, ln 10 ≈ 2.303.
        let history = try Self.history(seed: 1, threads: 2, model: .lenet)
        #expect(history[1].trainLoss < history[0].trainLoss)
        #expect(history[1].testLoss < history[0].testLoss)
        #expect(history[1].testLoss < 2.30)
    }
}

/// The seed's data order is shared: the first batch `lenet samples` shows is the one training
/// sees, whatever the model variant.
@Suite struct TrainerDataOrderTests {
    @Test func firstTrainingBatchIsTheSamplesBatchForBothVariants() throws {
        let full = try DataFixtures.mnist.get()
        let dataset = Dataset(train: full.train.prefix(3000), test: full.test.prefix(100))
        let samples = SampleBatch(firstBatchOf: dataset.train, batchSize: 32, seed: 7)
        for model in ModelVariant.allCases {
            var configuration = TrainingConfiguration()
            configuration.model = model
            configuration.epochs = 1
            configuration.seed = 7
            let trainer = Trainer(configuration: configuration, dataset: dataset)
            trainer.runEpoch()
            let order = trainer.trainOrder
            #expect(Array(order.prefix(32)).map { dataset.train.labels[Int($0)] }.map(Int32.init) == samples.labels)
        }
    }
}
