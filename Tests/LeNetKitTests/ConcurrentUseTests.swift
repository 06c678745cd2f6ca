import Dispatch
import Foundation
@testable import LeNetKit
import Testing

/// Library calls made from several threads at once, as `lenet serve` makes them: the
/// results must be those of one thread, and under `--sanitize=thread`
/// (Scripts/ci/sanitizers.sh) no access may race.
@Suite struct ConcurrentUseTests {
    /// Empty files read at the same time on several threads. Reading an empty file once
    /// wrote the count of the shared empty-array storage (`[UInt8](unsafeUninitializedCapacity: 0)`
    /// in LocalFile.readAll), a data race ThreadSanitizer reported; now it returns `[]`.
    @Test func emptyFilesReadOnManyThreadsAtOnce() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/empty.png", idx = directory + "/empty-idx3-ubyte"
        try DataFixtures.write([], to: image)
        try DataFixtures.write([], to: idx)
        let threads = 8
        let messages = PerThread(count: 2 * threads, initial: "")
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for _ in 0..<20 {
                do { _ = try ImageDecoder.decode(contentsOf: image) } catch { messages[2 * thread] = "\(error)" }
                do { _ = try IDXFile.readContent(idx) } catch { messages[2 * thread + 1] = "\(error)" }
            }
        }
        for thread in 0..<threads {
            #expect(messages[2 * thread] == "\(image): empty file")
            #expect(messages[2 * thread + 1].contains("empty"), "\(messages[2 * thread + 1])")
        }
    }

    /// One Predictor (with a two-thread pool) shared by eight threads, as the server shares
    /// it: each thread gets exactly the predictions a lone caller gets.
    @Test func onePredictorSharedByManyThreads() throws {
        let store = ParameterStore(definition: .lenet(.lenet))
        var generator = RandomGenerator(seed: 21)
        store.initialize(definition: .lenet(.lenet), generator: &generator)
        let predictor = try Predictor(checkpoint: Checkpoint(store: store, variant: .lenet), device: .cpu(threads: 2),
                                      maxBatch: 8)
        var random = TestRandom(seed: 22)
        let images = (0..<12).map { _ in random.floats(784, in: 0...1) }
        let expected = try predictor.predict(prepared: images)
        let threads = 8
        let results = PerThread(count: threads, initial: [Prediction]())
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var mine: [Prediction] = []
            for round in 0..<5 {
                // Different batch sizes from different threads: 1 to 12 images.
                let count = 1 + (thread * 5 + round) % images.count
                mine = (try? predictor.predict(prepared: Array(images.prefix(count)))) ?? []
                if mine != Array(expected.prefix(count)) { break }
            }
            results[thread] = mine
        }
        for thread in 0..<threads {
            let count = 1 + (thread * 5 + 4) % images.count
            #expect(results[thread] == Array(expected.prefix(count)), "thread \(thread)")
        }
    }
}

/// Slots that threads write, each its own, and that are read once all threads are done
/// (`concurrentPerform` returns after every iteration): plain memory, so no Swift array
/// is modified from two threads.
final class PerThread<Value>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Value>

    init(count: Int, initial: Value) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: initial)
    }

    deinit {
        _ = slots.deinitialize()
        slots.deallocate()
    }

    subscript(index: Int) -> Value {
        get { slots[index] }
        set { slots[index] = newValue }
    }
}
