/// Conv2d over NCHW via im2col + GEMM, images spread over the thread pool.
final class Conv2dLayer: Layer {
    let geometry: ConvGeometry
    let weight, bias, weightGrad, biasGrad: UnsafeMutablePointer<Float>
    let pool: ThreadPool
    let columns: FloatBuffer        // [maxBatch, C*K*K, OH*OW], kept from forward for backward
    let columnGrad: FloatBuffer     // [batchSlices, C*K*K, OH*OW] scratch for the input gradient
    let partialGrads: FloatBuffer   // [batchSlices, OC*C*K*K + OC] per-slice weight and bias gradients

    init(name: String, geometry: ConvGeometry, store: ParameterStore, maxBatch: Int, pool: ThreadPool) {
        self.geometry = geometry
        weight = store.value("\(name).weight")
        bias = store.value("\(name).bias")
        weightGrad = store.gradient("\(name).weight")
        biasGrad = store.gradient("\(name).bias")
        self.pool = pool
        let columnSize = geometry.patchSize * geometry.outPixels
        columns = FloatBuffer(count: maxBatch * columnSize)
        columnGrad = FloatBuffer(count: batchSlices * columnSize)
        partialGrads = FloatBuffer(count: batchSlices * (geometry.outChannels * geometry.patchSize + geometry.outChannels))
    }

    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, generator: inout RandomGenerator) {
        let g = geometry, columnSize = g.patchSize * g.outPixels
        pool.parallelFor(batchSlices) { slice in
            for image in sliceRange(slice, batch: batch) {
                conv2dForward(output: output + image * g.outputSize, columns: columns.pointer + image * columnSize,
                              image: input + image * g.inputSize, weight: weight, bias: bias, g)
            }
        }
    }

    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int) {
        let g = geometry, columnSize = g.patchSize * g.outPixels
        let weightCount = g.outChannels * g.patchSize, partialSize = weightCount + g.outChannels
        pool.parallelFor(batchSlices) { slice in
            let partial = partialGrads.pointer + slice * partialSize
            partial.update(repeating: 0, count: partialSize)
            for image in sliceRange(slice, batch: batch) {
                conv2dBackward(weightGrad: partial, biasGrad: partial + weightCount,
                               imageGrad: inputGrad.map { $0 + image * g.inputSize },
                               columnGrad: columnGrad.pointer + slice * columnSize,
                               outputGrad: outputGrad + image * g.outputSize,
                               columns: columns.pointer + image * columnSize, weight: weight, g)
            }
        }
        // Sum the slices in order: the same result at any thread count.
        weightGrad.update(from: partialGrads.pointer, count: weightCount)
        biasGrad.update(from: partialGrads.pointer + weightCount, count: g.outChannels)
        for slice in 1..<batchSlices {
            let partial = partialGrads.pointer + slice * partialSize
            for i in 0..<weightCount { weightGrad[i] += partial[i] }
            for i in 0..<g.outChannels { biasGrad[i] += partial[weightCount + i] }
        }
    }
}
