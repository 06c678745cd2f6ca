/// A stride-1 convolution's weight and bias gradients without im2col columns, one image at a
/// time, the backward twins of the two direct forwards.
///
/// dW[oc, (c, ki, kj)] is the sum, over the output pixels (y, x), of dOut[oc, y, x] times the
/// padded input at (c, y + ki, x + kj). With the image laid out as the direct forwards lay it
/// (`fillDirectSource`: padded, rows `directPitch` apart), that input value sits at
/// `offsets[(c, ki, kj)] + y*pitch + x` (`directRowOffsets`): im2col's row (c, ki, kj) is a
/// shifted run of the image, read in place.
///
/// - `conv2dAddWeightGradientDirect` (pixels in the lanes, like `conv2dForwardDirect`): lay
///   dOut out with the same pitch, zeros past each row, and dW is the dot-product GEMM of its
///   rows with the shifted runs (`ShiftedRows`). For convolutions with few channels (conv1).
/// - `conv2dAddWeightGradientInLanes` (channels in the lanes, like
///   `conv2dForwardChannelsInLanes`): each pixel's 16 channel gradients, one vector, are
///   multiplied by one broadcast input value per weight row and added to that row's
///   accumulator, so every lane does useful work when the convolution has 16 output
///   channels (conv2).
///
/// The sums are laid out [C*K*K + 1, laneChannels] (`ConvGeometry.laneWeightsSize`): row p
/// holds weight row p's gradient for every channel, the last row the bias gradient. Each
/// image's sums start from zero, run over its pixels in (y, x) order with one fused
/// multiply-add each, and are then added to what is there: the same chain for every
/// (channel, weight) whatever the register block (`GemmBlocking`), so the same bits on
/// every CPU and at every thread count.

/// Adds one image's weight gradient to `weightGrad` [OC, C*K*K] and its bias gradient to
/// `biasGrad` [OC]. `outputGrad` is the image's [OC, OH*OW]; `source` and `offsets` as for
/// `conv2dForwardDirect` (`source` zero when first used); `pitched` is scratch of
/// `g.outChannels * g.outHeight * g.directPitch` floats. Each weight's sum over the image is
/// the dot-product GEMM's (the same bits on either register block), then added.
func conv2dAddWeightGradientDirect(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                   outputGrad: UnsafePointer<Float>, image: UnsafePointer<Float>,
                                   source: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>,
                                   pitched: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                   blocking: GemmBlocking = .native) {
    fillDirectSource(source, image: image, g)
    let pitch = g.directPitch, oh = g.outHeight, ow = g.outWidth, plane = oh * ow
    // pitched [OC, OH, pitch]: dOut's rows, zero past OW, so that the products past a row's
    // end (with the padding or the next row of the source) add nothing.
    for oc in 0..<g.outChannels {
        let from = outputGrad + oc * plane, to = pitched + oc * oh * pitch
        for y in 0..<oh {
            copyFloats(to + y * pitch, from + y * ow, count: ow)
            (to + y * pitch + ow).update(repeating: 0, count: pitch - ow)
        }
        biasGrad[oc] += sum(from, count: plane)
    }
    gemmDotProducts(MutableMatrixView(weightGrad, rows: g.outChannels, columns: g.patchSize),
                    MatrixView(pitched, rows: g.outChannels, columns: oh * pitch),
                    columns: ShiftedRows(base: source, offsets: offsets), accumulate: true, blocking: blocking)
}

/// The weight gradient [OC, C*K*K] and bias gradient [OC] of `images` images by definition,
/// in Double, for tests (any stride).
func conv2dWeightGradientReference(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                   outputGrad: UnsafePointer<Float>, input: UnsafePointer<Float>, images: Int,
                                   _ g: ConvGeometry) {
    let k = g.kernel, oh = g.outHeight, ow = g.outWidth
    for oc in 0..<g.outChannels {
        var bias = 0.0
        for image in 0..<images {
            for pixel in 0..<oh * ow { bias += Double(outputGrad[image * g.outputSize + oc * oh * ow + pixel]) }
        }
        biasGrad[oc] = Float(bias)
        for c in 0..<g.inChannels {
            for ki in 0..<k {
                for kj in 0..<k {
                    var acc = 0.0
                    for image in 0..<images {
                        let dOut = outputGrad + image * g.outputSize + oc * oh * ow
                        let x = input + image * g.inputSize + c * g.height * g.width
                        for y in 0..<oh {
                            for xo in 0..<ow {
                                let iy = y * g.stride + ki - g.padding, ix = xo * g.stride + kj - g.padding
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                acc += Double(dOut[y * ow + xo]) * Double(x[iy * g.width + ix])
                            }
                        }
                    }
                    weightGrad[((oc * g.inChannels + c) * k + ki) * k + kj] = Float(acc)
                }
            }
        }
    }
}

/// Adds one image's weight- and bias-gradient sums to `sums` [C*K*K + 1, laneChannels].
/// `outputGrad` is the image's [OC, OH*OW]; `source` and `offsets` as for
/// `conv2dForwardDirect` (`source` zero when first used); `transposed` is scratch of
/// `g.outPixels * 16` floats.
func conv2dAddWeightGradientInLanes(_ sums: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                    image: UnsafePointer<Float>, source: UnsafeMutablePointer<Float>,
                                    offsets: UnsafePointer<Int>, transposed: UnsafeMutablePointer<Float>,
                                    _ g: ConvGeometry, blocking: GemmBlocking = .native) {
    conv2dBackwardInLanes(sums, inputGrad: nil, laneWeights: nil, outputGrad: outputGrad, image: image,
                          source: source, offsets: offsets, transposed: transposed, g, blocking: blocking)
}

/// One image's backward with the output channels in the lanes, 16 at a time: adds its
/// weight- and bias-gradient sums to `sums` as `conv2dAddWeightGradientInLanes` does, and
/// with `inputGrad` writes its input gradient [C, H, W] there (`conv2dInputGradientInLanes`,
/// which needs `laneWeights` from `prepareChannelsInLanes`). Both read the same transposed
/// output gradient, laid out once per 16 channels.
func conv2dBackwardInLanes(_ sums: UnsafeMutablePointer<Float>, inputGrad: UnsafeMutablePointer<Float>?,
                           laneWeights: UnsafePointer<Float>?, outputGrad: UnsafePointer<Float>,
                           image: UnsafePointer<Float>, source: UnsafeMutablePointer<Float>,
                           offsets: UnsafePointer<Int>, transposed: UnsafeMutablePointer<Float>,
                           _ g: ConvGeometry, blocking: GemmBlocking = .native) {
    precondition(inputGrad == nil || laneWeights != nil, "the input gradient in lanes needs the lane weights")
    fillDirectSource(source, image: image, g)
    for firstChannel in stride(from: 0, to: g.outChannels, by: 16) {
        transposeToLanes(transposed, outputGrad: outputGrad, firstChannel: firstChannel, g, blocking: blocking)
        switch blocking {
        case .wide:
            addWeightGradientInLanes(WeightRows10.self, sums, firstChannel, UnsafePointer(source), offsets,
                                     transposed, g)
        case .narrow:
            addWeightGradientInLanes(WeightRows6.self, sums, firstChannel, UnsafePointer(source), offsets,
                                     transposed, g)
        }
        if let inputGrad, let laneWeights {
            conv2dInputGradientInLanes(inputGrad, transposed: transposed, laneWeights: laneWeights,
                                       firstChannel: firstChannel, accumulate: firstChannel > 0, g, blocking: blocking)
        }
    }
}

/// `transposed` [OH*OW, 16]: each pixel's gradients for channels firstChannel ..< +16 of
/// `outputGrad` [OC, OH*OW], zero past OC.
func transposeToLanes(_ transposed: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                      firstChannel: Int, _ g: ConvGeometry, blocking: GemmBlocking = .native) {
    transposeIntoLanes(transposed, rowStride: 16, outputGrad + firstChannel * g.outPixels, rowStride: g.outPixels,
                       rows: min(16, g.outChannels - firstChannel), count: g.outPixels, blocking: blocking)
}

/// Copies the lane sums into a weight gradient [OC, C*K*K] and a bias gradient [OC].
func unpackWeightGradientInLanes(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                                 sums: UnsafePointer<Float>, _ g: ConvGeometry) {
    let lc = g.laneChannels, k = g.patchSize
    for first in stride(from: 0, to: g.outChannels, by: 16) {
        transposeOutOfLanes(weightGrad + first * k, rowStride: k, sums + first, rowStride: lc,
                            rows: min(16, g.outChannels - first), count: k)
    }
    for oc in 0..<g.outChannels { biasGrad[oc] = sums[k * lc + oc] }
}

/// The same sums by the same chains, one scalar at a time: the reference the kernel is
/// compared with bit for bit. Reads the unpadded image directly.
func conv2dAddWeightGradientInLanesReference(_ sums: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                             image: UnsafePointer<Float>, _ g: ConvGeometry) {
    precondition(g.stride == 1, "the lane weight gradient is for stride 1")
    let lc = g.laneChannels, k = g.kernel, oh = g.outHeight, ow = g.outWidth
    for oc in 0..<g.outChannels {
        let dOut = outputGrad + oc * oh * ow
        for c in 0..<g.inChannels {
            for ki in 0..<k {
                for kj in 0..<k {
                    var acc: Float = 0
                    for y in 0..<oh {
                        for x in 0..<ow {
                            let iy = y + ki - g.padding, ix = x + kj - g.padding
                            let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                            let value = inside ? image[(c * g.height + iy) * g.width + ix] : 0
                            acc = acc.addingProduct(value, dOut[y * ow + x])
                        }
                    }
                    sums[((c * k + ki) * k + kj) * lc + oc] += acc
                }
            }
        }
        var bias: Float = 0
        for pixel in 0..<oh * ow { bias += dOut[pixel] }
        sums[g.patchSize * lc + oc] += bias
    }
}

/// A block of weight rows' accumulators, each 16 channels: sized for the CPU's registers.
private protocol WeightRowBlock {
    /// The accumulators: a tuple of `rows` vectors, so that they live in registers.
    associatedtype Accumulators
    static var rows: Int { get }
    var v: Accumulators { get }
    /// Rows at these offsets into the source (`rows` of them).
    init(offsets: UnsafePointer<Int>)
    /// Row i's accumulator += q[offset i] * dOut.
    mutating func addProducts(_ q: UnsafePointer<Float>, _ dOut: Vector)
    /// Adds the accumulators of rows `new` to `sums`, row i to `to(i)`.
    func add(rows new: Range<Int>, to: (Int) -> UnsafeMutablePointer<Float>)
}

extension WeightRowBlock {
    @inline(__always) func add(rows new: Range<Int>, to: (Int) -> UnsafeMutablePointer<Float>) {
        withUnsafeBytes(of: v) { raw in
            let vectors = raw.baseAddress!.assumingMemoryBound(to: Vector.self)
            for i in new { store(vectors[i], to(i), accumulate: true) }
        }
    }
}

/// The sums of output channels firstChannel ..< +16, from their gradients in `transposed`.
private func addWeightGradientInLanes<Block: WeightRowBlock>(
    _: Block.Type, _ sums: UnsafeMutablePointer<Float>, _ firstChannel: Int, _ source: UnsafePointer<Float>,
    _ offsets: UnsafePointer<Int>, _ transposed: UnsafePointer<Float>, _ g: ConvGeometry
) {
    let lc = g.laneChannels, k = g.patchSize, oh = g.outHeight, ow = g.outWidth, pitch = g.directPitch
    let plane = oh * ow
    var biasSum = Vector()
    for pixel in 0..<plane { biasSum += load(transposed + pixel * 16) }
    store(biasSum, sums + k * lc + firstChannel, accumulate: true)
    withUnsafeTemporaryAllocation(of: Int.self, capacity: Block.rows) { blockOffsets in
        var first = 0  // the first weight row not yet summed
        while first < k {
            // The last block ends at the last row, overlapping the one before; with fewer
            // rows than a block, the rows past the last repeat it and are not added.
            let start = max(0, min(first, k - Block.rows))
            for i in 0..<Block.rows { blockOffsets[i] = offsets[min(start + i, k - 1)] }
            var block = Block(offsets: blockOffsets.baseAddress!)
            for y in 0..<oh {
                let row = source + y * pitch, dOut = transposed + y * ow * 16
                for x in 0..<ow { block.addProducts(row + x, load(dOut + x * 16)) }
            }
            block.add(rows: (first - start)..<min(Block.rows, k - start)) { sums + (start + $0) * lc + firstChannel }
            first = start + Block.rows
        }
    }
}

/// 10 rows: 10 accumulators and the gradient vector fit AVX-512's 32 registers with room.
private struct WeightRows10: WeightRowBlock {
    static let rows = 10
    let o: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)
    var v = (Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector())

    @inline(__always) init(offsets p: UnsafePointer<Int>) {
        o = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9])
    }

    @inline(__always) mutating func addProducts(_ q: UnsafePointer<Float>, _ d: Vector) {
        v.0 = v.0.addingProduct(Vector(repeating: q[o.0]), d)
        v.1 = v.1.addingProduct(Vector(repeating: q[o.1]), d)
        v.2 = v.2.addingProduct(Vector(repeating: q[o.2]), d)
        v.3 = v.3.addingProduct(Vector(repeating: q[o.3]), d)
        v.4 = v.4.addingProduct(Vector(repeating: q[o.4]), d)
        v.5 = v.5.addingProduct(Vector(repeating: q[o.5]), d)
        v.6 = v.6.addingProduct(Vector(repeating: q[o.6]), d)
        v.7 = v.7.addingProduct(Vector(repeating: q[o.7]), d)
        v.8 = v.8.addingProduct(Vector(repeating: q[o.8]), d)
        v.9 = v.9.addingProduct(Vector(repeating: q[o.9]), d)
    }
}

/// 6 rows: 12 of AVX2's 16 registers for the accumulators, 2 for the gradient vector.
private struct WeightRows6: WeightRowBlock {
    static let rows = 6
    let o: (Int, Int, Int, Int, Int, Int)
    var v = (Vector(), Vector(), Vector(), Vector(), Vector(), Vector())

    @inline(__always) init(offsets p: UnsafePointer<Int>) {
        o = (p[0], p[1], p[2], p[3], p[4], p[5])
    }

    @inline(__always) mutating func addProducts(_ q: UnsafePointer<Float>, _ d: Vector) {
        v.0 = v.0.addingProduct(Vector(repeating: q[o.0]), d)
        v.1 = v.1.addingProduct(Vector(repeating: q[o.1]), d)
        v.2 = v.2.addingProduct(Vector(repeating: q[o.2]), d)
        v.3 = v.3.addingProduct(Vector(repeating: q[o.3]), d)
        v.4 = v.4.addingProduct(Vector(repeating: q[o.4]), d)
        v.5 = v.5.addingProduct(Vector(repeating: q[o.5]), d)
    }
}
