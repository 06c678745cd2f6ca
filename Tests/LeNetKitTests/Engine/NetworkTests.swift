import Foundation
@testable import LeNetKit
import Testing

/// The whole network: gradients by finite differences on a small model with
/// every layer type, BatchNorm and Dropout modes, and the LeNet definitions.
@Suite struct NetworkTests {
    /// A small network with every kind of layer LeNet uses.
    static let tiny = ModelDefinition(variant: .lenetBN, inputShape: [1, 8, 8], layers: [
        .conv2d(name: "conv1", inChannels: 1, outChannels: 2, kernel: 3, stride: 1, padding: 1),
        .batchNorm2d(name: "bn1", channels: 2), .relu, .maxPool2d(size: 2),
        .conv2d(name: "conv2", inChannels: 2, outChannels: 3, kernel: 3, stride: 1, padding: 0),
        .relu, .flatten,
        .linear(name: "fc1", inFeatures: 12, outFeatures: 6), .relu, .dropout(p: 0.5),
        .linear(name: "fc2", inFeatures: 6, outFeatures: 4),
    ])

    @Test func wholeNetworkGradientsMatchFiniteDifferences() throws {
        let batch = 3
        let network = CPUNetwork(Self.tiny, maxBatch: batch, threads: 2)
        network.initialize(seed: 11)
        var random = TestRandom(seed: 12)
        network.inputs.update(from: random.floats(batch * 64, in: 0...1), count: batch * 64)
        network.labels.update(from: [0, 3, 2], count: batch)

        // Each evaluation uses the same step key: the same dropout mask.
        func loss() -> Double {
            network.forward(batch: batch, training: true, key: StepKey(seed: 13, step: 0))
            return Double(network.lossAndLogitsGradient(batch: batch).loss)
        }
        _ = loss()
        network.backward(batch: batch)
        let analytic = network.memory.gradients.array
        let values = network.memory.values.pointer
        var numeric = [Float](repeating: 0, count: analytic.count)
        // A small step, so that no ReLU or max-pool choice flips between the two evaluations.
        let h: Float = 1e-3
        for i in 0..<analytic.count {
            let saved = values[i]
            values[i] = saved + h
            let plus = loss()
            values[i] = saved - h
            let minus = loss()
            values[i] = saved
            numeric[i] = Float((plus - minus) / Double(2 * h))
        }
        #expect(gradientMismatch(analytic, numeric, atol: 3e-3, rtol: 5e-2) == nil)
    }

    @Test func lenetHasTheTutorialsShapesAndParameterCount() {
        let plain = ModelDefinition.lenet(.lenet)
        #expect(plain.parameterCount == 61_706)
        #expect(plain.activationShapes.last == [10])
        #expect(plain.activationShapes.contains([400]))
        let bn = ModelDefinition.lenet(.lenetBN)
        #expect(bn.parameterCount == 61_706 + 2 * (6 + 16))
        #expect(ParameterStore(definition: bn).stateDictNames == [
            "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
            "bn1.num_batches_tracked", "conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias", "bn2.running_mean",
            "bn2.running_var", "bn2.num_batches_tracked", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
            "fc3.weight", "fc3.bias",
        ])
    }

    @Test func initialisationIsPyTorchsDefaultAndSeeded() {
        let definition = ModelDefinition.lenet(.lenetBN)
        let a = ParameterStore(definition: definition), b = ParameterStore(definition: definition)
        var g1 = RandomGenerator(seed: 5), g2 = RandomGenerator(seed: 5)
        a.initialize(definition: definition, generator: &g1)
        b.initialize(definition: definition, generator: &g2)
        #expect(a.values.array == b.values.array)
        for (name, fanIn) in [("conv1", 25), ("conv2", 150), ("fc1", 400), ("fc2", 120), ("fc3", 84)] {
            let bound = 1 / Float(fanIn).squareRoot()
            let weights = a.values(of: "\(name).weight")!
            #expect(weights.allSatisfy { abs($0) <= bound })
            // Uniform on ±bound: the largest magnitude is close to the bound.
            #expect(weights.map(abs).max()! > 0.9 * bound)
            #expect(a.values(of: "\(name).bias")!.allSatisfy { abs($0) <= bound })
        }
        #expect(a.values(of: "bn1.weight") == [Float](repeating: 1, count: 6))
        #expect(a.values(of: "bn2.running_var") == [Float](repeating: 1, count: 16))
    }

    @Test func dropoutIsActiveOnlyInTraining() {
        let definition = ModelDefinition.lenet(.lenetBN)
        let network = CPUNetwork(definition, maxBatch: 4, threads: 1)
        network.initialize(seed: 1)
        var random = TestRandom(seed: 2)
        network.inputs.update(from: random.floats(4 * 784, in: 0...1), count: 4 * 784)
        // Evaluation is deterministic and changes no state.
        let first = Array(UnsafeBufferPointer(start: network.logits(batch: 4), count: 40))
        let again = Array(UnsafeBufferPointer(start: network.logits(batch: 4), count: 40))
        #expect(first == again)
        #expect(network.memory.batchesTracked["bn1"] == 0)
        // Training draws a new mask each step and updates the running statistics.
        let train1 = Array(UnsafeBufferPointer(start: network.forward(batch: 4, training: true, key: StepKey(seed: 3, step: 0)), count: 40))
        let train2 = Array(UnsafeBufferPointer(start: network.forward(batch: 4, training: true, key: StepKey(seed: 3, step: 1)), count: 40))
        #expect(train1 != train2)
        #expect(network.memory.batchesTracked["bn1"] == 2)
        #expect(network.memory.values(of: "bn1.running_mean") != [Float](repeating: 0, count: 6))
    }

    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func inferenceOnlyNetworkGivesTheSameLogits(variant: ModelVariant) {
        let definition = ModelDefinition.lenet(variant)
        let trainable = CPUNetwork(definition, maxBatch: 40, threads: 2)
        trainable.initialize(seed: 21)
        var random = TestRandom(seed: 22)
        let images = random.floats(40 * 784, in: 0...1)
        trainable.inputs.update(from: images, count: images.count)
        trainable.labels.update(from: (0..<40).map { Int32($0 % 10) }, count: 40)
        trainable.optimizer = SGD(learningRate: 0.05)
        trainable.trainStaged(batch: 40, key: StepKey(seed: 21, step: 0))  // moves running statistics too
        let inference = CPUNetwork(definition, maxBatch: 40, threads: 2, trainable: false)
        inference.load(trainable.snapshot())
        inference.inputs.update(from: images, count: images.count)
        trainable.inputs.update(from: images, count: images.count)
        let expected = Array(UnsafeBufferPointer(start: trainable.logits(batch: 40), count: 400))
        let actual = Array(UnsafeBufferPointer(start: inference.logits(batch: 40), count: 400))
        #expect(actual == expected)
    }

    /// Plain LeNet has no Dropout or BatchNorm, so its training forward (columns and GEMM,
    /// every layer in turn) and its evaluation forward (images read in place, each convolution
    /// doing the ReLU and pool after it as it stores its sums, layers skipped) compute the same function: the same
    /// bits, for a batch whose slices are of unequal size and hold more than one group.
    @Test func evaluationForwardEqualsTheTrainingForwardBitForBit() {
        let definition = ModelDefinition.lenet(.lenet)
        let network = CPUNetwork(definition, maxBatch: 300, threads: 2)
        network.initialize(seed: 31)
        var random = TestRandom(seed: 32)
        network.inputs.update(from: random.floats(300 * 784, in: 0...1), count: 300 * 784)
        let evaluation = Array(UnsafeBufferPointer(start: network.logits(batch: 300), count: 3000))
        let training = Array(UnsafeBufferPointer(start: network.forward(batch: 300, training: true,
                                                                        key: StepKey(seed: 33, step: 0)), count: 3000))
        #expect(evaluation.map(\.bitPattern) == training.map(\.bitPattern))
    }

    @Test func resultsDoNotDependOnThreadCount() {
        let definition = ModelDefinition.lenet(.lenet)
        var random = TestRandom(seed: 4)
        let images = random.floats(32 * 784, in: 0...1)
        let labels = (0..<32).map { _ in Int32(random.int(below: 10)) }
        var outcomes: [[Float]] = []
        for threads in [1, 2, 3] {
            let network = CPUNetwork(definition, maxBatch: 32, threads: threads)
            network.initialize(seed: 9)
            network.optimizer = SGD(learningRate: 0.01)
            for step in 0..<3 {
                network.inputs.update(from: images, count: images.count)
                network.labels.update(from: labels, count: 32)
                network.trainStaged(batch: 32, key: StepKey(seed: 9, step: UInt64(step)))
            }
            outcomes.append(network.memory.values.array)
        }
        #expect(outcomes[0] == outcomes[1])
        #expect(outcomes[0] == outcomes[2])
    }
}

/// A Conv2d layer that keeps columns (stride other than 1) and whose slices are larger
/// than the images it keeps columns for runs in chunks (forward unfolds and lets go,
/// backward unfolds again): the same outputs and input gradients as keeping every column,
/// and weight gradients equal up to the order of the chunks' sums. A stride-1 layer keeps
/// no columns in training: its results are the definition's.
@Suite struct ConvolutionChunkTests {
    @Test(arguments: [
        ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, stride: 2, padding: 2),
        ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 3, stride: 2, padding: 1),
    ])
    func chunkedSlicesMatchKeptColumns(_ g: ConvGeometry) throws {
        let (kept, chunked) = (Self.run(g, keptImages: 64), Self.run(g, keptImages: 5))
        #expect(!kept.withoutColumns && !chunked.withoutColumns)
        #expect(chunked.output == kept.output)
        #expect(chunked.inputGrad == kept.inputGrad)
        // A gradient of one chunk alone, or a chunk counted twice, would be off by far more.
        #expect(maxRelativeDifference(chunked.weightGrad, kept.weightGrad) < 1e-4)
        #expect(maxRelativeDifference(chunked.biasGrad, kept.biasGrad) < 1e-4)
    }

    /// LeNet's two convolutions train without columns, over slices of a batch of 101: the
    /// forward is im2col + GEMM's bit for bit, the input gradient the columns' way's or (conv2)
    /// the lane kernel's reference chains, bit for bit, and the weight and bias gradients the
    /// definition's sums.
    @Test(arguments: [
        ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5, stride: 1, padding: 0),
    ])
    func strideOneTrainsWithoutColumnsAsTheDefinition(_ g: ConvGeometry) throws {
        let result = Self.run(g, keptImages: 64)
        #expect(result.withoutColumns)
        let batch = Self.batch
        var output = [Float](repeating: 0, count: batch * g.outputSize)
        var columns = [Float](repeating: 0, count: g.patchSize * g.outPixels)
        var padded = [Float](repeating: 0, count: g.paddedInputSize)
        var inputGrad = [Float](repeating: 0, count: batch * g.inputSize)
        var columnGrad = [Float](repeating: 0, count: g.columnGradScratchSize)
        output.withUnsafeMutableBufferPointer { output in
            for image in 0..<batch {
                conv2dForward(output: output.baseAddress! + image * g.outputSize, columns: &columns, padded: &padded,
                              input: Array(result.input[(image * g.inputSize)...]), images: 1,
                              weight: result.weight, bias: result.bias, g)
            }
        }
        #expect(result.inputGradientInLanes == (g.inChannels == 6), "conv2's input gradient is in lanes, conv1's not")
        if result.inputGradientInLanes {
            inputGrad.withUnsafeMutableBufferPointer { inputGrad in
                for image in 0..<batch {
                    conv2dInputGradientInLanesReference(inputGrad.baseAddress! + image * g.inputSize,
                                                        outputGrad: Array(result.outputGrad[(image * g.outputSize)...]),
                                                        weight: result.weight, g)
                }
            }
        } else {
            conv2dInputGradient(&inputGrad, columnGrad: &columnGrad, outputGrad: result.outputGrad, images: batch,
                                weight: result.weight, g)
        }
        var weightGrad = [Float](repeating: 0, count: result.weight.count)
        var biasGrad = [Float](repeating: 0, count: g.outChannels)
        conv2dWeightGradientReference(weightGrad: &weightGrad, biasGrad: &biasGrad, outputGrad: result.outputGrad,
                                      input: result.input, images: batch, g)
        #expect(result.output.map(\.bitPattern) == output.map(\.bitPattern))
        #expect(result.inputGrad.map(\.bitPattern) == inputGrad.map(\.bitPattern))
        #expect(maxRelativeDifference(result.weightGrad, weightGrad) < 1e-4)
        #expect(maxRelativeDifference(result.biasGrad, biasGrad) < 1e-4)
    }

    static let batch = 101

    /// One layer's forward and backward over every slice of a batch of 101 random images.
    static func run(_ g: ConvGeometry, keptImages: Int) -> (
        withoutColumns: Bool, inputGradientInLanes: Bool, input: [Float], weight: [Float], bias: [Float], outputGrad: [Float],
        output: [Float], inputGrad: [Float], weightGrad: [Float], biasGrad: [Float]
    ) {
        let definition = ModelDefinition(variant: .lenet, inputShape: [g.inChannels, g.height, g.width], layers: [
            .conv2d(name: "conv", inChannels: g.inChannels, outChannels: g.outChannels, kernel: g.kernel,
                    stride: g.stride, padding: g.padding),
        ])
        let store = ParameterStore(definition: definition)
        var random = TestRandom(seed: 21)
        let weightCount = g.outChannels * g.patchSize
        store.value("conv.weight").update(from: random.floats(weightCount, in: -0.2...0.2), count: weightCount)
        store.value("conv.bias").update(from: random.floats(g.outChannels), count: g.outChannels)
        // 101 images: slices of 13, cut into chunks of 5, 5 and 3 (and a last slice of 10).
        let batch = Self.batch
        let input = random.floats(batch * g.inputSize, in: 0...1)
        let outputGrad = random.floats(batch * g.outputSize)
        let weight = Array(UnsafeBufferPointer(start: store.value("conv.weight"), count: weightCount))
        let bias = Array(UnsafeBufferPointer(start: store.value("conv.bias"), count: g.outChannels))
        let layer = Conv2dLayer(name: "conv", geometry: g, store: store, maxBatch: batch, trainable: true,
                                keptImages: keptImages)
        var output = [Float](repeating: 0, count: batch * g.outputSize)
        var inputGrad = [Float](repeating: 0, count: batch * g.inputSize)
        // Each slice's partials in its own copy of the gradient block, summed in slice order after.
        let stride = store.parameterCount
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: batchSlices * stride)
        defer { partials.deallocate() }
        for slice in 0..<batchSlices {
            layer.forward(slice: slice, images: sliceRange(slice, batch: batch), phase: 0, input: input,
                          output: &output, batch: batch, training: true, key: StepKey(seed: 0, step: 0))
        }
        for slice in 0..<batchSlices {
            layer.backward(slice: slice, images: sliceRange(slice, batch: batch), phase: 0, input: input,
                           output: output, outputGrad: outputGrad, inputGrad: &inputGrad,
                           partials: partials + slice * stride, batch: batch)
        }
        func summed(_ offset: Int, _ count: Int) -> [Float] {
            (0..<count).map { i in (0..<batchSlices).reduce(Float(0)) { $0 + partials[$1 * stride + offset + i] } }
        }
        return (layer.trainsWithoutColumns, layer.inputGradientInLanes, input, weight, bias, outputGrad, output, inputGrad,
                summed(layer.weightOffset, weightCount), summed(layer.biasOffset, g.outChannels))
    }
}
