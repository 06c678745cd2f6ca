/// Batch normalisation over NCHW: statistics per channel over batch x H x W.
/// Sums run in Double, in a fixed order, so results do not depend on threads.

public struct BatchNormShape: Sendable {
    public var batch: Int
    public var channels: Int
    public var pixels: Int  // H*W
    public init(batch: Int, channels: Int, pixels: Int) { self.batch = batch; self.channels = channels; self.pixels = pixels }
    @inline(__always) func plane(_ b: Int, _ c: Int) -> Int { (b * channels + c) * pixels }
}

/// Training forward: normalises with the batch's mean and biased variance, writes
/// `normalized` [N,C,H,W] (x̂, kept for backward) and `inverseStd` [C], and moves
/// the running statistics toward the batch's (unbiased variance), as PyTorch does.
public func batchNormTrainingForward(output: UnsafeMutablePointer<Float>, normalized: UnsafeMutablePointer<Float>,
                                     inverseStd: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                     gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                     runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                     momentum: Float, epsilon: Float, _ s: BatchNormShape) {
    let n = Double(s.batch * s.pixels)
    for c in 0..<s.channels {
        var total = 0.0
        for b in 0..<s.batch {
            let p = input + s.plane(b, c)
            for i in 0..<s.pixels { total += Double(p[i]) }
        }
        let mean = total / n
        var squares = 0.0
        for b in 0..<s.batch {
            let p = input + s.plane(b, c)
            for i in 0..<s.pixels { let d = Double(p[i]) - mean; squares += d * d }
        }
        let variance = squares / n
        let invStd = Float(1 / (variance + Double(epsilon)).squareRoot())
        inverseStd[c] = invStd
        let meanF = Float(mean), g = gamma[c], bt = beta[c]
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            for i in 0..<s.pixels {
                let xhat = (input[offset + i] - meanF) * invStd
                normalized[offset + i] = xhat
                output[offset + i] = xhat * g + bt
            }
        }
        let unbiased = n > 1 ? squares / (n - 1) : variance
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * meanF
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * Float(unbiased)
    }
}

/// Evaluation forward: normalises with the running statistics.
public func batchNormInferenceForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                      runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                      epsilon: Float, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        let scale = gamma[c] / (runningVar[c] + epsilon).squareRoot()
        let shift = beta[c] - runningMean[c] * scale
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            for i in 0..<s.pixels { output[offset + i] = input[offset + i] * scale + shift }
        }
    }
}

/// Backward of the training forward. Writes gammaGrad, betaGrad [C] and inputGrad [N,C,H,W]:
/// dx = γ·invStd/N · (N·dy − Σdy − x̂·Σ(dy·x̂)).
public func batchNormBackward(inputGrad: UnsafeMutablePointer<Float>, gammaGrad: UnsafeMutablePointer<Float>,
                              betaGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                              normalized: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>,
                              gamma: UnsafePointer<Float>, _ s: BatchNormShape) {
    let n = Float(s.batch * s.pixels)
    for c in 0..<s.channels {
        var sumDy = 0.0, sumDyXhat = 0.0
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            for i in 0..<s.pixels {
                sumDy += Double(outputGrad[offset + i])
                sumDyXhat += Double(outputGrad[offset + i]) * Double(normalized[offset + i])
            }
        }
        gammaGrad[c] = Float(sumDyXhat)
        betaGrad[c] = Float(sumDy)
        let k = gamma[c] * inverseStd[c] / n
        let meanDy = Float(sumDy), meanDyXhat = Float(sumDyXhat)
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            for i in 0..<s.pixels {
                inputGrad[offset + i] = k * (n * outputGrad[offset + i] - meanDy - normalized[offset + i] * meanDyXhat)
            }
        }
    }
}
