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
    /// A smoke run: at most this many training batches an epoch (the first ones of its
    /// shuffled order) and test batches an evaluation. nil (the default): every batch.
    public var batchLimit: Int? = nil

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
/// pass, then an evaluation pass over the test set. The one epoch loop of the project:
/// `lenet train` and `lenet experiment` call `run`, the benchmark `runEpoch`.
///
/// The seed starts two generators: one shuffles the data, the other initialises the
/// weights. So both variants see the same batches in the same order for the same seed,
/// and `lenet samples --seed N` shows the first batch that `lenet train --seed N` trains
/// on. Dropout draws from a counter-based generator keyed by the seed and the step number.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let dataset: Dataset
    public let device: ComputeDevice
    /// The backend; the trainer reaches it only through the `Network` protocol.
    public let network: any Network
    /// The training set's order each epoch.
    public private(set) var dataGenerator: RandomGenerator
    public private(set) var history: [EpochRecord] = []
    private var trainSampler: BatchSampler
    private let testSampler: BatchSampler
    /// Steps of the current epoch done (0 between epochs).
    private var batchesDone = 0
    /// Seconds spent on the current epoch before an interruption.
    private var secondsBeforeStop = 0.0

    /// A trainer with freshly initialised weights on `device` (every core by default).
    public init(configuration: TrainingConfiguration, dataset: Dataset, device: ComputeDevice = .allCores) throws {
        self.configuration = configuration
        self.dataset = dataset
        self.device = device
        let definition = ModelDefinition.lenet(configuration.model)
        network = try device.makeNetwork(definition, maxBatch: configuration.batchSize)
        var generator = RandomGenerator(seed: Self.modelSeed(configuration.seed))
        let initial = ParameterStore(definition: definition)
        initial.initialize(definition: definition, generator: &generator)
        network.load(initial)
        network.optimizer = SGD(learningRate: configuration.learningRate, momentum: configuration.momentum,
                                weightDecay: configuration.weightDecay)
        network.attach(dataset.train, as: .train)
        network.attach(dataset.test, as: .test)
        dataGenerator = RandomGenerator(seed: configuration.seed)
        trainSampler = BatchSampler(count: dataset.train.count, batchSize: configuration.batchSize, shuffle: true)
        testSampler = BatchSampler(count: dataset.test.count, batchSize: configuration.batchSize, shuffle: false)
    }

    /// Called after every training step with (steps done, steps in the epoch), for progress
    /// displays; `epochProgress` has the running figures when one is wanted. Not called
    /// during evaluation.
    public var onBatch: ((_ done: Int, _ total: Int) -> Void)?

    /// How a `run` ended.
    public enum Outcome: Sendable, Equatable {
        /// Every configured epoch is trained.
        case finished
        /// `shouldStop` said yes: `state()` holds the run where it stopped.
        case stopped
        /// Epoch `epoch`'s train or test loss is NaN or infinite (a learning rate too large
        /// for the model). `onEpoch` was not called for it, so whatever it saved is the
        /// last finite epoch's; this trainer's weights are not finite and it cannot go on.
        case diverged(epoch: Int)
    }

    /// Trains until `configuration.epochs` are done, calling `onEpoch` after each (to print,
    /// save checkpoints...). `shouldStop` is asked before each epoch and after every step;
    /// when it says yes the run stops there, mid-epoch if need be, and a trainer resumed
    /// from `state()` goes on exactly as this one would have. An epoch whose loss is not
    /// finite ends the run before `onEpoch`, so nothing non-finite is ever handed on to be saved.
    @discardableResult
    public func run(stoppingWhen shouldStop: () -> Bool = { false },
                    onEpoch: (EpochRecord) throws -> Void) rethrows -> Outcome {
        while history.count < configuration.epochs {
            guard !shouldStop(), let record = runEpoch(stoppingWhen: shouldStop) else {
                // A stop mid-epoch after the loss went non-finite: saving that state would
                // replace the last finite one with one that cannot be resumed.
                let progress = epochProgress
                return progress.trainLossSum.isFinite ? .stopped : .diverged(epoch: history.count + 1)
            }
            guard record.trainLoss.isFinite, record.testLoss.isFinite else { return .diverged(epoch: record.epoch) }
            try onEpoch(record)
        }
        return .finished
    }

    /// Trains every configured epoch.
    @discardableResult
    public func run(stoppingWhen shouldStop: () -> Bool = { false }) -> Outcome {
        run(stoppingWhen: shouldStop, onEpoch: { _ in })
    }

    /// Trains one more epoch (or the rest of an interrupted one) and evaluates; returns its record.
    @discardableResult
    public func runEpoch() -> EpochRecord {
        // A stop that is never asked for always finishes the epoch.
        runEpoch(stoppingWhen: { false })!
    }

    /// Trains one more epoch (or the rest of an interrupted one) and evaluates, asking
    /// `shouldStop` after every training step. When it says yes before the epoch's last
    /// step, returns nil with the epoch's progress kept.
    public func runEpoch(stoppingWhen shouldStop: () -> Bool) -> EpochRecord? {
        let start = DispatchTime.now()
        if batchesDone == 0 {
            trainSampler.startEpoch(using: &dataGenerator)
            network.setOrder(trainSampler.order, of: .train)
            network.setTotals(.zero, of: .train)
        }
        let batchCount = batchesPerEpoch
        while batchesDone < batchCount {
            let step = UInt64(history.count) * UInt64(batchCount) + UInt64(batchesDone)
            network.trainStep(trainSampler.batchRange(batchesDone), key: StepKey(seed: dropoutSeed, step: step))
            batchesDone += 1
            onBatch?(batchesDone, batchCount)
            if batchesDone < batchCount, shouldStop() {
                secondsBeforeStop += Self.seconds(since: start)
                return nil
            }
        }
        let train = network.totals(of: .train)
        let test = evaluateTestSet()
        let record = EpochRecord(epoch: history.count + 1, trainAccuracy: train.accuracy, trainLoss: train.meanLoss,
                                 testAccuracy: test.accuracy, testLoss: test.meanLoss,
                                 seconds: secondsBeforeStop + Self.seconds(since: start))
        history.append(record)
        batchesDone = 0
        secondsBeforeStop = 0
        return record
    }

    /// How far the current epoch has got: nothing between epochs. Reads the step sums
    /// from the backend, so call it when a figure is wanted, not after every step.
    public var epochProgress: EpochProgress {
        guard batchesDone > 0 else { return EpochProgress() }
        let totals = network.totals(of: .train)
        return EpochProgress(batchesDone: batchesDone, trainLossSum: totals.lossSum, trainCorrect: totals.correct,
                             seconds: secondsBeforeStop)
    }

    /// Training batches per epoch (`configuration.batchLimit` at most).
    public var batchesPerEpoch: Int { Self.limited(trainSampler.batchCount, configuration.batchLimit) }

    /// Training images per epoch: the dataset's, or those of the first `batchLimit` batches.
    public var imagesPerEpoch: Int { min(dataset.train.count, batchesPerEpoch * configuration.batchSize) }

    /// `batches`, or `limit` when that is fewer.
    static func limited(_ batches: Int, _ limit: Int?) -> Int { min(batches, max(1, limit ?? batches)) }

    private static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// The training set's order in the current or last epoch (saved for an exact resume).
    public var trainOrder: [Int32] { trainSampler.order }

    /// The model generator's seed: the run's seed with its bits mixed, so that its
    /// stream is unrelated to the data generator's.
    static func modelSeed(_ seed: UInt64) -> UInt64 { seed ^ 0xD1B5_4A32_D192_ED03 }

    /// The key of the dropout masks (Philox4x32), mixed like `modelSeed` but apart from it.
    var dropoutSeed: UInt64 { configuration.seed ^ 0x8CB9_2BA7_2F3D_8DD7 }

    /// Puts back what a saved `TrainingState` holds besides the parameters.
    func restoreProgress(dataGenerator: RandomGenerator, trainOrder: [Int32], history: [EpochRecord],
                         epochProgress: EpochProgress) {
        self.dataGenerator = dataGenerator
        trainSampler.restore(order: trainOrder)
        self.history = history
        batchesDone = epochProgress.batchesDone
        secondsBeforeStop = epochProgress.seconds
        network.setOrder(trainSampler.order, of: .train)
        let images = batchesDone > 0 ? trainSampler.batchRange(batchesDone - 1).upperBound : 0
        network.setTotals(StepTotals(lossSum: epochProgress.trainLossSum, correct: epochProgress.trainCorrect,
                                     batches: batchesDone, images: images), of: .train)
    }

    /// One pass over the test set in batches, in order; its sums.
    private func evaluateTestSet() -> StepTotals {
        network.setTotals(.zero, of: .test)
        let batches = Self.limited(testSampler.batchCount, configuration.batchLimit)
        for batch in testSampler.batches.prefix(batches) { network.evaluate(batch, of: .test, logits: nil) }
        return network.totals(of: .test)
    }
}

/// `H:MM:SS.ffffff`, as Python prints a timedelta.
public func formatRunTime(seconds: Double) -> String {
    let micros = Int((seconds * 1e6).rounded())
    let hours = micros / 3_600_000_000, minutes = micros / 60_000_000 % 60
    let wholeSeconds = micros / 1_000_000 % 60, fraction = micros % 1_000_000
    return String(format: "%d:%02d:%02d.%06d", hours, minutes, wholeSeconds, fraction)
}
