/// BatchNorm2d. Training needs the whole batch's statistics, so its calls come in phases
/// with a barrier between them (see `Layer`): forward (1) each slice sums its images per
/// channel, (2) each slice takes the batch mean from all slices' sums, in slice order, and
/// sums its squared deviations from it, (3) each slice takes the variance the same way and
/// normalises its images; backward (1) each slice writes its Σdy and Σdy·x̂ per channel as
/// its partials of the bias and weight gradients, (2) each slice adds all slices' partials
/// in slice order and writes its images' input gradients. Every slice computes the same
/// batch figures from the same numbers in the same order: no thread count changes them.
final class BatchNorm2dLayer: Layer {
    let name: String
    let channels, pixels: Int
    let momentum: Float = 0.1, epsilon: Float = 1e-5
    let gamma, beta, runningMean, runningVar: UnsafeMutablePointer<Float>
    /// Where the weight (γ) and bias (β) gradients sit in the gradient block.
    let gammaOffset, betaOffset: Int
    /// Floats between one slice's partials and the next's (the gradient block's size).
    let partialStride: Int
    let normalized: FloatBuffer   // [maxBatch, C, H, W]: x̂ from the training forward
    let sums: FloatBuffer         // [batchSlices, C]: Σx of each slice's images
    let squares: FloatBuffer      // [batchSlices, C]: Σ(x − mean)² of each slice's images
    let means: FloatBuffer        // [batchSlices, C]: the batch mean, each slice's own copy
    let inverseStd: FloatBuffer   // [batchSlices, C]: 1/√(var + ε), each slice's own copy, kept for backward

    init(name: String, inputShape: [Int], store: ParameterStore, maxBatch: Int) {
        self.name = name
        channels = inputShape[0]
        pixels = inputShape[1] * inputShape[2]
        gamma = store.value("\(name).weight")
        beta = store.value("\(name).bias")
        gammaOffset = store.gradient("\(name).weight") - store.gradients.pointer
        betaOffset = store.gradient("\(name).bias") - store.gradients.pointer
        partialStride = store.parameterCount
        runningMean = store.buffer("\(name).running_mean")
        runningVar = store.buffer("\(name).running_var")
        normalized = FloatBuffer(count: maxBatch * channels * pixels)
        sums = FloatBuffer(count: batchSlices * channels)
        squares = FloatBuffer(count: batchSlices * channels)
        means = FloatBuffer(count: batchSlices * channels)
        inverseStd = FloatBuffer(count: batchSlices * channels)
    }

    /// The floats `normalized` and the per-slice sums take.
    static func scratchFloats(inputShape: [Int], maxBatch: Int) -> Int {
        let channels = inputShape[0], pixels = inputShape[1] * inputShape[2]
        return maxBatch * channels * pixels + 4 * batchSlices * channels
    }

    func forwardPhases(training: Bool) -> Int { training ? 3 : 1 }
    var backwardPhases: Int { 2 }

    /// Σ over slices of `perSlice` [batchSlices, C] at channel c, in slice order.
    @inline(__always)
    private func total(_ perSlice: UnsafePointer<Float>, channel c: Int, stride: Int) -> Float {
        var total: Float = 0
        for slice in 0..<batchSlices { total += perSlice[slice * stride + c] }
        return total
    }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        let shape = BatchNormShape(batch: images.count, channels: channels, pixels: pixels)
        let offset = images.lowerBound * channels * pixels
        guard training else {
            batchNormInferenceForward(output: output + offset, input: input + offset, gamma: gamma, beta: beta,
                                      runningMean: runningMean, runningVar: runningVar, epsilon: epsilon, shape)
            return
        }
        let n = Float(batch * pixels), c0 = slice * channels
        switch phase {
        case 0:
            batchNormSums(sums.pointer + c0, input: input + offset, shape)
        case 1:
            for c in 0..<channels { means.pointer[c0 + c] = total(sums.pointer, channel: c, stride: channels) / n }
            batchNormSquaredDeviations(squares.pointer + c0, input: input + offset, mean: means.pointer + c0, shape)
        default:
            for c in 0..<channels {
                let squareSum = total(squares.pointer, channel: c, stride: channels)
                let variance = squareSum / n
                inverseStd.pointer[c0 + c] = 1 / (variance + epsilon).squareRoot()
                if slice == 0 {
                    // Slice 0 (never empty) moves the running statistics, as PyTorch: unbiased variance.
                    let unbiased = n > 1 ? squareSum / (n - 1) : variance
                    let mean = means.pointer[c]
                    runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
                    runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
                }
            }
            batchNormNormalize(output: output + offset, normalized: normalized.pointer + offset, input: input + offset,
                               mean: means.pointer + c0, inverseStd: inverseStd.pointer + c0,
                               gamma: gamma, beta: beta, shape)
        }
    }

    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        // BatchNorm never comes first in a network, so an input gradient is always wanted.
        guard let inputGrad else { preconditionFailure("BatchNorm2d as the first layer is not supported") }
        let shape = BatchNormShape(batch: images.count, channels: channels, pixels: pixels)
        let offset = images.lowerBound * channels * pixels
        if phase == 0 {
            batchNormGradientSums(gammaGrad: partials + gammaOffset, betaGrad: partials + betaOffset,
                                  outputGrad: outputGrad + offset, normalized: normalized.pointer + offset, shape)
            return
        }
        let first = partials - slice * partialStride  // slice 0's partials
        let n = Float(batch * pixels)
        for c in 0..<channels {
            let sumDyXhat = total(first + gammaOffset, channel: c, stride: partialStride)
            let sumDy = total(first + betaOffset, channel: c, stride: partialStride)
            batchNormInputGradient(inputGrad + offset, outputGrad: outputGrad + offset,
                                   normalized: normalized.pointer + offset, channel: c,
                                   k: gamma[c] * inverseStd.pointer[slice * channels + c] / n,
                                   n: n, sumDy: sumDy, sumDyXhat: sumDyXhat, shape)
        }
    }
}
