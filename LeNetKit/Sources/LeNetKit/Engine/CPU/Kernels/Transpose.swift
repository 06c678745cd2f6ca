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
