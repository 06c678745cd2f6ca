/// Conv2d over NCHW via im2col + GEMM. The batch is cut into `batchSlices` fixed
/// slices that run on the thread pool; each slice keeps its images' columns side
/// by side and produces its own weight-gradient partial, summed in slice order.
/// Evaluation unfolds one image at a time into a small, cache-resident scratch.
///
/// Columns take 25-150 floats per output pixel (138 KB an image for LeNet's two
/// convolutions), so a slice keeps them for at most `maxKeptImages` images. A larger
/// slice runs in chunks of that many: forward unfolds each chunk and lets it go, and
/// backward unfolds it again. Memory then stays bounded at any batch size, for one
/// more unfold per chunk, and batches up to `batchSlices * maxKeptImages` run as before.
final class Conv2dLayer: Layer {
    /// The most images whose columns one slice keeps (and the chunk size beyond that).
    static let maxKeptImages = 64

    let geometry: ConvGeometry
    let weight, bias, weightGrad, biasGrad: UnsafeMutablePointer<Float>
    let pool: ThreadPool
    /// Images per chunk: a slice's whole share of `maxBatch` when it fits, else `maxKeptImages`.
    let imagesPerChunk: Int
    let columns: FloatBuffer         // [batchSlices, C*K*K, imagesPerChunk*OH*OW], kept from forward for backward when one chunk holds the slice
    let outputGradRows: FloatBuffer  // [batchSlices, OC, imagesPerChunk*OH*OW] scratch
    let columnGrad: FloatBuffer      // [batchSlices, C*K*K, OH*OW] scratch for the input gradient
    let partialGrads: FloatBuffer    // [batchSlices, OC*C*K*K + OC] per-slice weight and bias gradients
    let padded: FloatBuffer          // [batchSlices, C, H+2p, W+2p] scratch for im2col and col2im (empty without padding)
    private let forwardWork = ConvForwardWork()
    private let backwardWork = ConvBackwardWork()

    /// `keptImages` is for tests: a smaller chunk than `maxKeptImages`, to compare both paths.
    init(name: String, geometry: ConvGeometry, store: ParameterStore, maxBatch: Int, trainable: Bool, pool: ThreadPool,
         keptImages: Int = Conv2dLayer.maxKeptImages) {
        self.geometry = geometry
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightGrad = store.gradient("\(name).weight")
        biasGrad = store.gradient("\(name).bias")
        self.pool = pool
        let sizes = Scratch(geometry, maxBatch: maxBatch, trainable: trainable, keptImages: keptImages)
        imagesPerChunk = sizes.imagesPerChunk
        columns = FloatBuffer(count: sizes.columns)
        outputGradRows = FloatBuffer(count: sizes.outputGradRows)
        columnGrad = FloatBuffer(count: sizes.columnGrad)
        partialGrads = FloatBuffer(count: sizes.partialGrads)
        padded = FloatBuffer(count: sizes.padded)
        forwardWork.layer = self
        backwardWork.layer = self
    }

    /// The scratch a layer allocates, in floats: what `init` allocates and `CPUNetwork.plannedBytes` counts.
    struct Scratch {
        let imagesPerChunk, columns, outputGradRows, columnGrad, partialGrads, padded: Int

        init(_ g: ConvGeometry, maxBatch: Int, trainable: Bool, keptImages: Int = Conv2dLayer.maxKeptImages) {
            // An inference-only network keeps no columns for a backward pass: one image's worth per slice.
            imagesPerChunk = trainable ? min((maxBatch + batchSlices - 1) / batchSlices, keptImages) : 1
            columns = batchSlices * g.patchSize * imagesPerChunk * g.outPixels
            let gradientSlices = trainable ? batchSlices : 0
            outputGradRows = gradientSlices * g.outChannels * imagesPerChunk * g.outPixels
            columnGrad = gradientSlices * g.patchSize * g.outPixels
            partialGrads = gradientSlices * (g.outChannels * g.patchSize + g.outChannels)
            padded = batchSlices * g.paddedInputSize
        }

        var floats: Int { columns + outputGradRows + columnGrad + partialGrads + padded }
    }

    private var sliceColumnsSize: Int { geometry.patchSize * imagesPerChunk * geometry.outPixels }

    /// The chunks of `images`, in order: one when the slice fits in a chunk.
    private func chunks(of images: Range<Int>) -> StrideTo<Int> {
        stride(from: images.lowerBound, to: images.upperBound, by: imagesPerChunk)
    }

    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, key: StepKey) {
        forwardWork.arguments = (input, output, batch, training)
        pool.run(forwardWork, tasks: batchSlices)
    }

    /// One slice of the batch forward: in training its images' columns side by side,
    /// a chunk at a time (the last one kept for backward), in evaluation one image at a
    /// time through a small scratch.
    fileprivate func forward(slice: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                             batch: Int, training: Bool) {
        let g = geometry, images = sliceRange(slice, batch: batch)
        let sliceColumns = columns.pointer + slice * sliceColumnsSize
        let slicePadded = g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil
        if training {
            for first in chunks(of: images) {
                let count = min(imagesPerChunk, images.upperBound - first)
                conv2dForward(output: output + first * g.outputSize, columns: sliceColumns,
                              padded: slicePadded, input: input + first * g.inputSize,
                              images: count, weight: weight, bias: bias, g)
            }
        } else {
            for image in images {
                conv2dForward(output: output + image * g.outputSize, columns: sliceColumns, padded: slicePadded,
                              input: input + image * g.inputSize, images: 1, weight: weight, bias: bias, g)
            }
        }
    }

    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        backwardWork.arguments = (input, outputGrad, inputGrad, batch)
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

    /// One slice's weight- and bias-gradient partial, and its images' input gradients,
    /// a chunk at a time: the partial is the chunks' sum, in chunk order.
    fileprivate func backward(slice: Int, input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                              inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        let g = geometry, images = sliceRange(slice, batch: batch)
        let weightCount = g.outChannels * g.patchSize, partialSize = weightCount + g.outChannels
        let partial = partialGrads.pointer + slice * partialSize
        guard !images.isEmpty else { partial.update(repeating: 0, count: partialSize); return }
        let sliceColumns = columns.pointer + slice * sliceColumnsSize
        let slicePadded = g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil
        // Forward kept the columns only when the slice was one chunk.
        let columnsKept = images.count <= imagesPerChunk
        for first in chunks(of: images) {
            let count = min(imagesPerChunk, images.upperBound - first)
            if !columnsKept {
                conv2dUnfold(columns: sliceColumns, padded: slicePadded, input: input + first * g.inputSize,
                             images: count, g)
            }
            conv2dBackward(weightGrad: partial, biasGrad: partial + weightCount,
                           inputGrad: inputGrad.map { $0 + first * g.inputSize },
                           outputGradRows: outputGradRows.pointer + slice * g.outChannels * imagesPerChunk * g.outPixels,
                           columnGrad: columnGrad.pointer + slice * g.patchSize * g.outPixels,
                           padded: slicePadded, outputGrad: outputGrad + first * g.outputSize,
                           columns: sliceColumns, images: count, weight: weight, g,
                           accumulate: first != images.lowerBound)
        }
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
    var arguments: (input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                    inputGrad: UnsafeMutablePointer<Float>?, batch: Int)?

    func run(task: Int) {
        guard let (input, outputGrad, inputGrad, batch) = arguments else { return }
        layer.backward(slice: task, input: input, outputGrad: outputGrad, inputGrad: inputGrad, batch: batch)
    }
}
