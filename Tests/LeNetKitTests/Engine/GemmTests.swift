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

    /// The fast kernels against the reference on shapes that hit every block and tail.
    @Test(arguments: layouts)
    func fastKernelsMatchReference(layout: Layout) {
        var random = TestRandom(seed: 7)
        let shapes = [(1, 1, 1), (6, 32, 25), (7, 33, 17), (16, 100, 150), (13, 50, 3), (150, 100, 16),
                      (32, 120, 400), (5, 784, 25), (4, 10, 84), (9, 16, 31), (2, 47, 64), (6, 25, 3136), (7, 5, 33), (3, 9, 40)]
        for (m, n, k) in shapes {
            let a = random.floats(m * k), b = random.floats(k * n)
            for accumulate in [false, true] {
                let start = random.floats(m * n)
                var fast = start, reference = start
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        // Stored transposed means a [k, m] block read with swapped strides.
                        let aView = layout.aTransposed
                            ? MatrixView(ap.baseAddress!, rows: k, columns: m).transposed
                            : MatrixView(ap.baseAddress!, rows: m, columns: k)
                        let bView = layout.bTransposed
                            ? MatrixView(bp.baseAddress!, rows: n, columns: k).transposed
                            : MatrixView(bp.baseAddress!, rows: k, columns: n)
                        fast.withUnsafeMutableBufferPointer {
                            gemm(MutableMatrixView($0.baseAddress!, rows: m, columns: n), aView, bView, accumulate: accumulate)
                        }
                        reference.withUnsafeMutableBufferPointer {
                            gemmReference(MutableMatrixView($0.baseAddress!, rows: m, columns: n), aView, bView, accumulate: accumulate)
                        }
                    }
                }
                // Float32 rounding grows about as √k over a long sum; the reference sums in Double.
                let difference = maxRelativeDifference(fast, reference)
                #expect(difference < 1e-6 * max(10, Float(k).squareRoot()), "\(layout) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate): \(difference)")
            }
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
