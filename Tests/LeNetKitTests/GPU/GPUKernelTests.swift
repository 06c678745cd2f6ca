import Foundation
@testable import LeNetKit
import Testing

/// Every GPU kernel, run through the tests' runtime (GPUTestDevice: OpenCL on PoCL in CI),
/// against the CPU backend's kernels or their plain references, on random shapes. Sums may
/// run in a different order on each side, so floats agree within 1e-5 relative
/// (`maxRelativeDifference`); what involves no sum (pooling, ReLU, dropout masks,
/// gathering) agrees exactly.
@Suite(.serialized) struct GPUKernelTests {
    /// The kernels these tests run; a kernel added to Kernels/ without a test fails `everyKernelIsTested`.
    static let tested: Set<String> = [
        "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "maxpool_forward", "maxpool_backward",
        "relu_forward", "relu_backward", "multiply", "dropout_forward", "linear_forward", "linear_backward_input",
        "linear_backward_weight", "batchnorm_training_forward", "batchnorm_inference_forward", "batchnorm_backward",
        "softmax_cross_entropy", "add_batch_totals", "sgd_update", "gather_batch",
    ]

    static let tolerance: Float = 1e-5

    @Test func everyKernelIsTested() {
        #expect(Set(KernelSources.kernelNames) == Self.tested)
        #expect(KernelSources.kernelNames.count == Set(KernelSources.kernelNames).count, "a kernel name is defined twice")
    }

    // MARK: Convolution

    /// LeNet's two convolutions and random ones: 1-4 channels in, 1-5 out, 4-12 pixels a side,
    /// kernels 1, 3 or 5, stride 1-2, padding 0-2.
    static func convolutions() -> [(batch: Int, geometry: ConvGeometry)] {
        var random = TestRandom(seed: 15)
        var cases: [(Int, ConvGeometry)] = [
            (3, ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, padding: 2)),
            (2, ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5)),
        ]
        while cases.count < 8 {
            let kernel = [1, 3, 5][random.int(below: 3)]
            let g = ConvGeometry(inChannels: 1 + random.int(below: 4), outChannels: 1 + random.int(below: 5),
                                 height: 4 + random.int(below: 9), width: 4 + random.int(below: 9), kernel: kernel,
                                 stride: 1 + random.int(below: 2), padding: random.int(below: 3))
            guard g.height + 2 * g.padding >= kernel, g.width + 2 * g.padding >= kernel else { continue }
            cases.append((1 + random.int(below: 4), g))
        }
        return cases
    }

    static func convArguments(_ batch: Int, _ g: ConvGeometry) -> [GPUArgument] {
        [.int(batch), .int(g.inChannels), .int(g.height), .int(g.width), .int(g.outChannels), .int(g.kernel),
         .int(g.stride), .int(g.padding), .int(g.outHeight), .int(g.outWidth)]
    }

    @Test func convolutionForwardMatchesTheDirectReference() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        for (batch, g) in Self.convolutions() {
            var random = TestRandom(seed: UInt64(g.patchSize * 31 + batch))
            let input = random.floats(batch * g.inputSize), weight = random.floats(g.outChannels * g.patchSize)
            let bias = random.floats(g.outChannels)
            var expected = [Float](repeating: 0, count: batch * g.outputSize)
            input.withUnsafeBufferPointer { x in
                expected.withUnsafeMutableBufferPointer { y in
                    for image in 0..<batch {
                        conv2dForwardReference(output: y.baseAddress! + image * g.outputSize, image: x.baseAddress! + image * g.inputSize,
                                               weight: weight, bias: bias, g)
                    }
                }
            }
            let output = try gpu.zeros(expected.count)
            try gpu.run("conv2d_forward", [.buffer(output), .buffer(gpu.upload(input)), .buffer(gpu.upload(weight)),
                                           .buffer(gpu.upload(bias))] + Self.convArguments(batch, g), items: expected.count)
            let difference = maxRelativeDifference(try gpu.floats(output, expected.count), expected)
            #expect(difference < Self.tolerance, "\(g) batch \(batch): \(difference)")
        }
    }

    @Test func convolutionBackwardMatchesTheCPU() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        for (batch, g) in Self.convolutions() {
            var random = TestRandom(seed: UInt64(g.patchSize * 17 + batch))
            let input = random.floats(batch * g.inputSize), weight = random.floats(g.outChannels * g.patchSize)
            let bias = random.floats(g.outChannels), outputGrad = random.floats(batch * g.outputSize)
            // The CPU: forward (its im2col columns are what backward reads), then backward.
            var output = [Float](repeating: 0, count: batch * g.outputSize)
            var columns = [Float](repeating: 0, count: g.patchSize * batch * g.outPixels)
            var padded = [Float](repeating: 0, count: g.paddedInputSize)
            conv2dForward(output: &output, columns: &columns, padded: &padded, input: input, images: batch,
                          weight: weight, bias: bias, g)
            var weightGrad = [Float](repeating: 0, count: weight.count), biasGrad = [Float](repeating: 0, count: bias.count)
            var inputGrad = [Float](repeating: 0, count: input.count)
            var rows = [Float](repeating: 0, count: batch * g.outputSize)
            var columnGrad = [Float](repeating: 0, count: g.columnGradScratchSize)
            conv2dBackward(weightGrad: &weightGrad, biasGrad: &biasGrad, inputGrad: &inputGrad, outputGradRows: &rows,
                           columnGrad: &columnGrad, outputGrad: outputGrad, columns: columns,
                           images: batch, weight: weight, g)

            let dy = try gpu.upload(outputGrad), x = try gpu.upload(input), w = try gpu.upload(weight)
            let gpuInputGrad = try gpu.zeros(input.count), gpuWeightGrad = try gpu.zeros(weight.count)
            let gpuBiasGrad = try gpu.zeros(bias.count)
            try gpu.run("conv2d_backward_input", [.buffer(gpuInputGrad), .buffer(dy), .buffer(w)] + Self.convArguments(batch, g),
                        items: input.count)
            try gpu.runGroups("conv2d_backward_weight", [.buffer(gpuWeightGrad), .buffer(gpuBiasGrad), .buffer(dy), .buffer(x)]
                                  + Self.convArguments(batch, g), groups: weight.count + bias.count)
            let differences = [maxRelativeDifference(try gpu.floats(gpuInputGrad, input.count), inputGrad),
                               maxRelativeDifference(try gpu.floats(gpuWeightGrad, weight.count), weightGrad),
                               maxRelativeDifference(try gpu.floats(gpuBiasGrad, bias.count), biasGrad)]
            // A weight's gradient sums batch x OH x OW products (2,352 for conv1 here), in
            // another order than the CPU's GEMM: float rounding reaches ~1e-5 of the total.
            #expect(differences[0] < Self.tolerance && differences[1] < 5e-5 && differences[2] < 5e-5,
                    "\(g) batch \(batch): input, weight, bias \(differences)")
        }
    }

    /// Sums in a fixed order: the same inputs give the same bits on every run.
    @Test func reductionsAreBitIdenticalFromRunToRun() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        let (batch, g) = Self.convolutions()[1]
        var random = TestRandom(seed: 5)
        let dy = try gpu.upload(random.floats(batch * g.outputSize)), x = try gpu.upload(random.floats(batch * g.inputSize))
        var results: [[Float]] = []
        for _ in 0..<3 {
            let weightGrad = try gpu.zeros(g.outChannels * g.patchSize), biasGrad = try gpu.zeros(g.outChannels)
            try gpu.runGroups("conv2d_backward_weight", [.buffer(weightGrad), .buffer(biasGrad), .buffer(dy), .buffer(x)]
                                  + Self.convArguments(batch, g), groups: g.outChannels * g.patchSize + g.outChannels)
            results.append(try gpu.floats(weightGrad, g.outChannels * g.patchSize) + gpu.floats(biasGrad, g.outChannels))
        }
        #expect(results.allSatisfy { $0.map(\.bitPattern) == results[0].map(\.bitPattern) })
    }

    // MARK: Pooling

    @Test func maxPool2x2MatchesTheCPUKernels() throws {
        let cases = [(planes: 5, height: 28, width: 28, rectify: false), (planes: 7, height: 10, width: 10, rectify: true),
                      (planes: 3, height: 6, width: 4, rectify: true), (planes: 4, height: 8, width: 12, rectify: false)]
        for c in cases { try checkMaxPool2x2MatchesTheCPUKernels(planes: c.planes, height: c.height, width: c.width, rectify: c.rectify) }
    }

    func checkMaxPool2x2MatchesTheCPUKernels(planes: Int, height: Int, width: Int, rectify: Bool) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: UInt64(planes * height * width))
        var input = random.floats(planes * height * width)
        input[3] = input[2]  // a tie: the first maximum must win on both sides
        let outputs = planes * (height / 2) * (width / 2)
        var output = [Float](repeating: 0, count: outputs), choice = [UInt8](repeating: 9, count: outputs)
        maxPool2x2Forward(output: &output, choice: &choice, input: input, planes: planes, height: height, width: width,
                          rectify: rectify)
        let outputGrad = random.floats(outputs)
        var inputGrad = [Float](repeating: 7, count: input.count)
        maxPool2x2Backward(inputGrad: &inputGrad, outputGrad: outputGrad, choice: choice, planes: planes, height: height, width: width)

        let gpuOutput = try gpu.zeros(outputs), gpuChoice = try gpu.runtime.allocate(bytes: outputs)
        let gpuInputGrad = try gpu.zeros(input.count)
        try gpu.run("maxpool_forward", [.buffer(gpuOutput), .buffer(gpuChoice), .buffer(gpu.upload(input)), .int(planes),
                                        .int(height), .int(width), .int(2), .int(rectify ? 1 : 0)], items: outputs)
        try gpu.run("maxpool_backward", [.buffer(gpuInputGrad), .buffer(gpu.upload(outputGrad)), .buffer(gpuChoice),
                                         .int(planes), .int(height), .int(width), .int(2)], items: input.count)
        #expect(try gpu.floats(gpuOutput, outputs) == output)
        #expect(try gpu.bytes(gpuChoice, outputs) == choice)
        #expect(try gpu.floats(gpuInputGrad, input.count) == inputGrad)
    }

    /// Other windows, and planes the window does not divide, against the plain references.
    @Test func maxPoolOfAnySizeMatchesTheReference() throws {
        let cases = [(planes: 3, height: 9, width: 9, size: 3), (planes: 2, height: 7, width: 5, size: 2)]
        for c in cases { try checkMaxPoolOfAnySizeMatchesTheReference(planes: c.planes, height: c.height, width: c.width, size: c.size) }
    }

    func checkMaxPoolOfAnySizeMatchesTheReference(planes: Int, height: Int, width: Int, size: Int) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: UInt64(height * 10 + size))
        let input = random.floats(planes * height * width)
        let outputs = planes * (height / size) * (width / size)
        var output = [Float](repeating: 0, count: outputs)
        maxPoolForwardReference(output: &output, input: input, planes: planes, height: height, width: width, size: size)
        let outputGrad = random.floats(outputs)
        var inputGrad = [Float](repeating: 7, count: input.count)
        maxPoolBackwardReference(inputGrad: &inputGrad, outputGrad: outputGrad, input: input, output: output,
                                 planes: planes, height: height, width: width, size: size)
        let gpuOutput = try gpu.zeros(outputs), gpuChoice = try gpu.runtime.allocate(bytes: outputs)
        let gpuInputGrad = try gpu.zeros(input.count)
        try gpu.run("maxpool_forward", [.buffer(gpuOutput), .buffer(gpuChoice), .buffer(gpu.upload(input)), .int(planes),
                                        .int(height), .int(width), .int(size), .int(0)], items: outputs)
        try gpu.run("maxpool_backward", [.buffer(gpuInputGrad), .buffer(gpu.upload(outputGrad)), .buffer(gpuChoice),
                                         .int(planes), .int(height), .int(width), .int(size)], items: input.count)
        #expect(try gpu.floats(gpuOutput, outputs) == output)
        #expect(try gpu.floats(gpuInputGrad, input.count) == inputGrad)
    }

    // MARK: Elementwise

    @Test func reluAndProductMatchTheCPU() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: 3)
        let count = 1001
        var input = random.floats(count)
        input[10] = 0
        let outputGrad = random.floats(count)
        var output = [Float](repeating: 0, count: count), inputGrad = output, product = output
        reluForward(output: &output, input: input, count: count)
        reluBackward(inputGrad: &inputGrad, outputGrad: outputGrad, output: output, count: count)
        multiply(&product, input, outputGrad, count: count)

        let x = try gpu.upload(input), dy = try gpu.upload(outputGrad)
        let y = try gpu.zeros(count), dx = try gpu.zeros(count), xy = try gpu.zeros(count)
        try gpu.run("relu_forward", [.buffer(y), .buffer(x), .int(count)], items: count)
        try gpu.run("relu_backward", [.buffer(dx), .buffer(dy), .buffer(y), .int(count)], items: count)
        try gpu.run("multiply", [.buffer(xy), .buffer(x), .buffer(dy), .int(count)], items: count)
        #expect(try gpu.floats(y, count) == output)
        #expect(try gpu.floats(dx, count) == inputGrad)
        #expect(try gpu.floats(xy, count) == product)
    }

    /// The same Philox keys give the CPU's masks exactly, for any seed, step (past 2^32
    /// too), layer and length (not a multiple of 4).
    @Test func dropoutMatchesTheCPUMaskExactly() throws {
        let cases = [(count: 1001, p: Float(0.5), seed: UInt64(1), step: UInt64(0), layer: 0),
                      (count: 64, p: 0.25, seed: 0xDEAD_BEEF_0123_4567, step: 5_000_000_123, layer: 1),
                      (count: 7, p: 0.9, seed: 42, step: 17, layer: 2)]
        for c in cases { try checkDropoutMatchesTheCPUMaskExactly(count: c.count, p: c.p, seed: c.seed, step: c.step, layer: c.layer) }
    }

    func checkDropoutMatchesTheCPUMaskExactly(count: Int, p: Float, seed: UInt64, step: UInt64, layer: Int) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: 8)
        let input = random.floats(count)
        let key = StepKey(seed: seed, step: step)
        var mask = [Float](repeating: 0, count: count), output = mask
        dropoutMask(&mask, count: count, p: p, key: key, layer: layer)
        multiply(&output, input, mask, count: count)

        let gpuMask = try gpu.zeros(count), gpuOutput = try gpu.zeros(count)
        try gpu.run("dropout_forward", [.buffer(gpuOutput), .buffer(gpuMask), .buffer(gpu.upload(input)), .int(count),
                                        .float(p), .float(1 / (1 - p)),
                                        .uint(UInt32(truncatingIfNeeded: seed)), .uint(UInt32(truncatingIfNeeded: seed >> 32)),
                                        .uint(UInt32(truncatingIfNeeded: step)), .uint(UInt32(truncatingIfNeeded: step >> 32)),
                                        .uint(UInt32(layer))], items: (count + 3) / 4)
        #expect(try gpu.floats(gpuMask, count) == mask)
        #expect(try gpu.floats(gpuOutput, count) == output)
    }

    // MARK: Linear

    @Test func linearMatchesTheCPU() throws {
        let cases = [(batch: 32, inFeatures: 400, outFeatures: 120), (batch: 3, inFeatures: 84, outFeatures: 10),
                      (batch: 5, inFeatures: 7, outFeatures: 13)]
        for c in cases { try checkLinearMatchesTheCPU(batch: c.batch, inFeatures: c.inFeatures, outFeatures: c.outFeatures) }
    }

    func checkLinearMatchesTheCPU(batch: Int, inFeatures: Int, outFeatures: Int) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: UInt64(inFeatures + outFeatures))
        let input = random.floats(batch * inFeatures), weight = random.floats(outFeatures * inFeatures)
        let bias = random.floats(outFeatures), outputGrad = random.floats(batch * outFeatures)
        var output = [Float](repeating: 0, count: batch * outFeatures)
        var weightGrad = [Float](repeating: 0, count: weight.count), biasGrad = [Float](repeating: 0, count: outFeatures)
        var inputGrad = [Float](repeating: 0, count: input.count)
        linearForward(output: &output, input: input, weight: weight, bias: bias, batch: batch,
                      inFeatures: inFeatures, outFeatures: outFeatures)
        linearBackward(weightGrad: &weightGrad, biasGrad: &biasGrad, inputGrad: &inputGrad, outputGrad: outputGrad,
                       input: input, weight: weight, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)

        let x = try gpu.upload(input), w = try gpu.upload(weight), dy = try gpu.upload(outputGrad)
        let y = try gpu.zeros(output.count), dx = try gpu.zeros(input.count)
        let dw = try gpu.zeros(weight.count), db = try gpu.zeros(outFeatures)
        let sizes: [GPUArgument] = [.int(batch), .int(inFeatures), .int(outFeatures)]
        try gpu.run("linear_forward", [.buffer(y), .buffer(x), .buffer(w), .buffer(gpu.upload(bias))] + sizes, items: output.count)
        try gpu.run("linear_backward_input", [.buffer(dx), .buffer(dy), .buffer(w)] + sizes, items: input.count)
        try gpu.run("linear_backward_weight", [.buffer(dw), .buffer(db), .buffer(dy), .buffer(x)] + sizes,
                    items: weight.count + outFeatures)
        let differences = [maxRelativeDifference(try gpu.floats(y, output.count), output),
                           maxRelativeDifference(try gpu.floats(dx, input.count), inputGrad),
                           maxRelativeDifference(try gpu.floats(dw, weight.count), weightGrad),
                           maxRelativeDifference(try gpu.floats(db, outFeatures), biasGrad)]
        #expect(differences.allSatisfy { $0 < Self.tolerance }, "output, input, weight, bias: \(differences)")
    }

    // MARK: BatchNorm

    @Test func batchNormMatchesTheCPU() throws {
        let cases = [(batch: 4, channels: 6, pixels: 784), (batch: 3, channels: 16, pixels: 100),
                      (batch: 5, channels: 2, pixels: 1), (batch: 1, channels: 3, pixels: 9)]
        for c in cases { try checkBatchNormMatchesTheCPU(batch: c.batch, channels: c.channels, pixels: c.pixels) }
    }

    func checkBatchNormMatchesTheCPU(batch: Int, channels: Int, pixels: Int) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: UInt64(batch * channels * pixels))
        let count = batch * channels * pixels
        let input = random.floats(count, in: -2...3), gamma = random.floats(channels, in: 0.5...1.5)
        let beta = random.floats(channels), outputGrad = random.floats(count)
        let startMean = random.floats(channels), startVar = random.floats(channels, in: 0.5...2)
        let shape = BatchNormShape(batch: batch, channels: channels, pixels: pixels)
        var output = [Float](repeating: 0, count: count), normalized = output, inputGrad = output, evaluated = output
        var inverseStd = [Float](repeating: 0, count: channels), gammaGrad = inverseStd, betaGrad = inverseStd
        var runningMean = startMean, runningVar = startVar
        batchNormTrainingForward(output: &output, normalized: &normalized, inverseStd: &inverseStd, input: input,
                                 gamma: gamma, beta: beta, runningMean: &runningMean, runningVar: &runningVar,
                                 momentum: 0.1, epsilon: 1e-5, shape)
        batchNormBackward(inputGrad: &inputGrad, gammaGrad: &gammaGrad, betaGrad: &betaGrad, outputGrad: outputGrad,
                          normalized: normalized, inverseStd: inverseStd, gamma: gamma, shape)
        batchNormInferenceForward(output: &evaluated, input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                  runningVar: runningVar, epsilon: 1e-5, shape)

        let x = try gpu.upload(input), g = try gpu.upload(gamma), b = try gpu.upload(beta)
        let y = try gpu.zeros(count), xhat = try gpu.zeros(count), invStd = try gpu.zeros(channels)
        let mean = try gpu.upload(startMean), variance = try gpu.upload(startVar)
        let dx = try gpu.zeros(count), dGamma = try gpu.zeros(channels), dBeta = try gpu.zeros(channels)
        let evaluation = try gpu.zeros(count)
        let sizes: [GPUArgument] = [.int(batch), .int(channels), .int(pixels)]
        try gpu.runGroups("batchnorm_training_forward", [.buffer(y), .buffer(xhat), .buffer(invStd), .buffer(x), .buffer(g),
                                                         .buffer(b), .buffer(mean), .buffer(variance), .float(0.1),
                                                         .float(1e-5)] + sizes, groups: channels)
        try gpu.runGroups("batchnorm_backward", [.buffer(dx), .buffer(dGamma), .buffer(dBeta), .buffer(gpu.upload(outputGrad)),
                                                 .buffer(xhat), .buffer(invStd), .buffer(g)] + sizes, groups: channels)
        try gpu.run("batchnorm_inference_forward", [.buffer(evaluation), .buffer(x), .buffer(g), .buffer(b), .buffer(mean),
                                                    .buffer(variance), .float(1e-5)] + sizes, items: count)
        let named: [(String, GPUBuffer, [Float])] = [
            ("output", y, output), ("normalized", xhat, normalized), ("inverseStd", invStd, inverseStd),
            ("runningMean", mean, runningMean), ("runningVar", variance, runningVar), ("inputGrad", dx, inputGrad),
            ("gammaGrad", dGamma, gammaGrad), ("betaGrad", dBeta, betaGrad), ("evaluation", evaluation, evaluated),
        ]
        for (name, buffer, expected) in named {
            let difference = maxRelativeDifference(try gpu.floats(buffer, expected.count), expected)
            // Sums of 3,000 values in another order: a few float ulps of the total (gradients near 0 are absolute).
            #expect(difference < 1e-4, "\(name): \(difference)")
        }
    }

    // MARK: Loss, totals, SGD, gathering

    @Test func softmaxCrossEntropyAndTotalsMatchTheCPU() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: 11)
        let classes = 10
        let lossTotals = try gpu.zeros(2), correctTotal = try gpu.zeros(1)
        var expectedTotals = StepTotals.zero
        for batch in [32, 7, 1] {
            let logits = random.floats(batch * classes, in: -5...5)
            let labels = (0..<batch).map { _ in Int32(random.int(below: classes)) }
            var grad = [Float](repeating: 0, count: logits.count)
            let result = softmaxCrossEntropy(logitsGrad: &grad, logits: logits, labels: labels, batch: batch, classes: classes)
            expectedTotals.add(batchLoss: result.loss, correct: result.correct, images: batch)

            let gpuGrad = try gpu.zeros(logits.count), rowLoss = try gpu.zeros(batch), rowCorrect = try gpu.zeros(batch)
            try gpu.run("softmax_cross_entropy", [.buffer(gpuGrad), .buffer(rowLoss), .buffer(rowCorrect),
                                                  .buffer(gpu.upload(logits)), .buffer(gpu.upload(labels)), .int(batch),
                                                  .int(classes), .float(1 / Float(batch)), .int(1)], items: batch)
            try gpu.run("add_batch_totals", [.buffer(lossTotals), .buffer(correctTotal), .buffer(rowLoss), .buffer(rowCorrect),
                                             .int(batch)], items: 1, groupSize: 1)
            let rowLosses = try gpu.floats(rowLoss, batch)
            let meanLoss = rowLosses.reduce(0, +) / Float(batch)
            #expect(abs(meanLoss - result.loss) < 1e-5 * max(1, result.loss), "batch \(batch): \(meanLoss) vs \(result.loss)")
            #expect(Int(try gpu.ints(rowCorrect, batch).reduce(0, +)) == result.correct)
            #expect(maxRelativeDifference(try gpu.floats(gpuGrad, grad.count), grad) < Self.tolerance)
        }
        let totals = try gpu.floats(lossTotals, 2)
        #expect(abs(Double(totals[0]) - expectedTotals.lossSum) < 1e-5 * expectedTotals.lossSum)
        #expect(Int(try gpu.ints(correctTotal, 1)[0]) == expectedTotals.correct)
    }

    @Test(arguments: [SGD(learningRate: 0.01), SGD(learningRate: 0.05, momentum: 0.9), SGD(learningRate: 0.1, momentum: 0.5, weightDecay: 1e-3)])
    func sgdUpdateMatchesTheCPU(settings: SGD) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: 21)
        let count = 1234
        var values = random.floats(count), velocity = random.floats(count)
        let gradients = random.floats(count)
        let w = try gpu.upload(values), v = try gpu.upload(velocity), g = try gpu.upload(gradients)
        for firstStep in [true, false] {
            sgdUpdate(values: &values, velocity: &velocity, gradients: gradients, count: count, settings, firstStep: firstStep)
            try gpu.run("sgd_update", [.buffer(w), .buffer(v), .buffer(g), .int(count), .float(settings.learningRate),
                                       .float(settings.momentum), .float(settings.weightDecay), .int(firstStep ? 1 : 0)],
                        items: count)
        }
        #expect(maxRelativeDifference(try gpu.floats(w, count), values) < Self.tolerance)
        if settings.momentum != 0 { #expect(maxRelativeDifference(try gpu.floats(v, count), velocity) < Self.tolerance) }
    }

    @Test func gatheringABatchFromBytesMatchesTheCPU() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        var random = TestRandom(seed: 4)
        let count = 50, pixels = DataSplit.pixelsPerImage
        let split = try random.split(name: "train", count: count)
        var order = (0..<count).map { Int32($0) }
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, random.int(below: i + 1)) }
        let range = 7..<27
        var images = [Float](repeating: 0, count: range.count * pixels), labels = [Int32](repeating: 0, count: range.count)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                split.gather(order: order, range: range, images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!)
            }
        }
        let gpuImages = try gpu.zeros(images.count), gpuLabels = try gpu.zeros(labels.count)
        try gpu.run("gather_batch", [.buffer(gpuImages), .buffer(gpuLabels), .buffer(gpu.upload(split.pixels)),
                                     .buffer(gpu.upload(split.labels)), .buffer(gpu.upload(order)), .int(range.lowerBound),
                                     .int(range.count), .int(pixels)], items: images.count)
        #expect(try gpu.floats(gpuImages, images.count) == images)
        #expect(try gpu.ints(gpuLabels, labels.count) == labels)
    }
}
