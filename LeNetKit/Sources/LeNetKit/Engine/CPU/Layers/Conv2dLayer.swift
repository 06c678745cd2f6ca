/// Conv2d over NCHW via im2col + GEMM. The batch is cut into `batchSlices` fixed
/// slices that run on the thread pool; each slice keeps its images' columns side
/// by side and produces its own weight-gradient partial, summed in slice order.
/// Evaluation unfolds one image at a time into a small, cache-resident scratch.
final class Conv2dLayer: Layer {
    let geometry: ConvGeometry
    let weight, bias, weightGrad, biasGrad: UnsafeMutablePointer<Float>
    let pool: ThreadPool
    let imagesPerSlice: Int
    let columns: FloatBuffer         // [batchSlices, C*K*K, imagesPerSlice*OH*OW], kept from forward for backward
    let outputGradRows: FloatBuffer  // [batchSlices, OC, imagesPerSlice*OH*OW] scratch
    let columnGrad: FloatBuffer      // [batchSlices, C*K*K, OH*OW] scratch for the input gradient
    let partialGrads: FloatBuffer    // [batchSlices, OC*C*K*K + OC] per-slice weight and bias gradients
    let padded: FloatBuffer          // [batchSlices, C, H+2p, W+2p] scratch for im2col and col2im (empty without padding)
    private let forwardWork = ConvForwardWork()
    private let backwardWork = ConvBackwardWork()

    init(name: String, geometry: ConvGeometry, store: ParameterStore, maxBatch: Int, trainable: Bool, pool: ThreadPool) {
        self.geometry = geometry
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightGrad = store.gradient("\(name).weight")
        biasGrad = store.gradient("\(name).bias")
        self.pool = pool
        // An inference-only network keeps no columns for a backward pass: one image's worth per slice.
        imagesPerSlice = trainable ? (maxBatch + batchSlices - 1) / batchSlices : 1
        let sliceColumns = geometry.patchSize * imagesPerSlice * geometry.outPixels
        columns = FloatBuffer(count: batchSlices * sliceColumns)
        let gradientSlices = trainable ? batchSlices : 0
        outputGradRows = FloatBuffer(count: gradientSlices * geometry.outChannels * imagesPerSlice * geometry.outPixels)
        columnGrad = FloatBuffer(count: gradientSlices * geometry.patchSize * geometry.outPixels)
        partialGrads = FloatBuffer(count: gradientSlices * (geometry.outChannels * geometry.patchSize + geometry.outChannels))
        padded = FloatBuffer(count: batchSlices * geometry.paddedInputSize)
        forwardWork.layer = self
        backwardWork.layer = self
    }

    private var sliceColumnsSize: Int { geometry.patchSize * imagesPerSlice * geometry.outPixels }

    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, key: StepKey) {
        forwardWork.arguments = (input, output, batch, training)
        pool.run(forwardWork, tasks: batchSlices)
    }

    /// One slice of the batch forward: in training its images' columns side by side
    /// (kept for backward), in evaluation one image at a time through a small scratch.
    fileprivate func forward(slice: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                             batch: Int, training: Bool) {
        let g = geometry, images = sliceRange(slice, batch: batch)
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

    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        backwardWork.arguments = (outputGrad, inputGrad, batch)
        pool.run(backwardWork, tasks: batchSlices)
        // Sum the slices in order: the same result at any thread count.
        let g = geometry
        let weightCount = g.outChannels * g.patchSize, partialSize = weightCount + g.outChannels
        weightGrad.update(from: partialGrads.pointer, count: weightCount)
        biasGrad.update(from: partialGrads.pointer + weightCount, count: g.outChannels)
        for slice in 1..<batchSlices {
            let partial = partialGrads.pointer + slice * partialSize
            for i in 0..<weightCount { weightGrad[i] += partial[i] }
            for i in 0..<g.outChannels { biasGrad[i] += partial[weightCount + i] }
        }
    }

    /// One slice's weight- and bias-gradient partial, and its images' input gradients.
    fileprivate func backward(slice: Int, outputGrad: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>?,
                              batch: Int) {
        let g = geometry, images = sliceRange(slice, batch: batch)
        let weightCount = g.outChannels * g.patchSize, partialSize = weightCount + g.outChannels
        let partial = partialGrads.pointer + slice * partialSize
        guard !images.isEmpty else { partial.update(repeating: 0, count: partialSize); return }
        conv2dBackward(weightGrad: partial, biasGrad: partial + weightCount,
                       inputGrad: inputGrad.map { $0 + images.lowerBound * g.inputSize },
                       outputGradRows: outputGradRows.pointer + slice * g.outChannels * imagesPerSlice * g.outPixels,
                       columnGrad: columnGrad.pointer + slice * g.patchSize * g.outPixels,
                       padded: g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil,
                       outputGrad: outputGrad + images.lowerBound * g.outputSize,
                       columns: columns.pointer + slice * sliceColumnsSize, images: images.count, weight: weight, g)
    }
}

/// The current forward call of a Conv2dLayer, as work for the thread pool.
private final class ConvForwardWork: ParallelWork {
    unowned(unsafe) var layer: Conv2dLayer!
    var arguments: (input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, training: Bool)?

    func run(task: Int) {
        guard let (input, output, batch, training) = arguments else { return }
        layer.forward(slice: task, input: input, output: output, batch: batch, training: training)
    }
}

/// The current backward call of a Conv2dLayer, as work for the thread pool.
private final class ConvBackwardWork: ParallelWork {
    unowned(unsafe) var layer: Conv2dLayer!
    var arguments: (outputGrad: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>?, batch: Int)?

    func run(task: Int) {
        guard let (outputGrad, inputGrad, batch) = arguments else { return }
        layer.backward(slice: task, outputGrad: outputGrad, inputGrad: inputGrad, batch: batch)
    }
}
