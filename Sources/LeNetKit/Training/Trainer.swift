import Foundation

/// The tutorial's settings by default: batch 32, SGD with learning rate 0.01, 8 epochs.
public struct TrainingConfiguration: Sendable, Equatable {
    public var model: ModelVariant = .lenet
    public var epochs = 8
    public var batchSize = 32
    public var learningRate: Float = 0.01
    public var momentum: Float = 0
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0
    public var device: ComputeDevice = .allCores

    /// The largest batch accepted: activations are allocated for a whole batch (about
    /// 30 KB per image in training), so this caps them near 2 GB.
    public static let maxBatchSize = 65_536

    public init() {}
}

/// One epoch's figures, as the tutorial reports them: accuracy over all samples,
/// loss as the mean of the per-batch mean losses.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var trainAccuracy: Double
    public var trainLoss: Double
    public var testAccuracy: Double
    public var testLoss: Double
    /// Seconds of training plus evaluation for this epoch.
    public var seconds: Double

    public init(epoch: Int, trainAccuracy: Double, trainLoss: Double, testAccuracy: Double, testLoss: Double,
                seconds: Double) {
        self.epoch = epoch
        self.trainAccuracy = trainAccuracy
        self.trainLoss = trainLoss
        self.testAccuracy = testAccuracy
        self.testLoss = testLoss
        self.seconds = seconds
    }

    /// `Epoch: 1, Train_acc:59.3%, Train_loss:1.207, Test_acc:92.3%, Test_loss:0.255`
    public var line: String {
        String(format: "Epoch:%2d, Train_acc:%.1f%%, Train_loss:%.3f, Test_acc:%.1f%%, Test_loss:%.3f",
               epoch, trainAccuracy * 100, trainLoss, testAccuracy * 100, testLoss)
    }
}

/// The part of an epoch trained so far: the sums its record is made from.
public struct EpochProgress: Sendable, Equatable {
    public var batchesDone = 0
    /// Sum of the per-batch mean losses.
    public var trainLossSum = 0.0
    public var trainCorrect = 0
    /// Seconds spent on this epoch before an interruption.
    public var seconds = 0.0

    public init(batchesDone: Int = 0, trainLossSum: Double = 0, trainCorrect: Int = 0, seconds: Double = 0) {
        self.batchesDone = batchesDone
        self.trainLossSum = trainLossSum
        self.trainCorrect = trainCorrect
        self.seconds = seconds
    }
}

/// Runs the experiment: seeded initialisation, a reshuffle every epoch, a training
/// pass, then an evaluation pass over the test set.
///
/// The seed starts two generators: one shuffles the data, the other initialises the
/// weights and draws dropout masks. So both variants see the same batches in the same
/// order for the same seed, and `lenet samples --seed N` shows the first batch that
/// `lenet train --seed N` trains on.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let dataset: Dataset
    public let network: any Network
    /// Weight initialisation and dropout.
    public private(set) var generator: RandomGenerator
    /// The training set's order each epoch.
    public private(set) var dataGenerator: RandomGenerator
    public private(set) var optimizer: SGD
    public private(set) var history: [EpochRecord] = []
    private var trainSampler: BatchSampler
    private var testSampler: BatchSampler

    public init(configuration: TrainingConfiguration, dataset: Dataset) {
        self.configuration = configuration
        self.dataset = dataset
        let definition = ModelDefinition.lenet(configuration.model)
        network = configuration.device.makeNetwork(definition, maxBatch: configuration.batchSize)
        generator = RandomGenerator(seed: Self.modelSeed(configuration.seed))
        dataGenerator = RandomGenerator(seed: configuration.seed)
        network.store.initialize(definition: definition, generator: &generator)
        optimizer = SGD(learningRate: configuration.learningRate, momentum: configuration.momentum,
                        weightDecay: configuration.weightDecay)
        trainSampler = BatchSampler(count: dataset.train.count, batchSize: configuration.batchSize, shuffle: true)
        testSampler = BatchSampler(count: dataset.test.count, batchSize: configuration.batchSize, shuffle: false)
    }

    /// Called after every training batch with (batches done, batches in the epoch, running
    /// mean loss, running accuracy), for progress displays. Not called during evaluation.
    public var onBatch: ((_ done: Int, _ total: Int, _ loss: Double, _ accuracy: Double) -> Void)?

    /// Trains one more epoch (or the rest of an interrupted one) and evaluates; returns its record.
    @discardableResult
    public func runEpoch() -> EpochRecord {
        // A stop that is never asked for always finishes the epoch.
        runEpoch(stoppingWhen: { false })!
    }

    /// Trains one more epoch (or the rest of an interrupted one) and evaluates, asking
    /// `shouldStop` after every training step. When it says yes before the epoch's last
    /// step, returns nil with the epoch's progress kept: `state()` then saves the run
    /// mid-epoch and a trainer resumed from it finishes the epoch exactly as this one would.
    public func runEpoch(stoppingWhen shouldStop: () -> Bool) -> EpochRecord? {
        let start = DispatchTime.now()
        if epochProgress.batchesDone == 0 { trainSampler.startEpoch(using: &dataGenerator) }
        let batchCount = trainSampler.batchCount
        while epochProgress.batchesDone < batchCount {
            let range = trainSampler.batchRange(epochProgress.batchesDone)
            dataset.train.gather(order: trainSampler.order, range: range, images: network.inputs, labels: network.labels)
            let result = network.trainStep(batch: range.count, optimizer: &optimizer, generator: &generator)
            epochProgress.batchesDone += 1
            epochProgress.trainLossSum += Double(result.loss)
            epochProgress.trainCorrect += result.correct
            onBatch?(epochProgress.batchesDone, batchCount, epochProgress.trainLossSum / Double(epochProgress.batchesDone),
                     Double(epochProgress.trainCorrect) / Double(range.upperBound))
            if epochProgress.batchesDone < batchCount, shouldStop() {
                epochProgress.seconds += Self.seconds(since: start)
                return nil
            }
        }
        let test = evaluate(dataset.test, sampler: &testSampler)
        let record = EpochRecord(epoch: history.count + 1,
                                 trainAccuracy: Double(epochProgress.trainCorrect) / Double(dataset.train.count),
                                 trainLoss: epochProgress.trainLossSum / Double(batchCount),
                                 testAccuracy: test.accuracy, testLoss: test.loss,
                                 seconds: epochProgress.seconds + Self.seconds(since: start))
        history.append(record)
        epochProgress = EpochProgress()
        return record
    }

    /// How far the current epoch has got: nothing between epochs.
    public private(set) var epochProgress = EpochProgress()

    /// Training batches per epoch.
    public var batchesPerEpoch: Int { trainSampler.batchCount }

    private static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// The training set's order in the current or last epoch (saved for an exact resume).
    public var trainOrder: [Int32] { trainSampler.order }

    /// The model generator's seed: the run's seed with its bits mixed, so that its
    /// stream is unrelated to the data generator's.
    static func modelSeed(_ seed: UInt64) -> UInt64 { seed ^ 0xD1B5_4A32_D192_ED03 }

    /// Puts back what a saved `TrainingState` holds besides the network's store.
    func restoreProgress(generator: RandomGenerator, dataGenerator: RandomGenerator, optimizer: SGD,
                         trainOrder: [Int32], history: [EpochRecord], epochProgress: EpochProgress) {
        self.epochProgress = epochProgress
        self.generator = generator
        self.dataGenerator = dataGenerator
        self.optimizer = optimizer
        trainSampler.restore(order: trainOrder)
        self.history = history
    }

    /// Trains the configured number of epochs, calling `onEpoch` after each.
    public func run(onEpoch: (EpochRecord) -> Void = { _ in }) {
        while history.count < configuration.epochs { onEpoch(runEpoch()) }
    }

    private func evaluate(_ split: DataSplit, sampler: inout BatchSampler) -> (accuracy: Double, loss: Double) {
        sampler.startEpoch(using: &dataGenerator)  // in order: draws nothing
        var loss = 0.0, correct = 0
        for batch in 0..<sampler.batchCount {
            let range = sampler.batchRange(batch)
            split.gather(order: sampler.order, range: range, images: network.inputs, labels: network.labels)
            let result = network.evaluate(batch: range.count)
            loss += Double(result.loss)
            correct += result.correct
        }
        return (Double(correct) / Double(split.count), loss / Double(sampler.batchCount))
    }
}

/// `H:MM:SS.ffffff`, as Python prints a timedelta.
public func formatRunTime(seconds: Double) -> String {
    let micros = Int((seconds * 1e6).rounded())
    let hours = micros / 3_600_000_000, minutes = micros / 60_000_000 % 60
    let wholeSeconds = micros / 1_000_000 % 60, fraction = micros % 1_000_000
    return String(format: "%d:%02d:%02d.%06d", hours, minutes, wholeSeconds, fraction)
}
