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
            // Kernel row ki's operands for input row y, from lane `lanes` on: its 5 weights
            // (one every lc floats) and the output row it reaches from y, [OW, 16].
            @inline(__always) func operands(_ ki: Int, lanes: Int) -> (dOut: UnsafePointer<Float>, weights: UnsafePointer<Float>) {
                (transposed + (y + p - ki) * ow * 16 + lanes, laneWeights + (c * k + ki) * k * lc + firstChannel + lanes)
            }
            switch blocking {
            case .wide:
                for ki in g.kernelRows(reachingInputRow: y) {
                    let (dOut, weights) = operands(ki, lanes: 0)
                    sums.scatter(dOut, weights, lc, outWidth: ow)
                }
            case .narrow:
                // AVX2's 16 registers cannot hold 16 sums of 16 lanes (32 registers), nor the
                // 5 weights (10) beside a few. The lanes' halves are independent until
                // `horizontalSums` adds them, so the row in 4 passes of one half of 8
                // positions: 8 sums, 5 weights and an output pixel in 14 registers, kept
                // over every kernel row that reaches the row. Each sum's chain is the same.
                let rows = g.kernelRows(reachingInputRow: y)
                @inline(__always) func pass(lanes: Int, positions first: Int, outWidth: Int) {
                    var half = HalfRowSums()
                    for ki in rows {
                        let (dOut, weights) = operands(ki, lanes: lanes)
                        half.scatter(dOut, weights, lc, outWidth: outWidth, positions: first)
                    }
                    sums.setHalf(half, lanes: lanes, positions: first)
                }
                @inline(__always) func passes(outWidth: Int) {
                    pass(lanes: 0, positions: 0, outWidth: outWidth)
                    pass(lanes: 0, positions: 8, outWidth: outWidth)
                    pass(lanes: 8, positions: 0, outWidth: outWidth)
                    pass(lanes: 8, positions: 8, outWidth: outWidth)
                }
                // conv2's rows of 10 compiled as a constant: no test per output pixel.
                if ow == 10 { passes(outWidth: 10) } else { passes(outWidth: ow) }
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
    /// column kj, sum x + kj += weights[kj] * dOut[x]. Every index is a constant once
    /// unrolled, so the sums stay in registers. Unrolled for `InputGradientInLanes`' shape:
    /// 12 output pixels (those past `outWidth` skipped), 5 columns.
    @inline(__always)
    mutating func scatter(_ dOut: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ lc: Int, outWidth: Int) {
        let w0 = load(weights), w1 = load(weights + lc), w2 = load(weights + 2 * lc)
        let w3 = load(weights + 3 * lc), w4 = load(weights + 4 * lc)
        withUnsafeMutableBytes(of: &v) { raw in
            let sums = raw.baseAddress!.assumingMemoryBound(to: Vector.self)
            @inline(__always) func add(_ x: Int) {
                guard x < outWidth else { return }
                let d = load(dOut + x * 16)
                @inline(__always) func term(_ kj: Int, _ w: Vector) {
                    sums[x + kj] = sums[x + kj].addingProduct(w, d)
                }
                term(0, w0); term(1, w1); term(2, w2); term(3, w3); term(4, w4)
            }
            add(0); add(1); add(2); add(3); add(4); add(5); add(6); add(7); add(8); add(9); add(10); add(11)
        }
    }

    /// Lanes `lanes ..< lanes+8` of the sums at positions `first ..< first+8`.
    @inline(__always)
    mutating func setHalf(_ half: HalfRowSums, lanes: Int, positions first: Int) {
        withUnsafeMutableBytes(of: &v) { raw in
            let floats = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            withUnsafeBytes(of: half.all) { source in
                let halves = source.baseAddress!.assumingMemoryBound(to: SIMD8<Float>.self)
                for i in 0..<8 {
                    UnsafeMutableRawPointer(floats + (first + i) * 16 + lanes).storeBytes(of: halves[i], as: SIMD8<Float>.self)
                }
            }
        }
    }
}

/// Eight lanes of 8 of `RowSums`' positions: AVX2's register block (`GemmBlocking.narrow`).
/// Eight named sums, not an indexed tuple, so that they live in registers.
private struct HalfRowSums {
    typealias Half = SIMD8<Float>
    var s0 = Half(), s1 = Half(), s2 = Half(), s3 = Half(), s4 = Half(), s5 = Half(), s6 = Half(), s7 = Half()

    /// Sum `a` += w * d (`a` is a constant once inlined; the switch folds away).
    @inline(__always)
    mutating func add(_ a: Int, _ w: Half, _ d: Half) {
        switch a {
        case 0: s0 = s0.addingProduct(w, d)
        case 1: s1 = s1.addingProduct(w, d)
        case 2: s2 = s2.addingProduct(w, d)
        case 3: s3 = s3.addingProduct(w, d)
        case 4: s4 = s4.addingProduct(w, d)
        case 5: s5 = s5.addingProduct(w, d)
        case 6: s6 = s6.addingProduct(w, d)
        case 7: s7 = s7.addingProduct(w, d)
        default: break
        }
    }

    /// `RowSums.scatter` for positions `first ..< first+8` only, on the 8 lanes that `dOut`
    /// and `weights` point to.
    @inline(__always)
    mutating func scatter(_ dOut: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ lc: Int,
                          outWidth: Int, positions first: Int) {
        @inline(__always) func load8(_ p: UnsafePointer<Float>) -> Half { UnsafeRawPointer(p).loadUnaligned(as: Half.self) }
        let w0 = load8(weights), w1 = load8(weights + lc), w2 = load8(weights + 2 * lc)
        let w3 = load8(weights + 3 * lc), w4 = load8(weights + 4 * lc)
        @inline(__always) func pixel(_ x: Int) {
            // The pixels whose terms reach these positions: x + kj in first ..< first+8.
            guard x < outWidth && x + 4 >= first && x < first + 8 else { return }
            let d = load8(dOut + x * 16)
            add(x - first, w0, d); add(x + 1 - first, w1, d); add(x + 2 - first, w2, d)
            add(x + 3 - first, w3, d); add(x + 4 - first, w4, d)
        }
        pixel(0); pixel(1); pixel(2); pixel(3); pixel(4); pixel(5); pixel(6); pixel(7)
        pixel(8); pixel(9); pixel(10); pixel(11)
    }

    /// The sums in order.
    var all: (Half, Half, Half, Half, Half, Half, Half, Half) { (s0, s1, s2, s3, s4, s5, s6, s7) }
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
