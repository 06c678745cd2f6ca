/// Conv2d over NCHW via im2col + GEMM, one slice of the batch per call: each slice keeps
/// its images' columns side by side and produces its own weight-gradient partial, which
/// the network sums in slice order. Evaluation unfolds one image at a time into a small,
/// cache-resident scratch.
final class Conv2dLayer: Layer {
    let geometry: ConvGeometry
    let weight, bias: UnsafeMutablePointer<Float>
    /// Where the weight and bias gradients sit in the gradient block (and in each slice's partials).
    let weightOffset, biasOffset: Int
    let imagesPerSlice: Int
    let columns: FloatBuffer         // [batchSlices, C*K*K, imagesPerSlice*OH*OW], kept from forward for backward
    let outputGradRows: FloatBuffer  // [batchSlices, OC, imagesPerSlice*OH*OW] scratch
    let columnGrad: FloatBuffer      // [batchSlices, C*K*K, OH*OW] scratch for the input gradient
    let padded: FloatBuffer          // [batchSlices, C, H+2p, W+2p] scratch for im2col and col2im (empty without padding)

    init(name: String, geometry: ConvGeometry, store: ParameterStore, maxBatch: Int, trainable: Bool) {
        self.geometry = geometry
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightOffset = store.gradient("\(name).weight") - store.gradients.pointer
        biasOffset = store.gradient("\(name).bias") - store.gradients.pointer
        // An inference-only network keeps no columns for a backward pass: one image's worth per slice.
        imagesPerSlice = trainable ? (maxBatch + batchSlices - 1) / batchSlices : 1
        let sliceColumns = geometry.patchSize * imagesPerSlice * geometry.outPixels
        columns = FloatBuffer(count: batchSlices * sliceColumns)
        let gradientSlices = trainable ? batchSlices : 0
        outputGradRows = FloatBuffer(count: gradientSlices * geometry.outChannels * imagesPerSlice * geometry.outPixels)
        columnGrad = FloatBuffer(count: gradientSlices * geometry.patchSize * geometry.outPixels)
        padded = FloatBuffer(count: batchSlices * geometry.paddedInputSize)
    }

    private var sliceColumnsSize: Int { geometry.patchSize * imagesPerSlice * geometry.outPixels }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        forward(slice: slice, images: images, input: input, output: output, training: training)
    }

    /// One slice of the batch forward: in training its images' columns side by side
    /// (kept for backward), in evaluation one image at a time through a small scratch.
    private func forward(slice: Int, images: Range<Int>, input: UnsafePointer<Float>,
                         output: UnsafeMutablePointer<Float>, training: Bool) {
        let g = geometry
        let sliceColumns = columns.pointer + slice * sliceColumnsSize
        let slicePadded = g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil
        if training {
            guard !images.isEmpty else { return }
            conv2dForward(output: output + images.lowerBound * g.outputSize, columns: sliceColumns,
                          padded: slicePadded, input: input + images.lowerBound * g.inputSize,
                          images: images.count, weight: weight, bias: bias, g)
        } else {
            for image in images {
                conv2dForward(output: output + image * g.outputSize, columns: sliceColumns, padded: slicePadded,
                              input: input + image * g.inputSize, images: 1, weight: weight, bias: bias, g)
            }
        }
    }

    /// One slice's weight- and bias-gradient partial, and its images' input gradients.
    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        let g = geometry
        guard !images.isEmpty else {
            // An empty slice adds nothing: its partial is zero.
            (partials + weightOffset).update(repeating: 0, count: g.outChannels * g.patchSize)
            (partials + biasOffset).update(repeating: 0, count: g.outChannels)
            return
        }
        conv2dBackward(weightGrad: partials + weightOffset, biasGrad: partials + biasOffset,
                       inputGrad: inputGrad.map { $0 + images.lowerBound * g.inputSize },
                       outputGradRows: outputGradRows.pointer + slice * g.outChannels * imagesPerSlice * g.outPixels,
                       columnGrad: columnGrad.pointer + slice * g.patchSize * g.outPixels,
                       padded: g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil,
                       outputGrad: outputGrad + images.lowerBound * g.outputSize,
                       columns: columns.pointer + slice * sliceColumnsSize, images: images.count, weight: weight, g)
    }
}
