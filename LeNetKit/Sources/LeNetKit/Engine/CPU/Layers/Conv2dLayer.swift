/// Conv2d over NCHW via im2col + GEMM, one slice of the batch per call: each slice keeps
/// its images' columns side by side and produces its own weight-gradient partial, which
/// the network sums in slice order. With stride 1 (both of LeNet's) it trains without
/// columns (`trainsWithoutColumns`): the direct forward, and the weight gradient from the
/// image read in place, with the output channels in the vector lanes where they fill them
/// (`conv2dAddWeightGradientInLanes`, conv2) or else the pixels (`conv2dAddWeightGradientDirect`,
/// conv1); with the channels in the lanes, the input gradient too where its kernel fits
/// (`conv2dInputGradientInLanes`), else Wᵀ · dOut and `col2im` an image at a time. Evaluation, with stride 1, reads each image in place
/// (`conv2dForwardDirect`: the same bits, no columns); with another stride it unfolds one
/// image at a time into a small, cache-resident scratch. A convolution evaluated by either
/// direct forward can also do the ReLU and 2x2 pool after it (`poolsInEvaluation`: the
/// network then skips those two layers in evaluation).
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
    let weight, bias: UnsafeMutablePointer<Float>
    /// Where the weight and bias gradients sit in the gradient block (and in each slice's partials).
    let weightOffset, biasOffset: Int
    /// Images per chunk: a slice's whole share of `maxBatch` when it fits, else `maxKeptImages`.
    let imagesPerChunk: Int
    let columns: FloatBuffer         // [batchSlices, C*K*K, imagesPerChunk*OH*OW], kept from forward for backward when one chunk holds the slice
    let outputGradRows: FloatBuffer  // [batchSlices, OC, imagesPerChunk*OH*OW] scratch
    let columnGrad: FloatBuffer      // [batchSlices, columnGradScratchSize] scratch for the input gradient ([C*K*K, OH*OW] and margins)
    let padded: FloatBuffer          // [batchSlices, C, H+2p, W+2p] scratch for im2col (empty without padding)
    let directSource: FloatBuffer    // [batchSlices, directSourceSize] the direct forward's padded image (zero borders)
    /// Where im2col's rows start in `directSource` (`directRowOffsets`); empty unless stride 1.
    let directOffsets: [Int]
    /// Whether evaluation uses `conv2dForwardChannelsInLanes` rather than `conv2dForwardDirect`.
    let channelsInLanes: Bool
    let laneWeights: FloatBuffer     // [batchSlices, C*K*K + 1, laneChannels] its weights transposed and bias, laid out per direct forward call (backward's input gradient reads them)
    let laneOutput: FloatBuffer      // [batchSlices, laneOutputSize] the channels-in-lanes forward's sums and windows, 16 channels of an image (empty without it)
    let pendingRows: FloatBuffer     // [batchSlices, OC, directPitch] the other direct forward's even output rows, when it pools (empty otherwise)
    /// Whether evaluation also does the ReLU and 2x2 max pool that follow (`rectifiedPool`),
    /// writing the pool's output [OC, OH/2, OW/2] an image; training is unchanged.
    let poolsInEvaluation: Bool
    /// Whether training uses the direct forward and a weight gradient without columns.
    let trainsWithoutColumns: Bool
    /// Whether that weight gradient has the output channels in the lanes.
    let trainsInLanes: Bool
    /// Whether the input gradient does too (`conv2dInputGradientInLanes`: no columns at all).
    let inputGradientInLanes: Bool
    let laneSums: FloatBuffer        // [batchSlices, C*K*K + 1, laneChannels] a slice's weight and bias gradient sums (lane layout)
    let laneTransposed: FloatBuffer  // [batchSlices, OH*OW, 16] an image's output gradient, channels in lanes
    let pitchedGrad: FloatBuffer     // [batchSlices, OC, OH, directPitch] an image's output gradient, rows a pitch apart

    /// `keptImages` is for tests: a smaller chunk than `maxKeptImages`, to compare both paths.
    init(name: String, geometry: ConvGeometry, store: ParameterStore, maxBatch: Int, trainable: Bool,
         poolsInEvaluation: Bool = false, keptImages: Int = Conv2dLayer.maxKeptImages) {
        precondition(!poolsInEvaluation || Scratch.evaluatesDirectly(geometry), "only the direct forwards pool")
        self.geometry = geometry
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightOffset = store.gradient("\(name).weight") - store.gradients.pointer
        biasOffset = store.gradient("\(name).bias") - store.gradients.pointer
        let sizes = Scratch(geometry, maxBatch: maxBatch, trainable: trainable, poolsInEvaluation: poolsInEvaluation,
                            keptImages: keptImages)
        imagesPerChunk = sizes.imagesPerChunk
        columns = FloatBuffer(count: sizes.columns)
        outputGradRows = FloatBuffer(count: sizes.outputGradRows)
        columnGrad = FloatBuffer(count: sizes.columnGrad)
        padded = FloatBuffer(count: sizes.padded)
        directSource = FloatBuffer(count: sizes.directSource)
        directOffsets = Scratch.evaluatesDirectly(geometry) ? directRowOffsets(geometry) : []
        channelsInLanes = Scratch.channelsInLanes(geometry)
        laneWeights = FloatBuffer(count: sizes.laneWeights)
        laneOutput = FloatBuffer(count: sizes.laneOutput)
        pendingRows = FloatBuffer(count: sizes.pendingRows)
        self.poolsInEvaluation = poolsInEvaluation
        trainsWithoutColumns = trainable && Scratch.evaluatesDirectly(geometry)
        trainsInLanes = trainsWithoutColumns && Scratch.trainsInLanes(geometry)
        inputGradientInLanes = trainsInLanes && inputGradientInLanesFits(geometry)
        laneSums = FloatBuffer(count: sizes.laneSums)
        laneTransposed = FloatBuffer(count: sizes.laneTransposed)
        pitchedGrad = FloatBuffer(count: sizes.pitchedGrad)
    }

    /// The scratch a layer allocates, in floats: what `init` allocates and `CPUNetwork.plannedBytes` counts.
    /// (The weight-gradient partials live in the network's per-slice gradient blocks.)
    struct Scratch {
        let imagesPerChunk, columns, outputGradRows, columnGrad, padded, directSource, laneWeights, laneOutput: Int
        let pendingRows: Int
        let laneSums, laneTransposed, pitchedGrad: Int

        /// Whether evaluation reads images in place (a direct forward) rather than unfolding them.
        static func evaluatesDirectly(_ g: ConvGeometry) -> Bool { g.stride == 1 }
        /// Whether that direct forward is `conv2dForwardChannelsInLanes`.
        static func channelsInLanes(_ g: ConvGeometry) -> Bool {
            evaluatesDirectly(g) && directForwardPutsChannelsInLanes(g)
        }
        /// Whether training's weight gradient has the channels in the lanes
        /// (`conv2dAddWeightGradientInLanes`): where the channels-in-lanes forward suits the
        /// convolution on a CPU with 32 vector registers, whatever this CPU's are, so that
        /// every CPU computes the same bits.
        static func trainsInLanes(_ g: ConvGeometry) -> Bool {
            evaluatesDirectly(g) && directForwardPutsChannelsInLanes(g, blocking: .wide)
        }

        init(_ g: ConvGeometry, maxBatch: Int, trainable: Bool, poolsInEvaluation: Bool,
             keptImages: Int = Conv2dLayer.maxKeptImages) {
            let direct = Scratch.evaluatesDirectly(g)
            let withoutColumns = trainable && direct, inLanes = withoutColumns && Scratch.trainsInLanes(g)
            let inputGradientInLanes = inLanes && inputGradientInLanesFits(g)
            let keepsColumns = trainable && !withoutColumns
            // An inference-only network keeps no columns for a backward pass: one image's worth
            // per slice, and none when evaluation reads images in place; nor does one that trains without them.
            imagesPerChunk = keepsColumns ? min((maxBatch + batchSlices - 1) / batchSlices, keptImages) : 1
            let unfolds = keepsColumns || !direct
            columns = unfolds ? batchSlices * g.patchSize * imagesPerChunk * g.outPixels : 0
            let gradientSlices = trainable ? batchSlices : 0
            outputGradRows = keepsColumns ? gradientSlices * g.outChannels * imagesPerChunk * g.outPixels : 0
            columnGrad = inputGradientInLanes ? 0 : gradientSlices * g.columnGradScratchSize
            padded = unfolds ? batchSlices * g.paddedInputSize : 0
            directSource = direct ? batchSlices * g.directSourceSize : 0
            laneWeights = direct ? batchSlices * g.laneWeightsSize : 0
            laneOutput = Scratch.channelsInLanes(g) ? batchSlices * g.laneOutputSize : 0
            pendingRows = poolsInEvaluation && !Scratch.channelsInLanes(g) ? batchSlices * g.directPendingSize : 0
            laneSums = inLanes ? batchSlices * g.laneWeightsSize : 0
            laneTransposed = inLanes ? batchSlices * g.outPixels * 16 : 0
            pitchedGrad = withoutColumns && !inLanes ? batchSlices * g.outChannels * g.outHeight * g.directPitch : 0
        }

        var floats: Int {
            columns + outputGradRows + columnGrad + padded + directSource + laneWeights + laneOutput + pendingRows
                + laneSums + laneTransposed + pitchedGrad
        }
    }

    private var sliceColumnsSize: Int { geometry.patchSize * imagesPerChunk * geometry.outPixels }

    /// The chunks of `images`, in order: one when the slice fits in a chunk.
    private func chunks(of images: Range<Int>) -> StrideTo<Int> {
        stride(from: images.lowerBound, to: images.upperBound, by: imagesPerChunk)
    }

    /// One slice of the batch forward: in training its images' columns side by side,
    /// a chunk at a time (the last one kept for backward), unless it trains without them; in
    /// evaluation, and in training without columns, one image at a time, read in place
    /// (stride 1) or through a small scratch.
    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        let g = geometry
        let sliceColumns = columns.pointer + slice * sliceColumnsSize
        let slicePadded = g.padding > 0 ? padded.pointer + slice * g.paddedInputSize : nil
        if training && !trainsWithoutColumns {
            for first in chunks(of: images) {
                let count = min(imagesPerChunk, images.upperBound - first)
                conv2dForward(output: output + first * g.outputSize, columns: sliceColumns,
                              padded: slicePadded, input: input + first * g.inputSize,
                              images: count, weight: weight, bias: bias, g)
            }
        } else if Scratch.evaluatesDirectly(g) {
            let source = directSource.pointer + slice * g.directSourceSize
            let sliceWeights = laneWeights.pointer + slice * g.laneWeightsSize
            // Laid out on every call: the layer cannot tell when the weights change.
            prepareChannelsInLanes(sliceWeights, weight: weight, bias: bias, g)
            let pools = poolsInEvaluation && !training
            let outputSize = pools ? g.outChannels * (g.outHeight / 2) * (g.outWidth / 2) : g.outputSize
            directOffsets.withUnsafeBufferPointer { offsets in
                if channelsInLanes {
                    let scratch = laneOutput.pointer + slice * g.laneOutputSize
                    for image in images {
                        conv2dForwardChannelsInLanes(output: output + image * outputSize,
                                                     image: input + image * g.inputSize, source: source,
                                                     offsets: offsets.baseAddress!, laneWeights: sliceWeights,
                                                     scratch: scratch, g, rectifiedPool: pools)
                    }
                } else {
                    let pending = pools ? pendingRows.pointer + slice * g.directPendingSize : nil
                    for image in images {
                        conv2dForwardDirect(output: output + image * outputSize, image: input + image * g.inputSize,
                                            source: source, offsets: offsets.baseAddress!, laneWeights: sliceWeights, g,
                                            rectifiedPoolPending: pending)
                    }
                }
            }
        } else {
            for image in images {
                conv2dForward(output: output + image * g.outputSize, columns: sliceColumns, padded: slicePadded,
                              input: input + image * g.inputSize, images: 1, weight: weight, bias: bias, g)
            }
        }
    }

    /// One slice's weight- and bias-gradient partial, and its images' input gradients,
    /// a chunk at a time: the partial is the chunks' sum, in chunk order.
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
        if trainsWithoutColumns {
            backwardWithoutColumns(slice: slice, images: images, input: input, outputGrad: outputGrad,
                                   inputGrad: inputGrad, partials: partials)
            return
        }
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
            conv2dBackward(weightGrad: partials + weightOffset, biasGrad: partials + biasOffset,
                           inputGrad: inputGrad.map { $0 + first * g.inputSize },
                           outputGradRows: outputGradRows.pointer + slice * g.outChannels * imagesPerChunk * g.outPixels,
                           columnGrad: columnGrad.pointer + slice * g.columnGradScratchSize,
                           outputGrad: outputGrad + first * g.outputSize,
                           columns: sliceColumns, images: count, weight: weight, g,
                           accumulate: first != images.lowerBound)
        }
    }

    /// Backward without columns: each image's weight and bias gradients added to the slice's
    /// partial in image order (in lanes, then unpacked); the input gradient in lanes from the
    /// lane weights this step's forward laid out, or else as with columns.
    private func backwardWithoutColumns(slice: Int, images: Range<Int>, input: UnsafePointer<Float>,
                                        outputGrad: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>?,
                                        partials: UnsafeMutablePointer<Float>) {
        let g = geometry
        let source = directSource.pointer + slice * g.directSourceSize
        directOffsets.withUnsafeBufferPointer { offsets in
            if trainsInLanes {
                let sums = laneSums.pointer + slice * g.laneWeightsSize
                sums.update(repeating: 0, count: g.laneWeightsSize)
                let transposed = laneTransposed.pointer + slice * g.outPixels * 16
                let inLanes = inputGradientInLanes ? inputGrad : nil
                let sliceWeights = UnsafePointer(laneWeights.pointer + slice * g.laneWeightsSize)
                for image in images {
                    conv2dBackwardInLanes(sums, inputGrad: inLanes.map { $0 + image * g.inputSize },
                                          laneWeights: sliceWeights, outputGrad: outputGrad + image * g.outputSize,
                                          image: input + image * g.inputSize, source: source,
                                          offsets: offsets.baseAddress!, transposed: transposed, g)
                }
                unpackWeightGradientInLanes(weightGrad: partials + weightOffset, biasGrad: partials + biasOffset,
                                            sums: sums, g)
            } else {
                (partials + weightOffset).update(repeating: 0, count: g.outChannels * g.patchSize)
                (partials + biasOffset).update(repeating: 0, count: g.outChannels)
                let pitched = pitchedGrad.pointer + slice * g.outChannels * g.outHeight * g.directPitch
                for image in images {
                    conv2dAddWeightGradientDirect(weightGrad: partials + weightOffset, biasGrad: partials + biasOffset,
                                                  outputGrad: outputGrad + image * g.outputSize,
                                                  image: input + image * g.inputSize, source: source,
                                                  offsets: offsets.baseAddress!, pitched: pitched, g)
                }
            }
        }
        guard let inputGrad, !inputGradientInLanes else { return }
        let first = images.lowerBound
        conv2dInputGradient(inputGrad + first * g.inputSize, columnGrad: columnGrad.pointer + slice * g.columnGradScratchSize,
                            outputGrad: outputGrad + first * g.outputSize, images: images.count, weight: weight, g)
    }
}
