final class BatchNorm2dLayer: Layer {
    let name: String
    let channels, pixels: Int
    let momentum: Float = 0.1, epsilon: Float = 1e-5
    let gamma, beta, gammaGrad, betaGrad, runningMean, runningVar: UnsafeMutablePointer<Float>
    unowned let store: ParameterStore
    let normalized: FloatBuffer   // [maxBatch, C, H, W]: x̂ from the training forward
    let inverseStd: FloatBuffer   // [C]

    init(name: String, inputShape: [Int], store: ParameterStore, maxBatch: Int) {
        self.name = name
        channels = inputShape[0]
        pixels = inputShape[1] * inputShape[2]
        gamma = store.value("\(name).weight")
        beta = store.value("\(name).bias")
        gammaGrad = store.gradient("\(name).weight")
        betaGrad = store.gradient("\(name).bias")
        runningMean = store.buffer("\(name).running_mean")
        runningVar = store.buffer("\(name).running_var")
        self.store = store
        normalized = FloatBuffer(count: maxBatch * channels * pixels)
        inverseStd = FloatBuffer(count: channels)
    }

    /// The floats `normalized` and `inverseStd` take.
    static func scratchFloats(inputShape: [Int], maxBatch: Int) -> Int {
        let channels = inputShape[0], pixels = inputShape[1] * inputShape[2]
        return maxBatch * channels * pixels + channels
    }

    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, key: StepKey) {
        let shape = BatchNormShape(batch: batch, channels: channels, pixels: pixels)
        if training {
            batchNormTrainingForward(output: output, normalized: normalized.pointer, inverseStd: inverseStd.pointer,
                                     input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                     runningVar: runningVar, momentum: momentum, epsilon: epsilon, shape)
            store.batchesTracked[name, default: 0] += 1
        } else {
            batchNormInferenceForward(output: output, input: input, gamma: gamma, beta: beta,
                                      runningMean: runningMean, runningVar: runningVar, epsilon: epsilon, shape)
        }
    }

    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        // The kernel computes parameter and input gradients from the same sums;
        // BatchNorm never comes first in a network, so an input gradient is always wanted.
        guard let inputGrad else { preconditionFailure("BatchNorm2d as the first layer is not supported") }
        batchNormBackward(inputGrad: inputGrad, gammaGrad: gammaGrad, betaGrad: betaGrad, outputGrad: outputGrad,
                          normalized: normalized.pointer, inverseStd: inverseStd.pointer, gamma: gamma,
                          BatchNormShape(batch: batch, channels: channels, pixels: pixels))
    }
}
