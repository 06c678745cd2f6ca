/// A stride-1 convolution's input gradient without im2col columns, with the output channels
/// in the vector lanes: the backward twin of `conv2dForwardChannelsInLanes`, for conv2.
///
/// dIn[c, Y, X] is the sum, over the kernel taps (ki, kj) and the output channels o, of
/// W[o, c, ki, kj] times dOut[o, y, x], where y = Y + p - ki and x = X + p - kj fall inside
/// the output. With each output pixel's 16 channel gradients in one vector (`transposed`,
/// as the lane weight gradient lays them out) and each tap's 16 channel weights in another
/// (`laneWeights`, as `prepareChannelsInLanes` lays them out), one fused multiply-add per
/// (output pixel, tap) adds every channel's product at once. The im2col way (Wᵀ · dOut,
/// then `col2im`) writes and reads C*K*K floats per output pixel, and its GEMM computes 112
/// columns for conv2's 100; this reads nothing but dOut and the weights, and computes no
/// product it throws away.
///
/// Each input row is scattered into in registers: for one kernel row ki, output pixel x
/// adds its K products to the sums of row positions x .. x+K-1 of the padded row, which is
/// every product that touches that row and no other. The row's 16 sums (each 16 channels
/// wide) are then added across their lanes (`horizontalSums`) and its W pixels kept. So
/// the positions, and the kernel width, are known when the kernel is compiled: K = 5 and
/// output rows of at most 12 pixels (`inputGradientInLanesFits`).
///
/// The sum for one input pixel and one output channel runs over ki ascending, then x
/// ascending (kj descending), with one fused multiply-add each, whatever the register
/// block; the channels are then added by `horizontalSum`'s tree. So the same bits on every
/// CPU and at every thread count.

/// The kernel width and the widest output row `conv2dInputGradientInLanes` is compiled for.
enum InputGradientInLanes {
    static let kernel = 5
    static let maxOutWidth = 12
    /// The padded row's positions: `maxOutWidth + kernel - 1`, one vector's lanes.
    static let positions = 16
}

/// Whether `conv2dInputGradientInLanes` computes this convolution's input gradient.
func inputGradientInLanesFits(_ g: ConvGeometry) -> Bool {
    g.stride == 1 && g.kernel == InputGradientInLanes.kernel && g.outWidth <= InputGradientInLanes.maxOutWidth
        && g.width + 2 * g.padding <= InputGradientInLanes.positions
}

/// Writes one image's input gradient [C, H, W] (with `accumulate`, adds it to what is
/// there) from its output gradient for channels firstChannel ..< firstChannel+16.
/// `transposed` is that gradient [OH*OW, 16], zero past OC (`transposeToLanes`);
/// `laneWeights` is [C*K*K + 1, laneChannels] (`prepareChannelsInLanes`).
func conv2dInputGradientInLanes(_ inputGrad: UnsafeMutablePointer<Float>, transposed: UnsafePointer<Float>,
                                laneWeights: UnsafePointer<Float>, firstChannel: Int, accumulate: Bool,
                                _ g: ConvGeometry, blocking: GemmBlocking = .native) {
    precondition(inputGradientInLanesFits(g), "no input gradient in lanes for \(g)")
    let k = g.kernel, ow = g.outWidth, p = g.padding, lc = g.laneChannels
    for c in 0..<g.inChannels {
        for y in 0..<g.height {
            var sums = RowSums()
            // The sums at `positions`, over every kernel row that reaches row y.
            @inline(__always) func scatterRows(_ positions: Range<Int>) {
                for ki in g.kernelRows(reachingInputRow: y) {
                    let weights = laneWeights + (c * k + ki) * k * lc + firstChannel
                    let dOut = transposed + (y + p - ki) * ow * 16
                    sums.scatter(dOut, weights, lc, outWidth: ow, positions: positions)
                }
            }
            switch blocking {
            case .wide: scatterRows(0..<16)
            case .narrow:
                // AVX2's 16 registers hold 4 sums (two halves each) beside an output pixel
                // and a weight: the row in passes of 4 positions, each pass's sums kept in
                // registers over all its kernel rows. Each sum's chain is the same.
                scatterRows(0..<4)
                scatterRows(4..<8)
                scatterRows(8..<12)
                scatterRows(12..<16)
            }
            // Lane a is padded position a, input pixel a - p.
            let row = horizontalSums(sums.v)
            let out = inputGrad + (c * g.height + y) * g.width
            withUnsafeBytes(of: row) { raw in
                let lanes = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                for x in 0..<g.width { out[x] = accumulate ? out[x] + lanes[x + p] : lanes[x + p] }
            }
        }
    }
}

/// The 16 sums of one padded input row, 16 output channels each.
private struct RowSums {
    var v: SixteenVectors = (Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(),
                             Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector())

    /// For each output pixel x < outWidth of one output row (`dOut`, [OW, 16]) and kernel
    /// column kj, sum x + kj += weights[kj] * dOut[x], for the sums in `positions` only.
    /// Every index is a constant once unrolled, so the sums stay in registers. Unrolled for
    /// `InputGradientInLanes`' shape: 12 output pixels (those past `outWidth` skipped), 5 columns.
    @inline(__always)
    mutating func scatter(_ dOut: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ lc: Int,
                          outWidth: Int, positions: Range<Int>) {
        let w0 = load(weights), w1 = load(weights + lc), w2 = load(weights + 2 * lc)
        let w3 = load(weights + 3 * lc), w4 = load(weights + 4 * lc)
        withUnsafeMutableBytes(of: &v) { raw in
            let sums = raw.baseAddress!.assumingMemoryBound(to: Vector.self)
            @inline(__always) func add(_ x: Int) {
                guard x < outWidth else { return }
                let d = load(dOut + x * 16)
                @inline(__always) func term(_ kj: Int, _ w: Vector) {
                    let a = x + kj
                    if positions.contains(a) { sums[a] = sums[a].addingProduct(w, d) }
                }
                term(0, w0); term(1, w1); term(2, w2); term(3, w3); term(4, w4)
            }
            add(0); add(1); add(2); add(3); add(4); add(5); add(6); add(7); add(8); add(9); add(10); add(11)
        }
    }
}

/// The same sums by the same chains, one lane at a time: the reference the kernel is
/// compared with bit for bit. Reads the output gradient [OC, OH*OW] and weight
/// [OC, C*K*K] as the layer holds them.
func conv2dInputGradientInLanesReference(_ inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                         weight: UnsafePointer<Float>, _ g: ConvGeometry) {
    precondition(inputGradientInLanesFits(g), "no input gradient in lanes for \(g)")
    let k = g.kernel, oh = g.outHeight, ow = g.outWidth, p = g.padding
    for firstChannel in stride(from: 0, to: g.outChannels, by: 16) {
        for c in 0..<g.inChannels {
            for y in 0..<g.height {
                for x in 0..<g.width {
                    // Each lane's chain over ki ascending, then output pixel ascending.
                    var lanes = Vector()
                    for lane in 0..<min(16, g.outChannels - firstChannel) {
                        let o = firstChannel + lane
                        var acc: Float = 0
                        for ki in 0..<k {
                            let oy = y + p - ki
                            guard oy >= 0 && oy < oh else { continue }
                            for ox in 0..<ow {
                                let kj = x + p - ox
                                guard kj >= 0 && kj < k else { continue }
                                acc = acc.addingProduct(weight[((o * g.inChannels + c) * k + ki) * k + kj],
                                                        outputGrad[(o * oh + oy) * ow + ox])
                            }
                        }
                        lanes[lane] = acc
                    }
                    let out = inputGrad + (c * g.height + y) * g.width + x
                    out.pointee = firstChannel == 0 ? horizontalSum(lanes) : out.pointee + horizontalSum(lanes)
                }
            }
        }
    }
}
