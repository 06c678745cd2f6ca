import Foundation
@testable import LeNetKit
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
        let trainer = try Trainer(configuration: configuration, dataset: Dataset(train: full.train.prefix(2000), test: full.test.prefix(500)),
                                  device: .cpu(threads: threads))
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

    /// The files a run writes, byte for byte, whatever the thread count: the model
    /// checkpoint as it is, the training state with its timings set to zero.
    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func sameSeedWritesTheSameCheckpointBytesAtAnyThreadCount(model: ModelVariant) throws {
        func files(threads: Int) throws -> (checkpoint: [UInt8], state: [UInt8]) {
            let full = try DataFixtures.mnist.get()
            var configuration = TrainingConfiguration()
            configuration.model = model
            configuration.epochs = 1
            configuration.seed = 5
            configuration.momentum = 0.9
            let trainer = try Trainer(configuration: configuration, dataset: Dataset(train: full.train.prefix(1000), test: full.test.prefix(200)),
                                      device: .cpu(threads: threads))
            trainer.run()
            var state = try trainer.state()
            for index in state.history.indices { state.history[index].seconds = 0 }
            return (try state.model.safeTensorsFile.serialized(), try state.safeTensorsFile.serialized())
        }
        let reference = try files(threads: 2)
        for threads in [1, 8] {
            let other = try files(threads: threads)
            // Compared outside #expect: a failure would otherwise print every byte.
            let sameCheckpoint = other.checkpoint == reference.checkpoint, sameState = other.state == reference.state
            #expect(sameCheckpoint, "checkpoint bytes differ at \(threads) threads")
            #expect(sameState, "training state bytes differ at \(threads) threads")
        }
    }

    @Test func trainingLowersTheLoss() throws {
        // 126 steps of plain SGD at 0.01 move LeNet's test loss below chance level, ln 10 ≈ 2.303.
        let history = try Self.history(seed: 1, threads: 2, model: .lenet)
        #expect(history[1].trainLoss < history[0].trainLoss)
        #expect(history[1].testLoss < history[0].testLoss)
        #expect(history[1].testLoss < 2.30)
    }

    /// `batchLimit` (`--limit-batches`, `--dry-run`): each epoch trains on its first N
    /// batches and evaluates the first N test batches; the state keeps the limit, and a run
    /// without one writes no trace of it.
    @Test func batchLimitTrainsAndEvaluatesOnlyTheFirstBatches() throws {
        let full = try DataFixtures.mnist.get()
        let dataset = Dataset(train: full.train.prefix(1000), test: full.test.prefix(500))
        var configuration = TrainingConfiguration()
        configuration.epochs = 2
        configuration.batchLimit = 3
        let trainer = try Trainer(configuration: configuration, dataset: dataset, device: .cpu(threads: 1))
        #expect(trainer.batchesPerEpoch == 3 && trainer.imagesPerEpoch == 96)
        var steps: [String] = []
        trainer.onBatch = { done, total in steps.append("\(done)/\(total)") }
        trainer.runEpoch()
        #expect(steps == ["1/3", "2/3", "3/3"])
        // The epoch's test figures are those of the first 3 test batches (96 images) alone.
        let first = try #require(trainer.history.first)
        let firstTestBatches = Evaluation(network: trainer.network, split: dataset.test.prefix(96), batchSize: 32)
        #expect(first.testAccuracy == firstTestBatches.accuracy && abs(first.testLoss - firstTestBatches.loss) < 1e-12)
        #expect((first.trainAccuracy * 96).rounded() == first.trainAccuracy * 96)
        trainer.runEpoch()
        #expect(steps.count == 6 && trainer.history.count == 2)

        let state = try trainer.state()
        #expect(try state.safeTensorsFile.metadata["batch_limit"] == "3")
        #expect(try TrainingState(file: state.safeTensorsFile).configuration.batchLimit == 3)
        configuration.batchLimit = nil
        let unlimited = try Trainer(configuration: configuration, dataset: dataset, device: .cpu(threads: 1))
        #expect(unlimited.batchesPerEpoch == 32)
        #expect(try unlimited.state().safeTensorsFile.metadata["batch_limit"] == nil)
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
            let trainer = try Trainer(configuration: configuration, dataset: dataset)
            trainer.runEpoch()
            let order = trainer.trainOrder
            let labels: [Int32] = order.prefix(32).map { (i: Int32) -> Int32 in Int32(dataset.train.labels[Int(i)]) }
            #expect(labels == samples.labels)
        }
    }
}
