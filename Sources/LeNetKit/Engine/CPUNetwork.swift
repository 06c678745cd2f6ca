import Foundation

/// The CPU backend: layers over buffers allocated once for `maxBatch`; a
/// training step allocates nothing.
public final class CPUNetwork: Network {
    public let definition: ModelDefinition
    public let store: ParameterStore
    public let maxBatch: Int
    public let pool: ThreadPool
    private let layers: [any Layer]
    /// activations[0] is the input, activations[i+1] the output of layer i: [maxBatch, shape...].
    private let activations: [FloatBuffer]
    /// gradients[i] is the loss gradient w.r.t. activations[i] (gradients[0] unused: no input gradient).
    private let activationGrads: [FloatBuffer]
    private let labelBuffer: Int32Buffer  // [maxBatch]

    /// Whether the network can train; one that cannot keeps no gradients or backward scratch.
    public let trainable: Bool

    public init(_ definition: ModelDefinition, maxBatch: Int, threads: Int = ThreadPool.defaultThreadCount,
                trainable: Bool = true) {
        self.definition = definition
        self.maxBatch = maxBatch
        self.trainable = trainable
        classes = definition.classes
        store = ParameterStore(definition: definition)
        pool = ThreadPool(threadCount: threads)
        labelBuffer = Int32Buffer(count: maxBatch)

        let shapes = definition.activationShapes
        var activations = [FloatBuffer(count: maxBatch * shapes[0].reduce(1, *))]
        var grads = [FloatBuffer(count: 0)]
        var layers: [any Layer] = []
        /// A ReLU right before a 2x2 max pool is done by the pool (they commute), saving
        /// a pass over the largest activations forward and backward.
        func reluFusedIntoNextPool(_ index: Int) -> Bool {
            guard definition.layers[index] == .relu, index + 1 < definition.layers.count,
                  case .maxPool2d(let size) = definition.layers[index + 1] else { return false }
            return MaxPool2dLayer.canRectify(inputShape: shapes[index + 1], size: size)
        }
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
                layers.append(DropoutLayer(p: p, features: outSize, maxBatch: maxBatch))
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

    public var inputs: UnsafeMutablePointer<Float> { activations[0].pointer }
    public var labels: UnsafeMutablePointer<Int32> { labelBuffer.pointer }
    /// Logits per sample (computed once: the definition derives it from every layer's shape).
    private let classes: Int

    /// Forward through every layer; returns the logits [batch, classes].
    @discardableResult
    public func forward(batch: Int, training: Bool, generator: inout RandomGenerator) -> UnsafePointer<Float> {
        precondition(batch > 0 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        for (index, layer) in layers.enumerated() {
            layer.forward(input: activations[index].pointer, output: activations[index + 1].pointer,
                          batch: batch, training: training, generator: &generator)
        }
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// Loss of the last forward against the staged labels, and its gradient w.r.t. the logits.
    public func lossAndLogitsGradient(batch: Int) -> BatchResult {
        let result = softmaxCrossEntropy(logitsGrad: activationGrads[layers.count].pointer,
                                         logits: activations[layers.count].pointer, labels: labels,
                                         batch: batch, classes: classes)
        return BatchResult(loss: result.loss, correct: result.correct)
    }

    /// Backward through every layer, writing every parameter gradient in `store.gradients`.
    public func backward(batch: Int) {
        for index in stride(from: layers.count - 1, through: 0, by: -1) {
            // The first layer needs no input gradient: the input is data.
            let inputGrad: UnsafeMutablePointer<Float>? = index == 0 ? nil : activationGrads[index].pointer
            layers[index].backward(input: activations[index].pointer, output: activations[index + 1].pointer,
                                   outputGrad: activationGrads[index + 1].pointer, inputGrad: inputGrad, batch: batch)
        }
    }

    public func trainStep(batch: Int, optimizer: inout SGD, generator: inout RandomGenerator) -> BatchResult {
        precondition(trainable, "this network was built for inference only")
        forward(batch: batch, training: true, generator: &generator)
        let result = lossAndLogitsGradient(batch: batch)
        backward(batch: batch)
        optimizer.step(store)
        return result
    }

    public func evaluate(batch: Int) -> BatchResult {
        let logits = self.logits(batch: batch)
        let result = softmaxCrossEntropy(logitsGrad: nil, logits: logits, labels: labels, batch: batch, classes: classes)
        return BatchResult(loss: result.loss, correct: result.correct)
    }

    public func logits(batch: Int) -> UnsafePointer<Float> {
        var unused = RandomGenerator(seed: 0)  // evaluation draws nothing
        return forward(batch: batch, training: false, generator: &unused)
    }

    /// Makes the next training forward use this keep-mask (0 or 1 per feature,
    /// [batch, features]) in every Dropout layer instead of a random draw, to
    /// compare against a reference implementation.
    public func presetDropoutKeepMask(_ keep: [Float]) {
        for case let dropout as DropoutLayer in layers { dropout.presetKeepMask = keep }
    }
}

extension ThreadPool {
    /// Every core the process may use.
    public static var defaultThreadCount: Int { ProcessInfo.processInfo.activeProcessorCount }
}
