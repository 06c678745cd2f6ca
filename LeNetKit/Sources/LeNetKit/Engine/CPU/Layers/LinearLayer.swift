/// A fully-connected layer. Forward and the input gradient go slice by slice; the weight
/// and bias gradients are computed once the whole batch's output gradients are there
/// (`weightGradient(rows:)`, a block of output rows at a time, split across the threads
/// by rows): each entry is one sum over the batch, in the same order at any thread count,
/// and there is no per-slice partial of fc1's 48,000 weights to write and add up.
final class LinearLayer: Layer {
    let inFeatures, outFeatures: Int
    let weight, bias: UnsafeMutablePointer<Float>
    /// Where the weight and bias gradients sit in the gradient block.
    let weightOffset, biasOffset: Int

    init(name: String, inFeatures: Int, outFeatures: Int, store: ParameterStore) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightOffset = store.gradient("\(name).weight") - store.gradients.pointer
        biasOffset = store.gradient("\(name).bias") - store.gradients.pointer
    }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        guard !images.isEmpty else { return }
        linearForward(output: output + images.lowerBound * outFeatures, input: input + images.lowerBound * inFeatures,
                      weight: weight, bias: bias, batch: images.count, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// The input gradient of the slice's images only (see `weightGradient`).
    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        guard let inputGrad, !images.isEmpty else { return }
        linearInputGradient(inputGrad: inputGrad + images.lowerBound * inFeatures,
                            outputGrad: outputGrad + images.lowerBound * outFeatures, weight: weight,
                            batch: images.count, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// Writes the gradients of output rows `rows` (their weights and biases) over the whole
    /// batch into `gradients`, the gradient block.
    func weightGradient(rows: Range<Int>, gradients: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        outputGrad: UnsafePointer<Float>, batch: Int) {
        linearWeightGradient(weightGrad: gradients + weightOffset, biasGrad: gradients + biasOffset, rows: rows,
                             outputGrad: outputGrad, input: input, batch: batch,
                             inFeatures: inFeatures, outFeatures: outFeatures)
    }
}
