import AllocationCounter
@testable import LeNetKit
import Testing

/// A training step, an evaluation step and an inference call of the CPU backend allocate
/// nothing (issue 14): every buffer is made when the network is. The test runner counts
/// the heap allocations of the threads that take the steps (`AllocationCounter`: the
/// calling thread and the pool's workers) over several steps after a first one.
@Suite(.enabled(if: lenet_test_allocation_counting_available() != 0,
                "allocations are counted only on Linux with glibc, without a sanitizer"))
struct AllocationTests {
    /// Points every thread of a pool (the caller's, which runs task 0, too) at a counter
    /// for its allocations, or at none: task i runs on worker i, one task each.
    final class CountOnEveryThread: ParallelWork {
        var counter: UnsafeMutablePointer<Int>?
        func run(task: Int) { lenet_test_count_allocations_on_this_thread(counter) }
    }

    /// The allocations `body` makes on the network's threads. Each test case counts into a
    /// counter of its own, so that cases running side by side do not see each other's.
    static func allocations(of network: CPUNetwork, _ body: () -> Void) -> Int {
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        counter.initialize(to: 0)
        defer { counter.deallocate() }
        let marker = CountOnEveryThread()
        marker.counter = counter
        network.pool.run(marker, tasks: network.pool.threadCount)
        body()
        marker.counter = nil
        network.pool.run(marker, tasks: network.pool.threadCount)
        return lenet_test_read_allocation_counter(counter)
    }

    @Test(arguments: [ModelVariant.lenet, .lenetBN], [1, 2, 3])
    func stepsAllocateNothing(variant: ModelVariant, threads: Int) throws {
        var random = TestRandom(seed: 60)
        let split = try random.split(count: 96)
        let network = CPUNetwork(.lenet(variant), maxBatch: 32, threads: threads)
        network.initialize(seed: 61)
        network.optimizer = SGD(learningRate: 0.01, momentum: 0.9)
        network.attach(split, as: .train)
        network.attach(split, as: .test)
        let images = UnsafeMutablePointer<Float>.allocate(capacity: 32 * 784)
        images.initialize(repeating: 0.5, count: 32 * 784)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 32 * 10)
        defer { images.deallocate(); logits.deallocate() }
        // The first step of each kind, uncounted, as the trainer's first step would be.
        network.trainStep(0..<32, key: StepKey(seed: 1, step: 0))
        network.evaluate(0..<32, of: .test, logits: logits)
        network.infer(images, count: 32, logits: logits)

        let steps = Self.allocations(of: network) {
            for step in 1..<4 {
                network.trainStep((step - 1) * 32..<step * 32, key: StepKey(seed: 1, step: UInt64(step)))
            }
            network.trainStep(64..<80, key: StepKey(seed: 1, step: 4))  // a short last batch
            network.evaluate(32..<64, of: .test, logits: logits)
            network.evaluate(80..<96, of: .test, logits: nil)
            network.infer(images, count: 32, logits: logits)
            network.infer(images, count: 1, logits: logits)
        }
        #expect(steps == 0, "\(variant), \(threads) threads: \(steps) allocations in 4 training steps, 2 evaluations, 2 inferences")

        // The counter itself: an allocation on a counted thread is seen.
        let one = Self.allocations(of: network) {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 1000)
            buffer.deallocate()
        }
        #expect(one == 1)
    }
}
