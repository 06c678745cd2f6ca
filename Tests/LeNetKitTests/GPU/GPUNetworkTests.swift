import Foundation
@testable import LeNetKit
import Testing

/// The GPU backend through the tests' runtime (GPUTestDevice: OpenCL on PoCL in CI)
/// against the CPU backend and PyTorch's golden files: the same steps, within 1e-4, and a
/// short run to the same accuracy.
@Suite(.serialized) struct GPUNetworkTests {
    static let tolerance: Float = 1e-4

    /// A device whose networks are GPU networks on the tests' GPU device (compiled once).
    static func device(_ gpu: GPUTestDevice) -> ComputeDevice {
        ComputeDevice(name: "\(gpu.kind.rawValue) (tests)") { definition, maxBatch, trainable in
            try GPUNetwork(definition, maxBatch: maxBatch, trainable: trainable, program: gpu.program)
        }
    }

    /// Three steps on random images (the last one short), with momentum, weight decay
    /// and, in LeNet-BN, Philox dropout keyed by the step, as the CPU draws it.
    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func trainingStepsMatchTheCPUBackend(variant: ModelVariant) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        let definition = ModelDefinition.lenet(variant)
        var generator = RandomGenerator(seed: 7)
        let store = ParameterStore(definition: definition)
        store.initialize(definition: definition, generator: &generator)
        let count = 80
        let split = try DataSplit(name: "train", pixels: (0..<count * 784).map { _ in UInt8(generator.nextIndex(below: 256)) },
                                  labels: (0..<count).map { _ in UInt8(generator.nextIndex(below: 10)) })
        let networks: [any Network] = [CPUNetwork(definition, maxBatch: 32, threads: 2),
                                       try Self.device(gpu).makeNetwork(definition, maxBatch: 32)]
        for network in networks {
            network.load(store)
            network.attach(split, as: .train)
            network.attach(split, as: .test)
            network.optimizer = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
            network.setOrder((0..<count).map { Int32(($0 * 37) % count) }, of: .train)
        }
        let (cpu, gpuNetwork) = (networks[0], networks[1])
        for step in 0..<3 {
            for network in networks {
                network.trainStep(step * 32..<min(count, step * 32 + 32), key: StepKey(seed: 99, step: UInt64(step)))
            }
            let expected = cpu.snapshot(), actual = gpuNetwork.snapshot()
            for name in expected.stateDictNames {
                if let values = expected.values(of: name) {
                    let difference = maxRelativeDifference(actual.values(of: name)!, values)
                    #expect(difference < Self.tolerance, "step \(step) \(name): \(difference)")
                }
                if let gradient = expected.gradient(of: name) {
                    let difference = maxRelativeDifference(actual.gradient(of: name)!, gradient)
                    #expect(difference < Self.tolerance, "step \(step) grad \(name): \(difference)")
                }
            }
            #expect(actual.batchesTracked == expected.batchesTracked && actual.hasVelocity == expected.hasVelocity)
            let (cpuTotals, gpuTotals) = (cpu.totals(of: .train), gpuNetwork.totals(of: .train))
            #expect(abs(cpuTotals.lossSum - gpuTotals.lossSum) < 1e-5 && cpuTotals.correct == gpuTotals.correct
                    && cpuTotals.images == gpuTotals.images, "step \(step): \(cpuTotals) vs \(gpuTotals)")
        }
        // Evaluation and inference: the same logits and totals.
        var expectedLogits = [Float](repeating: 0, count: 320), logits = expectedLogits
        cpu.evaluate(0..<32, of: .test, logits: &expectedLogits)
        gpuNetwork.evaluate(0..<32, of: .test, logits: &logits)
        #expect(maxRelativeDifference(logits, expectedLogits) < Self.tolerance)
        #expect(cpu.totals(of: .test).correct == gpuNetwork.totals(of: .test).correct)
        let images = (0..<2 * 784).map { (i: Int) -> Float in Float(i % 13) / 13 }
        cpu.infer(images, count: 2, logits: &expectedLogits)
        gpuNetwork.infer(images, count: 2, logits: &logits)
        #expect(maxRelativeDifference(Array(logits[0..<20]), Array(expectedLogits[0..<20])) < Self.tolerance)
        // Totals start again from what they are set to.
        gpuNetwork.setTotals(StepTotals(lossSum: 1.5, correct: 3, batches: 2, images: 40), of: .train)
        #expect(gpuNetwork.totals(of: .train) == StepTotals(lossSum: 1.5, correct: 3, batches: 2, images: 40))
    }

    /// Scripts/fixtures/make_fixtures.py's golden step, as PyTorchReferenceTests checks the CPU's.
    @Test(arguments: [("lenet_step.safetensors", ModelVariant.lenet), ("lenet_bn_step.safetensors", .lenetBN)])
    func oneTrainingStepMatchesPyTorch(file: String, variant: ModelVariant) throws {
        guard let gpu = GPUTestDevice.get() else { return }
        let golden = try GoldenFile(file)
        let tensor = golden.floats
        let definition = ModelDefinition.lenet(variant)
        let batch = 8
        let store = ParameterStore(definition: definition)
        for slot in store.parameterSlots + store.bufferSlots { try store.assign(slot.name, tensor(slot.name)) }
        let network = try GPUNetwork(definition, maxBatch: batch, trainable: true, program: gpu.program)
        network.load(store)
        network.optimizer = SGD(learningRate: 0.01)
        let labels = try golden.labels()
        network.trainStep(images: try tensor("input"), labels: labels,
                          keepMasks: variant == .lenetBN ? [try tensor("dropout_mask")] : [])
        #expect(maxRelativeDifference([Float(network.totals(of: .train).lossSum)], try tensor("loss")) < Self.tolerance, "loss")
        let after = network.snapshot()
        for slot in store.parameterSlots {
            let gradient = maxRelativeDifference(after.gradient(of: slot.name)!, try tensor("grad." + slot.name))
            #expect(gradient < Self.tolerance, "grad.\(slot.name): \(gradient)")
            let value = maxRelativeDifference(after.values(of: slot.name)!, try tensor("after_step." + slot.name))
            #expect(value < Self.tolerance, "after_step.\(slot.name): \(value)")
        }
        for slot in store.bufferSlots {
            let difference = maxRelativeDifference(after.values(of: slot.name)!, try tensor("after_forward." + slot.name))
            #expect(difference < Self.tolerance, "after_forward.\(slot.name): \(difference)")
        }
        var logits = [Float](repeating: 0, count: batch * 10)
        network.infer(try tensor("input"), count: batch, logits: &logits)
        #expect(maxRelativeDifference(logits, try tensor("eval_logits")) < Self.tolerance, "eval_logits")
    }

    /// One epoch on MNIST's first 2,000 training images, through the trainer as `lenet train
    /// --device opencl|cuda` runs it: the test accuracy on 500 images is the CPU backend's.
    @Test func aShortRunReachesTheCPUAccuracy() throws {
        guard let gpu = GPUTestDevice.get() else { return }
        let full = try DataFixtures.mnist.get()
        let dataset = Dataset(train: full.train.prefix(TestWorkload.isSmall ? 640 : 2000), test: full.test.prefix(500))
        var configuration = TrainingConfiguration()
        configuration.epochs = 1
        configuration.learningRate = 0.1  // far enough in 63 steps to tell a working network (CPU: ~75%)
        configuration.momentum = 0.9
        configuration.seed = 5
        let cpu = try Trainer(configuration: configuration, dataset: dataset, device: .cpu(threads: 2))
        let onGPU = try Trainer(configuration: configuration, dataset: dataset, device: Self.device(gpu))
        cpu.run()
        onGPU.run()
        let (expected, actual) = (cpu.history[0], onGPU.history[0])
        #expect(abs(actual.testAccuracy - expected.testAccuracy) <= 0.01, "\(gpu.kind.displayName) \(actual.line) vs CPU \(expected.line)")
        #expect(abs(actual.trainLoss - expected.trainLoss) < 1e-3, "\(gpu.kind.displayName) \(actual.line) vs CPU \(expected.line)")
        // And it learned: far above chance (10%). The small workload's 20 steps reach about 27%.
        #expect(actual.testAccuracy > (TestWorkload.isSmall ? 0.2 : 0.6), "\(actual.line)")
    }
}
