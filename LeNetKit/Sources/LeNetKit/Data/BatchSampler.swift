/// Yields batches in epoch order without allocating per batch.
///
/// Every epoch starts from the identity order and, when shuffling, applies one
/// Fisher-Yates pass drawn from the run's generator: the order depends only on
/// the generator's state, so the same seed gives the same batches.
struct BatchSampler: Sendable {
    let count: Int
    let batchSize: Int
    let shuffle: Bool
    /// Current epoch's permutation of 0..<count (saved in checkpoints for exact resume).
    private(set) var order: [Int32]  // [count]

    /// `batchSize` below 1 is treated as 1.
    init(count: Int, batchSize: Int, shuffle: Bool) {
        self.count = max(0, count)
        self.batchSize = max(1, batchSize)
        self.shuffle = shuffle
        self.order = Self.identity(self.count)
    }

    /// ceil(count / batchSize); the short last batch is kept.
    var batchCount: Int { Self.batchCount(count: count, batchSize: batchSize) }

    /// ceil(count / batchSize) for count >= 0 and batchSize >= 1, rounded up without an
    /// addition that could overflow (a batch size read from a file may be near Int.max).
    static func batchCount(count: Int, batchSize: Int) -> Int {
        count / batchSize + (count % batchSize == 0 ? 0 : 1)
    }

    /// Reshuffles (a fresh permutation every call) if `shuffle`, else identity order.
    mutating func startEpoch(using generator: inout RandomGenerator) {
        order.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = Int32(i) }
            if shuffle { generator.shuffle(buffer) }
        }
    }

    /// Positions into `order` for batch `batch` (0..<batchCount).
    func batchRange(_ batch: Int) -> Range<Int> {
        let start = min(batch * batchSize, count)
        return start..<min(start + batchSize, count)
    }

    /// Every batch's positions in order: the one walk over a split that training,
    /// evaluation and the benchmark share.
    var batches: LazyMapSequence<Range<Int>, Range<Int>> { (0..<batchCount).lazy.map { batchRange($0) } }

    /// Restores an order saved by a checkpoint. It must be a permutation of
    /// 0..<count (check with `isPermutation` first); any other array is refused
    /// and the identity order is used, so no out-of-range index can reach `gather`.
    mutating func restore(order: [Int32]) {
        self.order = Self.isPermutation(order, count: count) ? order : Self.identity(count)
    }

    /// True when `order` holds each of 0..<count exactly once.
    static func isPermutation(_ order: [Int32], count: Int) -> Bool {
        guard order.count == count else { return false }
        var seen = [Bool](repeating: false, count: count)
        for value in order {
            let index = Int(value)
            guard index >= 0 && index < count && !seen[index] else { return false }
            seen[index] = true
        }
        return true
    }

    private static func identity(_ count: Int) -> [Int32] { (0..<count).map { Int32($0) } }
}
