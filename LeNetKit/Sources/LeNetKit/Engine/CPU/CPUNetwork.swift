import Foundation

/// The CPU backend: layers over buffers allocated once for `maxBatch`, kernels in SIMD,
/// a batch split into fixed slices across a thread pool. A training step allocates nothing.
///
/// Its memory is host memory, but it is still its own: `memory` is never handed out,
/// and callers move parameters with `load` and `snapshot` as they would to a GPU.
final class CPUNetwork: Network {
    let definition: ModelDefinition
    let maxBatch: Int
    let isTrainable: Bool
    var optimizer = SGD()
    /// Parameters, gradients, velocity and running statistics: this backend's own copy.
    let memory: ParameterStore
    let pool: ThreadPool
    private let layers: [any Layer]
    /// activations[0] is the input, activations[i+1] the output of layer i: [maxBatch, shape...].
    private let activations: [FloatBuffer]
    /// gradients[i] is the loss gradient w.r.t. activations[i] (gradients[0] unused: no input gradient).
    private let activationGrads: [FloatBuffer]
    private let labelBuffer: Int32Buffer  // [maxBatch]
    /// Logits per sample (computed once: the definition derives it from every layer's shape).
    private let classes: Int
    /// The attached splits, their orders and their running sums, indexed by `SplitRole.rawValue`.
    private var splits: [DataSplit?] = [nil, nil]
    private var orders: [[Int32]] = [[], []]
    private var sums: [StepTotals] = [.zero, .zero]

    init(_ definition: ModelDefinition, maxBatch: Int, threads: Int, trainable: Bool = true) {
        self.definition = definition
        self.maxBatch = maxBatch
        isTrainable = trainable
        classes = definition.classes
        memory = ParameterStore(definition: definition)
        pool = ThreadPool(threadCount: threads)
        labelBuffer = Int32Buffer(count: maxBatch)
        let store = memory

        let shapes = definition.activationShapes
        var activations = [FloatBuffer(count: maxBatch * shapes[0].reduce(1, *))]
        var grads = [FloatBuffer(count: 0)]
        var layers: [any Layer] = []
        var dropoutLayers = 0
        func reluFusedIntoNextPool(_ index: Int) -> Bool { Self.reluFusedIntoNextPool(definition, shapes, index) }
        for (index, spec) in definition.layers.enumerated() {
            let inShape = shapes[index], outSize = shapes[index + 1].reduce(1, *)
            let passesThrough = spec == .flatten || reluFusedIntoNextPool(index)
            switch spec {
            case .conv2d(let name, let inChannels, let outChannels, let kernel, let stride, let padding):
                let geometry = ConvGeometry(inChannels: inChannels, outChannels: outChannels, height: inShape[1],
                                            width: inShape[2], kernel: kernel, stride: stride, padding: padding)
                layers.append(Conv2dLayer(name: name, geometry: geometry, store: store, maxBatch: maxBatch,
                                          trainable: trainable, pool: pool))
            case .batchNorm2d(let name, _):
                layers.append(BatchNorm2dLayer(name: name, inputShape: inShape, store: store, maxBatch: maxBatch))
            case .relu:
                layers.append(passesThrough ? PassThroughLayer() : ReLULayer(features: outSize))
            case .maxPool2d(let size):
                let rectifies = index > 0 && reluFusedIntoNextPool(index - 1)
                layers.append(MaxPool2dLayer(inputShape: inShape, size: size, maxBatch: maxBatch, rectifies: rectifies))
            case .flatten:
                layers.append(PassThroughLayer())
            case .linear(let name, let inFeatures, let outFeatures):
                layers.append(LinearLayer(name: name, inFeatures: inFeatures, outFeatures: outFeatures, store: store))
            case .dropout(let p):
                layers.append(DropoutLayer(p: p, features: outSize, maxBatch: maxBatch, ordinal: dropoutLayers))
                dropoutLayers += 1
            }
            if passesThrough {
                // Same memory (a new shape, or values the next layer will rectify).
                activations.append(activations[index])
                grads.append(index == 0 ? FloatBuffer(count: maxBatch * outSize) : grads[index])
            } else {
                activations.append(FloatBuffer(count: maxBatch * outSize))
                grads.append(FloatBuffer(count: trainable ? maxBatch * outSize : 0))
            }
        }
        self.layers = layers
        self.activations = activations
        activationGrads = grads
    }

    /// The bytes `init` allocates for these arguments, without allocating them: parameters,
    /// gradients and velocity, every activation and its gradient, and each layer's scratch.
    /// This is what `lenet summary` reports as the backend's memory; a test checks it
    /// against the peak resident memory of real runs.
    static func plannedBytes(_ definition: ModelDefinition, maxBatch: Int, trainable: Bool) -> Int {
        let floatSize = MemoryLayout<Float>.stride
        let parameters = definition.layers.flatMap(\.parameterShapes).reduce(0) { $0 + $1.shape.reduce(1, *) }
        let runningStatistics = definition.layers.flatMap(\.bufferShapes).reduce(0) { $0 + $1.shape.reduce(1, *) }
        var floats = 3 * parameters + runningStatistics  // values, gradients, velocity; BatchNorm's running statistics
        var bytes = maxBatch * MemoryLayout<Int32>.stride  // labels
        let shapes = definition.activationShapes
        floats += maxBatch * shapes[0].reduce(1, *)  // the input
        for (index, spec) in definition.layers.enumerated() {
            let inShape = shapes[index], outSize = shapes[index + 1].reduce(1, *)
            let passesThrough = spec == .flatten || reluFusedIntoNextPool(definition, shapes, index)
            switch spec {
            case .conv2d(_, let inChannels, let outChannels, let kernel, let stride, let padding):
                let geometry = ConvGeometry(inChannels: inChannels, outChannels: outChannels, height: inShape[1],
                                            width: inShape[2], kernel: kernel, stride: stride, padding: padding)
                floats += Conv2dLayer.Scratch(geometry, maxBatch: maxBatch, trainable: trainable).floats
            case .batchNorm2d:
                floats += BatchNorm2dLayer.scratchFloats(inputShape: inShape, maxBatch: maxBatch)
            case .maxPool2d(let size):
                bytes += MaxPool2dLayer.choiceBytes(inputShape: inShape, size: size, maxBatch: maxBatch)
            case .dropout:
                floats += maxBatch * outSize  // the keep-mask
            case .relu, .flatten, .linear:
                break
            }
            if passesThrough {
                floats += index == 0 ? maxBatch * outSize : 0
            } else {
                floats += maxBatch * outSize * (trainable ? 2 : 1)
            }
        }
        return bytes + floats * floatSize
    }

    /// A ReLU right before a 2x2 max pool is done by the pool (they commute), saving
    /// a pass over the largest activations forward and backward.
    private static func reluFusedIntoNextPool(_ definition: ModelDefinition, _ shapes: [[Int]], _ index: Int) -> Bool {
        guard definition.layers[index] == .relu, index + 1 < definition.layers.count,
              case .maxPool2d(let size) = definition.layers[index + 1] else { return false }
        return MaxPool2dLayer.canRectify(inputShape: shapes[index + 1], size: size)
    }

    var inputs: UnsafeMutablePointer<Float> { activations[0].pointer }
    var labels: UnsafeMutablePointer<Int32> { labelBuffer.pointer }

    // MARK: Network

    func load(_ parameters: ParameterStore) { memory.copy(from: parameters) }

    func snapshot() -> ParameterStore {
        let copy = ParameterStore(definition: definition)
        copy.copy(from: memory)
        return copy
    }

    func attach(_ split: DataSplit, as role: SplitRole) {
        splits[role.rawValue] = split
        orders[role.rawValue] = (0..<split.count).map { Int32($0) }
        sums[role.rawValue] = .zero
    }

    func setOrder(_ order: [Int32], of role: SplitRole) {
        precondition(order.count == splits[role.rawValue]?.count, "an order must cover the attached split")
        orders[role.rawValue] = order
    }

    func trainStep(_ batch: Range<Int>, key: StepKey) {
        precondition(isTrainable, "this network was built for inference only")
        stage(batch, of: .train)
        forward(batch: batch.count, training: true, key: key)
        let result = lossAndLogitsGradient(batch: batch.count)
        sums[SplitRole.train.rawValue].add(batchLoss: result.loss, correct: result.correct, images: batch.count)
        backward(batch: batch.count)
        applyOptimizer()
    }

    func evaluate(_ batch: Range<Int>, of role: SplitRole, logits: UnsafeMutablePointer<Float>?) {
        stage(batch, of: role)
        let output = forward(batch: batch.count, training: false, key: StepKey(seed: 0, step: 0))
        let result = softmaxCrossEntropy(logitsGrad: nil, logits: output, labels: labels, batch: batch.count, classes: classes)
        sums[role.rawValue].add(batchLoss: result.loss, correct: result.correct, images: batch.count)
        logits?.update(from: output, count: batch.count * classes)
    }

    func totals(of role: SplitRole) -> StepTotals { sums[role.rawValue] }

    func setTotals(_ totals: StepTotals, of role: SplitRole) { sums[role.rawValue] = totals }

    func infer(_ images: UnsafePointer<Float>, count: Int, logits: UnsafeMutablePointer<Float>) {
        precondition(count > 0 && count <= maxBatch, "batch \(count) outside 1...\(maxBatch)")
        inputs.update(from: images, count: count * definition.inputShape.reduce(1, *))
        logits.update(from: forward(batch: count, training: false, key: StepKey(seed: 0, step: 0)), count: count * classes)
    }

    // MARK: The steps inside (tests call them one by one)

    /// Gathers the images at `batch` positions of `role`'s order into the input buffer, as floats.
    private func stage(_ batch: Range<Int>, of role: SplitRole) {
        guard let split = splits[role.rawValue] else { preconditionFailure("no \(role) split attached") }
        precondition(batch.count > 0 && batch.count <= maxBatch, "batch \(batch.count) outside 1...\(maxBatch)")
        split.gather(order: orders[role.rawValue], range: batch, images: inputs, labels: labels)
    }

    /// Forward through every layer; returns the logits [batch, classes].
    @discardableResult
    func forward(batch: Int, training: Bool, key: StepKey) -> UnsafePointer<Float> {
        precondition(batch > 0 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        for (index, layer) in layers.enumerated() {
            layer.forward(input: activations[index].pointer, output: activations[index + 1].pointer,
                          batch: batch, training: training, key: key)
        }
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// Loss of the last forward against the staged labels, and its gradient w.r.t. the logits.
    func lossAndLogitsGradient(batch: Int) -> (loss: Float, correct: Int) {
        softmaxCrossEntropy(logitsGrad: activationGrads[layers.count].pointer, logits: activations[layers.count].pointer,
                            labels: labels, batch: batch, classes: classes)
    }

    /// Backward through every layer, writing every parameter gradient in `memory.gradients`.
    func backward(batch: Int) {
        for index in stride(from: layers.count - 1, through: 0, by: -1) {
            // The first layer needs no input gradient: the input is data.
            let inputGrad: UnsafeMutablePointer<Float>? = index == 0 ? nil : activationGrads[index].pointer
            layers[index].backward(input: activations[index].pointer, output: activations[index + 1].pointer,
                                   outputGrad: activationGrads[index + 1].pointer, inputGrad: inputGrad, batch: batch)
        }
    }

    /// One update of every parameter by `optimizer`, from the gradients of the last backward.
    func applyOptimizer() {
        sgdUpdate(values: memory.values.pointer, velocity: memory.velocity.pointer, gradients: memory.gradients.pointer,
                  count: memory.parameterCount, optimizer, firstStep: !memory.hasVelocity)
        if optimizer.momentum != 0 { memory.hasVelocity = true }
    }

    /// Makes the next training forward use this keep-mask (0 or 1 per feature,
    /// [batch, features]) in every Dropout layer instead of a random draw, to
    /// compare against a reference implementation.
    func presetDropoutKeepMask(_ keep: [Float]) {
        for case let dropout as DropoutLayer in layers { dropout.presetKeepMask = keep }
    }
}
