import Foundation
import LeNetKit
import Testing

/// Exact resume: 2 epochs, save the run folder, load it into a new trainer, 2 more epochs
/// must equal 4 epochs straight — the same epoch lines, the same figures to the last bit,
/// the same weights, velocity and generator. On the first 2,000 training and 500 test
/// images of MNIST (../shared/mnist), with the BatchNorm variant (running statistics,
/// dropout drawing from the generator) and momentum (velocity) so every part of the state counts.
@Suite struct CheckpointResumeTests {
    static func smallMNIST() throws -> Dataset {
        let full = try DataFixtures.mnist.get()
        return Dataset(train: full.train.prefix(2000), test: full.test.prefix(500))
    }

    static func configuration(epochs: Int) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = .lenetBN
        configuration.epochs = epochs
        configuration.momentum = 0.9
        configuration.weightDecay = 1e-4
        configuration.seed = 7
        configuration.device = .cpu(threads: 2)
        return configuration
    }

    /// Every figure but the time.
    static func figures(_ history: [EpochRecord]) -> [[UInt64]] {
        history.map { [UInt64($0.epoch), $0.trainAccuracy.bitPattern, $0.trainLoss.bitPattern,
                       $0.testAccuracy.bitPattern, $0.testLoss.bitPattern] }
    }

    static func weights(_ trainer: Trainer) -> [UInt32] {
        let store = trainer.network.store
        return (Array(UnsafeBufferPointer(start: store.values.pointer, count: store.values.count))
                + Array(UnsafeBufferPointer(start: store.velocity.pointer, count: store.velocity.count))
                + Array(UnsafeBufferPointer(start: store.buffers.pointer, count: store.buffers.count))).map(\.bitPattern)
    }

    @Test func resumeEqualsStraightTraining() throws {
        let dataset = try Self.smallMNIST()
        let straight = Trainer(configuration: Self.configuration(epochs: 4), dataset: dataset)
        straight.run()

        let first = Trainer(configuration: Self.configuration(epochs: 2), dataset: dataset)
        first.run()
        let folder = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        try folder.save(first)

        let state = try folder.loadState()
        #expect(state.epochsDone == 2)
        let resumed = try Trainer(resuming: state, dataset: dataset, epochs: 4, device: .cpu(threads: 1))
        #expect(resumed.configuration.epochs == 4)
        #expect(resumed.history.map(\.line) == first.history.map(\.line))
        resumed.run()

        #expect(resumed.history.map(\.line) == straight.history.map(\.line))
        #expect(Self.figures(resumed.history) == Self.figures(straight.history))
        // Compared outside #expect: a failure would otherwise print ~60,000 numbers.
        let (a, b) = (Self.weights(resumed), Self.weights(straight))
        let firstDifference = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(a.count == b.count && firstDifference == nil,
                "weights, velocity or running statistics differ, first at flat index \(firstDifference ?? -1)")
        #expect(resumed.generator == straight.generator)
        #expect(resumed.dataGenerator == straight.dataGenerator)
        #expect(resumed.optimizer == straight.optimizer)
        let sameOrder = resumed.trainOrder == straight.trainOrder
        #expect(sameOrder, "the last epoch's data order differs")
        #expect(resumed.network.store.batchesTracked == straight.network.store.batchesTracked)
    }

    @Test func stateFileRoundTripsEveryField() throws {
        let dataset = try Self.smallMNIST()
        var configuration = Self.configuration(epochs: 1)
        configuration.learningRate = 0.0123
        let trainer = Trainer(configuration: configuration, dataset: dataset)
        trainer.run()
        let state = try trainer.state()
        let path = try DataFixtures.temporaryDirectory() + "/state.safetensors"
        try state.write(to: path)
        let loaded = try TrainingState(contentsOf: path)
        #expect(loaded.configuration.model == .lenetBN)
        #expect(loaded.configuration.learningRate.bitPattern == Float(0.0123).bitPattern)
        #expect(loaded.configuration.momentum == 0.9 && loaded.configuration.weightDecay == 1e-4)
        #expect(loaded.configuration.seed == 7 && loaded.configuration.batchSize == 32)
        #expect(loaded.generator == trainer.generator)
        #expect(loaded.dataGenerator == trainer.dataGenerator)
        #expect(loaded.hasVelocity)
        let sameOrder = loaded.trainOrder == trainer.trainOrder
        #expect(sameOrder, "the data order did not round-trip")
        #expect(loaded.history == trainer.history)
        let sameModel = loaded.model.tensors == state.model.tensors, sameVelocity = loaded.velocity == state.velocity
        #expect(sameModel, "model tensors did not round-trip")
        #expect(sameVelocity, "velocity did not round-trip")
        #expect(loaded.trainCount == 2000 && loaded.testCount == 500)
        let sameBytes = try loaded.safeTensorsFile.serialized() == FileIOTestSupport.bytes(path)
        #expect(sameBytes, "rewriting the loaded state gives other bytes")
    }

    @Test func runFolderKeepsLastBestAndState() throws {
        let dataset = try Self.smallMNIST()
        let trainer = Trainer(configuration: Self.configuration(epochs: 3), dataset: dataset)
        let folder = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        while trainer.history.count < 3 {
            trainer.runEpoch()
            try folder.save(trainer)
        }
        let last = try Checkpoint(contentsOf: folder.lastPath)
        let best = try Checkpoint(contentsOf: folder.bestPath)
        #expect(last.info.epoch == 3)
        let bestRecord = trainer.history.reduce(trainer.history[0]) { $1.testAccuracy > $0.testAccuracy ? $1 : $0 }
        #expect(best.info.epoch == bestRecord.epoch)
        #expect(best.info.testAccuracy == bestRecord.testAccuracy)
        #expect(last.info.seed == 7 && last.variant == .lenetBN)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.directory).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test func resumeRefusesOtherDataAndMissingState() throws {
        let dataset = try Self.smallMNIST()
        let trainer = Trainer(configuration: Self.configuration(epochs: 1), dataset: dataset)
        trainer.run()
        let state = try trainer.state()
        let other = Dataset(train: dataset.train.prefix(1000), test: dataset.test)
        #expect(throws: CheckpointError.self) { try Trainer(resuming: state, dataset: other) }
        let empty = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        #expect(throws: CheckpointError.self) { try empty.loadState() }
        // A model checkpoint is not a training state.
        let model = empty.directory + "/model.safetensors"
        try state.model.write(to: model)
        #expect(throws: CheckpointError.self) { try TrainingState(contentsOf: model) }
    }
}
