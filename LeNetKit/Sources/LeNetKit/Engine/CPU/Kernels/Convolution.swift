/// Convolution as im2col + GEMM, one image at a time, NCHW; in evaluation, stride-1
/// convolutions read the image in place instead (the direct forwards).
///
/// Sizes are labelled: `channels` (C), `height`/`width` (H, W) of the input,
/// `kernel` (K, square), `stride`, `padding`; the output is OH x OW.

struct ConvGeometry: Equatable, Sendable {
    var inChannels: Int
    var outChannels: Int
    var height: Int
    var width: Int
    var kernel: Int
    var stride: Int
    var padding: Int

    init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Rows of the im2col matrix: one per weight of an output channel (C*K*K).
    var patchSize: Int { inChannels * kernel * kernel }
    /// Columns of the im2col matrix: one per output pixel (OH*OW).
    var outPixels: Int { outHeight * outWidth }
    var inputSize: Int { inChannels * height * width }
    /// Scratch for one zero-padded image [C, H+2p, W+2p] that im2col uses
    /// when there is padding (0 when there is none).
    var paddedInputSize: Int { padding > 0 ? inChannels * (height + 2 * padding) * (width + 2 * padding) : 0 }
    var outputSize: Int { outChannels * outPixels }

    /// The direct forward's row pitch: the padded width rounded up to whole vectors of 16,
    /// so that every 16 columns of its product lie in one output row.
    var directPitch: Int { (width + 2 * padding + 15) / 16 * 16 }
    /// The direct forward's source: the padded image [C, H+2p, directPitch] (zero around
    /// the image) and the K-1 floats after it that its last row runs reach.
    var directSourceSize: Int { inChannels * (height + 2 * padding) * directPitch + kernel - 1 }
    /// The direct forward's even output rows waiting for the odd ones when it pools
    /// (`RectifiedPoolOutput`): [OC, directPitch].
    var directPendingSize: Int { outChannels * directPitch }
    /// Floats of readable margin before and after the columns `col2im` folds: its vector
    /// loads start up to K-1 floats before a row segment and may end past the last one.
    static let columnGradMargin = 32
    /// `conv2dBackward`'s `columnGrad` scratch: [C*K*K, OH*OW] with a margin on each side.
    var columnGradScratchSize: Int { patchSize * outPixels + 2 * ConvGeometry.columnGradMargin }
    /// Output channels rounded up to whole vectors of 16: the row length of
    /// `conv2dForwardChannelsInLanes`' weights.
    var laneChannels: Int { (outChannels + 15) / 16 * 16 }
    /// `conv2dForwardChannelsInLanes`' weights and bias: [C*K*K + 1, laneChannels].
    var laneWeightsSize: Int { (patchSize + 1) * laneChannels }
    /// `conv2dForwardChannelsInLanes`' scratch for 16 channels of one image: their sums
    /// [max(OH*OW, 6), 16], then their pooled windows [OH/2 * OW/2, 16].
    var laneOutputSize: Int { (max(outPixels, FlatPixelBlock.pixels) + (outHeight / 2) * (outWidth / 2)) * 16 }

    /// The kernel rows ki that reach input row y at stride 1: those whose output row
    /// y + padding - ki lies inside [0, OH). Empty when none does.
    @inline(__always) func kernelRows(reachingInputRow y: Int) -> Range<Int> {
        let first = max(0, y + padding - (outHeight - 1)), last = min(kernel - 1, y + padding)
        return first..<max(first, last + 1)
    }
}

/// Unfolds one image into columns: `columns` [C*K*K, OH*OW], row (c, ki, kj) in
/// the order of PyTorch's weight layout [OC, C, K, K]; padding reads as zero.
/// Rows are `rowStride` apart (default OH*OW), so several images can sit side by side.
/// `padded` is scratch of `g.paddedInputSize` floats (needed only when there is padding).
func im2col(_ columns: UnsafeMutablePointer<Float>, rowStride: Int? = nil,
                   _ image: UnsafePointer<Float>, _ g: ConvGeometry, padded: UnsafeMutablePointer<Float>?) {
    let stride = rowStride ?? g.outPixels
    guard g.stride == 1 else {
        im2colReference(columns, rowStride: stride, image, g)
        return
    }
    // Stride 1: every row segment is a straight copy once the image is padded, so pad
    // it first (a small copy per image) and copy with a loop chosen once for the width.
    let paddedWidth = g.width + 2 * g.padding, paddedHeight = g.height + 2 * g.padding
    var source = image
    if g.padding > 0 {
        guard let padded else { preconditionFailure("im2col with padding needs a padded-image scratch") }
        padded.update(repeating: 0, count: g.paddedInputSize)
        for c in 0..<g.inChannels {
            for y in 0..<g.height {
                copyFloats(padded + (c * paddedHeight + y + g.padding) * paddedWidth + g.padding,
                           image + (c * g.height + y) * g.width, count: g.width)
            }
        }
        source = UnsafePointer(padded)
    }
    let ow = g.outWidth
    if ow >= 16 {
        unfoldStride1(columns, rowStride: stride, source, paddedHeight: paddedHeight, paddedWidth: paddedWidth, g, copy: WideRows.self)
    } else if ow >= 8 {
        unfoldStride1(columns, rowStride: stride, source, paddedHeight: paddedHeight, paddedWidth: paddedWidth, g, copy: MediumRows.self)
    } else {
        unfoldStride1(columns, rowStride: stride, source, paddedHeight: paddedHeight, paddedWidth: paddedWidth, g, copy: NarrowRows.self)
    }
}

/// im2col by definition, for any stride; the reference for the fast path.
func im2colReference(_ columns: UnsafeMutablePointer<Float>, rowStride: Int? = nil,
                            _ image: UnsafePointer<Float>, _ g: ConvGeometry) {
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel, stride = rowStride ?? g.outPixels
    var row = columns
    for c in 0..<g.inChannels {
        for ki in 0..<k {
            for kj in 0..<k {
                for oy in 0..<oh {
                    let y = oy * g.stride + ki - g.padding
                    for ox in 0..<ow {
                        let x = ox * g.stride + kj - g.padding
                        let inside = y >= 0 && y < g.height && x >= 0 && x < g.width
                        row[oy * ow + ox] = inside ? image[(c * g.height + y) * g.width + x] : 0
                    }
                }
                row += stride
            }
        }
    }
}

/// Copies one row segment of a width known to be in the copier's range.
private protocol RowCopier {
    static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int)
}

@inline(__always) private func move<V: SIMD>(_: V.Type, _ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>)
    where V.Scalar == Float {
    UnsafeMutableRawPointer(dst).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: V.self), as: V.self)
}

/// 16 or more: whole vectors, then one vector ending at the last element.
private enum WideRows: RowCopier {
    @inline(__always) static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count { move(SIMD16<Float>.self, dst + i, src + i); i += 16 }
        if i < count { move(SIMD16<Float>.self, dst + count - 16, src + count - 16) }
    }
}

/// 8 to 15: two overlapping 8-float vectors.
private enum MediumRows: RowCopier {
    @inline(__always) static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        move(SIMD8<Float>.self, dst, src)
        move(SIMD8<Float>.self, dst + count - 8, src + count - 8)
    }
}

/// Fewer than 8: one float at a time.
private enum NarrowRows: RowCopier {
    @inline(__always) static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = src[i] }
    }
}

/// Stride-1 im2col from a (padded) source [C, paddedHeight, paddedWidth]: row (c, ki, kj)
/// is OH segments of OW floats, each a straight copy. One source row feeds the K rows
/// (c, ki, 0..<K) in turn, so the innermost loop keeps only two pointers live.
@inline(__always)
private func unfoldStride1<Copier: RowCopier>(_ columns: UnsafeMutablePointer<Float>, rowStride: Int,
                                              _ source: UnsafePointer<Float>, paddedHeight: Int, paddedWidth: Int,
                                              _ g: ConvGeometry, copy: Copier.Type) {
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel
    for c in 0..<g.inChannels {
        let plane = source + c * paddedHeight * paddedWidth
        for ki in 0..<k {
            let rows = columns + (c * k + ki) * k * rowStride  // row (c, ki, 0)
            for oy in 0..<oh {
                var src = plane + (ki + oy) * paddedWidth, dst = rows + oy * ow
                for _ in 0..<k {
                    Copier.copy(dst, src, count: ow)
                    src += 1
                    dst += rowStride
                }
            }
        }
    }
}

/// The adjoint of im2col: `image` [C, H, W] = the sum, over every column entry, of the
/// entry onto the pixel it came from (overwritten, not accumulated). `columns` [C*K*K,
/// OH*OW] must have `ConvGeometry.columnGradMargin` readable floats before and after it.
///
/// Stride 1: each input row is summed in registers, 16 pixels at a time, over the kernel
/// rows and columns that reach it, in (ki, kj) order, then stored once: the sums
/// `col2imAddReference` adds one by one onto zeros, in the same order, so the same bits.
/// Each term is a vector load of a column row segment shifted by kj, its lanes outside
/// the segment set to zero (the margin makes those loads safe at the ends).
func col2im(_ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>, _ g: ConvGeometry) {
    guard g.stride == 1 else {
        image.update(repeating: 0, count: g.inputSize)
        col2imAddReference(image, columns, g)
        return
    }
    precondition(g.kernel <= ConvGeometry.columnGradMargin / 2, "col2im's margin is for kernels up to 16")
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel, p = g.padding, plane = oh * ow
    let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    typealias Outside = SIMDMask<SIMD16<Int32>>
    withUnsafeTemporaryAllocation(of: Outside.self, capacity: 16) { outside in  // [kj]: 1 KB, on the stack
        for x0 in stride(from: 0, to: g.width, by: 16) {
            // Lane i is input pixel x0 + i; for kernel column kj, output pixel ox = x0 + i + p - kj.
            for kj in 0..<k {
                let ox = lanes &+ SIMD16<Int32>(repeating: Int32(x0 + p - kj))
                outside[kj] = (ox .< 0) .| (ox .>= SIMD16<Int32>(repeating: Int32(ow)))
            }
            for c in 0..<g.inChannels {
                for y in 0..<g.height {
                    var sum = Vector()
                    for ki in g.kernelRows(reachingInputRow: y) {
                        let segments = columns + (c * k + ki) * k * plane + (y + p - ki) * ow + x0 + p
                        for kj in 0..<k {
                            sum += load(segments + kj * (plane - 1)).replacing(with: 0, where: outside[kj])
                        }
                    }
                    storeFirst(min(16, g.width - x0), of: sum, to: image + (c * g.height + y) * g.width + x0)
                }
            }
        }
    }
}

/// col2im by definition, for any stride; the reference for the fast path.
func col2imAddReference(_ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>, _ g: ConvGeometry) {
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel
    var row = columns
    for c in 0..<g.inChannels {
        for ki in 0..<k {
            for kj in 0..<k {
                for oy in 0..<oh {
                    let y = oy * g.stride + ki - g.padding
                    for ox in 0..<ow {
                        let x = ox * g.stride + kj - g.padding
                        if y >= 0 && y < g.height && x >= 0 && x < g.width {
                            image[(c * g.height + y) * g.width + x] += row[oy * ow + ox]
                        }
                    }
                }
                row += oh * ow
            }
        }
    }
}

/// Forward of `images` images side by side: for each, `output` [OC, OH*OW] =
/// weight [OC, C*K*K] · its columns + bias [OC]. `columns` [C*K*K, images*OH*OW]
/// is filled from `input` [images, C, H, W] and kept for the backward pass; `padded`
/// is im2col's scratch (`g.paddedInputSize` floats).
func conv2dForward(output: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>,
                          padded: UnsafeMutablePointer<Float>?, input: UnsafePointer<Float>, images: Int,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ g: ConvGeometry) {
    let pixels = g.outPixels, rowStride = images * pixels
    for image in 0..<images {
        im2col(columns + image * pixels, rowStride: rowStride, input + image * g.inputSize, g, padded: padded)
        let out = output + image * g.outputSize
        for oc in 0..<g.outChannels { (out + oc * pixels).update(repeating: bias[oc], count: pixels) }
        gemm(MutableMatrixView(out, rows: g.outChannels, columns: pixels),
             MatrixView(weight, rows: g.outChannels, columns: g.patchSize),
             MatrixView(columns + image * pixels, rows: g.patchSize, columns: pixels, rowStride: rowStride),
             accumulate: true)
    }
}

/// Where each im2col row (c, ki, kj) starts in the direct forward's source, for stride 1:
/// (c*PH + ki)*pitch + kj, PH being the padded height.
func directRowOffsets(_ g: ConvGeometry) -> [Int] {
    precondition(g.stride == 1, "the direct forward is for stride 1")
    let paddedHeight = g.height + 2 * g.padding
    var offsets: [Int] = []
    offsets.reserveCapacity(g.patchSize)
    for c in 0..<g.inChannels {
        for ki in 0..<g.kernel {
            for kj in 0..<g.kernel { offsets.append((c * paddedHeight + ki) * g.directPitch + kj) }
        }
    }
    return offsets
}

/// Stride-1 forward of one image with no columns. Lay the image out padded, rows `pitch`
/// apart (`g.directPitch`: the padded width rounded up to 16), and read it as one long row:
/// im2col's row (c, ki, kj) for output row oy is then its run of OW floats from
/// `offsets[(c, ki, kj)] + oy*pitch`. So B of im2col + GEMM is the image itself, rows
/// shifted (`ShiftedRows`), if each output row is taken `pitch` pixels wide and its first
/// OW kept (`ConvolutionOutput`). Every kept pixel is the same chain of multiply-adds as in
/// `conv2dForward`, plus the bias after it: the same bits, without writing and reading
/// C*K*K floats per pixel.
///
/// `source` (`g.directSourceSize` floats) must be zero when first used: only the image's
/// place in it is written, so the border and the tail stay zero. `offsets` are
/// `directRowOffsets(g)`. The weights and bias are read from `laneWeights`
/// (`prepareChannelsInLanes`): A = W stored column by column, so that the 6 output
/// channels of a register block are side by side at each step (see `gemmBroadcastA`).
///
/// With `pending` (`g.directPendingSize` floats, any contents), ReLU and 2x2 max pooling
/// follow before anything is written (`RectifiedPoolOutput`): `output` is then
/// [OC, OH/2, OW/2], the same bits as `maxPool2x2Forward` with `rectify` of the plain
/// output, without writing and reading that output.
func conv2dForwardDirect(output: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>,
                         source: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>,
                         laneWeights: UnsafePointer<Float>, _ g: ConvGeometry,
                         rectifiedPoolPending pending: UnsafeMutablePointer<Float>? = nil,
                         blocking: GemmBlocking = .native) {
    let pitch = g.directPitch, bias = laneWeights + g.patchSize * g.laneChannels
    fillDirectSource(source, image: image, g)
    if let pending {
        directProduct(source: source, offsets: offsets, laneWeights: laneWeights, g, blocking: blocking,
                      results: RectifiedPoolOutput(output: output, pending: pending, bias: bias,
                                                   height: g.outHeight, width: g.outWidth, pitch: pitch))
    } else {
        directProduct(source: source, offsets: offsets, laneWeights: laneWeights, g, blocking: blocking,
                      results: ConvolutionOutput(output: output, bias: bias,
                                                 height: g.outHeight, width: g.outWidth, pitch: pitch))
    }
}

/// `conv2dForwardDirect`'s GEMM: one specialised function for each way of storing the
/// results, called once an image.
@inline(never)
private func directProduct<Results: BroadcastResults>(source: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                                                      laneWeights: UnsafePointer<Float>, _ g: ConvGeometry,
                                                      blocking: GemmBlocking, results: Results) {
    gemmBroadcastA(MatrixView(laneWeights, rows: g.outChannels, columns: g.patchSize, rowStride: 1,
                              columnStride: g.laneChannels),
                   rows: ShiftedRows(base: source, offsets: offsets), columns: g.outHeight * g.directPitch,
                   results: results, blocking: blocking)
}

/// Writes `image` into its place in the direct forwards' `source`: padded, rows `g.directPitch` apart.
func fillDirectSource(_ source: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>, _ g: ConvGeometry) {
    precondition(g.stride == 1, "the direct forward is for stride 1")
    let pitch = g.directPitch, paddedHeight = g.height + 2 * g.padding
    for c in 0..<g.inChannels {
        for y in 0..<g.height {
            copyFloats(source + (c * paddedHeight + y + g.padding) * pitch + g.padding,
                       image + (c * g.height + y) * g.width, count: g.width)
        }
    }
}

/// Which direct forward suits a convolution on this CPU: the one that computes fewer
/// products it throws away. `conv2dForwardDirect` computes rows of 6 channels by `pitch`
/// columns for OW kept; `conv2dForwardChannelsInLanes` computes 16 channels by blocks of
/// 2 rows x 10 pixels (`.wide`) or of 6 pixels in reading order (`.narrow`). LeNet's conv1
/// (6 channels, rows of 28 in 32) takes the first, conv2 (16 channels, 10 x 10) the second.
func directForwardPutsChannelsInLanes(_ g: ConvGeometry, blocking: GemmBlocking = .native) -> Bool {
    let kept = Double(g.outChannels * g.outWidth)
    let byRows = kept / Double((g.outChannels + 5) / 6 * 6 * g.directPitch)
    let channelsKept = Double(g.outChannels) / Double(g.laneChannels)
    let byLanes: Double
    switch blocking {
    case .wide:
        let width = WideLaneRow.width
        let keptRows = Double(g.outHeight) / Double((g.outHeight + 1) / 2 * 2)
        byLanes = channelsKept * Double(g.outWidth) / Double((g.outWidth + width - 1) / width * width) * keptRows
    case .narrow:
        byLanes = channelsKept * Double(g.outPixels) / Double(max(g.outPixels, FlatPixelBlock.pixels))
    }
    return byLanes > byRows
}

/// Lays out `weight` [OC, C*K*K] and `bias` [OC] for `conv2dForwardChannelsInLanes`:
/// `laneWeights` [C*K*K + 1, laneChannels] holds the weights transposed, then the bias,
/// each row zero past OC.
func prepareChannelsInLanes(_ laneWeights: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>, _ g: ConvGeometry) {
    let lc = g.laneChannels, k = g.patchSize
    for first in stride(from: 0, to: g.outChannels, by: 16) {
        transposeIntoLanes(laneWeights + first, rowStride: lc, weight + first * k, rowStride: k,
                           rows: min(16, g.outChannels - first), count: k)
    }
    for oc in 0..<lc { laneWeights[k * lc + oc] = oc < g.outChannels ? bias[oc] : 0 }
}

/// Stride-1 forward of one image, like `conv2dForwardDirect` but with 16 output channels in
/// a vector's lanes: each accumulator is one output pixel's 16 channels, and each step
/// broadcasts one input value of each of the block's pixels against 16 channels' weights.
/// For narrow output rows with many channels, where rows of `pitch` columns would be mostly
/// padding. Two blockings, by the vector registers:
/// - `.wide` (32 registers): blocks of 2 rows x 10 pixels, 20 accumulators (`WideLaneRow`),
///   LeNet's conv2 rows exactly, written to `output` from registers;
/// - `.narrow` (AVX2's 16 256-bit registers): blocks of 6 pixels in reading order, wherever
///   the rows break (`FlatPixelBlock`), 12 registers of sums; they go to `scratch` as
///   [pixel, 16] and come out of the lanes once per 16 channels.
/// None of LeNet's conv2 products is thrown away either way. The same chains of
/// multiply-adds over (c, ki, kj), then the bias: the same bits, on either blocking.
///
/// With `rectifiedPool`, ReLU and 2x2 max pooling follow before anything is written:
/// `output` is then [OC, OH/2, OW/2], the same bits as `maxPool2x2Forward` with `rectify`
/// of the plain output, without writing and reading that output.
///
/// `source` and `offsets` as for `conv2dForwardDirect`; `laneWeights` from
/// `prepareChannelsInLanes`; `scratch` is `g.laneOutputSize` floats (`.narrow` only).
func conv2dForwardChannelsInLanes(output: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>,
                                  source: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>,
                                  laneWeights: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                  _ g: ConvGeometry, rectifiedPool: Bool = false, blocking: GemmBlocking = .native) {
    fillDirectSource(source, image: image, g)
    switch blocking {
    case .wide:
        rowBlocksForward(output: output, source: source, offsets: offsets, laneWeights: laneWeights, g,
                         rectifiedPool: rectifiedPool)
    case .narrow:
        flatBlocksForward(output: output, source: source, offsets: offsets, laneWeights: laneWeights,
                          scratch: scratch, g, rectifiedPool: rectifiedPool)
    }
}

/// `conv2dForwardChannelsInLanes` in blocks of 2 rows of `WideLaneRow`.
private func rowBlocksForward(output: UnsafeMutablePointer<Float>, source: UnsafeMutablePointer<Float>,
                              offsets: UnsafePointer<Int>, laneWeights: UnsafePointer<Float>,
                              _ g: ConvGeometry, rectifiedPool: Bool) {
    let pitch = g.directPitch, lc = g.laneChannels, k = g.patchSize, blockWidth = WideLaneRow.width
    // The rows and columns computed: all of them, or those the 2x2 windows cover.
    let height = rectifiedPool ? g.outHeight / 2 * 2 : g.outHeight
    let width = rectifiedPool ? g.outWidth / 2 * 2 : g.outWidth
    let blockRows = min(2, height)
    // One output row reads the same source row twice rather than past the source.
    let secondRow = (blockRows - 1) * pitch
    let plane = rectifiedPool ? (height / 2) * (width / 2) : height * width
    for firstChannel in stride(from: 0, to: g.outChannels, by: 16) {
        let channels = min(16, g.outChannels - firstChannel)
        let bias = load(laneWeights + k * lc + firstChannel)
        var y = 0  // the first row not yet written
        while y < height {
            // Like the pixels below, the last block of rows ends at the last row, overlapping the
            // one before (never when pooling: the height is even then).
            let top = min(y, height - blockRows)
            var x = 0  // the first pixel of the rows not yet written
            while x < width {
                // `blockWidth` pixels from `left` (even when pooling, as the width is); the last
                // block of a row ends at its end, overlapping the one before (a row narrower than
                // a block computes pixels past it, not stored).
                let left = max(0, min(x, width - blockWidth))
                var upper = WideLaneRow(), lower = WideLaneRow()
                let row = UnsafePointer(source) + top * pitch + left
                var w = laneWeights + firstChannel
                for p in 0..<k {
                    let weights = load(w), q = row + offsets[p]
                    upper.addProducts(q, weights)
                    lower.addProducts(q + secondRow, weights)
                    w += lc
                }
                upper = upper.adding(bias)
                lower = lower.adding(bias)
                // Transposed on the way out: [pixel][channel] in registers, [channel][pixel] in `output`.
                if rectifiedPool {
                    let windows = WideLaneRow.rectifiedWindowMaxima(upper, lower)
                    withUnsafeBytes(of: windows) { raw in
                        let maxima = raw.baseAddress!.assumingMemoryBound(to: Float.self)  // [width/2, 16]
                        let new = (x - left) / 2..<min(blockWidth, width - left) / 2
                        for lane in 0..<channels {
                            let out = output + (firstChannel + lane) * plane + (top / 2) * (width / 2) + left / 2
                            for window in new { out[window] = maxima[window * 16 + lane] }
                        }
                    }
                } else {
                    withUnsafeBytes(of: (upper, lower)) { raw in
                        let sums = raw.baseAddress!.assumingMemoryBound(to: Float.self)  // [2, width, 16]
                        let new = (x - left)..<min(blockWidth, width - left)
                        for r in (y - top)..<blockRows {
                            for lane in 0..<channels {
                                let out = output + (firstChannel + lane) * plane + (top + r) * width + left
                                for pixel in new { out[pixel] = sums[(r * blockWidth + pixel) * 16 + lane] }
                            }
                        }
                    }
                }
                x = left + blockWidth
            }
            y = top + blockRows
        }
    }
}

/// One row of `rowBlocksForward`'s block: 10 neighbouring pixels, LeNet's conv2 row, 16
/// channels each, one vector per pixel, held in registers: 2 rows of them are 20
/// accumulators, for 32 vector registers. Its memory layout is [10, 16] (a tuple of
/// vectors), and its windows' [5, 16].
struct WideLaneRow {
    static let width = 10
    var v = (Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector())

    /// The 5 windows of two rows, 2x2 each, rectified: lane c of window j is
    /// max(upper j*2, j*2+1; lower j*2, j*2+1; 0) for channel c, by `rectifiedWindowMax`.
    @inline(__always) static func rectifiedWindowMaxima(_ upper: WideLaneRow, _ lower: WideLaneRow)
        -> (Vector, Vector, Vector, Vector, Vector) {
        let (u, l) = (upper.v, lower.v)
        return (rectifiedWindowMax(u.0, u.1, l.0, l.1), rectifiedWindowMax(u.2, u.3, l.2, l.3),
                rectifiedWindowMax(u.4, u.5, l.4, l.5), rectifiedWindowMax(u.6, u.7, l.6, l.7),
                rectifiedWindowMax(u.8, u.9, l.8, l.9))
    }

    /// pixel i += q[i] * weights, for each pixel i.
    @inline(__always) mutating func addProducts(_ q: UnsafePointer<Float>, _ weights: Vector) {
        v.0 = v.0.addingProduct(Vector(repeating: q[0]), weights)
        v.1 = v.1.addingProduct(Vector(repeating: q[1]), weights)
        v.2 = v.2.addingProduct(Vector(repeating: q[2]), weights)
        v.3 = v.3.addingProduct(Vector(repeating: q[3]), weights)
        v.4 = v.4.addingProduct(Vector(repeating: q[4]), weights)
        v.5 = v.5.addingProduct(Vector(repeating: q[5]), weights)
        v.6 = v.6.addingProduct(Vector(repeating: q[6]), weights)
        v.7 = v.7.addingProduct(Vector(repeating: q[7]), weights)
        v.8 = v.8.addingProduct(Vector(repeating: q[8]), weights)
        v.9 = v.9.addingProduct(Vector(repeating: q[9]), weights)
    }

    @inline(__always) func adding(_ bias: Vector) -> WideLaneRow {
        WideLaneRow(v: (v.0 + bias, v.1 + bias, v.2 + bias, v.3 + bias, v.4 + bias,
                        v.5 + bias, v.6 + bias, v.7 + bias, v.8 + bias, v.9 + bias))
    }
}

/// `conv2dForwardChannelsInLanes` in blocks of 6 pixels in reading order (`FlatPixelBlock`):
/// each group of 16 channels' sums go to `scratch` [pixels, 16], then through the window
/// maxima (pooling) into `scratch`'s second part, and out of the lanes into `output`.
private func flatBlocksForward(output: UnsafeMutablePointer<Float>, source: UnsafeMutablePointer<Float>,
                               offsets: UnsafePointer<Int>, laneWeights: UnsafePointer<Float>,
                               scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry, rectifiedPool: Bool) {
    let lc = g.laneChannels, k = g.patchSize, pixels = g.outPixels, width = g.outWidth
    let sums = scratch  // [max(pixels, 6), 16]
    for firstChannel in stride(from: 0, to: g.outChannels, by: 16) {
        let channels = min(16, g.outChannels - firstChannel)
        let bias = load(laneWeights + k * lc + firstChannel)
        var next = 0  // the first pixel not yet computed
        while next < pixels {
            // The last block ends at the last pixel, overlapping the one before (the same
            // values again); fewer than 6 pixels in all repeat the last one.
            let first = max(0, min(next, pixels - FlatPixelBlock.pixels))
            let block = FlatPixelBlock(first: first, g)
            let s = block.sums(UnsafePointer(source), offsets: offsets, weights: laneWeights + firstChannel,
                               rowStride: lc, count: k)
            let out = sums + first * 16
            store(s.0 + bias, out, accumulate: false)
            store(s.1 + bias, out + 16, accumulate: false)
            store(s.2 + bias, out + 32, accumulate: false)
            store(s.3 + bias, out + 48, accumulate: false)
            store(s.4 + bias, out + 64, accumulate: false)
            store(s.5 + bias, out + 80, accumulate: false)
            next = first + FlatPixelBlock.pixels
        }
        if rectifiedPool {
            let pooledWidth = width / 2, windows = (g.outHeight / 2) * pooledWidth
            let maxima = scratch + max(pixels, FlatPixelBlock.pixels) * 16  // [windows, 16]
            for window in 0..<windows {
                let wy = window / pooledWidth, wx = window - wy * pooledWidth
                let top = sums + (2 * wy * width + 2 * wx) * 16, bottom = top + width * 16
                store(rectifiedWindowMax(load(top), load(top + 16), load(bottom), load(bottom + 16)),
                      maxima + window * 16, accumulate: false)
            }
            transposeOutOfLanes(output + firstChannel * windows, rowStride: windows, maxima, rowStride: 16,
                                rows: channels, count: windows, blocking: .narrow)
        } else {
            transposeOutOfLanes(output + firstChannel * pixels, rowStride: pixels, sums, rowStride: 16,
                                rows: channels, count: pixels, blocking: .narrow)
        }
    }
}

/// 6 output pixels in reading order, from `first` (the last one repeated where the image
/// has fewer), and where each reads the direct forward's source: at `start` + `offsets.j`,
/// then a kernel position's offset. Six pixels of 16 channels are 12 of AVX2's 16
/// registers, enough chains to keep both FMA units busy (2 rows x 2 pixels, 8, were not),
/// with 2 for the weights and 1 for the broadcast. The six offsets are loop-invariant
/// index registers, so a block reads across a row break as cheaply as along a row, and
/// the rows of any width are blocked without waste.
struct FlatPixelBlock {
    static let pixels = 6
    let start: Int
    let offsets: (Int, Int, Int, Int, Int, Int)

    init(first: Int, _ g: ConvGeometry) {
        let width = g.outWidth, pitch = g.directPitch, last = g.outPixels - 1
        var pixel = first, y = first / width, x = first - y * width
        let start = y * pitch + x
        // The next pixel's offset from the first (the last pixel's again at the end), stepping
        // along the row and on to the next one rather than dividing for each.
        func next() -> Int {
            if pixel < last {
                pixel += 1
                x += 1
                if x == width { (x, y) = (0, y + 1) }
            }
            return y * pitch + x - start
        }
        self.start = start
        offsets = (0, next(), next(), next(), next(), next())
    }

    /// Pixel j's sum over p in 0..<count of source[start + offsets.j + rowOffsets[p]] * weights row p
    /// (rows `rowStride` apart), one chain per pixel in the order of p.
    ///
    /// Compiled for size, which keeps LLVM from unrolling the loop: unrolled by 2 (as it is
    /// at -O, with the frame pointer SwiftPM keeps), the next step's broadcasts are loaded
    /// early and 12 sums, 2 weights and 12 broadcasts cannot share 16 registers, so the sums
    /// went through the stack at every step. Not inlined, so that the attribute holds (a call
    /// per 6 x 150 x 16 multiply-adds costs nothing).
    @inline(never) @_optimize(size)
    func sums(_ source: UnsafePointer<Float>, offsets rowOffsets: UnsafePointer<Int>, weights: UnsafePointer<Float>,
              rowStride: Int, count: Int) -> (Vector, Vector, Vector, Vector, Vector, Vector) {
        let (o0, o1, o2, o3, o4, o5) = offsets
        let block = source + start
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector()
        var w = weights
        for p in 0..<count {
            let ws = load(w), q = block + rowOffsets[p]
            a0 = a0.addingProduct(Vector(repeating: q[o0]), ws)
            a1 = a1.addingProduct(Vector(repeating: q[o1]), ws)
            a2 = a2.addingProduct(Vector(repeating: q[o2]), ws)
            a3 = a3.addingProduct(Vector(repeating: q[o3]), ws)
            a4 = a4.addingProduct(Vector(repeating: q[o4]), ws)
            a5 = a5.addingProduct(Vector(repeating: q[o5]), ws)
            w += rowStride
        }
        return (a0, a1, a2, a3, a4, a5)
    }
}

/// The direct forward's product, C [OC, OH*pitch]: column y*pitch + x is output pixel
/// (y, x), kept when x < width, and written with its channel's bias added to
/// `output` [OC, height, width]. The pitch is a multiple of 16, so that the kernel's
/// 16 columns at a time never span two output rows.
struct ConvolutionOutput: BroadcastResults {
    let output: UnsafeMutablePointer<Float>
    let bias: UnsafePointer<Float>
    let height, width, pitch: Int

    @inline(__always) func store(_ v: Vector, row: Int, column: Int, firstLane: Int) {
        let y = column / pitch, x = column - y * pitch
        let kept = min(16, width - x)
        guard kept > firstLane else { return }
        let dst = output + (row * height + y) * width + x, sums = v + Vector(repeating: bias[row])
        if firstLane == 0 {
            storeFirst(kept, of: sums, to: dst)
        } else {
            for lane in firstLane..<kept { dst[lane] = sums[lane] }
        }
    }

    @inline(__always) func store(_ value: Float, row: Int, column: Int) {
        let y = column / pitch, x = column - y * pitch
        if x < width { output[(row * height + y) * width + x] = value + bias[row] }
    }
}

/// `ConvolutionOutput`, then ReLU and 2x2 max pooling: `output` [OC, OH/2, OW/2] (an odd
/// last row or column is left out, as `maxPool2x2Forward` leaves it). An even output row's
/// 16 columns wait in `pending` [OC, pitch] until the odd row below arrives; the GEMM stores
/// each channel's tiles in column order (`gemmBroadcastA`), so the row above always comes
/// first. Then the two rows' maximum, their neighbouring columns' maximum and the ReLU:
/// `rectifiedWindowMax`, as the pool computes it, so the same bits. Pitches are multiples of
/// 16 and the product at least one row wide, so every store is a whole tile at a multiple of
/// 16 (even) columns, and a window never spans two tiles.
struct RectifiedPoolOutput: BroadcastResults {
    let output, pending: UnsafeMutablePointer<Float>
    let bias: UnsafePointer<Float>
    let height, width, pitch: Int

    @inline(__always) func store(_ v: Vector, row: Int, column: Int, firstLane: Int) {
        let y = column / pitch, x = column - y * pitch
        let sums = v + Vector(repeating: bias[row])
        let above = pending + row * pitch + x
        guard y & 1 == 1 else {
            LeNetKit.store(sums, above, accumulate: false)
            return
        }
        let pooledWidth = width / 2, kept = min(8, pooledWidth - x / 2)
        guard kept > 0 else { return }  // the tile is all padding columns
        Self.pool(above, sums, kept: kept, to: output + (row * (height / 2) + y / 2) * pooledWidth + x / 2)
    }

    /// The windows of the tile above and `lower`: a call of its own, so that `store`, inlined
    /// at every tile of the GEMM, stays small enough to be.
    @inline(never)
    private static func pool(_ above: UnsafePointer<Float>, _ lower: Vector, kept: Int, to out: UnsafeMutablePointer<Float>) {
        let upper = load(above)
        storeFirst(kept, of: rectifiedWindowMax(upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf), to: out)
    }

    func store(_ value: Float, row: Int, column: Int) {
        fatalError("RectifiedPoolOutput takes whole tiles: a direct forward's product is a multiple of 16 wide")
    }
}

/// Stores lanes 0..<count (1...16) of `v` to `p`, in pieces of 8, 4, 2 and 1 lanes: no
/// write past the last one.
@inline(__always)
func storeFirst(_ count: Int, of v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>) {
    if count == 16 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self); return }
    if count & 8 != 0 {
        UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD8<Float>.self)
        storeFirst(count - 8, of: v.highHalf, to: p + 8)
    } else {
        storeFirst(count, of: v.lowHalf, to: p)
    }
}

/// Lanes 0..<count (0...8) of `v`, stored the same way.
@inline(__always)
func storeFirst(_ count: Int, of eight: SIMD8<Float>, to p: UnsafeMutablePointer<Float>) {
    @inline(__always) func put<V: SIMD>(_ piece: V, _ at: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        UnsafeMutableRawPointer(at).storeBytes(of: piece, as: V.self)
    }
    if count == 8 { put(eight, p); return }
    var at = p
    let four: SIMD4<Float>
    if count & 4 != 0 { put(eight.lowHalf, at); at += 4; four = eight.highHalf } else { four = eight.lowHalf }
    let two: SIMD2<Float>
    if count & 2 != 0 { put(four.lowHalf, at); at += 2; two = four.highHalf } else { two = four.lowHalf }
    if count & 1 != 0 { at.pointee = two.x }
}

/// The columns `conv2dForward` lays out for `images` images, without the product: for a
/// backward pass whose forward did not keep them (a batch too large to keep every column).
func conv2dUnfold(columns: UnsafeMutablePointer<Float>, padded: UnsafeMutablePointer<Float>?,
                  input: UnsafePointer<Float>, images: Int, _ g: ConvGeometry) {
    let pixels = g.outPixels, rowStride = images * pixels
    for image in 0..<images {
        im2col(columns + image * pixels, rowStride: rowStride, input + image * g.inputSize, g, padded: padded)
    }
}

/// Backward of the forward above, for the same `images`. Writes their summed weight
/// gradient [OC, C*K*K] and bias gradient [OC] (or adds them to what is there, with
/// `accumulate`); when `inputGrad` is given, writes the input gradient [images, C, H, W]
/// there. Scratch: `outputGradRows` [OC, images*OH*OW] and `columnGrad`
/// (`g.columnGradScratchSize` floats: [C*K*K, OH*OW] with margins for `col2im`).
func conv2dBackward(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                           inputGrad: UnsafeMutablePointer<Float>?, outputGradRows: UnsafeMutablePointer<Float>,
                           columnGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           columns: UnsafePointer<Float>, images: Int, weight: UnsafePointer<Float>, _ g: ConvGeometry,
                           accumulate: Bool = false) {
    let pixels = g.outPixels, rowStride = images * pixels
    // Lay each channel's gradients of all images in one row, so that the weight
    // gradient is one long dot product per entry rather than one per image.
    for image in 0..<images {
        for oc in 0..<g.outChannels {
            copyFloats(outputGradRows + oc * rowStride + image * pixels, outputGrad + image * g.outputSize + oc * pixels,
                       count: pixels)
        }
    }
    let dOutRows = MatrixView(outputGradRows, rows: g.outChannels, columns: rowStride)
    // dW = dOut · columnsᵀ over every pixel of every image.
    gemm(MutableMatrixView(weightGrad, rows: g.outChannels, columns: g.patchSize),
         dOutRows, MatrixView(columns, rows: g.patchSize, columns: rowStride).transposed, accumulate: accumulate)
    for oc in 0..<g.outChannels {
        let total = sum(outputGradRows + oc * rowStride, count: rowStride)
        biasGrad[oc] = accumulate ? biasGrad[oc] + total : total
    }
    guard let inputGrad else { return }
    conv2dInputGradient(inputGrad, columnGrad: columnGrad, outputGrad: outputGrad, images: images, weight: weight, g)
}

/// The input gradient [images, C, H, W] of `images` images from their output gradients
/// [images, OC, OH*OW]: per image, dColumns = Wᵀ · dOut, folded back onto the image by
/// `col2im`. `columnGrad` as for `conv2dBackward`.
func conv2dInputGradient(_ inputGrad: UnsafeMutablePointer<Float>, columnGrad: UnsafeMutablePointer<Float>,
                         outputGrad: UnsafePointer<Float>, images: Int, weight: UnsafePointer<Float>,
                         _ g: ConvGeometry) {
    let pixels = g.outPixels
    let weightT = MatrixView(weight, rows: g.outChannels, columns: g.patchSize).transposed
    let columnGradMatrix = columnGrad + ConvGeometry.columnGradMargin
    for image in 0..<images {
        gemm(MutableMatrixView(columnGradMatrix, rows: g.patchSize, columns: pixels), weightT,
             MatrixView(outputGrad + image * g.outputSize, rows: g.outChannels, columns: pixels), accumulate: false)
        col2im(inputGrad + image * g.inputSize, columnGradMatrix, g)
    }
}

/// Direct convolution of one image by definition, for tests.
func conv2dForwardReference(output: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ g: ConvGeometry) {
    let k = g.kernel
    for oc in 0..<g.outChannels {
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                var acc = Double(bias[oc])
                for c in 0..<g.inChannels {
                    for ki in 0..<k {
                        for kj in 0..<k {
                            let y = oy * g.stride + ki - g.padding, x = ox * g.stride + kj - g.padding
                            guard y >= 0, y < g.height, x >= 0, x < g.width else { continue }
                            acc += Double(image[(c * g.height + y) * g.width + x])
                                * Double(weight[((oc * g.inChannels + c) * k + ki) * k + kj])
                        }
                    }
                }
                output[(oc * g.outHeight + oy) * g.outWidth + ox] = Float(acc)
            }
        }
    }
}

/// Sum of `count` floats, vectorised, in a fixed order.
@inline(__always)
func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        i += 16
    }
    var total = horizontalSum(acc)
    while i < count { total += x[i]; i += 1 }
    return total
}

/// dst[0..<count] = src[0..<count] for the short rows of convolution (a call to memmove
/// costs more than the copy): whole vectors, then one overlapping vector for the rest.
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    @inline(__always) func move<V: SIMD>(_: V.Type, _ offset: Int) where V.Scalar == Float {
        UnsafeMutableRawPointer(dst + offset).storeBytes(of: UnsafeRawPointer(src + offset).loadUnaligned(as: V.self), as: V.self)
    }
    if count >= 16 {
        var i = 0
        while i + 16 <= count { move(SIMD16<Float>.self, i); i += 16 }
        if i < count { move(SIMD16<Float>.self, count - 16) }
    } else if count >= 8 {
        move(SIMD8<Float>.self, 0)
        move(SIMD8<Float>.self, count - 8)
    } else if count >= 4 {
        move(SIMD4<Float>.self, 0)
        move(SIMD4<Float>.self, count - 4)
    } else {
        for i in 0..<count { dst[i] = src[i] }
    }
}

/// dst[0..<count] += src[0..<count]: vectors of 16, then 8 and 4, then single floats.
@inline(__always)
func addFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    @inline(__always) func add<V: SIMD>(_: V.Type, _ offset: Int) where V.Scalar == Float {
        let sum = UnsafeRawPointer(dst + offset).loadUnaligned(as: V.self) + UnsafeRawPointer(src + offset).loadUnaligned(as: V.self)
        UnsafeMutableRawPointer(dst + offset).storeBytes(of: sum, as: V.self)
    }
    var i = 0
    while i + 16 <= count { add(SIMD16<Float>.self, i); i += 16 }
    if i + 8 <= count { add(SIMD8<Float>.self, i); i += 8 }
    if i + 4 <= count { add(SIMD4<Float>.self, i); i += 4 }
    while i < count { dst[i] += src[i]; i += 1 }
}
