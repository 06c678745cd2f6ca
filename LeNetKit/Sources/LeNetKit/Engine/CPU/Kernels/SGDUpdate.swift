/// One SGD update of a whole parameter block in one loop, as `torch.optim.SGD`:
/// g ← g + λ·w; v ← μ·v + g (v = g on the first step); w ← w − lr·v. Without
/// momentum the velocity is neither read nor written.
///
/// values, velocity, gradients: [count], in the same layout.
func sgdUpdate(values w: UnsafeMutablePointer<Float>, velocity v: UnsafeMutablePointer<Float>,
               gradients g: UnsafePointer<Float>, count: Int, _ settings: SGD, firstStep: Bool) {
    let lr = settings.learningRate, mu = settings.momentum, decay = settings.weightDecay
    if mu == 0 {
        for i in 0..<count { w[i] -= lr * (g[i] + decay * w[i]) }
    } else {
        for i in 0..<count {
            let grad = g[i] + decay * w[i]
            v[i] = firstStep ? grad : mu * v[i] + grad
            w[i] -= lr * v[i]
        }
    }
}
