final class LinearLayer: Layer {
    let inFeatures, outFeatures: Int
    let weight, bias, weightGrad, biasGrad: UnsafeMutablePointer<Float>

    init(name: String, inFeatures: Int, outFeatures: Int, store: ParameterStore) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightGrad = store.gradient("\(name).weight")
        biasGrad = store.gradient("\(name).bias")
    }

    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, key: StepKey) {
        linearForward(output: output, input: input, weight: weight, bias: bias,
                      batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        linearBackward(weightGrad: weightGrad, biasGrad: biasGrad, inputGrad: inputGrad, outputGrad: outputGrad,
                       input: input, weight: weight, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
    }
}
