/// Stochastic gradient descent as `torch.optim.SGD`: with weight decay λ and momentum μ,
/// g ← g + λ·w; v ← μ·v + g (v = g on the first step); w ← w − lr·v.
public struct SGD: Sendable, Equatable {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    /// Whether the velocity holds a first step yet (PyTorch starts it at g, not 0).
    public var hasVelocity = false

    public init(learningRate: Float = 0.01, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// One update of every parameter in the store: one loop over one block.
    public mutating func step(_ store: ParameterStore) {
        let w = store.values.pointer, g = store.gradients.pointer, v = store.velocity.pointer
        let count = store.values.count
        let lr = learningRate, mu = momentum, decay = weightDecay
        if mu == 0 {
            for i in 0..<count { w[i] -= lr * (g[i] + decay * w[i]) }
        } else {
            let first = !hasVelocity
            for i in 0..<count {
                let grad = g[i] + decay * w[i]
                v[i] = first ? grad : mu * v[i] + grad
                w[i] -= lr * v[i]
            }
            hasVelocity = true
        }
    }
}
