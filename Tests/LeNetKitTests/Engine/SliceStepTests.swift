import Foundation
@testable import LeNetKit
import Testing

/// A step as one parallel region (issue 14): each thread takes fixed slices of the batch
/// through every layer, the gradients are summed in a fixed order after one barrier. The
/// results must be the same bytes at any thread count, and the pieces the region is made
/// of must agree with the whole-batch kernels they replace.
@Suite struct SliceStepTests {
    /// Everything a step changes, as bytes: parameters, gradients, velocity, running
    /// statistics, batch counts, and the loss and correct totals.
    struct Outcome: Equatable {
        var values: [Float], gradients: [Float], velocity: [Float], buffers: [Float]
        var batchesTracked: [String: Int64]
        var loss: [UInt64], correct: Int
        var evaluationLogits: [Float]
    }

    static func train(_ variant: ModelVariant, threads: Int, batch: Int, steps: Int) -> Outcome {
        let definition = ModelDefinition.lenet(variant)
        var random = TestRandom(seed: 40)
        let images = random.floats(batch * 784, in: 0...1)
        let labels = (0..<batch).map { _ in Int32(random.int(below: 10)) }
        let network = CPUNetwork(definition, maxBatch: batch, threads: threads)
        network.initialize(seed: 41)
        network.optimizer = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
        var losses: [UInt64] = [], correct = 0
        for step in 0..<steps {
            network.inputs.update(from: images, count: images.count)
            network.labels.update(from: labels, count: batch)
            network.forward(batch: batch, training: true, key: StepKey(seed: 42, step: UInt64(step)))
            let result = network.lossAndLogitsGradient(batch: batch)
            network.backward(batch: batch)
            network.applyOptimizer()
            losses.append(UInt64(result.loss.bitPattern))
            correct += result.correct
        }
        let logits = Array(UnsafeBufferPointer(start: network.logits(batch: batch), count: batch * 10))
        let memory = network.memory
        return Outcome(values: memory.values.array, gradients: memory.gradients.array, velocity: memory.velocity.array,
                       buffers: memory.buffers.array, batchesTracked: memory.batchesTracked, loss: losses,
                       correct: correct, evaluationLogits: logits)
    }

    @Test(arguments: [ModelVariant.lenet, .lenetBN], [32, 5, 13])
    func stepsAreTheSameBytesAtAnyThreadCount(variant: ModelVariant, batch: Int) {
        let one = Self.train(variant, threads: 1, batch: batch, steps: 4)
        for threads in [2, 3, 8] {
            let other = Self.train(variant, threads: threads, batch: batch, steps: 4)
            #expect(other == one, "\(variant), batch \(batch): \(threads) threads differ from 1")
        }
    }

    /// `trainStep` (the fused region: update folded into the gradient tasks) against the
    /// same step taken part by part, and at 1 and 3 threads, through the Network API.
    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func fusedStepEqualsTheStepInParts(variant: ModelVariant) throws {
        var random = TestRandom(seed: 50)
        let split = try random.split(count: 96)
        var fused: [[Float]] = []
        for threads in [1, 3] {
            let network = CPUNetwork(.lenet(variant), maxBatch: 32, threads: threads)
            network.initialize(seed: 52)
            network.optimizer = SGD(learningRate: 0.05, momentum: 0.9)
            network.attach(split, as: .train)
            for step in 0..<3 { network.trainStep((step * 32)..<(step * 32 + 32), key: StepKey(seed: 1, step: UInt64(step))) }
            fused.append(network.memory.values.array + network.memory.buffers.array)
            #expect(network.totals(of: .train).batches == 3)
        }
        #expect(fused[0] == fused[1])
        // The same steps in parts.
        let parts = CPUNetwork(.lenet(variant), maxBatch: 32, threads: 2)
        parts.initialize(seed: 52)
        parts.optimizer = SGD(learningRate: 0.05, momentum: 0.9)
        parts.attach(split, as: .train)
        for step in 0..<3 {
            let range = (step * 32)..<(step * 32 + 32)
            split.gather(order: (0..<96).map { Int32($0) }, range: range, images: parts.inputs, labels: parts.labels)
            parts.trainStaged(batch: 32, key: StepKey(seed: 1, step: UInt64(step)))
        }
        #expect(parts.memory.values.array + parts.memory.buffers.array == fused[0])
    }

    /// The fully-connected weight gradient by blocks of rows equals the whole-layer backward.
    @Test func linearWeightGradientByRowsMatchesTheWholeBackward() {
        var random = TestRandom(seed: 60)
        let batch = 7, inFeatures = 37, outFeatures = 11
        let input = random.floats(batch * inFeatures), outputGrad = random.floats(batch * outFeatures)
        let weight = random.floats(outFeatures * inFeatures)
        var wholeW = [Float](repeating: 0, count: outFeatures * inFeatures), wholeB = [Float](repeating: 0, count: outFeatures)
        var wholeX = [Float](repeating: 0, count: batch * inFeatures)
        linearBackward(weightGrad: &wholeW, biasGrad: &wholeB, inputGrad: &wholeX, outputGrad: outputGrad, input: input,
                       weight: weight, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
        var rowsW = [Float](repeating: .nan, count: outFeatures * inFeatures), rowsB = [Float](repeating: .nan, count: outFeatures)
        for rows in [0..<3, 3..<4, 4..<11] {
            linearWeightGradient(weightGrad: &rowsW, biasGrad: &rowsB, rows: rows, outputGrad: outputGrad, input: input,
                                 batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
        }
        var slicedX = [Float](repeating: .nan, count: batch * inFeatures)
        slicedX.withUnsafeMutableBufferPointer { x in
            for images in [0..<2, 2..<7] {
                linearInputGradient(inputGrad: x.baseAddress! + images.lowerBound * inFeatures,
                                    outputGrad: outputGrad.withUnsafeBufferPointer { $0.baseAddress! } + images.lowerBound * outFeatures,
                                    weight: weight, batch: images.count, inFeatures: inFeatures, outFeatures: outFeatures)
            }
        }
        #expect(maxRelativeDifference(rowsW, wholeW) < 1e-5)
        #expect(maxRelativeDifference(rowsB, wholeB) < 1e-5)
        #expect(maxRelativeDifference(slicedX, wholeX) < 1e-5)
    }

    /// BatchNorm's phased kernels, put together over two slices, against the whole-batch kernels.
    @Test func batchNormInPiecesMatchesTheWholeBatchKernels() {
        var random = TestRandom(seed: 61)
        let batch = 5, channels = 3, pixels = 20, n = Float(batch * pixels)
        let whole = BatchNormShape(batch: batch, channels: channels, pixels: pixels)
        let input = random.floats(batch * channels * pixels, in: -2...3), dy = random.floats(input.count)
        let gamma = random.floats(channels, in: 0.5...1.5), beta = random.floats(channels)
        var output = [Float](repeating: 0, count: input.count), normalized = output, inverseStd = [Float](repeating: 0, count: channels)
        var runningMean = [Float](repeating: 0, count: channels), runningVar = [Float](repeating: 1, count: channels)
        batchNormTrainingForward(output: &output, normalized: &normalized, inverseStd: &inverseStd, input: input, gamma: gamma,
                                 beta: beta, runningMean: &runningMean, runningVar: &runningVar, momentum: 0.1,
                                 epsilon: 1e-5, whole)
        var dx = [Float](repeating: 0, count: input.count), dGamma = [Float](repeating: 0, count: channels), dBeta = dGamma
        batchNormBackward(inputGrad: &dx, gammaGrad: &dGamma, betaGrad: &dBeta, outputGrad: dy, normalized: normalized,
                          inverseStd: inverseStd, gamma: gamma, whole)

        let slices = [0..<2, 2..<5], plane = channels * pixels
        func shape(_ images: Range<Int>) -> BatchNormShape { BatchNormShape(batch: images.count, channels: channels, pixels: pixels) }
        var sums = [[Float]](repeating: [Float](repeating: 0, count: channels), count: 2), squares = sums
        for (s, images) in slices.enumerated() {
            batchNormSums(&sums[s], input: Array(input[(images.lowerBound * plane)..<(images.upperBound * plane)]), shape(images))
        }
        let mean = (0..<channels).map { c in (sums[0][c] + sums[1][c]) / n }
        for (s, images) in slices.enumerated() {
            batchNormSquaredDeviations(&squares[s], input: Array(input[(images.lowerBound * plane)..<(images.upperBound * plane)]),
                                       mean: mean, shape(images))
        }
        let invStd = (0..<channels).map { c in 1 / ((squares[0][c] + squares[1][c]) / n + 1e-5).squareRoot() }
        var pieceOutput = [Float](repeating: 0, count: input.count), pieceNormalized = pieceOutput
        var pieceDx = pieceOutput, gammaSums = sums, betaSums = sums
        for (s, images) in slices.enumerated() {
            let offset = images.lowerBound * plane, count = images.count * plane
            var out = [Float](repeating: 0, count: count), norm = out
            batchNormNormalize(output: &out, normalized: &norm, input: Array(input[offset..<(offset + count)]), mean: mean,
                               inverseStd: invStd, gamma: gamma, beta: beta, shape(images))
            pieceOutput.replaceSubrange(offset..<(offset + count), with: out)
            pieceNormalized.replaceSubrange(offset..<(offset + count), with: norm)
            batchNormGradientSums(gammaGrad: &gammaSums[s], betaGrad: &betaSums[s], outputGrad: Array(dy[offset..<(offset + count)]),
                                  normalized: norm, shape(images))
        }
        for (_, images) in slices.enumerated() {
            let offset = images.lowerBound * plane, count = images.count * plane
            var grad = [Float](repeating: 0, count: count)
            for c in 0..<channels {
                batchNormInputGradient(&grad, outputGrad: Array(dy[offset..<(offset + count)]),
                                       normalized: Array(pieceNormalized[offset..<(offset + count)]), channel: c,
                                       k: gamma[c] * invStd[c] / n, n: n, sumDy: betaSums[0][c] + betaSums[1][c],
                                       sumDyXhat: gammaSums[0][c] + gammaSums[1][c], shape(images))
            }
            pieceDx.replaceSubrange(offset..<(offset + count), with: grad)
        }
        #expect(maxRelativeDifference(pieceOutput, output) < 1e-5)
        #expect(maxRelativeDifference(pieceDx, dx) < 1e-4)
        #expect(maxRelativeDifference((0..<channels).map { gammaSums[0][$0] + gammaSums[1][$0] }, dGamma) < 1e-4)
        #expect(maxRelativeDifference((0..<channels).map { betaSums[0][$0] + betaSums[1][$0] }, dBeta) < 1e-4)
    }

    /// A dropout mask drawn slice by slice is the mask drawn whole.
    @Test func dropoutMaskBySlicesIsTheWholeMask() {
        let count = 4 * 84 + 3, key = StepKey(seed: 7, step: 11)
        var whole = [Float](repeating: -1, count: count), pieces = whole
        dropoutMask(&whole, count: count, p: 0.5, key: key, layer: 1)
        pieces.withUnsafeMutableBufferPointer { mask in
            for range in [0..<5, 5..<6, 6..<170, 170..<count] {
                dropoutMask(mask.baseAddress!, elements: range, p: 0.5, key: key, layer: 1)
            }
        }
        #expect(pieces == whole)
    }
}
