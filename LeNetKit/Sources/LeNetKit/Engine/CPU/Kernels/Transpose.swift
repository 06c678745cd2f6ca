/// Moving 16 channels in and out of the vector lanes: the layouts the channels-in-lanes
/// kernels read and write ([pixel or weight row, 16 channels]) from and to the layer's
/// ([channel, pixels or weight rows]). Blocks go through registers: 16 x 16 (`transposed16`)
/// on `.wide`, 8 x 8 (`transposed8x8`) on `.narrow`, whose 16 registers a 16 x 16 block
/// overflows; a last block ends at the last column, overlapping the one before (the same
/// values, written again); fewer than 16 columns go one float at a time.

/// dst[i * dstStride + lane] = src[lane * srcStride + i] for i in 0..<count and lane in
/// 0..<16, zero for lane >= rows (at most 16): `rows` rows of `count` floats become `count`
/// vectors of 16 lanes.
func transposeIntoLanes(_ dst: UnsafeMutablePointer<Float>, rowStride dstStride: Int, _ src: UnsafePointer<Float>,
                        rowStride srcStride: Int, rows: Int, count: Int, blocking: GemmBlocking = .native) {
    precondition(rows <= 16, "at most 16 rows go into the lanes")
    guard count >= 16 else {
        for i in 0..<count {
            for lane in 0..<16 { dst[i * dstStride + lane] = lane < rows ? src[lane * srcStride + i] : 0 }
        }
        return
    }
    if blocking == .narrow {
        // Lanes 0-7, then 8-15, 8 columns at a time.
        for firstLane in stride(from: 0, to: 16, by: 8) {
            var column = 0
            while column < count {
                let first = min(column, count - 8)
                @inline(__always) func row(_ r: Int) -> Eight {
                    firstLane + r < rows ? loadEight(src + (firstLane + r) * srcStride + first) : Eight()
                }
                let block = transposed8x8((row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)))
                @inline(__always) func put(_ i: Int, _ v: Eight) { storeEight(v, dst + (first + i) * dstStride + firstLane) }
                put(0, block.0); put(1, block.1); put(2, block.2); put(3, block.3)
                put(4, block.4); put(5, block.5); put(6, block.6); put(7, block.7)
                column = first + 8
            }
        }
        return
    }
    var column = 0  // the first column not yet written
    while column < count {
        let first = min(column, count - 16)
        @inline(__always) func row(_ lane: Int) -> Vector { lane < rows ? load(src + lane * srcStride + first) : Vector() }
        let block = transposed16((row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7),
                                  row(8), row(9), row(10), row(11), row(12), row(13), row(14), row(15)))
        withUnsafeBytes(of: block) { raw in
            let vectors = raw.baseAddress!.assumingMemoryBound(to: Vector.self)
            for i in 0..<16 { store(vectors[i], dst + (first + i) * dstStride, accumulate: false) }
        }
        column = first + 16
    }
}

/// The inverse: dst[lane * dstStride + i] = src[i * srcStride + lane] for lane in 0..<rows
/// (at most 16) and i in 0..<count: lanes 0..<rows of `count` vectors become `rows` rows.
func transposeOutOfLanes(_ dst: UnsafeMutablePointer<Float>, rowStride dstStride: Int, _ src: UnsafePointer<Float>,
                         rowStride srcStride: Int, rows: Int, count: Int, blocking: GemmBlocking = .native) {
    precondition(rows <= 16, "at most 16 rows come out of the lanes")
    guard count >= 16 else {
        for lane in 0..<rows {
            for i in 0..<count { dst[lane * dstStride + i] = src[i * srcStride + lane] }
        }
        return
    }
    if blocking == .narrow {
        // Lanes 0-7, then 8-15 if there are rows for them, 8 columns at a time.
        for firstLane in stride(from: 0, to: rows, by: 8) {
            let lanes = min(8, rows - firstLane)
            var column = 0
            while column < count {
                let first = min(column, count - 8)
                @inline(__always) func vector(_ i: Int) -> Eight { loadEight(src + (first + i) * srcStride + firstLane) }
                let block = transposed8x8((vector(0), vector(1), vector(2), vector(3),
                                           vector(4), vector(5), vector(6), vector(7)))
                @inline(__always) func put(_ r: Int, _ v: Eight) {
                    if r < lanes { storeEight(v, dst + (firstLane + r) * dstStride + first) }
                }
                put(0, block.0); put(1, block.1); put(2, block.2); put(3, block.3)
                put(4, block.4); put(5, block.5); put(6, block.6); put(7, block.7)
                column = first + 8
            }
        }
        return
    }
    var column = 0
    while column < count {
        let first = min(column, count - 16)
        @inline(__always) func vector(_ i: Int) -> Vector { load(src + (first + i) * srcStride) }
        let block = transposed16((vector(0), vector(1), vector(2), vector(3), vector(4), vector(5), vector(6), vector(7),
                                  vector(8), vector(9), vector(10), vector(11), vector(12), vector(13), vector(14),
                                  vector(15)))
        withUnsafeBytes(of: block) { raw in
            let vectors = raw.baseAddress!.assumingMemoryBound(to: Vector.self)
            for lane in 0..<rows { store(vectors[lane], dst + lane * dstStride + first, accumulate: false) }
        }
        column = first + 16
    }
}

/// The 16 x 16 transpose of 16 vectors: lane j of result i is lane i of vector j. Four
/// rounds, each splitting every pair of vectors (2k, 2k+1) into its even lanes (result k)
/// and odd lanes (result k + 8): read as one 256-element index (vector, lane), a round
/// rotates the index's 8 bits right by one, so four rounds swap its halves.
///
/// With `.narrow` the same rounds run on four 8 x 8 blocks of 8-lane halves, one block at a
/// time in 8 of AVX2's 16 registers: the 16 x 16 rounds need 32 such registers and spill,
/// and their 32-lane splits take several shuffles each.
@inline(__always) func transposed16(_ v: SixteenVectors, blocking: GemmBlocking = .native) -> SixteenVectors {
    guard blocking == .wide else { return transposedByEights(v) }
    @inline(__always) func round(_ v: SixteenVectors) -> SixteenVectors {
        @inline(__always) func split(_ a: Vector, _ b: Vector) -> (even: Vector, odd: Vector) {
            let both = SIMD32<Float>(lowHalf: a, highHalf: b)
            return (both.evenHalf, both.oddHalf)
        }
        let p0 = split(v.0, v.1), p1 = split(v.2, v.3), p2 = split(v.4, v.5), p3 = split(v.6, v.7)
        let p4 = split(v.8, v.9), p5 = split(v.10, v.11), p6 = split(v.12, v.13), p7 = split(v.14, v.15)
        return (p0.even, p1.even, p2.even, p3.even, p4.even, p5.even, p6.even, p7.even,
                p0.odd, p1.odd, p2.odd, p3.odd, p4.odd, p5.odd, p6.odd, p7.odd)
    }
    return round(round(round(round(v))))
}

/// `transposed16` by 8 x 8 blocks: rows 0-7 and 8-15 of `v`, each cut into lanes 0-7 and
/// 8-15, are four blocks; block (r, c) of the result is block (c, r) of `v`, transposed.
@inline(__always) private func transposedByEights(_ v: SixteenVectors) -> SixteenVectors {
    typealias Half = SIMD8<Float>
    typealias EightHalves = (Half, Half, Half, Half, Half, Half, Half, Half)
    // Three rounds of the even/odd split: an 8 x 8 block's 6-bit index rotated three times.
    @inline(__always) func transposed8(_ r: EightHalves) -> EightHalves {
        @inline(__always) func round(_ r: EightHalves) -> EightHalves {
            @inline(__always) func split(_ a: Half, _ b: Half) -> (even: Half, odd: Half) {
                let both = SIMD16<Float>(lowHalf: a, highHalf: b)
                return (both.evenHalf, both.oddHalf)
            }
            let p0 = split(r.0, r.1), p1 = split(r.2, r.3), p2 = split(r.4, r.5), p3 = split(r.6, r.7)
            return (p0.even, p1.even, p2.even, p3.even, p0.odd, p1.odd, p2.odd, p3.odd)
        }
        return round(round(round(r)))
    }
    let topLeft = transposed8((v.0.lowHalf, v.1.lowHalf, v.2.lowHalf, v.3.lowHalf,
                               v.4.lowHalf, v.5.lowHalf, v.6.lowHalf, v.7.lowHalf))
    let bottomLeft = transposed8((v.8.lowHalf, v.9.lowHalf, v.10.lowHalf, v.11.lowHalf,
                                  v.12.lowHalf, v.13.lowHalf, v.14.lowHalf, v.15.lowHalf))
    let topRight = transposed8((v.0.highHalf, v.1.highHalf, v.2.highHalf, v.3.highHalf,
                                v.4.highHalf, v.5.highHalf, v.6.highHalf, v.7.highHalf))
    let bottomRight = transposed8((v.8.highHalf, v.9.highHalf, v.10.highHalf, v.11.highHalf,
                                   v.12.highHalf, v.13.highHalf, v.14.highHalf, v.15.highHalf))
    // Result i < 8 is lane i of vectors 0-7 (topLeft's row i), then of 8-15 (bottomLeft's);
    // result 8 + i is lane 8 + i of them (topRight's and bottomRight's row i).
    return (Vector(lowHalf: topLeft.0, highHalf: bottomLeft.0), Vector(lowHalf: topLeft.1, highHalf: bottomLeft.1),
            Vector(lowHalf: topLeft.2, highHalf: bottomLeft.2), Vector(lowHalf: topLeft.3, highHalf: bottomLeft.3),
            Vector(lowHalf: topLeft.4, highHalf: bottomLeft.4), Vector(lowHalf: topLeft.5, highHalf: bottomLeft.5),
            Vector(lowHalf: topLeft.6, highHalf: bottomLeft.6), Vector(lowHalf: topLeft.7, highHalf: bottomLeft.7),
            Vector(lowHalf: topRight.0, highHalf: bottomRight.0), Vector(lowHalf: topRight.1, highHalf: bottomRight.1),
            Vector(lowHalf: topRight.2, highHalf: bottomRight.2), Vector(lowHalf: topRight.3, highHalf: bottomRight.3),
            Vector(lowHalf: topRight.4, highHalf: bottomRight.4), Vector(lowHalf: topRight.5, highHalf: bottomRight.5),
            Vector(lowHalf: topRight.6, highHalf: bottomRight.6), Vector(lowHalf: topRight.7, highHalf: bottomRight.7))
}

typealias Eight = SIMD8<Float>
typealias EightVectors = (Eight, Eight, Eight, Eight, Eight, Eight, Eight, Eight)

@inline(__always) private func loadEight(_ p: UnsafePointer<Float>) -> Eight { UnsafeRawPointer(p).loadUnaligned(as: Eight.self) }
@inline(__always) private func storeEight(_ v: Eight, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Eight.self)
}

/// The 8 x 8 transpose of 8 vectors (lane j of result i is lane i of vector j) in the
/// shuffles AVX2 has within each 128-bit half: pairs of rows interleaved (as `unpcklps` and
/// `unpckhps`), then pairs of pairs (`shufps`), then the halves exchanged (`vperm2f128`).
/// 24 shuffles, where `transposedByEights`' even/odd rounds cross the halves at every step.
/// Each names its lanes, so LLVM sees the whole permutation and chooses the instructions
/// (on the stores of `transposeOutOfLanes`, it computes each result with a few of its own).
@inline(__always) func transposed8x8(_ r: EightVectors) -> EightVectors {
    @inline(__always) func low(_ a: Eight, _ b: Eight) -> Eight { Eight(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]) }
    @inline(__always) func high(_ a: Eight, _ b: Eight) -> Eight { Eight(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]) }
    @inline(__always) func lowPairs(_ a: Eight, _ b: Eight) -> Eight { Eight(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5]) }
    @inline(__always) func highPairs(_ a: Eight, _ b: Eight) -> Eight { Eight(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7]) }
    // t: rows 2k and 2k+1 interleaved; lanes (0, 1, 4, 5) of each in `low`, (2, 3, 6, 7) in `high`.
    let t0 = low(r.0, r.1), t1 = high(r.0, r.1), t2 = low(r.2, r.3), t3 = high(r.2, r.3)
    let t4 = low(r.4, r.5), t5 = high(r.4, r.5), t6 = low(r.6, r.7), t7 = high(r.6, r.7)
    // u: lanes l and l + 4 of rows 0-3 (u0-u3) or 4-7 (u4-u7), for l = 0, 1, 2, 3.
    let u0 = lowPairs(t0, t2), u1 = highPairs(t0, t2), u2 = lowPairs(t1, t3), u3 = highPairs(t1, t3)
    let u4 = lowPairs(t4, t6), u5 = highPairs(t4, t6), u6 = lowPairs(t5, t7), u7 = highPairs(t5, t7)
    return (Eight(lowHalf: u0.lowHalf, highHalf: u4.lowHalf), Eight(lowHalf: u1.lowHalf, highHalf: u5.lowHalf),
            Eight(lowHalf: u2.lowHalf, highHalf: u6.lowHalf), Eight(lowHalf: u3.lowHalf, highHalf: u7.lowHalf),
            Eight(lowHalf: u0.highHalf, highHalf: u4.highHalf), Eight(lowHalf: u1.highHalf, highHalf: u5.highHalf),
            Eight(lowHalf: u2.highHalf, highHalf: u6.highHalf), Eight(lowHalf: u3.highHalf, highHalf: u7.highHalf))
}
