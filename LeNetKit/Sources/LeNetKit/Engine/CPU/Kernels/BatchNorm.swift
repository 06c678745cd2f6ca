/// Batch normalisation over NCHW: statistics per channel over batch x H x W.
/// Sums are vectorised and run in a fixed order, so results do not depend on threads.

struct BatchNormShape: Sendable {
    var batch: Int
    var channels: Int
    var pixels: Int  // H*W
    init(batch: Int, channels: Int, pixels: Int) { self.batch = batch; self.channels = channels; self.pixels = pixels }
    @inline(__always) func plane(_ b: Int, _ c: Int) -> Int { (b * channels + c) * pixels }
}

/// Training forward: normalises with the batch's mean and biased variance, writes
/// `normalized` [N,C,H,W] (x̂, kept for backward) and `inverseStd` [C], and moves
/// the running statistics toward the batch's (unbiased variance), as PyTorch does.
func batchNormTrainingForward(output: UnsafeMutablePointer<Float>, normalized: UnsafeMutablePointer<Float>,
                                     inverseStd: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                     gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                     runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                     momentum: Float, epsilon: Float, _ s: BatchNormShape) {
    let n = Float(s.batch * s.pixels)
    for c in 0..<s.channels {
        var total: Float = 0
        for b in 0..<s.batch { total += sum(input + s.plane(b, c), count: s.pixels) }
        let mean = total / n
        // Two passes (mean, then squared deviations) keep the variance accurate in Float.
        var squares: Float = 0
        for b in 0..<s.batch { squares += sumOfSquaredDeviations(input + s.plane(b, c), count: s.pixels, from: mean) }
        let variance = squares / n
        let invStd = 1 / (variance + epsilon).squareRoot()
        inverseStd[c] = invStd
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            // x̂ = (x − mean)·invStd, y = γ·x̂ + β
            affine(normalized + offset, input + offset, count: s.pixels, scale: invStd, shift: -mean * invStd)
            affine(output + offset, normalized + offset, count: s.pixels, scale: gamma[c], shift: beta[c])
        }
        let unbiased = n > 1 ? squares / (n - 1) : variance
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
    }
}

/// Evaluation forward: normalises with the running statistics.
func batchNormInferenceForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                      runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                      epsilon: Float, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        let scale = gamma[c] / (runningVar[c] + epsilon).squareRoot()
        let shift = beta[c] - runningMean[c] * scale
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            affine(output + offset, input + offset, count: s.pixels, scale: scale, shift: shift)
        }
    }
}

/// Backward of the training forward. Writes gammaGrad, betaGrad [C] and inputGrad [N,C,H,W]:
/// dx = γ·invStd/N · (N·dy − Σdy − x̂·Σ(dy·x̂)).
func batchNormBackward(inputGrad: UnsafeMutablePointer<Float>, gammaGrad: UnsafeMutablePointer<Float>,
                              betaGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                              normalized: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>,
                              gamma: UnsafePointer<Float>, _ s: BatchNormShape) {
    let n = Float(s.batch * s.pixels)
    for c in 0..<s.channels {
        var sumDy: Float = 0, sumDyXhat: Float = 0
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            sumDy += sum(outputGrad + offset, count: s.pixels)
            sumDyXhat += dotProduct(outputGrad + offset, normalized + offset, count: s.pixels)
        }
        gammaGrad[c] = sumDyXhat
        betaGrad[c] = sumDy
        let k = gamma[c] * inverseStd[c] / n
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            // dx = k·N·dy − k·x̂·Σ(dy·x̂) − k·Σdy
            let dx = inputGrad + offset, dy = outputGrad + offset, xhat = normalized + offset
            let a = k * n, bCoefficient = -k * sumDyXhat, shift = -k * sumDy
            var i = 0
            while i + 16 <= s.pixels {
                let v = load16(dy + i) * a + load16(xhat + i) * bCoefficient + shift
                UnsafeMutableRawPointer(dx + i).storeBytes(of: v, as: SIMD16<Float>.self)
                i += 16
            }
            while i < s.pixels { dx[i] = dy[i] * a + xhat[i] * bCoefficient + shift; i += 1 }
        }
    }
}

// The training forward and backward in pieces, for a slice of the batch at a time
// (`BatchNorm2dLayer` runs them with barriers between): the sums each slice contributes,
// then the normalisation and input gradient from the batch's totals. Put together in
// one slice they are the kernels above (the tests compare them).

/// sums [C] = Σx per channel over the images of `s` (input [s.batch, C, H, W]).
func batchNormSums(_ sums: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        var total: Float = 0
        for b in 0..<s.batch { total += sum(input + s.plane(b, c), count: s.pixels) }
        sums[c] = total
    }
}

/// squares [C] = Σ(x − mean[c])² per channel over the images of `s`.
func batchNormSquaredDeviations(_ squares: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        var total: Float = 0
        for b in 0..<s.batch { total += sumOfSquaredDeviations(input + s.plane(b, c), count: s.pixels, from: mean[c]) }
        squares[c] = total
    }
}

/// x̂ = (x − mean)·invStd into `normalized`, y = γ·x̂ + β into `output`, over the images of `s`.
func batchNormNormalize(output: UnsafeMutablePointer<Float>, normalized: UnsafeMutablePointer<Float>,
                        input: UnsafePointer<Float>, mean: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>,
                        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        let invStd = inverseStd[c]
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            affine(normalized + offset, input + offset, count: s.pixels, scale: invStd, shift: -mean[c] * invStd)
            affine(output + offset, normalized + offset, count: s.pixels, scale: gamma[c], shift: beta[c])
        }
    }
}

/// gammaGrad [C] = Σdy·x̂ and betaGrad [C] = Σdy per channel over the images of `s`.
func batchNormGradientSums(gammaGrad: UnsafeMutablePointer<Float>, betaGrad: UnsafeMutablePointer<Float>,
                           outputGrad: UnsafePointer<Float>, normalized: UnsafePointer<Float>, _ s: BatchNormShape) {
    for c in 0..<s.channels {
        var sumDy: Float = 0, sumDyXhat: Float = 0
        for b in 0..<s.batch {
            let offset = s.plane(b, c)
            sumDy += sum(outputGrad + offset, count: s.pixels)
            sumDyXhat += dotProduct(outputGrad + offset, normalized + offset, count: s.pixels)
        }
        gammaGrad[c] = sumDyXhat
        betaGrad[c] = sumDy
    }
}

/// Channel c of the input gradient over the images of `s`, from the batch's sums:
/// dx = k·n·dy − k·x̂·Σ(dy·x̂) − k·Σdy with k = γ·invStd/n, n the batch's values per channel.
func batchNormInputGradient(_ inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                            normalized: UnsafePointer<Float>, channel c: Int, k: Float, n: Float,
                            sumDy: Float, sumDyXhat: Float, _ s: BatchNormShape) {
    let a = k * n, bCoefficient = -k * sumDyXhat, shift = -k * sumDy
    for b in 0..<s.batch {
        let offset = s.plane(b, c)
        let dx = inputGrad + offset, dy = outputGrad + offset, xhat = normalized + offset
        var i = 0
        while i + 16 <= s.pixels {
            let v = load16(dy + i) * a + load16(xhat + i) * bCoefficient + shift
            UnsafeMutableRawPointer(dx + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < s.pixels { dx[i] = dy[i] * a + xhat[i] * bCoefficient + shift; i += 1 }
    }
}

@inline(__always) private func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// y = x·scale + shift over `count` floats (y may be x).
@inline(__always)
func affine(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, scale: Float, shift: Float) {
    var i = 0
    while i + 16 <= count {
        UnsafeMutableRawPointer(y + i).storeBytes(of: load16(x + i) * scale + shift, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { y[i] = x[i] * scale + shift; i += 1 }
}

/// Σ (x − mean)² over `count` floats, in a fixed order.
@inline(__always)
func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, count: Int, from mean: Float) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        let d = load16(x + i) - mean
        acc = acc.addingProduct(d, d)
        i += 16
    }
    var total = horizontalSum(acc)
    while i < count { let d = x[i] - mean; total += d * d; i += 1 }
    return total
}

/// Σ a·b over `count` floats, in a fixed order.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        acc = acc.addingProduct(load16(a + i), load16(b + i))
        i += 16
    }
    var total = horizontalSum(acc)
    while i < count { total += a[i] * b[i]; i += 1 }
    return total
}
