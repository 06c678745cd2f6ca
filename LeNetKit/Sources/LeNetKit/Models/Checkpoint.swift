import Foundation

// A model checkpoint is a safetensors file laid out as PyTorch's `state_dict()`:
//
//   conv1.weight F32 [6,1,5,5]   conv1.bias F32 [6]
//   bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var F32 [6]   (lenet-bn only)
//   bn1.num_batches_tracked I64 []                                    (lenet-bn only)
//   conv2.weight F32 [16,6,5,5]  conv2.bias F32 [16]  (bn2.* as bn1.*, [16])
//   fc1.weight F32 [120,400] ... fc3.bias F32 [10]
//
// so `model.load_state_dict(safetensors.torch.load_file(path), strict=True)` takes it, and
// a file written by `safetensors.torch.save_file(model.state_dict(), path)` loads here.
// lenet adds `__metadata__`: format, format_version, variant, epoch, seed, test_accuracy.
// Loading is strict: every expected name, no other, each with its shape and dtype.

/// What is wrong with a checkpoint: the file and one line.
public struct CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        // One line, whatever the file's tensor names and metadata hold.
        self.message = message.oneLine
    }

    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}

/// The `__metadata__` lenet writes; every field is optional on reading (PyTorch writes none).
public struct CheckpointInfo: Sendable, Equatable {
    /// The value of the `format` key lenet writes.
    public static let format = "lenet-checkpoint"
    /// The `format_version` lenet writes and reads.
    public static let formatVersion = 1

    /// Epochs trained when this was saved.
    public var epoch: Int?
    /// The seed of the run that trained it.
    public var seed: UInt64?
    /// Test accuracy (a fraction) after `epoch`.
    public var testAccuracy: Double?

    public init(epoch: Int? = nil, seed: UInt64? = nil, testAccuracy: Double? = nil) {
        self.epoch = epoch
        self.seed = seed
        self.testAccuracy = testAccuracy
    }
}

/// A model's weights and running statistics by state_dict name, checked against the
/// architecture they belong to.
public struct Checkpoint: Sendable, Equatable {
    public let variant: ModelVariant
    public let info: CheckpointInfo
    /// Every state_dict tensor, validated: names, shapes and dtypes are the variant's.
    public let tensors: [String: SafeTensor]
    /// The file it was read from, or "(in memory)".
    public let source: String

    public var definition: ModelDefinition { .lenet(variant) }

    /// A snapshot of the store's parameters, running statistics and batch counts.
    public init(store: ParameterStore, variant: ModelVariant, info: CheckpointInfo = CheckpointInfo()) throws {
        var tensors: [String: SafeTensor] = [:]
        for name in store.stateDictNames {
            if name.hasSuffix(".num_batches_tracked") {
                let module = String(name.dropLast(".num_batches_tracked".count))
                tensors[name] = try SafeTensor(int64s: [store.batchesTracked[module] ?? 0], shape: [])
            } else {
                let slot = store.parameterSlot(name) ?? store.bufferSlot(name)
                guard let slot, let values = store.values(of: name) else {
                    throw CheckpointError(file: "", message: "the model has no tensor \(name)")
                }
                tensors[name] = try SafeTensor(floats: values, shape: slot.shape)
            }
        }
        self.variant = variant
        self.info = info
        self.tensors = tensors
        self.source = "(in memory)"
        try Self.validate(tensors, as: variant, source: source)
    }

    /// Reads and checks the file at `path`. Unreadable, truncated or corrupt files are
    /// rejected by `SafeTensorsFile` (a `SafeTensorsError`); the wrong tensors, shapes or
    /// dtypes here (a `CheckpointError`). Both name the file.
    public init(contentsOf path: String) throws {
        try self.init(file: SafeTensorsFile(contentsOf: path))
    }

    /// Checks a parsed file: the variant comes from the metadata when present, else from
    /// the tensor names; then every name, shape and dtype must be that variant's.
    public init(file: SafeTensorsFile) throws {
        let source = file.source
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: source, message: message) }
        let metadata = file.metadata
        if let version = metadata["format_version"], metadata["format"] == CheckpointInfo.format,
           Int(version) != CheckpointInfo.formatVersion {
            throw fail("checkpoint format_version \(version) is not supported (this lenet reads \(CheckpointInfo.formatVersion))")
        }
        let variant: ModelVariant
        if let name = metadata["variant"] {
            guard let named = ModelVariant(rawValue: name) else {
                let known = ModelVariant.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail("metadata variant \"\(name)\" is not a known model (\(known))")
            }
            variant = named
        } else {
            variant = Self.inferVariant(names: Set(file.tensors.keys))
        }
        func number<T: LosslessStringConvertible>(_ key: String, as _: T.Type) throws -> T? {
            guard let text = metadata[key] else { return nil }
            guard let value = T(text) else { throw fail("metadata \(key) \"\(text)\" is not a valid \(T.self)") }
            return value
        }
        info = CheckpointInfo(epoch: try number("epoch", as: Int.self), seed: try number("seed", as: UInt64.self),
                              testAccuracy: try number("test_accuracy", as: Double.self))
        self.variant = variant
        self.tensors = file.tensors
        self.source = source
        try Self.validate(file.tensors, as: variant, source: source)
        // Only on reading: a run that diverged can still save what it has, but nothing
        // should evaluate, export or resume from it.
        for name in Self.expectedTensors(variant).map(\.name) where file.tensors[name]?.dtype == .f32 {
            guard let values = try? file.tensors[name]?.floats() else { continue }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw fail("tensor \"\(name)\" holds \(values[bad]) at index \(bad); the model diverged or the file is corrupt")
            }
        }
    }

    /// The variant whose state_dict names the file's names differ least from (lenet on a tie).
    public static func inferVariant(names: Set<String>) -> ModelVariant {
        var best = ModelVariant.lenet, bestDistance = Int.max
        for variant in ModelVariant.allCases {
            let expected = Set(expectedTensors(variant).map(\.name))
            let distance = expected.symmetricDifference(names).count
            if distance < bestDistance { (best, bestDistance) = (variant, distance) }
        }
        return best
    }

    /// The variant's state_dict: names in order, dtypes and shapes.
    public static func expectedTensors(_ variant: ModelVariant) -> [(name: String, dtype: SafeTensorsDType, shape: [Int])] {
        let store = ParameterStore(definition: .lenet(variant))
        return store.stateDictNames.map { name in
            if name.hasSuffix(".num_batches_tracked") { return (name, .i64, []) }
            let slot = store.parameterSlot(name) ?? store.bufferSlot(name)
            return (name, .f32, slot?.shape ?? [])
        }
    }

    private static func validate(_ tensors: [String: SafeTensor], as variant: ModelVariant, source: String) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: source, message: message) }
        let expected = expectedTensors(variant)
        let expectedNames = Set(expected.map(\.name))
        let what = "a \(variant.rawValue) checkpoint has \(expected.count) tensors"
        let missing = expected.map(\.name).filter { tensors[$0] == nil }
        let extra = tensors.keys.filter { !expectedNames.contains($0) }.sorted()
        if let wrong = extra.first, let wanted = missing.first {
            throw fail("tensor name \"\(wrong)\" is not a \(variant.rawValue) state_dict name; \"\(wanted)\" is missing (\(missing.count) missing, \(extra.count) unknown)")
        }
        for (name, dtype, shape) in expected {
            guard let tensor = tensors[name] else {
                throw fail("missing tensor \"\(name)\" (\(what))")
            }
            guard tensor.shape == shape else {
                throw fail("tensor \"\(name)\" has shape \(tensor.shape), expected \(shape)")
            }
            guard tensor.dtype == dtype else {
                throw fail("tensor \"\(name)\" is \(tensor.dtype.rawValue), expected \(dtype.rawValue)")
            }
        }
        if let extra = tensors.keys.filter({ !expectedNames.contains($0) }).sorted().first {
            throw fail("unexpected tensor \"\(extra)\" (\(what))")
        }
        for (name, tensor) in tensors where name.hasSuffix(".num_batches_tracked") {
            if let count = try? tensor.int64s().first, count < 0 {
                throw fail("tensor \"\(name)\" is \(count); a batch count is not negative")
            }
        }
    }

    /// Copies every tensor into a store of the same architecture.
    public func restore(into store: ParameterStore) throws {
        for name in store.stateDictNames {
            guard let tensor = tensors[name] else {
                throw CheckpointError(file: source, message: "missing tensor \"\(name)\" for this model")
            }
            if name.hasSuffix(".num_batches_tracked") {
                let module = String(name.dropLast(".num_batches_tracked".count))
                store.batchesTracked[module] = try tensor.int64s().first ?? 0
            } else {
                try store.assign(name, try tensor.floats())
            }
        }
    }

    /// The checkpoint's tensors in a host store of its architecture.
    public func parameterStore() throws -> ParameterStore {
        let store = ParameterStore(definition: definition)
        try restore(into: store)
        return store
    }

    /// A network of the checkpoint's architecture holding its weights (inference only
    /// unless `trainable`).
    public func makeNetwork(device: ComputeDevice = .allCores, maxBatch: Int, trainable: Bool = false) throws -> any Network {
        let network = try device.makeNetwork(definition, maxBatch: maxBatch, trainable: trainable)
        network.load(try parameterStore())
        return network
    }

    /// The metadata lenet writes.
    public var metadata: [String: String] {
        var metadata = ["format": CheckpointInfo.format, "format_version": String(CheckpointInfo.formatVersion),
                        "variant": variant.rawValue]
        if let epoch = info.epoch { metadata["epoch"] = String(epoch) }
        if let seed = info.seed { metadata["seed"] = String(seed) }
        if let accuracy = info.testAccuracy { metadata["test_accuracy"] = String(accuracy) }
        return metadata
    }

    public var safeTensorsFile: SafeTensorsFile {
        SafeTensorsFile(tensors: tensors, metadata: metadata, source: source)
    }

    /// Writes the checkpoint through a temporary file, fsync and rename.
    public func write(to path: String) throws {
        try safeTensorsFile.write(to: path)
    }

    public func value(_ name: String) -> [Float]? { try? tensors[name]?.floats() }
}
