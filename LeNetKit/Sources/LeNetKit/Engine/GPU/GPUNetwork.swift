import Foundation

/// The GPU backend: the network's memory on the device, every layer a kernel launch or
/// two, through any `GPURuntime` (OpenCL or CUDA).
///
/// The data splits live on the device as bytes; each epoch uploads only its order, and a
/// batch is gathered and converted there. Loss sums and correct counts add up on the
/// device too and are read only when `totals` is asked. A step is a fixed list of launches
/// (`Plan`), built once per batch size and mode and replayed with a few arguments patched
/// (the batch's start, the dropout key, the learning rate): a training step allocates nothing.
/// On CUDA the list is a CUDA graph, sent with one driver call a step (`GPULaunchGraph`):
/// at batch 32 this small network waits on launch latency, not on arithmetic.
final class GPUNetwork: Network {
    let definition: ModelDefinition
    let maxBatch: Int
    let isTrainable: Bool
    var optimizer = SGD()
    let program: GPUProgram
    private var runtime: any GPURuntime { program.runtime }

    // Parameters, one device buffer per tensor (kernels take whole buffers), in the
    // store's slot order: values, gradients, SGD velocity; BatchNorm's running statistics.
    private let parameterSlots: [TensorSlot]
    private let values: [GPUBuffer], gradients: [GPUBuffer], velocity: [GPUBuffer]
    private let statisticSlots: [TensorSlot]
    private let statistics: [GPUBuffer]
    /// BatchNorm's num_batches_tracked and whether SGD has a velocity yet: host counters.
    private var batchesTracked: [String: Int64]
    private var hasVelocity = false

    /// activations[0] is the input, activations[i+1] the output of layer i: [maxBatch, shape...].
    private let activations: [GPUBuffer]
    /// activationGrads[i]: the loss gradient w.r.t. activations[i] (nil where none is needed).
    private let activationGrads: [GPUBuffer?]
    private let labels: GPUBuffer      // [maxBatch] Int32
    private let rowLoss: GPUBuffer     // [maxBatch] per-image loss
    private let rowCorrect: GPUBuffer  // [maxBatch] 1 where the prediction is right
    private let classes: Int

    /// Per split role: its bytes on the device, its order, its running sums (a Kahan pair
    /// of floats and an Int32 count), and the host's part of its totals.
    private var pixelBytes: [GPUBuffer?] = [nil, nil], labelBytes: [GPUBuffer?] = [nil, nil]
    private var orders: [GPUBuffer?] = [nil, nil]
    private var splitCounts = [0, 0]
    private let lossSums: [GPUBuffer], correctSums: [GPUBuffer]
    /// What `setTotals` gave, plus the batches and images counted since.
    private var hostTotals: [StepTotals] = [.zero, .zero]
    /// Zeros to reset a role's device sums from.
    private let zeros = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)

    private let layers: [LayerLaunches]
    private var plans: [PlanKey: Plan] = [:]
    /// Set once the runtime failed to make a graph: later plans launch one by one without asking again.
    private var graphsFailed = false
    /// Where the one line about a graph that could not be made goes (tests catch it).
    var warn: (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }

    init(_ definition: ModelDefinition, maxBatch: Int, trainable: Bool, program: GPUProgram) throws {
        self.definition = definition
        self.maxBatch = maxBatch
        isTrainable = trainable
        self.program = program
        classes = definition.classes
        let runtime = program.runtime
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: 16)

        let store = ParameterStore(definition: definition)
        parameterSlots = store.parameterSlots
        statisticSlots = store.bufferSlots
        batchesTracked = store.batchesTracked
        let floats = { (count: Int) in try runtime.allocate(bytes: count * 4) }
        values = try parameterSlots.map { try floats($0.count) }
        gradients = try parameterSlots.map { try floats(trainable ? $0.count : 0) }
        velocity = try parameterSlots.map { try floats(trainable ? $0.count : 0) }
        statistics = try statisticSlots.map { try floats($0.count) }
        labels = try runtime.allocate(bytes: maxBatch * 4)
        rowLoss = try floats(maxBatch)
        rowCorrect = try runtime.allocate(bytes: maxBatch * 4)
        lossSums = try (0..<2).map { _ in try floats(2) }
        correctSums = try (0..<2).map { _ in try runtime.allocate(bytes: 4) }

        // Activations: Flatten shares its input's buffer (NCHW flattens in place).
        let shapes = definition.activationShapes
        var activations = [try floats(maxBatch * shapes[0].reduce(1, *))]
        var grads: [GPUBuffer?] = [nil]
        for (index, spec) in definition.layers.enumerated() {
            let size = maxBatch * shapes[index + 1].reduce(1, *)
            if spec == .flatten {
                activations.append(activations[index])
                grads.append(grads[index])
            } else {
                activations.append(try floats(size))
                grads.append(trainable ? try floats(size) : nil)
            }
        }
        // The first layer's input needs no gradient; every other one does when training.
        if trainable, definition.layers.first == .flatten { grads[1] = try floats(maxBatch * shapes[1].reduce(1, *)) }
        self.activations = activations
        activationGrads = grads

        var layers: [LayerLaunches] = []
        var dropoutLayers = 0
        for (index, spec) in definition.layers.enumerated() {
            let slot = { (name: String) -> Int in store.parameterSlots.firstIndex { $0.name == name }! }
            let statistic = { (name: String) -> Int in store.bufferSlots.firstIndex { $0.name == name }! }
            let layer = LayerLaunches(spec: spec, index: index, inShape: shapes[index], outShape: shapes[index + 1])
            switch spec {
            case .conv2d(let name, _, _, _, _, _), .linear(let name, _, _):
                layer.weight = slot("\(name).weight")
                layer.bias = slot("\(name).bias")
            case .batchNorm2d(let name, let channels):
                layer.weight = slot("\(name).weight")
                layer.bias = slot("\(name).bias")
                layer.runningMean = statistic("\(name).running_mean")
                layer.runningVar = statistic("\(name).running_var")
                layer.scratch = [try floats(maxBatch * shapes[index].reduce(1, *)), try floats(channels)]  // x̂, 1/σ
            case .maxPool2d(let size):
                let outputs = maxBatch * shapes[index][0] * (shapes[index][1] / size) * (shapes[index][2] / size)
                layer.scratch = [try runtime.allocate(bytes: outputs)]  // which input won each window
            case .dropout:
                layer.dropoutOrdinal = dropoutLayers
                dropoutLayers += 1
                layer.scratch = [try floats(maxBatch * shapes[index].reduce(1, *))]  // the mask
            case .relu, .flatten:
                break
            }
            layers.append(layer)
        }
        self.layers = layers
    }

    deinit { zeros.deallocate() }

    // MARK: Network

    func load(_ parameters: ParameterStore) {
        precondition(parameters.parameterSlots == parameterSlots && parameters.bufferSlots == statisticSlots,
                     "a store of another model")
        deviceCall {
            for (index, slot) in parameterSlots.enumerated() {
                let bytes = slot.count * 4
                try runtime.copy(parameters.values.pointer + slot.offset, to: values[index], offset: 0, bytes: bytes)
                guard isTrainable else { continue }
                try runtime.copy(parameters.gradients.pointer + slot.offset, to: gradients[index], offset: 0, bytes: bytes)
                try runtime.copy(parameters.velocity.pointer + slot.offset, to: velocity[index], offset: 0, bytes: bytes)
            }
            for (index, slot) in statisticSlots.enumerated() {
                try runtime.copy(parameters.buffers.pointer + slot.offset, to: statistics[index], offset: 0, bytes: slot.count * 4)
            }
        }
        batchesTracked = parameters.batchesTracked
        hasVelocity = parameters.hasVelocity
    }

    func snapshot() -> ParameterStore {
        let copy = ParameterStore(definition: definition)
        deviceCall {
            for (index, slot) in parameterSlots.enumerated() {
                let bytes = slot.count * 4
                try runtime.copy(values[index], offset: 0, to: copy.values.pointer + slot.offset, bytes: bytes)
                guard isTrainable else { continue }
                try runtime.copy(gradients[index], offset: 0, to: copy.gradients.pointer + slot.offset, bytes: bytes)
                try runtime.copy(velocity[index], offset: 0, to: copy.velocity.pointer + slot.offset, bytes: bytes)
            }
            for (index, slot) in statisticSlots.enumerated() {
                try runtime.copy(statistics[index], offset: 0, to: copy.buffers.pointer + slot.offset, bytes: slot.count * 4)
            }
        }
        copy.batchesTracked = batchesTracked
        copy.hasVelocity = hasVelocity
        return copy
    }

    func attach(_ split: DataSplit, as role: SplitRole) {
        deviceCall {
            pixelBytes[role.rawValue] = try runtime.upload(split.pixels)
            labelBytes[role.rawValue] = try runtime.upload(split.labels)
            orders[role.rawValue] = try runtime.upload((0..<split.count).map { Int32($0) })
        }
        splitCounts[role.rawValue] = split.count
        plans = plans.filter { $0.key.role != role }  // they name the old split's buffers
        setTotals(.zero, of: role)
    }

    func setOrder(_ order: [Int32], of role: SplitRole) {
        precondition(order.count == splitCounts[role.rawValue], "an order must cover the attached split")
        guard let buffer = orders[role.rawValue] else { preconditionFailure("no \(role) split attached") }
        deviceCall { try order.withUnsafeBytes { try runtime.copy($0.baseAddress!, to: buffer, offset: 0, bytes: $0.count) } }
    }

    func trainStep(_ batch: Range<Int>, key: StepKey) {
        precondition(isTrainable, "this network was built for inference only")
        let firstStep = !hasVelocity
        run(plan(for: PlanKey(batch: batch.count, role: .train, mode: .train)), start: batch.lowerBound, key: key,
            firstStep: firstStep)
        if optimizer.momentum != 0 { hasVelocity = true }
        for layer in definition.layers { if case .batchNorm2d(let name, _) = layer { batchesTracked[name, default: 0] += 1 } }
        hostTotals[SplitRole.train.rawValue].batches += 1
        hostTotals[SplitRole.train.rawValue].images += batch.count
    }

    func evaluate(_ batch: Range<Int>, of role: SplitRole, logits: UnsafeMutablePointer<Float>?) {
        run(plan(for: PlanKey(batch: batch.count, role: role, mode: .evaluate)), start: batch.lowerBound,
            key: StepKey(seed: 0, step: 0), firstStep: false)
        hostTotals[role.rawValue].batches += 1
        hostTotals[role.rawValue].images += batch.count
        if let logits {
            deviceCall { try runtime.copy(activations[layers.count], offset: 0, to: logits, bytes: batch.count * classes * 4) }
        }
    }

    func totals(of role: SplitRole) -> StepTotals {
        var loss: (Float, Float) = (0, 0)
        var correct: Int32 = 0
        deviceCall {
            try withUnsafeMutableBytes(of: &loss) { try runtime.copy(lossSums[role.rawValue], offset: 0, to: $0.baseAddress!, bytes: 8) }
            try withUnsafeMutableBytes(of: &correct) { try runtime.copy(correctSums[role.rawValue], offset: 0, to: $0.baseAddress!, bytes: 4) }
        }
        var totals = hostTotals[role.rawValue]
        totals.lossSum += Double(loss.0) - Double(loss.1)  // the sum and what its compensation still owes
        totals.correct += Int(correct)
        return totals
    }

    func setTotals(_ totals: StepTotals, of role: SplitRole) {
        hostTotals[role.rawValue] = totals
        deviceCall {
            try runtime.copy(zeros, to: lossSums[role.rawValue], offset: 0, bytes: 8)
            try runtime.copy(zeros, to: correctSums[role.rawValue], offset: 0, bytes: 4)
        }
    }

    func infer(_ images: UnsafePointer<Float>, count: Int, logits: UnsafeMutablePointer<Float>) {
        precondition(count > 0 && count <= maxBatch, "batch \(count) outside 1...\(maxBatch)")
        deviceCall {
            try runtime.copy(images, to: activations[0], offset: 0, bytes: count * definition.inputShape.reduce(1, *) * 4)
        }
        run(plan(for: PlanKey(batch: count, role: nil, mode: .infer)), start: 0, key: StepKey(seed: 0, step: 0), firstStep: false)
        deviceCall { try runtime.copy(activations[layers.count], offset: 0, to: logits, bytes: count * classes * 4) }
    }

    // MARK: For tests: a step on a given batch, with given dropout masks

    /// Trains one step on `images` [batch, 1, 28, 28] and `labels` [batch], with each Dropout
    /// layer keeping the features where `keepMasks[i]` [batch, features] is 1, to compare
    /// with a reference implementation's step. Its loss adds to the training totals.
    func trainStep(images: [Float], labels newLabels: [Int32], keepMasks: [[Float]]) {
        let batch = newLabels.count
        deviceCall {
            try images.withUnsafeBytes { try runtime.copy($0.baseAddress!, to: activations[0], offset: 0, bytes: $0.count) }
            try newLabels.withUnsafeBytes { try runtime.copy($0.baseAddress!, to: labels, offset: 0, bytes: $0.count) }
            for (layer, keep) in zip(layers.filter { if case .dropout = $0.spec { true } else { false } }, keepMasks) {
                guard case .dropout(let p) = layer.spec else { continue }
                let mask = keep.map { $0 / (1 - p) }
                try mask.withUnsafeBytes { try runtime.copy($0.baseAddress!, to: layer.scratch[0], offset: 0, bytes: $0.count) }
            }
        }
        run(plan(for: PlanKey(batch: batch, role: .train, mode: .train, staged: true)), start: 0,
            key: StepKey(seed: 0, step: 0), firstStep: !hasVelocity)
        if optimizer.momentum != 0 { hasVelocity = true }
        for layer in definition.layers { if case .batchNorm2d(let name, _) = layer { batchesTracked[name, default: 0] += 1 } }
        hostTotals[SplitRole.train.rawValue].batches += 1
        hostTotals[SplitRole.train.rawValue].images += batch
    }

    // MARK: Plans: a step as a list of launches

    private enum Mode: Hashable { case train, evaluate, infer }

    private struct PlanKey: Hashable {
        var batch: Int
        var role: SplitRole?
        var mode: Mode
        /// Tests: the batch is already in the input and label buffers (no gather), and
        /// dropout multiplies by the masks given (no draw).
        var staged = false
    }

    /// What `run` writes into a launch's arguments before each replay.
    private enum Patch { case batchStart, dropoutKey, optimizer }

    /// Every launch of one step, in order, as a graph to replay, and which launches `run` patches.
    private final class Plan {
        let graph: GPULaunchGraph
        let patches: [(launch: Int, patch: Patch)]
        init(graph: GPULaunchGraph, patches: [(launch: Int, patch: Patch)]) {
            self.graph = graph
            self.patches = patches
        }
    }

    private func plan(for key: PlanKey) -> Plan {
        if let plan = plans[key] { return plan }
        var plan: Plan?
        deviceCall { plan = try buildPlan(key) }
        plans[key] = plan!
        return plan!
    }

    /// `launches` as the runtime's graph. When it cannot make one, says so in one line and
    /// replays launch by launch from then on: slower, the same results.
    private func makeGraph(_ launches: [GPULaunch]) -> GPULaunchGraph {
        if !graphsFailed {
            do { return try runtime.makeLaunchGraph(launches) } catch {
                graphsFailed = true
                warn("GPU backend: \(error); launching kernels one by one instead")
            }
        }
        return GPULaunchGraph(runtime: runtime, launches: launches)
    }

    /// Replays `plan` with this step's batch start, dropout key and optimizer settings.
    /// Only arguments that differ from the last replay reach the graph (and, on CUDA, the
    /// driver's copy of its nodes); nothing is allocated.
    private func run(_ plan: Plan, start: Int, key: StepKey, firstStep: Bool) {
        let sgd = optimizer, graph = plan.graph
        deviceCall {
            for (index, patch) in plan.patches {
                switch patch {
                case .batchStart:
                    graph.setArgument(.int(start), at: 5, ofLaunch: index)
                case .dropoutKey:
                    graph.setArgument(.uint(UInt32(truncatingIfNeeded: key.seed)), at: 6, ofLaunch: index)
                    graph.setArgument(.uint(UInt32(truncatingIfNeeded: key.seed >> 32)), at: 7, ofLaunch: index)
                    graph.setArgument(.uint(UInt32(truncatingIfNeeded: key.step)), at: 8, ofLaunch: index)
                    graph.setArgument(.uint(UInt32(truncatingIfNeeded: key.step >> 32)), at: 9, ofLaunch: index)
                case .optimizer:
                    graph.setArgument(.float(sgd.learningRate), at: 4, ofLaunch: index)
                    graph.setArgument(.float(sgd.momentum), at: 5, ofLaunch: index)
                    graph.setArgument(.float(sgd.weightDecay), at: 6, ofLaunch: index)
                    graph.setArgument(.int(firstStep ? 1 : 0), at: 7, ofLaunch: index)
                }
            }
            try graph.replay()
        }
    }

    private func buildPlan(_ key: PlanKey) throws -> Plan {
        let batch = key.batch
        var launches: [GPULaunch] = []
        var patches: [(launch: Int, patch: Patch)] = []
        func add(_ name: String, _ arguments: [GPUArgument], items: Int, groupSize: Int = 64, patch: Patch? = nil) throws {
            if let patch { patches.append((launches.count, patch)) }
            launches.append(GPULaunch(kernel: try program.kernel(name), arguments: arguments, items: items, groupSize: groupSize))
        }
        func finished() -> Plan { Plan(graph: makeGraph(launches), patches: patches) }
        func groups(_ count: Int) -> Int { count * KernelSources.reduceItems }

        // The batch, gathered from the split's bytes in the epoch's order.
        if let role = key.role, !key.staged {
            guard let pixels = pixelBytes[role.rawValue], let labelBytes = labelBytes[role.rawValue],
                  let order = orders[role.rawValue] else { preconditionFailure("no \(role) split attached") }
            let perImage = definition.inputShape.reduce(1, *)
            try add("gather_batch", [.buffer(activations[0]), .buffer(labels), .buffer(pixels), .buffer(labelBytes),
                                     .buffer(order), .int(0), .int(batch), .int(perImage)],
                    items: batch * perImage, patch: .batchStart)
        }

        // Forward.
        let training = key.mode == .train
        for layer in layers {
            let input = activations[layer.index], output = activations[layer.index + 1]
            let outCount = batch * layer.outShape.reduce(1, *)
            switch layer.spec {
            case .conv2d:
                try add("conv2d_forward", [.buffer(output), .buffer(input), .buffer(values[layer.weight]),
                                           .buffer(values[layer.bias])] + layer.convSizes(batch), items: outCount)
            case .batchNorm2d:
                let sizes = layer.batchNormSizes(batch)
                if training {
                    try add("batchnorm_training_forward",
                            [.buffer(output), .buffer(layer.scratch[0]), .buffer(layer.scratch[1]), .buffer(input),
                             .buffer(values[layer.weight]), .buffer(values[layer.bias]), .buffer(statistics[layer.runningMean]),
                             .buffer(statistics[layer.runningVar]), .float(0.1), .float(1e-5)] + sizes,
                            items: groups(layer.inShape[0]), groupSize: KernelSources.reduceItems)
                } else {
                    try add("batchnorm_inference_forward",
                            [.buffer(output), .buffer(input), .buffer(values[layer.weight]), .buffer(values[layer.bias]),
                             .buffer(statistics[layer.runningMean]), .buffer(statistics[layer.runningVar]), .float(1e-5)] + sizes,
                            items: outCount)
                }
            case .relu:
                try add("relu_forward", [.buffer(output), .buffer(input), .int(outCount)], items: outCount)
            case .maxPool2d(let size):
                try add("maxpool_forward", [.buffer(output), .buffer(layer.scratch[0]), .buffer(input),
                                            .int(batch * layer.inShape[0]), .int(layer.inShape[1]), .int(layer.inShape[2]),
                                            .int(size), .int(0)], items: outCount)
            case .flatten:
                break
            case .linear:
                try add("linear_forward", [.buffer(output), .buffer(input), .buffer(values[layer.weight]),
                                           .buffer(values[layer.bias])] + layer.linearSizes(batch), items: outCount)
            case .dropout where training && key.staged:
                try add("multiply", [.buffer(output), .buffer(input), .buffer(layer.scratch[0]), .int(outCount)], items: outCount)
            case .dropout(let p):
                // Evaluation keeps every value: p 0 and scale 1 make the mask all ones.
                try add("dropout_forward", [.buffer(output), .buffer(layer.scratch[0]), .buffer(input), .int(outCount),
                                            .float(training ? p : 0), .float(training ? (p < 1 ? 1 / (1 - p) : 0) : 1),
                                            .uint(0), .uint(0), .uint(0), .uint(0), .uint(UInt32(layer.dropoutOrdinal))],
                        items: (outCount + 3) / 4, patch: training ? .dropoutKey : nil)
            }
        }
        guard key.mode != .infer else { return finished() }

        // Loss, its gradient when training, and the running sums.
        let logits = activations[layers.count], role = key.role!.rawValue
        try add("softmax_cross_entropy", [.buffer(activationGrads[layers.count] ?? rowLoss), .buffer(rowLoss),
                                          .buffer(rowCorrect), .buffer(logits), .buffer(labels), .int(batch), .int(classes),
                                          .float(1 / Float(batch)), .int(training ? 1 : 0)], items: batch)
        try add("add_batch_totals", [.buffer(lossSums[role]), .buffer(correctSums[role]), .buffer(rowLoss),
                                     .buffer(rowCorrect), .int(batch)], items: 1, groupSize: 1)
        guard training else { return finished() }

        // Backward, last layer first; the first layer needs no input gradient.
        for layer in layers.reversed() {
            let input = activations[layer.index], output = activations[layer.index + 1]
            let outputGrad = activationGrads[layer.index + 1]!, inputGrad = layer.index == 0 ? nil : activationGrads[layer.index]
            let inCount = batch * layer.inShape.reduce(1, *)
            switch layer.spec {
            case .conv2d:
                if let inputGrad {
                    try add("conv2d_backward_input", [.buffer(inputGrad), .buffer(outputGrad), .buffer(values[layer.weight])]
                                + layer.convSizes(batch), items: inCount)
                }
                try add("conv2d_backward_weight", [.buffer(gradients[layer.weight]), .buffer(gradients[layer.bias]),
                                                   .buffer(outputGrad), .buffer(input)] + layer.convSizes(batch),
                        items: groups(values[layer.weight].bytes / 4 + values[layer.bias].bytes / 4),
                        groupSize: KernelSources.reduceItems)
            case .batchNorm2d:
                guard let inputGrad else { preconditionFailure("BatchNorm2d as the first layer is not supported") }
                try add("batchnorm_backward", [.buffer(inputGrad), .buffer(gradients[layer.weight]), .buffer(gradients[layer.bias]),
                                               .buffer(outputGrad), .buffer(layer.scratch[0]), .buffer(layer.scratch[1]),
                                               .buffer(values[layer.weight])] + layer.batchNormSizes(batch),
                        items: groups(layer.inShape[0]), groupSize: KernelSources.reduceItems)
            case .relu:
                if let inputGrad {
                    try add("relu_backward", [.buffer(inputGrad), .buffer(outputGrad), .buffer(output), .int(inCount)], items: inCount)
                }
            case .maxPool2d(let size):
                if let inputGrad {
                    try add("maxpool_backward", [.buffer(inputGrad), .buffer(outputGrad), .buffer(layer.scratch[0]),
                                                 .int(batch * layer.inShape[0]), .int(layer.inShape[1]), .int(layer.inShape[2]),
                                                 .int(size)], items: inCount)
                }
            case .flatten:
                break
            case .linear:
                if let inputGrad {
                    try add("linear_backward_input", [.buffer(inputGrad), .buffer(outputGrad), .buffer(values[layer.weight])]
                                + layer.linearSizes(batch), items: inCount)
                }
                let (inFeatures, outFeatures) = (layer.inShape[0], layer.outShape[0])
                try add("linear_backward_weight", [.buffer(gradients[layer.weight]), .buffer(gradients[layer.bias]),
                                                   .buffer(outputGrad), .buffer(input)] + layer.linearSizes(batch),
                        items: inFeatures * outFeatures + outFeatures)
            case .dropout:
                if let inputGrad {
                    try add("multiply", [.buffer(inputGrad), .buffer(outputGrad), .buffer(layer.scratch[0]), .int(inCount)],
                            items: inCount)
                }
            }
        }

        // The optimizer, one tensor at a time.
        for (index, slot) in parameterSlots.enumerated() {
            try add("sgd_update", [.buffer(values[index]), .buffer(velocity[index]), .buffer(gradients[index]), .int(slot.count),
                                   .float(0), .float(0), .float(0), .int(0)], items: slot.count, patch: .optimizer)
        }
        return finished()
    }

    /// Runs device calls whose failure (a lost device, memory gone) leaves nothing to go on
    /// with: the protocol's calls cannot throw, so it stops the process with the reason.
    private func deviceCall(_ body: () throws -> Void) {
        do { try body() } catch { fatalError("GPU backend: \(error)") }
    }
}

/// One layer's place in the network and the device buffers it owns.
private final class LayerLaunches {
    let spec: LayerSpec
    let index: Int
    let inShape: [Int], outShape: [Int]
    /// Slots of its parameters and running statistics (indices into the network's buffer lists).
    var weight = 0, bias = 0, runningMean = 0, runningVar = 0
    var dropoutOrdinal = 0
    /// BatchNorm: x̂ and 1/σ; max pool: the winning inputs; dropout: the mask.
    var scratch: [GPUBuffer] = []

    init(spec: LayerSpec, index: Int, inShape: [Int], outShape: [Int]) {
        self.spec = spec
        self.index = index
        self.inShape = inShape
        self.outShape = outShape
    }

    /// conv2d kernels' size arguments: batch, C, H, W, OC, K, stride, padding, OH, OW.
    func convSizes(_ batch: Int) -> [GPUArgument] {
        guard case .conv2d(_, let inChannels, let outChannels, let kernel, let stride, let padding) = spec else { return [] }
        return [.int(batch), .int(inChannels), .int(inShape[1]), .int(inShape[2]), .int(outChannels), .int(kernel),
                .int(stride), .int(padding), .int(outShape[1]), .int(outShape[2])]
    }

    /// batchnorm kernels' size arguments: batch, channels, pixels.
    func batchNormSizes(_ batch: Int) -> [GPUArgument] { [.int(batch), .int(inShape[0]), .int(inShape[1] * inShape[2])] }

    /// linear kernels' size arguments: batch, in, out.
    func linearSizes(_ batch: Int) -> [GPUArgument] { [.int(batch), .int(inShape[0]), .int(outShape[0])] }
}
