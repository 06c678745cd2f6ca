import Foundation

// Everything a run needs to continue exactly where it stopped, in one safetensors file
// (a run folder's `state.safetensors`):
//
//   model.<state_dict name>        the checkpoint's tensors (F32; num_batches_tracked I64 [])
//   optimizer.velocity.<param>     SGD's momentum buffer, F32, the parameter's shape
//   data_generator.state           I64 [4], the data-order generator's xoshiro256** words (bit patterns)
//   sampler.train_order            I32 [train count], the last epoch's order of the training set
//   history.epoch                  I64 [epochs done]
//   history.<figure>               F64 [epochs done]: train_accuracy, train_loss,
//                                  test_accuracy, test_loss, seconds
//   progress.batches_done          I64 [], only when saved mid-epoch (after an interrupt):
//   progress.train_loss_sum        F64 []  the current epoch's steps so far, the sum of
//   progress.train_correct         I64 []  their losses, their correct predictions
//   progress.seconds               F64 []  and its time so far
//   __metadata__                   format, format_version, the configuration (model, epochs,
//                                  batch_size, learning_rate, momentum, weight_decay, seed,
//                                  and batch_limit when one is set), has_velocity, train_count, test_count
//
// Numbers in the metadata are written with Swift's shortest round-tripping text, so
// Float and Double settings come back bit for bit.
//
// Format version 1 also held `generator.state`, the model generator's words: dropout drew
// from it then. Dropout now draws from Philox4x32 keyed by the seed and the step number,
// which need no saved state; a version-1 file is still read, its generator ignored.

/// A run's full state after a finished epoch, or after any step of one.
public struct TrainingState: Sendable {
    public static let format = "lenet-training-state"
    public static let formatVersion = 2
    /// Versions this lenet reads.
    static let readableVersions = [1, 2]

    /// The run's settings (the device is not saved: results do not depend on it).
    public var configuration: TrainingConfiguration
    /// Parameters, running statistics and batch counts.
    public var model: Checkpoint
    /// SGD's velocity by parameter name.
    public var velocity: [String: [Float]]
    public var hasVelocity: Bool
    /// The training set's order.
    public var dataGenerator: RandomGenerator
    public var trainOrder: [Int32]
    public var history: [EpochRecord]
    /// The unfinished epoch's steps (nothing when saved between epochs).
    public var epochProgress = EpochProgress()
    public var trainCount: Int
    public var testCount: Int
    /// Where this was read from, for messages.
    public var source: String = "(in memory)"

    public var epochsDone: Int { history.count }
}

extension TrainingState {
    public init(contentsOf path: String) throws {
        try self.init(file: SafeTensorsFile(contentsOf: path))
    }

    public init(file: SafeTensorsFile) throws {
        let source = file.source
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: source, message: message) }
        let metadata = file.metadata
        guard metadata["format"] == Self.format else {
            throw fail("not a lenet training state (metadata format is \(metadata["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(Self.format)\")")
        }
        guard let version = metadata["format_version"].flatMap({ Int($0) }), Self.readableVersions.contains(version) else {
            throw fail("training state format_version \(metadata["format_version"] ?? "missing") is not supported (this lenet reads \(Self.readableVersions.map(String.init).joined(separator: " and ")))")
        }
        func value<T: LosslessStringConvertible>(_ key: String, _: T.Type) throws -> T {
            guard let text = metadata[key] else { throw fail("metadata has no \(key)") }
            guard let value = T(text) else { throw fail("metadata \(key) \"\(text)\" is not a valid \(T.self)") }
            return value
        }
        var configuration = TrainingConfiguration()
        let modelName: String = try value("model", String.self)
        guard let model = ModelVariant(rawValue: modelName) else { throw fail("metadata model \"\(modelName)\" is not a known model") }
        configuration.model = model
        configuration.epochs = try value("epochs", Int.self)
        configuration.batchSize = try value("batch_size", Int.self)
        configuration.learningRate = try value("learning_rate", Float.self)
        configuration.momentum = try value("momentum", Float.self)
        configuration.weightDecay = try value("weight_decay", Float.self)
        configuration.seed = try value("seed", UInt64.self)
        if metadata["batch_limit"] != nil {
            let limit = try value("batch_limit", Int.self)
            guard limit >= 1 else { throw fail("metadata batch_limit \(limit) is not a positive number") }
            configuration.batchLimit = limit
        }
        guard (1...TrainingConfiguration.maxBatchSize).contains(configuration.batchSize), configuration.epochs >= 0 else {
            throw fail("metadata batch_size \(configuration.batchSize) or epochs \(configuration.epochs) is out of range")
        }
        let hasVelocity = try value("has_velocity", Bool.self)
        let trainCount = try value("train_count", Int.self), testCount = try value("test_count", Int.self)

        // The model: the `model.` tensors, checked as a checkpoint of the saved variant.
        var modelTensors: [String: SafeTensor] = [:]
        for (name, tensor) in file.tensors where name.hasPrefix("model.") {
            modelTensors[String(name.dropFirst("model.".count))] = tensor
        }
        let checkpoint = try Checkpoint(file: SafeTensorsFile(
            tensors: modelTensors, metadata: ["variant": model.rawValue], source: source + " (model.*)"))

        let expectedParameters = ParameterStore(definition: .lenet(model)).parameterSlots
        var velocity: [String: [Float]] = [:]
        for slot in expectedParameters {
            velocity[slot.name] = try file.floats("optimizer.velocity.\(slot.name)", shape: slot.shape)
        }
        func generator(_ name: String) throws -> RandomGenerator {
            let words = try file.int64s(name, shape: [4]).map { UInt64(bitPattern: $0) }
            guard let generator = RandomGenerator(state: (words[0], words[1], words[2], words[3])) else {
                throw fail("\(name) is all zeros, which xoshiro256** cannot be in")
            }
            return generator
        }
        if version == 1 { _ = try generator("generator.state") }  // checked, then unused (see above)
        let dataGenerator = try generator("data_generator.state")
        let order = try file.tensor("sampler.train_order")
        guard order.dtype == .i32, order.shape == [trainCount] else {
            throw fail("sampler.train_order is \(order.dtype.rawValue) \(order.shape), expected I32 [\(trainCount)]")
        }
        let trainOrder = try order.int32s()
        guard BatchSampler.isPermutation(trainOrder, count: trainCount) else {
            throw fail("sampler.train_order is not a permutation of 0..<\(trainCount)")
        }
        let epochs = try file.tensor("history.epoch")
        guard epochs.dtype == .i64, epochs.shape.count == 1 else {
            throw fail("history.epoch is \(epochs.dtype.rawValue) \(epochs.shape), expected I64 [epochs done]")
        }
        let done = epochs.shape[0]
        func figures(_ key: String) throws -> [Double] {
            let tensor = try file.tensor("history.\(key)")
            guard tensor.dtype == .f64, tensor.shape == [done] else {
                throw fail("history.\(key) is \(tensor.dtype.rawValue) \(tensor.shape), expected F64 [\(done)]")
            }
            return try tensor.doubles()
        }
        let (trainAccuracy, trainLoss) = (try figures("train_accuracy"), try figures("train_loss"))
        let (testAccuracy, testLoss, seconds) = (try figures("test_accuracy"), try figures("test_loss"), try figures("seconds"))
        let epochNumbers = try epochs.int64s()
        guard epochNumbers == (0..<done).map({ Int64($0 + 1) }) else {
            throw fail("history.epoch is \(epochNumbers), expected 1...\(done)")
        }
        let history = (0..<done).map {
            EpochRecord(epoch: $0 + 1, trainAccuracy: trainAccuracy[$0], trainLoss: trainLoss[$0],
                        testAccuracy: testAccuracy[$0], testLoss: testLoss[$0], seconds: seconds[$0])
        }
        let progress = try Self.epochProgress(in: file, trainCount: trainCount, batchSize: configuration.batchSize,
                                              batchLimit: configuration.batchLimit)
        let known: Set<String> = Set((version == 1 ? ["generator.state"] : []) + ["data_generator.state", "sampler.train_order", "history.epoch"]
            + Self.progressTensors
            + ["train_accuracy", "train_loss", "test_accuracy", "test_loss", "seconds"].map { "history.\($0)" }
            + expectedParameters.map { "optimizer.velocity.\($0.name)" })
        if let extra = file.tensors.keys.filter({ !$0.hasPrefix("model.") && !known.contains($0) }).sorted().first {
            throw fail("unexpected tensor \"\(extra)\" in a training state")
        }
        self.init(configuration: configuration, model: checkpoint, velocity: velocity, hasVelocity: hasVelocity,
                  dataGenerator: dataGenerator, trainOrder: trainOrder, history: history,
                  epochProgress: progress, trainCount: trainCount, testCount: testCount, source: source)
    }

    static let progressTensors = ["batches_done", "train_loss_sum", "train_correct", "seconds"].map { "progress.\($0)" }

    /// The `progress.*` tensors, all four or none, checked against the epoch's size.
    private static func epochProgress(in file: SafeTensorsFile, trainCount: Int, batchSize: Int,
                                      batchLimit: Int?) throws -> EpochProgress {
        let present = progressTensors.filter { file.tensors[$0] != nil }
        guard !present.isEmpty else { return EpochProgress() }
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: file.source, message: message) }
        guard present.count == progressTensors.count else {
            throw fail("has \(present.joined(separator: ", ")) but not all of \(progressTensors.joined(separator: ", "))")
        }
        let batches = Int(try file.int64s("progress.batches_done", shape: [])[0])
        let correct = Int(try file.int64s("progress.train_correct", shape: [])[0])
        let lossSum = try file.doubles("progress.train_loss_sum", shape: [])[0]
        let seconds = try file.doubles("progress.seconds", shape: [])[0]
        let batchCount = Trainer.limited(BatchSampler.batchCount(count: trainCount, batchSize: batchSize), batchLimit)
        guard batches >= 1, batches < batchCount else {
            throw fail("progress.batches_done is \(batches), expected 1..<\(batchCount) (the batches in an epoch)")
        }
        guard correct >= 0, correct <= min(trainCount, batches * batchSize) else {
            throw fail("progress.train_correct is \(correct), more than the \(min(trainCount, batches * batchSize)) images trained on")
        }
        guard lossSum.isFinite, lossSum >= 0, seconds.isFinite, seconds >= 0 else {
            throw fail("progress.train_loss_sum \(lossSum) or progress.seconds \(seconds) is negative or not finite")
        }
        return EpochProgress(batchesDone: batches, trainLossSum: lossSum, trainCorrect: correct, seconds: seconds)
    }

    public var safeTensorsFile: SafeTensorsFile {
        get throws {
            var tensors: [String: SafeTensor] = [:]
            for (name, tensor) in model.tensors { tensors["model." + name] = tensor }
            let store = ParameterStore(definition: .lenet(configuration.model))
            for slot in store.parameterSlots {
                guard let values = velocity[slot.name] else {
                    throw CheckpointError(file: source, message: "no velocity for \(slot.name)")
                }
                tensors["optimizer.velocity.\(slot.name)"] = try SafeTensor(floats: values, shape: slot.shape)
            }
            let words = dataGenerator.state
            tensors["data_generator.state"] = try SafeTensor(
                int64s: [words.0, words.1, words.2, words.3].map { Int64(bitPattern: $0) }, shape: [4])
            tensors["sampler.train_order"] = try SafeTensor(int32s: trainOrder, shape: [trainOrder.count])
            let n = history.count
            tensors["history.epoch"] = try SafeTensor(int64s: history.map { Int64($0.epoch) }, shape: [n])
            tensors["history.train_accuracy"] = try SafeTensor(doubles: history.map(\.trainAccuracy), shape: [n])
            tensors["history.train_loss"] = try SafeTensor(doubles: history.map(\.trainLoss), shape: [n])
            tensors["history.test_accuracy"] = try SafeTensor(doubles: history.map(\.testAccuracy), shape: [n])
            tensors["history.test_loss"] = try SafeTensor(doubles: history.map(\.testLoss), shape: [n])
            tensors["history.seconds"] = try SafeTensor(doubles: history.map(\.seconds), shape: [n])
            if epochProgress.batchesDone > 0 {
                tensors["progress.batches_done"] = try SafeTensor(int64s: [Int64(epochProgress.batchesDone)], shape: [])
                tensors["progress.train_loss_sum"] = try SafeTensor(doubles: [epochProgress.trainLossSum], shape: [])
                tensors["progress.train_correct"] = try SafeTensor(int64s: [Int64(epochProgress.trainCorrect)], shape: [])
                tensors["progress.seconds"] = try SafeTensor(doubles: [epochProgress.seconds], shape: [])
            }
            let c = configuration
            var metadata = [
                "format": Self.format, "format_version": String(Self.formatVersion),
                "model": c.model.rawValue, "epochs": String(c.epochs), "batch_size": String(c.batchSize),
                "learning_rate": String(c.learningRate), "momentum": String(c.momentum),
                "weight_decay": String(c.weightDecay), "seed": String(c.seed),
                "has_velocity": String(hasVelocity), "train_count": String(trainCount), "test_count": String(testCount),
            ]
            if let limit = c.batchLimit { metadata["batch_limit"] = String(limit) }  // absent from a full run's state
            return SafeTensorsFile(tensors: tensors, metadata: metadata, source: source)
        }
    }

    /// Writes through a temporary file, fsync and rename.
    public func write(to path: String) throws {
        try safeTensorsFile.write(to: path)
    }
}

extension Trainer {
    /// The run's state: after the last finished epoch, or mid-epoch after a stop
    /// (`run` returned `.stopped`). Takes one snapshot of the backend.
    public func state() throws -> TrainingState {
        let store = network.snapshot()
        var velocity: [String: [Float]] = [:]
        for slot in store.parameterSlots { velocity[slot.name] = store.velocity(of: slot.name) }
        let model = try checkpoint(of: store)
        return TrainingState(configuration: configuration, model: model, velocity: velocity,
                             hasVelocity: store.hasVelocity, dataGenerator: dataGenerator,
                             trainOrder: trainOrder, history: history, epochProgress: epochProgress,
                             trainCount: dataset.train.count, testCount: dataset.test.count)
    }

    /// The model as it is now, with the epoch, seed and last test accuracy in its metadata.
    public func checkpoint() throws -> Checkpoint { try checkpoint(of: network.snapshot()) }

    private func checkpoint(of store: ParameterStore) throws -> Checkpoint {
        try Checkpoint(store: store, variant: configuration.model,
                       info: CheckpointInfo(epoch: history.count, seed: configuration.seed,
                                            testAccuracy: history.last?.testAccuracy))
    }

    /// Writes the model as a safetensors checkpoint (PyTorch's state_dict names) at `path`,
    /// atomically: `lenet evaluate`, `lenet predict`, `Predictor` and PyTorch read it.
    public func save(to path: String) throws {
        try checkpoint().write(to: path)
    }

    /// A trainer that continues `state` on `dataset`: the saved configuration with
    /// `epochs` (the total) replaced, on `device`, and every weight, velocity, generator
    /// word, data order and history record put back.
    public convenience init(resuming state: TrainingState, dataset: Dataset, epochs: Int? = nil,
                            device: ComputeDevice = .allCores) throws {
        guard dataset.train.count == state.trainCount, dataset.test.count == state.testCount else {
            throw CheckpointError(
                file: state.source,
                message: "saved for \(state.trainCount) training and \(state.testCount) test images, but the data has \(dataset.train.count) and \(dataset.test.count)")
        }
        var configuration = state.configuration
        if let epochs { configuration.epochs = epochs }
        try self.init(configuration: configuration, dataset: dataset, device: device)
        let store = ParameterStore(definition: network.definition)
        try state.model.restore(into: store)
        for slot in store.parameterSlots {
            guard let values = state.velocity[slot.name] else {
                throw CheckpointError(file: state.source, message: "velocity for \(slot.name) is missing")
            }
            do { try store.assignVelocity(slot.name, values) } catch {
                throw CheckpointError(file: state.source, message: "\(error)")
            }
        }
        store.hasVelocity = state.hasVelocity
        network.load(store)
        restoreProgress(dataGenerator: state.dataGenerator, trainOrder: state.trainOrder, history: state.history,
                        epochProgress: state.epochProgress)
    }
}

/// The checkpoint files a run folder keeps: `last.safetensors` (after every epoch),
/// `best.safetensors` (the epoch with the best test accuracy so far; the earlier one on
/// ties) and `state.safetensors` (everything `lenet train --resume` needs).
public struct RunCheckpoints: Sendable {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public var lastPath: String { (directory as NSString).appendingPathComponent("last.safetensors") }
    public var bestPath: String { (directory as NSString).appendingPathComponent("best.safetensors") }
    public var statePath: String { (directory as NSString).appendingPathComponent("state.safetensors") }

    /// Saves after an epoch: the state first, then last, and best when it improved. The
    /// state is the commit point: a kill between these writes leaves last and best behind
    /// the state, never ahead of it, and `restoreCheckpoints` (called on resume) writes them
    /// again from it. (Written after them, a state killed before its rename was a run that
    /// a resume to the run's own total would call finished, with `last` an epoch ahead.)
    public func save(_ trainer: Trainer) throws {
        let state = try trainer.state()
        try state.write(to: statePath)
        try writeCheckpoints(history: trainer.history, model: state.model)
    }

    /// Writes last and best again for a trainer just resumed between epochs, as the save
    /// after its last epoch wrote them: whatever a kill during that save left, they then
    /// tell the state's epoch. Mid-epoch there is nothing to do: that state is saved only
    /// after its epoch's checkpoints were complete.
    public func restoreCheckpoints(_ trainer: Trainer) throws {
        guard !trainer.history.isEmpty, trainer.epochProgress.batchesDone == 0 else { return }
        try writeCheckpoints(history: trainer.history, model: trainer.checkpoint())
    }

    /// The same from a saved state alone (its model is the checkpoint of its last epoch),
    /// for a finished run that has nothing left to train.
    public func restoreCheckpoints(from state: TrainingState) throws {
        guard !state.history.isEmpty, state.epochProgress.batchesDone == 0 else { return }
        // The state keeps the tensors; the checkpoint's metadata is made as training makes it.
        let model = try Checkpoint(store: state.model.parameterStore(), variant: state.configuration.model,
                                   info: CheckpointInfo(epoch: state.history.count, seed: state.configuration.seed,
                                                        testAccuracy: state.history.last?.testAccuracy))
        try writeCheckpoints(history: state.history, model: model)
    }

    private func writeCheckpoints(history: [EpochRecord], model: Checkpoint) throws {
        try model.write(to: lastPath)
        if let latest = history.last, !history.dropLast().contains(where: { $0.testAccuracy >= latest.testAccuracy }) {
            try model.write(to: bestPath)
        }
    }

    /// Saves the state alone, for a run stopped anywhere (mid-epoch after an interrupt):
    /// last and best stay those of finished epochs.
    public func saveState(_ trainer: Trainer) throws {
        try trainer.state().write(to: statePath)
    }

    /// The saved state, checked.
    public func loadState() throws -> TrainingState {
        guard FileManager.default.fileExists(atPath: statePath) else {
            throw CheckpointError(file: statePath, message: "no training state here; is \(directory) a lenet run folder?")
        }
        return try TrainingState(contentsOf: statePath)
    }
}
