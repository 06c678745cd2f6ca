/// Where a tensor lives inside one of the store's blocks.
public struct TensorSlot: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// All of a model's numbers in four blocks, each allocated once: trainable
/// parameters, their gradients and the optimizer's velocity share one layout
/// (so an SGD step is one loop); BatchNorm's running statistics sit in a fourth.
///
/// On the host it is a snapshot: what initialisation, checkpoints and resume read and
/// write, moved to and from a backend by `Network.load` and `Network.snapshot`. The CPU
/// backend keeps its own one as its memory.
public final class ParameterStore: @unchecked Sendable {
    /// Trainable tensors in PyTorch's state_dict order.
    public let parameterSlots: [TensorSlot]
    /// Running statistics, in state_dict order.
    public let bufferSlots: [TensorSlot]
    let values: FloatBuffer
    let gradients: FloatBuffer
    let velocity: FloatBuffer
    let buffers: FloatBuffer
    /// BatchNorm's num_batches_tracked, one per BatchNorm layer, by layer name.
    public internal(set) var batchesTracked: [String: Int64]
    /// Whether `velocity` holds a first SGD step yet (PyTorch starts it at g, not 0).
    public var hasVelocity = false

    public init(definition: ModelDefinition) {
        let (slots, parameterCount) = Self.layout(definition.layers.flatMap(\.parameterShapes))
        parameterSlots = slots
        values = FloatBuffer(count: parameterCount)
        gradients = FloatBuffer(count: parameterCount)
        velocity = FloatBuffer(count: parameterCount)
        let (bufferList, bufferCount) = Self.layout(definition.layers.flatMap(\.bufferShapes))
        bufferSlots = bufferList
        buffers = FloatBuffer(count: bufferCount)
        batchesTracked = [:]
        for case .batchNorm2d(let name, _) in definition.layers { batchesTracked[name] = 0 }
        resetRunningStatistics()
    }

    public var parameterCount: Int { values.count }

    /// Consecutive slots for named tensors in one block, and the block's size.
    private static func layout(_ tensors: [(name: String, shape: [Int])]) -> (slots: [TensorSlot], count: Int) {
        var slots: [TensorSlot] = [], offset = 0
        for (name, shape) in tensors {
            slots.append(TensorSlot(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        return (slots, offset)
    }

    public func parameterSlot(_ name: String) -> TensorSlot? { parameterSlots.first { $0.name == name } }
    public func bufferSlot(_ name: String) -> TensorSlot? { bufferSlots.first { $0.name == name } }

    /// Pointer to a named parameter's values. Names come from the model definition.
    func value(_ name: String) -> UnsafeMutablePointer<Float> { values.pointer + requiredSlot(name).offset }
    func gradient(_ name: String) -> UnsafeMutablePointer<Float> { gradients.pointer + requiredSlot(name).offset }
    func buffer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let slot = bufferSlot(name) else { preconditionFailure("no buffer \(name)") }
        return buffers.pointer + slot.offset
    }

    private func requiredSlot(_ name: String) -> TensorSlot {
        guard let slot = parameterSlot(name) else { preconditionFailure("no parameter \(name)") }
        return slot
    }

    /// PyTorch's default initialisation, drawn in state_dict order: weights
    /// kaiming-uniform with a=√5 and biases uniform, both within ±1/√fan_in
    /// (fan_in = in_channels·k·k or in_features); BatchNorm weight 1, bias 0.
    public func initialize(definition: ModelDefinition, generator: inout RandomGenerator) {
        for layer in definition.layers {
            switch layer {
            case .conv2d(let name, let inChannels, _, let k, _, _):
                fillUniform(name, fanIn: inChannels * k * k, generator: &generator)
            case .linear(let name, let inFeatures, _):
                fillUniform(name, fanIn: inFeatures, generator: &generator)
            case .batchNorm2d(let name, let channels):
                value("\(name).weight").update(repeating: 1, count: channels)
                value("\(name).bias").update(repeating: 0, count: channels)
            default: break
            }
        }
        velocity.fill(0)
        gradients.fill(0)
        hasVelocity = false
        resetRunningStatistics()
    }

    /// Copies every block, the batch counts and `hasVelocity` from a store of the same model.
    public func copy(from other: ParameterStore) {
        precondition(other.parameterSlots == parameterSlots && other.bufferSlots == bufferSlots,
                     "stores of different models")
        values.copy(from: other.values)
        gradients.copy(from: other.gradients)
        velocity.copy(from: other.velocity)
        buffers.copy(from: other.buffers)
        batchesTracked = other.batchesTracked
        hasVelocity = other.hasVelocity
    }

    /// The velocity of a parameter by its state_dict name.
    public func velocity(of name: String) -> [Float]? {
        parameterSlot(name).map { Array(UnsafeBufferPointer(start: velocity.pointer + $0.offset, count: $0.count)) }
    }

    /// Sets the velocity of a parameter by its state_dict name.
    public func assignVelocity(_ name: String, _ newValues: [Float]) throws {
        guard let slot = parameterSlot(name) else { throw ParameterStoreError("no parameter named \(name) in this model") }
        guard newValues.count == slot.count else {
            throw ParameterStoreError("velocity of \(name) has \(slot.count) values, got \(newValues.count)")
        }
        (velocity.pointer + slot.offset).update(from: newValues, count: slot.count)
    }

    private func fillUniform(_ name: String, fanIn: Int, generator: inout RandomGenerator) {
        let bound = 1 / Float(fanIn).squareRoot()
        for suffix in [".weight", ".bias"] {
            let slot = requiredSlot(name + suffix), p = values.pointer + slot.offset
            for i in 0..<slot.count { p[i] = generator.nextUniform(-bound, bound) }
        }
    }

    private func resetRunningStatistics() {
        for slot in bufferSlots {
            buffers.pointer.advanced(by: slot.offset)
                .update(repeating: slot.name.hasSuffix("running_var") ? 1 : 0, count: slot.count)
        }
        for key in batchesTracked.keys { batchesTracked[key] = 0 }
    }
}

extension ParameterStore {
    /// The values of a parameter or running statistic by its state_dict name.
    public func values(of name: String) -> [Float]? {
        if let slot = parameterSlot(name) { return Array(UnsafeBufferPointer(start: values.pointer + slot.offset, count: slot.count)) }
        if let slot = bufferSlot(name) { return Array(UnsafeBufferPointer(start: buffers.pointer + slot.offset, count: slot.count)) }
        return nil
    }

    /// The gradient of a parameter by its state_dict name, as the last backward left it.
    public func gradient(of name: String) -> [Float]? {
        parameterSlot(name).map { Array(UnsafeBufferPointer(start: gradients.pointer + $0.offset, count: $0.count)) }
    }

    /// Sets a parameter or running statistic by its state_dict name.
    public func assign(_ name: String, _ newValues: [Float]) throws {
        let target: (slot: TensorSlot, base: UnsafeMutablePointer<Float>)
        if let slot = parameterSlot(name) { target = (slot, values.pointer) }
        else if let slot = bufferSlot(name) { target = (slot, buffers.pointer) }
        else { throw ParameterStoreError("no tensor named \(name) in this model") }
        guard newValues.count == target.slot.count else {
            throw ParameterStoreError("\(name) has \(target.slot.count) values, got \(newValues.count)")
        }
        (target.base + target.slot.offset).update(from: newValues, count: newValues.count)
    }

    /// Every tensor name in state_dict order (parameters, running statistics, batch counts).
    public var stateDictNames: [String] {
        var names: [String] = []
        var remaining = bufferSlots
        for slot in parameterSlots {
            names.append(slot.name)
            // A BatchNorm's buffers follow its bias, as in PyTorch.
            let module = String(slot.name.dropLast(".bias".count))
            if slot.name.hasSuffix(".bias"), batchesTracked[module] != nil {
                names += remaining.filter { $0.name.hasPrefix(module + ".") }.map(\.name)
                names.append("\(module).num_batches_tracked")
                remaining.removeAll { $0.name.hasPrefix(module + ".") }
            }
        }
        return names
    }
}

public struct ParameterStoreError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
