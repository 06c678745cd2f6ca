@testable import LeNetKit
import Testing

@Suite struct GemmTests {
    /// One operand layout: A and/or B stored transposed.
    struct Layout: CustomStringConvertible, Sendable {
        var aTransposed: Bool
        var bTransposed: Bool
        var description: String { "A\(aTransposed ? "ᵀ" : "")·B\(bTransposed ? "ᵀ" : "")" }
    }

    static let layouts = [Layout(aTransposed: false, bTransposed: false), Layout(aTransposed: true, bTransposed: false),
                          Layout(aTransposed: false, bTransposed: true), Layout(aTransposed: true, bTransposed: true)]

    /// Shapes that hit every block and tail of both blockings (6 x 32, 4 x 64 and 6 x 16 broadcast
    /// blocks; 4 x 4 and 2 x 3 dot-product blocks, whole and cut short), then random ones with m, n and k
    /// mostly not multiples of any block.
    static func shapes() -> [(m: Int, n: Int, k: Int)] {
        var shapes = [(1, 1, 1), (6, 32, 25), (7, 33, 17), (16, 100, 150), (13, 50, 3), (150, 100, 16),
                      (32, 120, 400), (5, 784, 25), (4, 10, 84), (9, 16, 31), (2, 47, 64), (6, 25, 3136), (7, 5, 33),
                      (3, 9, 40), (6, 16, 16), (12, 48, 15), (5, 3, 16), (11, 7, 47), (1, 17, 1), (3, 2, 18),
                      // 4 rows or fewer left: 4 x 64 blocks, then the narrower tiles (fc1's and fc2's input
                      // gradients on a slice of 4, a weight-gradient task of 10 rows).
                      (4, 400, 120), (4, 120, 84), (10, 400, 32), (3, 130, 7), (1, 64, 5), (2, 200, 3), (4, 65, 9),
                      // The dot-product kernel's rows in several groups, the last one short (12, 12
                      // and 6 rows of 400; 4, 4, 4 and 1 of 1000).
                      (30, 21, 400), (13, 9, 1000)]
        var random = TestRandom(seed: 11)
        for _ in 0..<24 { shapes.append((1 + random.int(below: 40), 1 + random.int(below: 90), 1 + random.int(below: 70))) }
        return shapes.map { (m: $0.0, n: $0.1, k: $0.2) }
    }

    /// C for one layout, shape and blocking, from the same random operands and start.
    static func product(_ layout: Layout, m: Int, n: Int, k: Int, accumulate: Bool, blocking: GemmBlocking?) -> [Float] {
        var random = TestRandom(seed: UInt64(7 + m * 1_000_003 + n * 1009 + k))
        let a = random.floats(m * k), b = random.floats(k * n)
        var c = random.floats(m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                // Stored transposed means a [k, m] block read with swapped strides.
                let aView = layout.aTransposed
                    ? MatrixView(ap.baseAddress!, rows: k, columns: m).transposed
                    : MatrixView(ap.baseAddress!, rows: m, columns: k)
                let bView = layout.bTransposed
                    ? MatrixView(bp.baseAddress!, rows: n, columns: k).transposed
                    : MatrixView(bp.baseAddress!, rows: k, columns: n)
                c.withUnsafeMutableBufferPointer {
                    let cView = MutableMatrixView($0.baseAddress!, rows: m, columns: n)
                    if let blocking {
                        gemm(cView, aView, bView, accumulate: accumulate, blocking: blocking)
                    } else {
                        gemmReference(cView, aView, bView, accumulate: accumulate)
                    }
                }
            }
        }
        return c
    }

    /// The fast kernels, with each register blocking whatever this CPU's, against the reference.
    @Test(arguments: layouts, GemmBlocking.allCases)
    func fastKernelsMatchReference(layout: Layout, blocking: GemmBlocking) {
        for (m, n, k) in Self.shapes() {
            for accumulate in [false, true] {
                let fast = Self.product(layout, m: m, n: n, k: k, accumulate: accumulate, blocking: blocking)
                let reference = Self.product(layout, m: m, n: n, k: k, accumulate: accumulate, blocking: nil)
                // Float32 rounding grows about as √k over a long sum; the reference sums in Double.
                let difference = maxRelativeDifference(fast, reference)
                #expect(difference < 1e-6 * max(10, Float(k).squareRoot()),
                        "\(layout) \(blocking) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate): \(difference)")
            }
        }
    }

    /// The blockings differ only in speed: every element is the same arithmetic, so a
    /// result does not depend on which CPU computed it.
    @Test(arguments: layouts)
    func blockingsAreBitIdentical(layout: Layout) {
        for (m, n, k) in Self.shapes() {
            for accumulate in [false, true] {
                let wide = Self.product(layout, m: m, n: n, k: k, accumulate: accumulate, blocking: .wide)
                let narrow = Self.product(layout, m: m, n: n, k: k, accumulate: accumulate, blocking: .narrow)
                #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(layout) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate)")
            }
        }
    }

    /// A with its rows adjacent in memory (stored transposed: the broadcast kernel's
    /// `SixAdjacentRows` block, one pointer and constant offsets) gives the same bits as the
    /// same A stored row by row (`AnyRows`), on either blocking: only where A is read from differs.
    @Test(arguments: GemmBlocking.allCases)
    func adjacentRowsOfAGiveTheSameBits(blocking: GemmBlocking) {
        var random = TestRandom(seed: 19)
        for (m, n, k) in [(6, 896, 25), (12, 400, 32), (120, 400, 32), (7, 50, 9), (20, 16, 1), (13, 33, 70)] {
            let a = random.floats(m * k), b = random.floats(k * n)
            var aT = [Float](repeating: 0, count: k * m)  // [k, m]
            for i in 0..<m { for p in 0..<k { aT[p * m + i] = a[i * k + p] } }
            func product(_ aView: MatrixView) -> [Float] {
                var c = [Float](repeating: .nan, count: m * n)
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer {
                        gemm(MutableMatrixView($0.baseAddress!, rows: m, columns: n), aView,
                             MatrixView(bp.baseAddress!, rows: k, columns: n), accumulate: false, blocking: blocking)
                    }
                }
                return c
            }
            let byRows = a.withUnsafeBufferPointer { product(MatrixView($0.baseAddress!, rows: m, columns: k)) }
            let adjacent = aT.withUnsafeBufferPointer { product(MatrixView($0.baseAddress!, rows: k, columns: m).transposed) }
            #expect(adjacent.map(\.bitPattern) == byRows.map(\.bitPattern), "m=\(m) n=\(n) k=\(k) \(blocking)")
        }
    }

    /// The 16-at-once horizontal sums that the dot-product blocks end with, against one
    /// vector at a time: the same bits, on values of mixed magnitude where another order of
    /// additions would round differently.
    @Test func horizontalSumsMatchOneAtATime() {
        var random = TestRandom(seed: 7)
        for _ in 0..<50 {
            var vectors: [Vector] = []
            for _ in 0..<16 {
                let magnitudes = random.floats(16, in: -12...12), values = random.floats(16)
                vectors.append(Vector((0..<16).map { values[$0] * Float(sign: .plus, exponent: Int(magnitudes[$0]), significand: 1) }))
            }
            let v = vectors
            let sums = horizontalSums((v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                       v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]))
            for i in 0..<16 { #expect(sums[i].bitPattern == horizontalSum(v[i]).bitPattern, "lane \(i)") }
        }
    }

    @Test func referenceIsMatrixProduct() {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer {
                    gemmReference(MutableMatrixView($0.baseAddress!, rows: 2, columns: 2),
                                  MatrixView(ap.baseAddress!, rows: 2, columns: 2),
                                  MatrixView(bp.baseAddress!, rows: 2, columns: 2), accumulate: false)
                }
            }
        }
        #expect(c == [19, 22, 43, 50])
    }
}
