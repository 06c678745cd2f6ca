@testable import LeNetKit
import Testing

@Suite struct DataSamplerTests {
    @Test func everyIndexOncePerEpochWithShortLastBatch() {
        var sampler = BatchSampler(count: 103, batchSize: 10, shuffle: true)
        var generator = RandomGenerator(seed: 1)
        #expect(sampler.batchCount == 11)
        for _ in 0..<3 {
            sampler.startEpoch(using: &generator)
            var seen: [Int32] = []
            for batch in 0..<sampler.batchCount {
                let range = sampler.batchRange(batch)
                #expect(range.count == (batch == 10 ? 3 : 10))
                seen += sampler.order[range]
            }
            #expect(seen.sorted() == (0..<103).map { Int32($0) })
        }
    }

    @Test func reshufflesEveryEpoch() {
        var sampler = BatchSampler(count: 1000, batchSize: 32, shuffle: true)
        var generator = RandomGenerator(seed: 0)
        sampler.startEpoch(using: &generator)
        let first = sampler.order
        sampler.startEpoch(using: &generator)
        #expect(first != sampler.order)
        #expect(first != (0..<1000).map { Int32($0) })
    }

    @Test func sameSeedSameOrderDifferentSeedDifferentOrder() {
        func orders(seed: UInt64) -> [[Int32]] {
            var sampler = BatchSampler(count: 500, batchSize: 32, shuffle: true)
            var generator = RandomGenerator(seed: seed)
            return (0..<3).map { _ in
                sampler.startEpoch(using: &generator)
                return sampler.order
            }
        }
        #expect(orders(seed: 42) == orders(seed: 42))
        #expect(orders(seed: 42) != orders(seed: 43))
    }

    @Test func testSplitStaysInOrder() {
        var sampler = BatchSampler(count: 50, batchSize: 32, shuffle: false)
        var generator = RandomGenerator(seed: 9)
        let before = generator
        sampler.startEpoch(using: &generator)
        #expect(sampler.order == (0..<50).map { Int32($0) })
        #expect(generator == before)  // no draws spent on an unshuffled split
        #expect(sampler.batchRange(1) == 32..<50)
    }

    @Test func restoreAcceptsOnlyPermutations() {
        var sampler = BatchSampler(count: 4, batchSize: 2, shuffle: true)
        sampler.restore(order: [3, 1, 0, 2])
        #expect(sampler.order == [3, 1, 0, 2])
        sampler.restore(order: [3, 3, 0, 2])
        #expect(sampler.order == [0, 1, 2, 3])
        #expect(!BatchSampler.isPermutation([0, 1, 4, 2], count: 4))
        #expect(!BatchSampler.isPermutation([0, 1], count: 4))
    }

    @Test func sampleBatchShape() throws {
        let dataset = try DataFixtures.mnist.get()
        let batch = SampleBatch(firstBatchOf: dataset.train, batchSize: 32, seed: 0)
        #expect(batch.shape == [32, 1, 28, 28])
        #expect(batch.images.count == 32 * 784 && batch.labels.count == 32)
        let again = SampleBatch(firstBatchOf: dataset.train, batchSize: 32, seed: 0)
        #expect(again.labels == batch.labels)
    }
}
