import Foundation
@testable import LeNetKit
import Testing

/// One training step of LeNet and LeNet-BN against PyTorch: golden files written by
/// Scripts/fixtures/make_fixtures.py hold the weights, the batch, and PyTorch's logits, loss,
/// gradients, parameters after SGD, running statistics and evaluation logits.
@Suite struct PyTorchReferenceTests {
    static let tolerance: Float = 1e-4

    @Test(arguments: [("lenet_step.safetensors", ModelVariant.lenet), ("lenet_bn_step.safetensors", .lenetBN)])
    func oneTrainingStepMatchesPyTorch(file: String, variant: ModelVariant) throws {
        let golden = try GoldenFile(file)
        let tensor = golden.floats
        let definition = ModelDefinition.lenet(variant)
        let batch = 8
        let network = CPUNetwork(definition, maxBatch: batch, threads: 2)
        let store = network.memory
        for slot in store.parameterSlots + store.bufferSlots { try store.assign(slot.name, tensor(slot.name)) }
        network.inputs.update(from: try tensor("input"), count: batch * 784)
        network.labels.update(from: try golden.labels(), count: batch)
        if variant == .lenetBN { network.presetDropoutKeepMask(try tensor("dropout_mask")) }

        let logits = Array(UnsafeBufferPointer(start: network.forward(batch: batch, training: true, key: StepKey(seed: 0, step: 0)),
                                               count: batch * 10))
        #expect(maxRelativeDifference(logits, try tensor("logits")) < Self.tolerance, "logits")
        let loss = network.lossAndLogitsGradient(batch: batch).loss
        #expect(maxRelativeDifference([loss], try tensor("loss")) < Self.tolerance, "loss")
        network.backward(batch: batch)
        for slot in store.parameterSlots {
            let difference = maxRelativeDifference(store.gradient(of: slot.name)!, try tensor("grad." + slot.name))
            #expect(difference < Self.tolerance, "grad.\(slot.name): \(difference)")
        }
        for slot in store.bufferSlots {
            let difference = maxRelativeDifference(store.values(of: slot.name)!, try tensor("after_forward." + slot.name))
            #expect(difference < Self.tolerance, "after_forward.\(slot.name): \(difference)")
        }
        network.optimizer = SGD(learningRate: 0.01)
        network.applyOptimizer()
        for slot in store.parameterSlots {
            let difference = maxRelativeDifference(store.values(of: slot.name)!, try tensor("after_step." + slot.name))
            #expect(difference < Self.tolerance, "after_step.\(slot.name): \(difference)")
        }
        let evalLogits = Array(UnsafeBufferPointer(start: network.logits(batch: batch), count: batch * 10))
        #expect(maxRelativeDifference(evalLogits, try tensor("eval_logits")) < Self.tolerance, "eval_logits")
    }
}

extension ParameterStoreError {
    static func missing(_ name: String) -> Error { FixtureError(description: "fixture has no tensor \(name)") }
}

struct FixtureError: Error, CustomStringConvertible { let description: String }
