import Foundation

/// The CPU backend: layers over buffers allocated once for `maxBatch`, kernels in SIMD,
/// a batch split into fixed slices across a thread pool. A training step allocates nothing.
///
/// A step is one parallel region (`runRegion`): each thread gathers its slices of the batch
/// (slice s goes to thread s % threads) and takes them through every layer, forward, loss
/// and backward, writing per-slice partials of the convolution and BatchNorm gradients; BatchNorm adds
/// barriers of its own for the batch statistics. Then one barrier, and the gradient
/// tasks, dealt across the threads: sums of the slices' partials in slice order, and the
/// fully-connected layers' weight gradients over the whole batch by blocks of output rows,
/// each followed by the SGD update of the parameters it wrote. Slices are fixed by the
/// batch and every sum runs in a fixed order, so the results are the same bytes at any
/// thread count.
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
    /// A step runs one task per slice at most: threads beyond the slices only wait.
    static let maxUsefulThreads = batchSlices
    private let layers: [any Layer]
    /// activations[0] is the input, activations[i+1] the output of layer i: [maxBatch, shape...].
    private let activations: [FloatBuffer]
    /// gradients[i] is the loss gradient w.r.t. activations[i] (gradients[0] unused: no input gradient).
    private let activationGrads: [FloatBuffer]
    /// The same buffers' pointers, [layers + 1] each, read by every thread in a step.
    private let activationPointers: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private let gradientPointers: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private let labelBuffer: Int32Buffer  // [maxBatch]
    /// Each slice's copy of the gradient block, [batchSlices, parameterCount]: the
    /// convolution and BatchNorm layers write their partials there (empty for inference).
    private let partials: FloatBuffer
    /// Each slice's summed loss and correct count, [batchSlices].
    private let sliceLoss: UnsafeMutablePointer<Double>
    private let sliceCorrect: UnsafeMutablePointer<Int>
    /// The work after a step's backward barrier, in a fixed list (see the type's comment).
    private let gradientTasks: [GradientTask]
    private let batchNormLayers: [BatchNorm2dLayer]
    private let dropoutLayers: [DropoutLayer]
    /// The activation each layer's evaluation forward writes: the next one, or for a
    /// convolution that pools in evaluation (`Conv2dLayer.poolsInEvaluation`) the pool's
    /// output, the ReLU and pool between skipped.
    private let evaluationOutputs: [Int]
    /// Whether evaluation may take the layers a group of images at a time: every layer's
    /// evaluation forward is one phase (no barrier), as it is in LeNet's layers.
    private let evaluatesInGroups: Bool
    /// Images per group in evaluation: small enough that a group's activations (about 35 KB
    /// an image in LeNet) stay near the core from one layer to the next, large enough that
    /// fc1's weights (190 KB) are read once for many images. Measured at batch 1,000 on one
    /// thread (Zen 5, 1 MB L2): 8 images 133k images/s, 16 135k, 32 142k, 64 139k.
    static let evaluationGroup = 32
    /// The current region's arguments, as work for the pool (made once).
    private let region = RegionWork()
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
        var evaluationOutputs: [Int] = []
        var dropoutCount = 0
        func reluFusedIntoNextPool(_ index: Int) -> Bool { Self.reluFusedIntoNextPool(definition, shapes, index) }
        for (index, spec) in definition.layers.enumerated() {
            let inShape = shapes[index], outSize = shapes[index + 1].reduce(1, *)
            let passesThrough = spec == .flatten || reluFusedIntoNextPool(index)
            evaluationOutputs.append(index + 1)
            switch spec {
            case .conv2d(let name, let inChannels, let outChannels, let kernel, let stride, let padding):
                let geometry = ConvGeometry(inChannels: inChannels, outChannels: outChannels, height: inShape[1],
                                            width: inShape[2], kernel: kernel, stride: stride, padding: padding)
                // Followed by a ReLU that the next pool does: evaluation can do all three in registers.
                let pools = Self.convolutionPools(definition, shapes, index, geometry)
                if pools { evaluationOutputs[index] = index + 3 }
                layers.append(Conv2dLayer(name: name, geometry: geometry, store: store, maxBatch: maxBatch,
                                          trainable: trainable, poolsInEvaluation: pools))
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
                layers.append(DropoutLayer(p: p, features: outSize, maxBatch: maxBatch, ordinal: dropoutCount))
                dropoutCount += 1
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
        self.evaluationOutputs = evaluationOutputs
        self.activations = activations
        activationGrads = grads
        activationPointers = .allocate(capacity: activations.count)
        gradientPointers = .allocate(capacity: grads.count)
        for index in activations.indices {
            activationPointers[index] = activations[index].pointer
            gradientPointers[index] = grads[index].pointer
        }
        partials = FloatBuffer(count: trainable ? batchSlices * memory.parameterCount : 0)
        sliceLoss = .allocate(capacity: batchSlices)
        sliceLoss.initialize(repeating: 0, count: batchSlices)
        sliceCorrect = .allocate(capacity: batchSlices)
        sliceCorrect.initialize(repeating: 0, count: batchSlices)
        batchNormLayers = layers.compactMap { $0 as? BatchNorm2dLayer }
        dropoutLayers = layers.compactMap { $0 as? DropoutLayer }
        evaluatesInGroups = layers.allSatisfy { $0.forwardPhases(training: false) == 1 }
        gradientTasks = Self.gradientTasks(layers: layers, store: store)
        region.network = self
    }

    deinit {
        activationPointers.deallocate()
        gradientPointers.deallocate()
        sliceLoss.deallocate()
        sliceCorrect.deallocate()
    }

    /// The gradient tasks: for each parametrised layer, in order, either sums of the slice
    /// partials over its parameters (convolution, BatchNorm) in pieces of at most
    /// `sumPiece` floats, or its weight gradient by blocks of output rows (fully connected)
    /// of about `rowPiece` multiply-adds per image.
    private static func gradientTasks(layers: [any Layer], store: ParameterStore) -> [GradientTask] {
        let sumPiece = 1024, rowPiece = 4096
        var tasks: [GradientTask] = []
        func sums(_ offset: Int, _ count: Int) {
            for start in stride(from: 0, to: count, by: sumPiece) {
                tasks.append(GradientTask(linear: nil, layerIndex: 0, rows: 0..<0,
                                          offset: offset + start, count: min(sumPiece, count - start)))
            }
        }
        for (index, layer) in layers.enumerated() {
            if let conv = layer as? Conv2dLayer {
                sums(conv.weightOffset, conv.geometry.outChannels * conv.geometry.patchSize)
                sums(conv.biasOffset, conv.geometry.outChannels)
            } else if let norm = layer as? BatchNorm2dLayer {
                sums(norm.gammaOffset, norm.channels)
                sums(norm.betaOffset, norm.channels)
            } else if let linear = layer as? LinearLayer {
                let rowsPerTask = max(1, rowPiece / max(1, linear.inFeatures))
                for start in stride(from: 0, to: linear.outFeatures, by: rowsPerTask) {
                    tasks.append(GradientTask(linear: linear, layerIndex: index,
                                              rows: start..<min(start + rowsPerTask, linear.outFeatures), offset: 0, count: 0))
                }
            }
        }
        return tasks
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
                floats += Conv2dLayer.Scratch(geometry, maxBatch: maxBatch, trainable: trainable,
                                              poolsInEvaluation: convolutionPools(definition, shapes, index, geometry)).floats
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
        // The slices' gradient blocks (partials) and their loss sums, for training.
        floats += trainable ? batchSlices * parameters : 0
        bytes += batchSlices * (MemoryLayout<Double>.stride + MemoryLayout<Int>.stride)
        return bytes + floats * floatSize
    }

    /// Whether the convolution at `index` does the ReLU and 2x2 pool after it in evaluation
    /// (`Conv2dLayer.poolsInEvaluation`): where a direct forward computes it and a ReLU that
    /// the next pool takes over follows it.
    private static func convolutionPools(_ definition: ModelDefinition, _ shapes: [[Int]], _ index: Int,
                                         _ geometry: ConvGeometry) -> Bool {
        Conv2dLayer.Scratch.evaluatesDirectly(geometry) && index + 1 < definition.layers.count
            && reluFusedIntoNextPool(definition, shapes, index + 1)
    }

    /// A ReLU right before a 2x2 max pool is done by the pool (they commute), saving
    /// a pass over the largest activations forward and backward.
    private static func reluFusedIntoNextPool(_ definition: ModelDefinition, _ shapes: [[Int]], _ index: Int) -> Bool {
        guard definition.layers[index] == .relu, index + 1 < definition.layers.count,
              case .maxPool2d(let size) = definition.layers[index + 1] else { return false }
        return MaxPool2dLayer.canRectify(inputShape: shapes[index + 1], size: size)
    }

    var inputs: UnsafeMutablePointer<Float> { activations[0].pointer }
    /// Whether the first layer's output is a buffer of its own (not the input's, as a
    /// pass-through layer's would be), so that the input may be read from elsewhere.
    private var firstLayerWritesItsOwnOutput: Bool { activations[1].pointer != activations[0].pointer }
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
        runRegion(batch: batch.count, training: true, key: key, parts: [.gather, .trainingStep])
        let result = combinedLoss(batch: batch.count)
        sums[SplitRole.train.rawValue].add(batchLoss: result.loss, correct: result.correct, images: batch.count)
    }

    func evaluate(_ batch: Range<Int>, of role: SplitRole, logits: UnsafeMutablePointer<Float>?) {
        stage(batch, of: role)
        runRegion(batch: batch.count, training: false, key: StepKey(seed: 0, step: 0), parts: [.gather, .forward, .loss])
        let result = combinedLoss(batch: batch.count)
        sums[role.rawValue].add(batchLoss: result.loss, correct: result.correct, images: batch.count)
        logits?.update(from: activationPointers[layers.count], count: batch.count * classes)
    }

    func totals(of role: SplitRole) -> StepTotals { sums[role.rawValue] }

    func setTotals(_ totals: StepTotals, of role: SplitRole) { sums[role.rawValue] = totals }

    func infer(_ images: UnsafePointer<Float>, count: Int, logits: UnsafeMutablePointer<Float>) {
        precondition(count > 0 && count <= maxBatch, "batch \(count) outside 1...\(maxBatch)")
        if firstLayerWritesItsOwnOutput {
            // The first layer reads the caller's images in place: no serial copy before the
            // parallel region (3 MB at batch 1,000). Nothing writes activations[0] in evaluation.
            activationPointers[0] = UnsafeMutablePointer(mutating: images)
            defer { activationPointers[0] = inputs }
            runRegion(batch: count, training: false, key: StepKey(seed: 0, step: 0), parts: .forward)
        } else {
            inputs.update(from: images, count: count * definition.inputShape.reduce(1, *))
            runRegion(batch: count, training: false, key: StepKey(seed: 0, step: 0), parts: .forward)
        }
        logits.update(from: activationPointers[layers.count], count: count * classes)
    }

    // MARK: The steps inside (tests call them one by one)

    /// Names the images at `batch` positions of `role`'s order as the next region's input: the
    /// region's `gather` part converts them into the input buffer, each thread its own slices
    /// (done here, before the region, it was a serial part of every step).
    private func stage(_ batch: Range<Int>, of role: SplitRole) {
        precondition(splits[role.rawValue] != nil, "no \(role) split attached")
        precondition(batch.count > 0 && batch.count <= maxBatch, "batch \(batch.count) outside 1...\(maxBatch)")
        region.stagedRole = role
        region.firstPosition = batch.lowerBound
    }

    /// Forward through every layer; returns the logits [batch, classes].
    @discardableResult
    func forward(batch: Int, training: Bool, key: StepKey) -> UnsafePointer<Float> {
        precondition(batch > 0 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        runRegion(batch: batch, training: training, key: key, parts: .forward)
        return UnsafePointer(activationPointers[layers.count])
    }

    /// Loss of the last forward against the staged labels, and its gradient w.r.t. the logits.
    func lossAndLogitsGradient(batch: Int) -> (loss: Float, correct: Int) {
        runRegion(batch: batch, training: true, key: StepKey(seed: 0, step: 0), parts: .loss)
        return combinedLoss(batch: batch)
    }

    /// Backward through every layer, writing every parameter gradient in `memory.gradients`.
    func backward(batch: Int) {
        runRegion(batch: batch, training: true, key: StepKey(seed: 0, step: 0), parts: [.backward, .gradients])
    }

    /// One update of every parameter by `optimizer`, from the gradients of the last backward.
    func applyOptimizer() {
        sgdUpdate(values: memory.values.pointer, velocity: memory.velocity.pointer, gradients: memory.gradients.pointer,
                  count: memory.parameterCount, optimizer, firstStep: !memory.hasVelocity)
        if optimizer.momentum != 0 { memory.hasVelocity = true }
    }

    // MARK: The parallel region

    /// The parts of a step one region runs, in this order (`gather` first).
    struct RegionParts: OptionSet {
        let rawValue: Int
        /// Each slice's images and labels from the staged split (`stage`) into the input buffers.
        static let gather = RegionParts(rawValue: 32)
        static let forward = RegionParts(rawValue: 1)
        /// The loss per slice, and in training the logits' gradient.
        static let loss = RegionParts(rawValue: 2)
        static let backward = RegionParts(rawValue: 4)
        /// After a barrier: the gradient tasks, writing `memory.gradients`.
        static let gradients = RegionParts(rawValue: 8)
        /// With `gradients`: each task's SGD update of the parameters it wrote.
        static let update = RegionParts(rawValue: 16)
        static let trainingStep: RegionParts = [.forward, .loss, .backward, .gradients, .update]
    }

    /// Runs `parts` of a step on the staged batch: one task per thread (at most one per slice).
    private func runRegion(batch: Int, training: Bool, key: StepKey, parts: RegionParts) {
        precondition(batch > 0 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        precondition(!parts.contains(.backward) || isTrainable, "this network was built for inference only")
        region.batch = batch
        region.training = training
        region.key = key
        region.parts = parts
        region.firstStep = !memory.hasVelocity
        region.participants = min(pool.threadCount, batchSlices)
        pool.run(region, tasks: region.participants)
        if parts.contains(.forward) {
            for dropout in dropoutLayers where dropout.presetKeepMask != nil { dropout.presetKeepMask = nil }
            if training { for norm in batchNormLayers { memory.batchesTracked[norm.name, default: 0] += 1 } }
        }
        if parts.contains(.update) && optimizer.momentum != 0 { memory.hasVelocity = true }
    }

    /// The slices' losses and correct counts of the last region, added in slice order.
    private func combinedLoss(batch: Int) -> (loss: Float, correct: Int) {
        var loss = 0.0, correct = 0
        for slice in 0..<batchSlices {
            loss += sliceLoss[slice]
            correct += sliceCorrect[slice]
        }
        return (Float(loss / Double(batch)), correct)
    }

    /// Thread `worker`'s share of the region: slices worker, worker + participants, ...
    fileprivate func runRegion(worker: Int) {
        let participants = region.participants, batch = region.batch, training = region.training
        let key = region.key, parts = region.parts
        let last = layers.count
        if parts.contains(.gather), let split = splits[region.stagedRole.rawValue] {
            let order = orders[region.stagedRole.rawValue], imageSize = DataSplit.pixelsPerImage
            var slice = worker
            while slice < batchSlices {
                let images = sliceRange(slice, batch: batch), first = region.firstPosition
                split.gather(order: order, range: first + images.lowerBound..<first + images.upperBound,
                             images: inputs + images.lowerBound * imageSize, labels: labels + images.lowerBound)
                slice += participants
            }
        }
        if parts.contains(.forward) && !training && evaluatesInGroups {
            // Evaluation: each slice through every layer a group of images at a time, so that
            // a group's activations stay in cache from one layer to the next (a slice of a
            // batch of 1,000 is 125 images, and conv1's output for them alone is 2.4 MB).
            // Images are independent here, so the results are the same bits either way.
            var slice = worker
            while slice < batchSlices {
                let images = sliceRange(slice, batch: batch)
                for first in stride(from: images.lowerBound, to: images.upperBound, by: Self.evaluationGroup) {
                    let group = first..<min(first + Self.evaluationGroup, images.upperBound)
                    var index = 0
                    while index < last {
                        let next = evaluationOutputs[index]
                        layers[index].forward(slice: slice, images: group, phase: 0,
                                              input: UnsafePointer(activationPointers[index]),
                                              output: activationPointers[next], batch: batch, training: false, key: key)
                        index = next
                    }
                }
                slice += participants
            }
        } else if parts.contains(.forward) {
            var index = 0
            while index < last {
                let layer = layers[index], next = training ? index + 1 : evaluationOutputs[index]
                let input = UnsafePointer(activationPointers[index]), output = activationPointers[next]
                for phase in 0..<layer.forwardPhases(training: training) {
                    if phase > 0 { pool.barrier() }
                    var slice = worker
                    while slice < batchSlices {
                        layer.forward(slice: slice, images: sliceRange(slice, batch: batch), phase: phase, input: input,
                                      output: output, batch: batch, training: training, key: key)
                        slice += participants
                    }
                }
                index = next
            }
        }
        if parts.contains(.loss) {
            var slice = worker
            while slice < batchSlices {
                let result = softmaxCrossEntropySum(logitsGrad: training ? gradientPointers[last] : nil,
                                                    logits: activationPointers[last], labels: labels,
                                                    images: sliceRange(slice, batch: batch), batch: batch, classes: classes)
                sliceLoss[slice] = result.lossSum
                sliceCorrect[slice] = result.correct
                slice += participants
            }
        }
        if parts.contains(.backward) {
            let parameterCount = memory.parameterCount
            for index in stride(from: last - 1, through: 0, by: -1) {
                let layer = layers[index]
                // The first layer needs no input gradient: the input is data.
                let inputGrad: UnsafeMutablePointer<Float>? = index == 0 ? nil : gradientPointers[index]
                for phase in 0..<layer.backwardPhases {
                    if phase > 0 { pool.barrier() }
                    var slice = worker
                    while slice < batchSlices {
                        layer.backward(slice: slice, images: sliceRange(slice, batch: batch), phase: phase,
                                       input: activationPointers[index], output: activationPointers[index + 1],
                                       outputGrad: gradientPointers[index + 1], inputGrad: inputGrad,
                                       partials: partials.pointer + slice * parameterCount, batch: batch)
                        slice += participants
                    }
                }
            }
        }
        if parts.contains(.gradients) {
            pool.barrier()
            var task = worker
            while task < gradientTasks.count {
                runGradientTask(gradientTasks[task], batch: batch, update: parts.contains(.update))
                task += participants
            }
        }
    }

    /// One gradient task: its gradients into `memory.gradients`, then (with `update`) the
    /// SGD update of the same parameters.
    private func runGradientTask(_ task: GradientTask, batch: Int, update: Bool) {
        let gradients = memory.gradients.pointer
        if let linear = task.linear {
            linear.weightGradient(rows: task.rows, gradients: gradients, input: activationPointers[task.layerIndex],
                                  outputGrad: gradientPointers[task.layerIndex + 1], batch: batch)
            guard update else { return }
            applySGD(offset: linear.weightOffset + task.rows.lowerBound * linear.inFeatures,
                     count: task.rows.count * linear.inFeatures)
            applySGD(offset: linear.biasOffset + task.rows.lowerBound, count: task.rows.count)
        } else {
            let parameterCount = memory.parameterCount
            let target = gradients + task.offset, first = partials.pointer + task.offset
            target.update(from: first, count: task.count)
            for slice in 1..<batchSlices { addFloats(target, first + slice * parameterCount, count: task.count) }
            if update { applySGD(offset: task.offset, count: task.count) }
        }
    }

    @inline(__always)
    private func applySGD(offset: Int, count: Int) {
        sgdUpdate(values: memory.values.pointer + offset, velocity: memory.velocity.pointer + offset,
                  gradients: memory.gradients.pointer + offset, count: count, optimizer, firstStep: region.firstStep)
    }

    /// Makes the next training forward use this keep-mask (0 or 1 per feature,
    /// [batch, features]) in every Dropout layer instead of a random draw, to
    /// compare against a reference implementation.
    func presetDropoutKeepMask(_ keep: [Float]) {
        for dropout in dropoutLayers { dropout.presetKeepMask = keep }
    }
}

/// One entry of a step's work after the backward barrier (see `CPUNetwork`): with `linear`,
/// that layer's weight gradient for output rows `rows` (its input is activation
/// `layerIndex`); without, the sum of the slices' partials at `offset..<offset + count`.
private struct GradientTask {
    let linear: LinearLayer?
    let layerIndex: Int
    let rows: Range<Int>
    let offset: Int
    let count: Int
}

/// The current region of a CPUNetwork, as work for the thread pool: task i is thread i's share.
private final class RegionWork: ParallelWork {
    unowned(unsafe) var network: CPUNetwork!
    var batch = 0
    var training = false
    var key = StepKey(seed: 0, step: 0)
    var parts: CPUNetwork.RegionParts = []
    var firstStep = false
    var participants = 1
    /// What the `gather` part reads: positions firstPosition..< of this role's order.
    var stagedRole = SplitRole.train
    var firstPosition = 0

    func run(task: Int) { network.runRegion(worker: task) }
}
