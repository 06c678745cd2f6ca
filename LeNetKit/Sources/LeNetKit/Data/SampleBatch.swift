/// One batch gathered exactly as training sees it, for showing to a person.
public struct SampleBatch: Sendable {
    public let count: Int
    public let images: [Float]  // [count, 1, 28, 28], 0...1
    public let labels: [Int32]  // [count]

    /// The tensor shape training sees: [count, 1, 28, 28].
    public var shape: [Int] { [count, 1, DataSplit.rows, DataSplit.columns] }

    /// Batch 0 of the first epoch: a sampler over `split`, shuffled (when
    /// `shuffle`) by a generator seeded with `seed`.
    public init(firstBatchOf split: DataSplit, batchSize: Int, seed: UInt64, shuffle: Bool = true) {
        var sampler = BatchSampler(count: split.count, batchSize: batchSize, shuffle: shuffle)
        var generator = RandomGenerator(seed: seed)
        sampler.startEpoch(using: &generator)
        let range = sampler.batchRange(0)
        var images = [Float](repeating: 0, count: range.count * DataSplit.pixelsPerImage)
        var labels = [Int32](repeating: 0, count: range.count)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                guard let imageBase = imageBuffer.baseAddress, let labelBase = labelBuffer.baseAddress else { return }
                split.gather(order: sampler.order, range: range, images: imageBase, labels: labelBase)
            }
        }
        self.count = range.count
        self.images = images
        self.labels = labels
    }
}
