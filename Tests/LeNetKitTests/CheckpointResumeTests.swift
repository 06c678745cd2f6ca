import Foundation
@testable import LeNetKit
import Testing

/// Exact resume: 2 epochs, save the run folder, load it into a new trainer, 2 more epochs
/// must equal 4 epochs straight — the same epoch lines, the same figures to the last bit,
/// the same weights, velocity and data generator. On the first 2,000 training and 500 test
/// images of MNIST (DataFixtures.mnistDirectory), with the BatchNorm variant (running statistics,
/// dropout masks keyed by the step) and momentum (velocity) so every part of the state counts.
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
        return configuration
    }

    /// Every figure but the time.
    static func figures(_ history: [EpochRecord]) -> [[UInt64]] {
        history.map { [UInt64($0.epoch), $0.trainAccuracy.bitPattern, $0.trainLoss.bitPattern,
                       $0.testAccuracy.bitPattern, $0.testLoss.bitPattern] }
    }

    static func trainer(_ configuration: TrainingConfiguration, _ dataset: Dataset) throws -> Trainer {
        try Trainer(configuration: configuration, dataset: dataset, device: .cpu(threads: 2))
    }

    static func weights(_ trainer: Trainer) -> [UInt32] {
        let store = trainer.network.snapshot()
        return (Array(UnsafeBufferPointer(start: store.values.pointer, count: store.values.count))
                + Array(UnsafeBufferPointer(start: store.velocity.pointer, count: store.velocity.count))
                + Array(UnsafeBufferPointer(start: store.buffers.pointer, count: store.buffers.count))).map(\.bitPattern)
    }

    @Test func resumeEqualsStraightTraining() throws {
        let dataset = try Self.smallMNIST()
        let straight = try CheckpointResumeTests.trainer(Self.configuration(epochs: 4), dataset)
        straight.run()

        let first = try CheckpointResumeTests.trainer(Self.configuration(epochs: 2), dataset)
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
        #expect(resumed.dataGenerator == straight.dataGenerator)
        #expect(resumed.network.snapshot().hasVelocity == straight.network.snapshot().hasVelocity)
        let sameOrder = resumed.trainOrder == straight.trainOrder
        #expect(sameOrder, "the last epoch's data order differs")
        #expect(resumed.network.snapshot().batchesTracked == straight.network.snapshot().batchesTracked)
    }

    @Test func stateFileRoundTripsEveryField() throws {
        let dataset = try Self.smallMNIST()
        var configuration = Self.configuration(epochs: 1)
        configuration.learningRate = 0.0123
        let trainer = try CheckpointResumeTests.trainer(configuration, dataset)
        trainer.run()
        let state = try trainer.state()
        let path = try DataFixtures.temporaryDirectory() + "/state.safetensors"
        try state.write(to: path)
        let loaded = try TrainingState(contentsOf: path)
        #expect(loaded.configuration.model == .lenetBN)
        #expect(loaded.configuration.learningRate.bitPattern == Float(0.0123).bitPattern)
        #expect(loaded.configuration.momentum == 0.9 && loaded.configuration.weightDecay == 1e-4)
        #expect(loaded.configuration.seed == 7 && loaded.configuration.batchSize == 32)
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
        let trainer = try CheckpointResumeTests.trainer(Self.configuration(epochs: 3), dataset)
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
        let trainer = try CheckpointResumeTests.trainer(Self.configuration(epochs: 1), dataset)
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

/// A run stopped between two steps (as Ctrl-C stops `lenet train`), saved, loaded and
/// finished equals the run that was never stopped, to the last bit.
@Suite struct MidEpochResumeTests {
    @Test(arguments: [1, 17, 62])
    func stopAfterAnyStepThenResumeEqualsStraightTraining(stepsBeforeStop: Int) throws {
        let dataset = try CheckpointResumeTests.smallMNIST()  // 63 batches an epoch
        let straight = try CheckpointResumeTests.trainer(CheckpointResumeTests.configuration(epochs: 2), dataset)
        straight.run()

        let stopped = try CheckpointResumeTests.trainer(CheckpointResumeTests.configuration(epochs: 2), dataset)
        stopped.runEpoch()
        var steps = 0
        let record = stopped.runEpoch(stoppingWhen: { steps += 1; return steps == stepsBeforeStop })
        #expect(record == nil)
        #expect(stopped.epochProgress.batchesDone == stepsBeforeStop)
        #expect(stopped.history.count == 1)
        let folder = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        try folder.saveState(stopped)
        #expect(!FileManager.default.fileExists(atPath: folder.lastPath), "a mid-epoch stop wrote a model checkpoint")

        let state = try folder.loadState()
        #expect(state.epochProgress.batchesDone == stepsBeforeStop)
        #expect(state.epochProgress.trainLossSum.bitPattern == stopped.epochProgress.trainLossSum.bitPattern)
        let resumed = try Trainer(resuming: state, dataset: dataset, device: .cpu(threads: 1))
        resumed.run()

        #expect(resumed.history.map(\.line) == straight.history.map(\.line))
        #expect(CheckpointResumeTests.figures(resumed.history) == CheckpointResumeTests.figures(straight.history))
        let (a, b) = (CheckpointResumeTests.weights(resumed), CheckpointResumeTests.weights(straight))
        #expect(a == b, "weights, velocity or running statistics differ after a mid-epoch resume")
        #expect(resumed.dataGenerator == straight.dataGenerator)
        #expect(resumed.epochProgress == EpochProgress())
    }

    @Test func stopIsOnlyAskedBetweenStepsAndNeverAfterTheLast() throws {
        let dataset = try CheckpointResumeTests.smallMNIST()
        let trainer = try CheckpointResumeTests.trainer(CheckpointResumeTests.configuration(epochs: 1), dataset)
        var asked = 0
        let record = trainer.runEpoch(stoppingWhen: { asked += 1; return false })
        #expect(record != nil)
        #expect(asked == trainer.batchesPerEpoch - 1)
        // Asked to stop after the last step, the epoch finishes: nothing is left half-done.
        let second = try CheckpointResumeTests.trainer(CheckpointResumeTests.configuration(epochs: 1), dataset)
        #expect(second.runEpoch(stoppingWhen: { second.epochProgress.batchesDone == second.batchesPerEpoch }) != nil)
    }

    /// A state whose progress tensors are missing, partial or out of range is refused with
    /// a message naming the tensor.
    @Test func malformedProgressIsRefused() throws {
        let dataset = try CheckpointResumeTests.smallMNIST()
        let trainer = try CheckpointResumeTests.trainer(CheckpointResumeTests.configuration(epochs: 1), dataset)
        var steps = 0
        _ = trainer.runEpoch(stoppingWhen: { steps += 1; return steps == 5 })
        let good = try trainer.state().safeTensorsFile
        let cases: [(String, (inout [String: SafeTensor]) throws -> Void, String)] = [
            ("partial", { $0["progress.seconds"] = nil }, "not all of"),
            ("zero batches", { $0["progress.batches_done"] = try SafeTensor(int64s: [0], shape: []) }, "progress.batches_done"),
            ("a whole epoch", { $0["progress.batches_done"] = try SafeTensor(int64s: [63], shape: []) }, "progress.batches_done"),
            ("too many correct", { $0["progress.train_correct"] = try SafeTensor(int64s: [5 * 32 + 1], shape: []) }, "progress.train_correct"),
            ("NaN loss", { $0["progress.train_loss_sum"] = try SafeTensor(doubles: [.nan], shape: []) }, "progress.train_loss_sum"),
            ("wrong shape", { $0["progress.train_correct"] = try SafeTensor(int64s: [1, 2], shape: [2]) }, "progress.train_correct"),
        ]
        for (name, change, says) in cases {
            var tensors = good.tensors
            try change(&tensors)
            let file = try SafeTensorsFile(bytes: SafeTensorsFile(tensors: tensors, metadata: good.metadata).serialized(),
                                           source: "state.safetensors")
            do {
                _ = try TrainingState(file: file)
                Issue.record("\(name): accepted")
            } catch {
                #expect("\(error)".contains(says) && "\(error)".contains("state.safetensors"), "\(name): \(error)")
            }
        }
        #expect(try TrainingState(file: good).epochProgress.batchesDone == 5)

        // A batch_size near Int.max: refused, not an overflow trap (found while fuzzing).
        var metadata = good.metadata
        metadata["batch_size"] = String(Int.max)
        let huge = try SafeTensorsFile(bytes: SafeTensorsFile(tensors: good.tensors, metadata: metadata).serialized(),
                                       source: "state.safetensors")
        #expect { try TrainingState(file: huge) } throws: {
            "\($0)".contains("state.safetensors: metadata batch_size \(Int.max)")
        }
    }
}
