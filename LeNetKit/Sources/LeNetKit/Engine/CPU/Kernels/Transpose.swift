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
                    firstLane + r < rows ? load(Eight.self, src + (firstLane + r) * srcStride + first) : Eight()
                }
                let block = transposed8x8((row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)))
                @inline(__always) func put(_ i: Int, _ v: Eight) { store(v, dst + (first + i) * dstStride + firstLane) }
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
                @inline(__always) func vector(_ i: Int) -> Eight { load(Eight.self, src + (first + i) * srcStride + firstLane) }
                let block = transposed8x8((vector(0), vector(1), vector(2), vector(3),
                                           vector(4), vector(5), vector(6), vector(7)))
                @inline(__always) func put(_ r: Int, _ v: Eight) {
                    if r < lanes { store(v, dst + (firstLane + r) * dstStride + first) }
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
/// For 32 vector registers (`.wide`): on AVX2's 16 it would spill, and the transposes use
/// `transposed8x8` instead.
@inline(__always) func transposed16(_ v: SixteenVectors) -> SixteenVectors {
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

typealias Eight = SIMD8<Float>
typealias EightVectors = (Eight, Eight, Eight, Eight, Eight, Eight, Eight, Eight)

/// The 8 x 8 transpose of 8 vectors (lane j of result i is lane i of vector j) in the
/// shuffles AVX2 has within each 128-bit half: pairs of rows interleaved (as `unpcklps` and
/// `unpckhps`), then pairs of pairs (`shufps`), then the halves exchanged (`vperm2f128`).
/// 24 shuffles, where even/odd rounds (as `transposed16`'s) would cross the halves at every step.
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
