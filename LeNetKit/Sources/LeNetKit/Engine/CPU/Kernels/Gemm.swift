/// Matrix multiply, the one mechanism behind convolution (via im2col) and the
/// fully-connected layers, forward and backward.
///
/// A matrix view names its element (r, c) at `pointer[r * rowStride + c * colStride]`,
/// so a transposed operand is the same memory with its strides swapped.

import CThreadSupport
import Foundation

/// A read-only matrix view.
struct MatrixView {
    var pointer: UnsafePointer<Float>
    var rows: Int
    var columns: Int
    var rowStride: Int
    var columnStride: Int

    /// A row-major `rows x columns` matrix, rows `rowStride` apart (default: dense).
    init(_ pointer: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        self.init(pointer, rows: rows, columns: columns, rowStride: rowStride ?? columns, columnStride: 1)
    }

    init(_ pointer: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int, columnStride: Int) {
        self.pointer = pointer
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// The transpose: the same memory, strides swapped.
    var transposed: MatrixView {
        MatrixView(pointer, rows: columns, columns: rows, rowStride: columnStride, columnStride: rowStride)
    }

    @inline(__always) subscript(r: Int, c: Int) -> Float { pointer[r * rowStride + c * columnStride] }
}

/// A writable row-major matrix view (columns contiguous).
struct MutableMatrixView {
    var pointer: UnsafeMutablePointer<Float>
    var rows: Int
    var columns: Int
    var rowStride: Int

    init(_ pointer: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        self.pointer = pointer
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride ?? columns
    }
}

/// The register blocks of the fast kernels, sized for the CPU's vector registers.
///
/// Every block computes each element of C by the same arithmetic (the same chain of
/// multiply-adds, the same lanes summed in the same order), so the two give bit-identical
/// results; only their speed differs.
enum GemmBlocking: Sendable, CaseIterable {
    /// For 32 512-bit registers (AVX-512): broadcast blocks of 6 x 32, dot-product blocks of 4 x 4.
    case wide
    /// For 16 256-bit registers (AVX2; NEON's 32 128-bit ones hold the same): broadcast
    /// blocks of 6 x 16, dot-product blocks of 2 x 3. The wide blocks' 12 and 16 `SIMD16`
    /// accumulators would need 24 and 32 such registers, and spill.
    case narrow

    /// The CPU's: wide where it has AVX-512 (checked once, by `cpuid`, with the OS's
    /// support for the 512-bit state), else narrow.
    ///
    /// Swift cannot test target features at compile time (no `#if` for them), so this is
    /// a run-time check of the CPU. With the default `-target-cpu native` the build host
    /// is the run host, and the check names the registers the code was compiled for. A
    /// binary built for a smaller CPU (`LENET_TARGET_CPU=haswell`, `x86-64`) and run on an
    /// AVX-512 CPU gets the wide blocks on narrower registers: the same results, slower.
    ///
    /// `LENET_GEMM_BLOCKING=wide` or `narrow` in the environment overrides the check, to
    /// compare the two on one machine (`lenet bench` with each).
    static let native: GemmBlocking = {
        switch ProcessInfo.processInfo.environment["LENET_GEMM_BLOCKING"] {
        case "wide": return .wide
        case "narrow": return .narrow
        default: return lenet_cpu_has_avx512f() != 0 ? .wide : .narrow
        }
    }()
}

/// C = A·B, or C += A·B when `accumulate`. Picks the fast kernel that fits the
/// operands' layout, else the reference loop; `blocking` picks its register block.
func gemm(_ c: MutableMatrixView, _ a: MatrixView, _ b: MatrixView, accumulate: Bool,
          blocking: GemmBlocking = .native) {
    precondition(a.rows == c.rows && b.columns == c.columns && a.columns == b.rows, "gemm shapes differ")
    if b.columnStride == 1 {
        gemmBroadcastA(c, a, b, accumulate: accumulate, blocking: blocking)
    } else if a.columnStride == 1 && b.rowStride == 1 {
        gemmDotProducts(c, a, b, accumulate: accumulate, blocking: blocking)
    } else {
        gemmReference(c, a, b, accumulate: accumulate)
    }
}

/// The plain definition, for tests and odd layouts. Accumulates in Double.
func gemmReference(_ c: MutableMatrixView, _ a: MatrixView, _ b: MatrixView, accumulate: Bool) {
    for i in 0..<c.rows {
        for j in 0..<c.columns {
            var sum = 0.0
            for p in 0..<a.columns { sum += Double(a[i, p]) * Double(b[p, j]) }
            let out = c.pointer + i * c.rowStride + j
            out.pointee = accumulate ? out.pointee + Float(sum) : Float(sum)
        }
    }
}

typealias Vector = SIMD16<Float>

/// Sum of the 16 lanes by halving (the generic `sum()` is not inlined).
@inline(__always) func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let h8 = v.lowHalf + v.highHalf
    let h4 = h8.lowHalf + h8.highHalf
    let h2 = h4.lowHalf + h4.highHalf
    return h2.x + h2.y
}

/// `horizontalSum` of 16 vectors at once: lane i of the result is `horizontalSum(v.i)`, bit
/// for bit. The same additions in the same order (lane l + lane l+8, then halving again),
/// each round on two vectors' halves side by side: 15 vector additions and a few
/// permutes instead of 16 scalar reductions, and the sums come out in one vector.
@inline(__always) func horizontalSums(_ v: SixteenVectors) -> Vector {
    // Each round adds the lower and upper halves of every block of 2w lanes (w = 8, 4, 2,
    // 1) in two vectors, and packs the w-lane results of both into one vector, in order.
    @inline(__always) func halves(_ a: Vector, _ b: Vector) -> Vector {  // w = 8
        Vector(lowHalf: a.lowHalf, highHalf: b.lowHalf) + Vector(lowHalf: a.highHalf, highHalf: b.highHalf)
    }
    @inline(__always) func quarters(_ a: Vector, _ b: Vector) -> Vector {  // w = 4
        let lower = Vector(lowHalf: SIMD8(lowHalf: a.lowHalf.lowHalf, highHalf: a.highHalf.lowHalf),
                           highHalf: SIMD8(lowHalf: b.lowHalf.lowHalf, highHalf: b.highHalf.lowHalf))
        let upper = Vector(lowHalf: SIMD8(lowHalf: a.lowHalf.highHalf, highHalf: a.highHalf.highHalf),
                           highHalf: SIMD8(lowHalf: b.lowHalf.highHalf, highHalf: b.highHalf.highHalf))
        return lower + upper
    }
    @inline(__always) func pairs(_ a: Vector, _ b: Vector) -> Vector {  // w = 2: lane pairs as 64-bit lanes
        let a2 = unsafeBitCast(a, to: SIMD8<UInt64>.self), b2 = unsafeBitCast(b, to: SIMD8<UInt64>.self)
        return unsafeBitCast(SIMD8(lowHalf: a2.evenHalf, highHalf: b2.evenHalf), to: Vector.self)
            + unsafeBitCast(SIMD8(lowHalf: a2.oddHalf, highHalf: b2.oddHalf), to: Vector.self)
    }
    @inline(__always) func neighbours(_ a: Vector, _ b: Vector) -> Vector {  // w = 1
        Vector(lowHalf: a.evenHalf, highHalf: b.evenHalf) + Vector(lowHalf: a.oddHalf, highHalf: b.oddHalf)
    }
    let h8 = (halves(v.0, v.1), halves(v.2, v.3), halves(v.4, v.5), halves(v.6, v.7),
              halves(v.8, v.9), halves(v.10, v.11), halves(v.12, v.13), halves(v.14, v.15))
    let h4 = (quarters(h8.0, h8.1), quarters(h8.2, h8.3), quarters(h8.4, h8.5), quarters(h8.6, h8.7))
    let h2 = (pairs(h4.0, h4.1), pairs(h4.2, h4.3))
    return neighbours(h2.0, h2.1)
}

/// 16 vectors in registers.
typealias SixteenVectors = (Vector, Vector, Vector, Vector, Vector, Vector, Vector, Vector,
                            Vector, Vector, Vector, Vector, Vector, Vector, Vector, Vector)

@inline(__always) func load(_ p: UnsafePointer<Float>) -> Vector {
    UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
}

@inline(__always) func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let raw = UnsafeMutableRawPointer(p)
    raw.storeBytes(of: accumulate ? v + raw.loadUnaligned(as: Vector.self) : v, as: Vector.self)
}

/// Where each row of an operand starts, its elements contiguous: B's rows for the
/// broadcast kernel, B's columns (Bᵀ's rows) for the dot-product kernel.
protocol OperandRows {
    /// The first element of row `p`.
    func row(_ p: Int) -> UnsafePointer<Float>
}

/// A matrix view's rows, `rowStride` apart.
struct EvenlySpacedRows: OperandRows {
    let base: UnsafePointer<Float>
    let stride: Int
    @inline(__always) func row(_ p: Int) -> UnsafePointer<Float> { base + p * stride }
}

/// Rows at listed offsets from one base: a stride-1 convolution's im2col rows read in
/// place from its (padded) image, each a shifted run of it (see `conv2dForwardDirect`).
struct ShiftedRows: OperandRows {
    let base: UnsafePointer<Float>
    let offsets: UnsafePointer<Int>
    @inline(__always) func row(_ p: Int) -> UnsafePointer<Float> { base + offsets[p] }
}

/// Where a broadcast kernel's results go, 16 columns of one row at a time.
protocol BroadcastResults {
    /// C[row, column + lane] = v[lane] for lanes firstLane..<16 (firstLane is 0 except in a
    /// row's last tile, which overlaps the one before it).
    func store(_ v: Vector, row: Int, column: Int, firstLane: Int)
    /// C[row, column] = value, for products fewer than 16 columns wide.
    func store(_ value: Float, row: Int, column: Int)
}

/// A row-major matrix, written or (with `accumulate`) added to.
struct MatrixResults: BroadcastResults {
    let c: MutableMatrixView
    let accumulate: Bool

    @inline(__always) func store(_ v: Vector, row: Int, column: Int, firstLane: Int) {
        let cp = c.pointer + row * c.rowStride + column
        if firstLane == 0 {
            LeNetKit.store(v, cp, accumulate: accumulate)
        } else {
            // Lanes before `firstLane` keep what is there (the tile before wrote them): one
            // blend and a whole-vector store, not a store per lane.
            let old = load(cp), lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
            let new = accumulate ? old + v : v
            UnsafeMutableRawPointer(cp).storeBytes(
                of: old.replacing(with: new, where: lanes .>= SIMD16<Int32>(repeating: Int32(firstLane))), as: Vector.self)
        }
    }

    @inline(__always) func store(_ value: Float, row: Int, column: Int) {
        let out = c.pointer + row * c.rowStride + column
        out.pointee = accumulate ? out.pointee + value : value
    }
}

/// B's rows contiguous: each step broadcasts one element of A against a row
/// slice of B. Register block: 6 rows of C x 32 columns (12 vector accumulators), 4 x 64
/// where 4 rows or fewer are left (16), or with `.narrow` 6 x 16 (6 vectors: 12 256-bit registers)
/// and 4 x 16 where 4 rows or fewer are left. Either way each element of C
/// is one chain of multiply-adds over k in order, whatever block computes it.
/// A short last row block repeats its last row (computed, not stored).
func gemmBroadcastA(_ c: MutableMatrixView, _ a: MatrixView, _ b: MatrixView, accumulate: Bool,
                    blocking: GemmBlocking = .native) {
    gemmBroadcastA(a, rows: EvenlySpacedRows(base: b.pointer, stride: b.rowStride), columns: c.columns,
                   results: MatrixResults(c: c, accumulate: accumulate), blocking: blocking)
}

/// The same product, C = A·B, with B's rows wherever `rows` says (B is [a.columns, columns])
/// and C's elements written by `results`.
@inline(__always)
func gemmBroadcastA<Rows: OperandRows, Results: BroadcastResults>(
    _ a: MatrixView, rows b: Rows, columns n: Int, results: Results, blocking: GemmBlocking = .native
) {
    let wide = blocking == .wide
    let m = a.rows, k = a.columns
    let acs = a.columnStride
    // Rows i0 ..< i0+rows of C (rows <= 6), A's rows `ars` apart; `Block` may fix both, and
    // its specialization then has them as constants (generic, so whether or not it is inlined).
    func rowBlock<Block: BroadcastRowBlock>(_: Block.Type, _ i0: Int, rows anyRows: Int) {
        let rows = Block.rows(anyRows), ars = Block.rowStride(a.rowStride)
        @inline(__always) func aRow(_ r: Int) -> UnsafePointer<Float> { a.pointer + (i0 + min(r, rows - 1)) * ars }
        let a0 = aRow(0), a1 = aRow(1), a2 = aRow(2), a3 = aRow(3), a4 = aRow(4), a5 = aRow(5)
        var j = 0
        // Four rows or fewer (a slice of 4 images, the last rows of a taller A): blocks of
        // 4 x 64, as many accumulators, rather than 6-row blocks that throw a third away.
        while wide && rows <= 4 && j + 64 <= n {
            var c00 = Vector(), c01 = Vector(), c02 = Vector(), c03 = Vector()
            var c10 = Vector(), c11 = Vector(), c12 = Vector(), c13 = Vector()
            var c20 = Vector(), c21 = Vector(), c22 = Vector(), c23 = Vector()
            var c30 = Vector(), c31 = Vector(), c32 = Vector(), c33 = Vector()
            var ap = 0
            for p in 0..<k {
                let bp = b.row(p) + j
                let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32), b3 = load(bp + 48)
                var s = Vector(repeating: a0[ap])
                c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
                c02 = c02.addingProduct(s, b2); c03 = c03.addingProduct(s, b3)
                s = Vector(repeating: a1[ap])
                c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
                c12 = c12.addingProduct(s, b2); c13 = c13.addingProduct(s, b3)
                s = Vector(repeating: a2[ap])
                c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
                c22 = c22.addingProduct(s, b2); c23 = c23.addingProduct(s, b3)
                s = Vector(repeating: a3[ap])
                c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
                c32 = c32.addingProduct(s, b2); c33 = c33.addingProduct(s, b3)
                ap += acs
            }
            @inline(__always) func put(_ r: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector, _ v3: Vector) {
                results.store(v0, row: i0 + r, column: j, firstLane: 0)
                results.store(v1, row: i0 + r, column: j + 16, firstLane: 0)
                results.store(v2, row: i0 + r, column: j + 32, firstLane: 0)
                results.store(v3, row: i0 + r, column: j + 48, firstLane: 0)
            }
            put(0, c00, c01, c02, c03)
            if rows > 1 { put(1, c10, c11, c12, c13) }
            if rows > 2 { put(2, c20, c21, c22, c23) }
            if rows > 3 { put(3, c30, c31, c32, c33) }
            j += 64
        }
        while wide && j + 32 <= n {
            var c00 = Vector(), c01 = Vector(), c10 = Vector(), c11 = Vector(), c20 = Vector(), c21 = Vector()
            var c30 = Vector(), c31 = Vector(), c40 = Vector(), c41 = Vector(), c50 = Vector(), c51 = Vector()
            var ap = 0
            for p in 0..<k {
                let bp = b.row(p) + j
                let b0 = load(bp), b1 = load(bp + 16)
                var s = Vector(repeating: a0[ap]); c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
                s = Vector(repeating: a1[ap]); c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
                s = Vector(repeating: a2[ap]); c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
                s = Vector(repeating: a3[ap]); c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
                s = Vector(repeating: a4[ap]); c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1)
                s = Vector(repeating: a5[ap]); c50 = c50.addingProduct(s, b0); c51 = c51.addingProduct(s, b1)
                ap += acs
            }
            @inline(__always) func put(_ r: Int, _ v0: Vector, _ v1: Vector) {
                results.store(v0, row: i0 + r, column: j, firstLane: 0)
                results.store(v1, row: i0 + r, column: j + 16, firstLane: 0)
            }
            put(0, c00, c01)
            if rows > 1 { put(1, c10, c11) }
            if rows > 2 { put(2, c20, c21) }
            if rows > 3 { put(3, c30, c31) }
            if rows > 4 { put(4, c40, c41) }
            if rows > 5 { put(5, c50, c51) }
            j += 32
        }
        // A 6 x 16 tile (4 x 16 for `FourRows`) at columns j0..<j0+16, stored from lane
        // `firstLane` on.
        @inline(__always) func tile16(_ j0: Int, firstLane: Int) {
            var c0 = Vector(), c1 = Vector(), c2 = Vector(), c3 = Vector(), c4 = Vector(), c5 = Vector()
            let six = Block.tileRows == 6  // a constant in each specialization
            var ap = 0
            for p in 0..<k {
                let b0 = load(b.row(p) + j0)
                c0 = c0.addingProduct(Vector(repeating: a0[ap]), b0)
                c1 = c1.addingProduct(Vector(repeating: a1[ap]), b0)
                c2 = c2.addingProduct(Vector(repeating: a2[ap]), b0)
                c3 = c3.addingProduct(Vector(repeating: a3[ap]), b0)
                if six {
                    c4 = c4.addingProduct(Vector(repeating: a4[ap]), b0)
                    c5 = c5.addingProduct(Vector(repeating: a5[ap]), b0)
                }
                ap += acs
            }
            // Row by row with constant indices, so that the tile stays in registers (an
            // indexed tuple goes through memory) and `results` works out the column's
            // place once for all six.
            @inline(__always) func put(_ r: Int, _ v: Vector) {
                if r < rows { results.store(v, row: i0 + r, column: j0, firstLane: firstLane) }
            }
            put(0, c0); put(1, c1); put(2, c2); put(3, c3); put(4, c4); put(5, c5)
        }
        while j + 16 <= n {  // once after the wide blocks; every block of the narrow ones
            tile16(j, firstLane: 0)
            j += 16
        }
        if j < n && n >= 16 {
            // The last few columns: a full tile ending at column n, storing only the new ones.
            tile16(n - 16, firstLane: j - (n - 16))
            j = n
        }
        // Fewer than 16 columns in all: plain dot products.
        while j < n {
            for r in 0..<rows {
                let ar = a.pointer + (i0 + r) * ars
                var sum: Float = 0
                var ap = 0
                for p in 0..<k { sum = sum.addingProduct(ar[ap], b.row(p)[j]); ap += acs }
                results.store(sum, row: i0 + r, column: j)
            }
            j += 1
        }
    }
    var i0 = 0
    while i0 < m {
        let rows = min(6, m - i0)
        // Six rows of A side by side in memory (A stored column by column, rowStride 1, as
        // a transposed operand is): each step's six elements at constant offsets from one
        // pointer, once the constants are compiled in. Otherwise six row pointers, which
        // AVX2's 16 general registers cannot hold beside the loop's own: they spill, and
        // every broadcast reloads one. The same products in the same order either way.
        if rows == 6 && a.rowStride == 1 {
            rowBlock(SixAdjacentRows.self, i0, rows: rows)
        } else if rows <= 4 && !wide {
            // Four rows or fewer (a slice of 4 images' input gradient, a weight-gradient
            // task's last rows) on AVX2: 4 x 16 tiles, not 6 x 16 tiles a third wasted.
            rowBlock(FourRows.self, i0, rows: rows)
        } else {
            rowBlock(AnyRows.self, i0, rows: rows)
        }
        i0 += 6
    }
}

/// The rows of A in one block of `gemmBroadcastA`: what is known when it is compiled.
protocol BroadcastRowBlock {
    static func rows(_ rows: Int) -> Int
    static func rowStride(_ rowStride: Int) -> Int
    /// The rows a 16-column tile computes (those past `rows` repeat the last, not stored).
    static var tileRows: Int { get }
}

/// Six rows, adjacent in memory (A's rowStride 1).
enum SixAdjacentRows: BroadcastRowBlock {
    @inline(__always) static func rows(_: Int) -> Int { 6 }
    @inline(__always) static func rowStride(_: Int) -> Int { 1 }
    static var tileRows: Int { 6 }
}

/// Up to six rows, any distance apart.
enum AnyRows: BroadcastRowBlock {
    @inline(__always) static func rows(_ rows: Int) -> Int { rows }
    @inline(__always) static func rowStride(_ rowStride: Int) -> Int { rowStride }
    static var tileRows: Int { 6 }
}

/// Up to four rows, any distance apart: tiles of 4 rows.
enum FourRows: BroadcastRowBlock {
    @inline(__always) static func rows(_ rows: Int) -> Int { min(rows, 4) }
    @inline(__always) static func rowStride(_ rowStride: Int) -> Int { rowStride }
    static var tileRows: Int { 4 }
}

/// A's rows and B's columns contiguous along the shared dimension: each C
/// element is a dot product. Register blocks of 4 (or, for the last rows, 2 and 1)
/// rows x 4 columns of C, or with `.narrow` 2 (then 1) rows x 3 columns; vectors along
/// the shared dimension, summed across lanes at the end. Each element's lanes and their
/// sum are the same whatever block computes it. A short column block repeats its last
/// column (computed, not stored).
func gemmDotProducts(_ c: MutableMatrixView, _ a: MatrixView, _ b: MatrixView, accumulate: Bool,
                     blocking: GemmBlocking = .native) {
    gemmDotProducts(c, a, columns: EvenlySpacedRows(base: b.pointer, stride: b.columnStride), accumulate: accumulate,
                    blocking: blocking)
}

/// The same product, C = A·B, with B's columns (each contiguous, `a.columns` long) wherever
/// `columns` says.
@inline(__always)
func gemmDotProducts<Columns: OperandRows>(_ c: MutableMatrixView, _ a: MatrixView, columns b: Columns,
                                           accumulate: Bool, blocking: GemmBlocking = .native) {
    let m = c.rows, n = c.columns, k = a.columns
    let wide = blocking == .wide
    let blockRows = wide ? 4 : 2, blockColumns = wide ? 4 : 3
    // With k >= 16 the last k % 16 terms go in one more vector step ending at k, its
    // lanes already summed masked off; only a shorter k leaves terms to scalar code.
    let vectorEnd = k >= 16 ? k : 0
    let ars = a.rowStride
    // Wide blocks: rows in groups of about 24 KB of A (12 of fc1's rows of 400), which stay
    // in L1 while every column block passes over them, so that B (fc1's weight, 192 KB)
    // streams from L2 once a group, not once a register block of 4 rows: fc1's forward
    // 15-25% faster at batch 32 and 500 on AVX-512 (BENCHMARKS.md, stop 34). Narrow blocks
    // keep all rows in one group: on AVX2, B's columns outer (one group) was 5-7% slower
    // (stop 32). The blocks are the same with or without groups, and so are the bits.
    let rowGroup = wide ? max(4, 6144 / max(k, 1) / 4 * 4) : max(m, 1)
    var g0 = 0
    while g0 < m {
        let groupEnd = min(m, g0 + rowGroup)
        var j0 = 0
        while j0 < n {
            let cols = min(blockColumns, n - j0)
            let b0 = b.row(j0), b1 = b.row(j0 + min(1, cols - 1))
            let b2 = b.row(j0 + min(2, cols - 1)), b3 = b.row(j0 + min(3, cols - 1))
            var i0 = g0
            while i0 < groupEnd {
                // Whole blocks of 4 (wide) or 2 rows, then 2, then 1: no row is computed for nothing.
                let rows = groupEnd - i0 >= blockRows ? blockRows : (groupEnd - i0 >= 2 ? 2 : 1)
                let a0 = a.pointer + i0 * ars
                let sums: Vector  // lane r*4 + col: the vector part of C[i0 + r, j0 + col]
                if wide {
                    switch rows {
                    case 4: sums = dotSums4(a0, ars, b0, b1, b2, b3, vectorEnd)
                    case 2: sums = dotSums2(a0, ars, b0, b1, b2, b3, vectorEnd)
                    default: sums = dotSums1(a0, b0, b1, b2, b3, vectorEnd)
                    }
                } else {
                    sums = rows == 2 ? dotSums2x3(a0, ars, b0, b1, b2, vectorEnd) : dotSums1x3(a0, b0, b1, b2, vectorEnd)
                }
                // A whole block with no scalar terms (fc1-fc3's, most of conv1's weight
                // gradient's): its sums stored by constant lanes. The loop below, with
                // variable lanes, spills the sum vector to the stack and reads it back an
                // element at a time. (That loop unrolled over constant lanes for every
                // block, short ones too, measured 5-10% slower on the FC forward in training
                // on AVX2: BENCHMARKS.md, stop 33. Whole 4 x 4 blocks by constant lanes made
                // fc1's forward 10-20% faster on AVX-512: stop 34.)
                if rows == blockRows && cols == blockColumns && vectorEnd == k {
                    let out = c.pointer + i0 * c.rowStride + j0
                    if wide {
                        storeWholeBlock(sums, rows: 4, columns: 4, out, rowStride: c.rowStride, accumulate: accumulate)
                    } else {
                        storeWholeBlock(sums, rows: 2, columns: 3, out, rowStride: c.rowStride, accumulate: accumulate)
                    }
                } else {
                    // Terms left to scalar code (k < 16 only), then the store.
                    for r in 0..<rows {
                        let ar = a0 + r * ars
                        for col in 0..<cols {
                            let bc = b.row(j0 + col)
                            var sum = sums[r * 4 + col]
                            for q in vectorEnd..<k { sum = sum.addingProduct(ar[q], bc[q]) }
                            let out = c.pointer + (i0 + r) * c.rowStride + j0 + col
                            out.pointee = accumulate ? out.pointee + sum : sum
                        }
                    }
                }
                i0 += rows
            }
            j0 += blockColumns
        }
        g0 = groupEnd
    }
}

/// A dot-product block's sums (lane r*4 + col: C[r, col] from `out`) stored, or added to
/// what is there, with every lane a constant once inlined (`rows` and `columns` constants).
@inline(__always)
private func storeWholeBlock(_ sums: Vector, rows: Int, columns: Int, _ out: UnsafeMutablePointer<Float>,
                             rowStride: Int, accumulate: Bool) {
    @inline(__always) func block(adding: Bool) {
        @inline(__always) func element(_ r: Int, _ col: Int) {
            guard r < rows && col < columns else { return }
            let p = out + r * rowStride + col
            p.pointee = adding ? p.pointee + sums[r * 4 + col] : sums[r * 4 + col]
        }
        element(0, 0); element(0, 1); element(0, 2); element(0, 3)
        element(1, 0); element(1, 1); element(1, 2); element(1, 3)
        element(2, 0); element(2, 1); element(2, 2); element(2, 3)
        element(3, 0); element(3, 1); element(3, 2); element(3, 3)
    }
    if accumulate { block(adding: true) } else { block(adding: false) }
}

/// The multiplier for the step ending at `end` (past the whole vectors): lanes that the
/// whole vectors already covered are 0, the rest 1.
@inline(__always)
private func tailMask(end: Int) -> Vector {
    let covered = (end & ~15) - (end - 16)  // lanes of the final step already summed
    var mask = Vector(repeating: 1)
    for lane in 0..<16 where lane < covered { mask[lane] = 0 }
    return mask
}

/// 4 rows (a0, a0 + ars, ...) x 4 columns of dot products over [0, end) (end >= 16, or 0).
@inline(__always)
private func dotSums4(_ a0: UnsafePointer<Float>, _ ars: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
                      _ b2: UnsafePointer<Float>, _ b3: UnsafePointer<Float>, _ end: Int) -> Vector {
    let a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars
    var s00 = Vector(), s01 = Vector(), s02 = Vector(), s03 = Vector()
    var s10 = Vector(), s11 = Vector(), s12 = Vector(), s13 = Vector()
    var s20 = Vector(), s21 = Vector(), s22 = Vector(), s23 = Vector()
    var s30 = Vector(), s31 = Vector(), s32 = Vector(), s33 = Vector()
    @inline(__always) func step(_ p: Int, _ mask: Vector?) {
        let x0 = load(b0 + p), x1 = load(b1 + p), x2 = load(b2 + p), x3 = load(b3 + p)
        var w = masked(load(a0 + p), mask)
        s00 = s00.addingProduct(w, x0); s01 = s01.addingProduct(w, x1); s02 = s02.addingProduct(w, x2); s03 = s03.addingProduct(w, x3)
        w = masked(load(a1 + p), mask)
        s10 = s10.addingProduct(w, x0); s11 = s11.addingProduct(w, x1); s12 = s12.addingProduct(w, x2); s13 = s13.addingProduct(w, x3)
        w = masked(load(a2 + p), mask)
        s20 = s20.addingProduct(w, x0); s21 = s21.addingProduct(w, x1); s22 = s22.addingProduct(w, x2); s23 = s23.addingProduct(w, x3)
        w = masked(load(a3 + p), mask)
        s30 = s30.addingProduct(w, x0); s31 = s31.addingProduct(w, x1); s32 = s32.addingProduct(w, x2); s33 = s33.addingProduct(w, x3)
    }
    var p = 0
    while p + 16 <= end { step(p, nil); p += 16 }
    if p < end { step(end - 16, tailMask(end: end)) }
    return horizontalSums((s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33))
}

/// 2 rows x 4 columns over [0, end); lanes 8-15 are zero.
@inline(__always)
private func dotSums2(_ a0: UnsafePointer<Float>, _ ars: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
                      _ b2: UnsafePointer<Float>, _ b3: UnsafePointer<Float>, _ end: Int) -> Vector {
    let a1 = a0 + ars
    var s00 = Vector(), s01 = Vector(), s02 = Vector(), s03 = Vector()
    var s10 = Vector(), s11 = Vector(), s12 = Vector(), s13 = Vector()
    @inline(__always) func step(_ p: Int, _ mask: Vector?) {
        let x0 = load(b0 + p), x1 = load(b1 + p), x2 = load(b2 + p), x3 = load(b3 + p)
        var w = masked(load(a0 + p), mask)
        s00 = s00.addingProduct(w, x0); s01 = s01.addingProduct(w, x1); s02 = s02.addingProduct(w, x2); s03 = s03.addingProduct(w, x3)
        w = masked(load(a1 + p), mask)
        s10 = s10.addingProduct(w, x0); s11 = s11.addingProduct(w, x1); s12 = s12.addingProduct(w, x2); s13 = s13.addingProduct(w, x3)
    }
    var p = 0
    while p + 16 <= end { step(p, nil); p += 16 }
    if p < end { step(end - 16, tailMask(end: end)) }
    let zero = Vector()
    return horizontalSums((s00, s01, s02, s03, s10, s11, s12, s13, zero, zero, zero, zero, zero, zero, zero, zero))
}

/// 1 row x 4 columns over [0, end); lanes 4-15 are zero.
@inline(__always)
private func dotSums1(_ a0: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
                      _ b2: UnsafePointer<Float>, _ b3: UnsafePointer<Float>, _ end: Int) -> Vector {
    var s0 = Vector(), s1 = Vector(), s2 = Vector(), s3 = Vector()
    @inline(__always) func step(_ p: Int, _ mask: Vector?) {
        let w = masked(load(a0 + p), mask)
        s0 = s0.addingProduct(w, load(b0 + p)); s1 = s1.addingProduct(w, load(b1 + p))
        s2 = s2.addingProduct(w, load(b2 + p)); s3 = s3.addingProduct(w, load(b3 + p))
    }
    var p = 0
    while p + 16 <= end { step(p, nil); p += 16 }
    if p < end { step(end - 16, tailMask(end: end)) }
    return Vector(horizontalSum(s0), horizontalSum(s1), horizontalSum(s2), horizontalSum(s3), 0, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0)
}

/// 2 rows x 3 columns over [0, end), for 16 256-bit registers: 6 accumulators (12
/// registers), lanes r*4 + col as `dotSums4`'s; the rest are zero.
@inline(__always)
private func dotSums2x3(_ a0: UnsafePointer<Float>, _ ars: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
                        _ b2: UnsafePointer<Float>, _ end: Int) -> Vector {
    let a1 = a0 + ars
    var s00 = Vector(), s01 = Vector(), s02 = Vector()
    var s10 = Vector(), s11 = Vector(), s12 = Vector()
    @inline(__always) func step(_ p: Int, _ mask: Vector?) {
        let w0 = masked(load(a0 + p), mask), w1 = masked(load(a1 + p), mask)
        var x = load(b0 + p)
        s00 = s00.addingProduct(w0, x); s10 = s10.addingProduct(w1, x)
        x = load(b1 + p)
        s01 = s01.addingProduct(w0, x); s11 = s11.addingProduct(w1, x)
        x = load(b2 + p)
        s02 = s02.addingProduct(w0, x); s12 = s12.addingProduct(w1, x)
    }
    var p = 0
    while p + 16 <= end { step(p, nil); p += 16 }
    if p < end { step(end - 16, tailMask(end: end)) }
    return Vector(horizontalSum(s00), horizontalSum(s01), horizontalSum(s02), 0,
                  horizontalSum(s10), horizontalSum(s11), horizontalSum(s12), 0,
                  0, 0, 0, 0, 0, 0, 0, 0)
}

/// 1 row x 3 columns over [0, end); lanes 3-15 are zero.
@inline(__always)
private func dotSums1x3(_ a0: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
                        _ b2: UnsafePointer<Float>, _ end: Int) -> Vector {
    var s0 = Vector(), s1 = Vector(), s2 = Vector()
    @inline(__always) func step(_ p: Int, _ mask: Vector?) {
        let w = masked(load(a0 + p), mask)
        s0 = s0.addingProduct(w, load(b0 + p)); s1 = s1.addingProduct(w, load(b1 + p)); s2 = s2.addingProduct(w, load(b2 + p))
    }
    var p = 0
    while p + 16 <= end { step(p, nil); p += 16 }
    if p < end { step(end - 16, tailMask(end: end)) }
    return Vector(horizontalSum(s0), horizontalSum(s1), horizontalSum(s2), 0, 0, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0)
}

@inline(__always) private func masked(_ v: Vector, _ mask: Vector?) -> Vector {
    if let mask { return v * mask }
    return v
}
