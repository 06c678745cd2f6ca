/// Moving 16 channels in and out of the vector lanes: the layouts the channels-in-lanes
/// kernels read and write ([pixel or weight row, 16 channels]) from and to the layer's
/// ([channel, pixels or weight rows]). 16 x 16 blocks go through registers (`transposed16`);
/// a last block ends at the last column, overlapping the one before (the same values,
/// written again); fewer than 16 columns go one float at a time.

/// dst[i * dstStride + lane] = src[lane * srcStride + i] for i in 0..<count and lane in
/// 0..<16, zero for lane >= rows (at most 16): `rows` rows of `count` floats become `count`
/// vectors of 16 lanes.
func transposeIntoLanes(_ dst: UnsafeMutablePointer<Float>, rowStride dstStride: Int, _ src: UnsafePointer<Float>,
                        rowStride srcStride: Int, rows: Int, count: Int) {
    precondition(rows <= 16, "at most 16 rows go into the lanes")
    guard count >= 16 else {
        for i in 0..<count {
            for lane in 0..<16 { dst[i * dstStride + lane] = lane < rows ? src[lane * srcStride + i] : 0 }
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
                         rowStride srcStride: Int, rows: Int, count: Int) {
    precondition(rows <= 16, "at most 16 rows come out of the lanes")
    guard count >= 16 else {
        for lane in 0..<rows {
            for i in 0..<count { dst[lane * dstStride + i] = src[i * srcStride + lane] }
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
