@testable import LeNetKit

/// Steps of the CPU backend on images and labels a test wrote into its buffers itself.
extension CPUNetwork {
    /// Logits [batch, classes] of the staged images in evaluation mode.
    func logits(batch: Int) -> UnsafePointer<Float> {
        forward(batch: batch, training: false, key: StepKey(seed: 0, step: 0))
    }

    /// Forward, loss, backward and the optimizer's update on the staged batch.
    func trainStaged(batch: Int, key: StepKey) {
        forward(batch: batch, training: true, key: key)
        _ = lossAndLogitsGradient(batch: batch)
        backward(batch: batch)
        applyOptimizer()
    }

    /// Initialises the backend's parameters as a trainer would (PyTorch's defaults from `seed`).
    func initialize(seed: UInt64) {
        var generator = RandomGenerator(seed: seed)
        let store = ParameterStore(definition: definition)
        store.initialize(definition: definition, generator: &generator)
        load(store)
    }
}
