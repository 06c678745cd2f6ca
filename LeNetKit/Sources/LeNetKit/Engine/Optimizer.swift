/// Stochastic gradient descent as `torch.optim.SGD`, described for a backend to run:
/// with weight decay λ and momentum μ, g ← g + λ·w; v ← μ·v + g (v = g on the first
/// step); w ← w − lr·v. The velocity v is optimizer state and lives in the backend.
public struct SGD: Sendable, Equatable {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float

    public init(learningRate: Float = 0.01, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }
}
