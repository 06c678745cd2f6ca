/// ReLU and dropout: elementwise over `count` floats.

func reluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    var i = 0
    let zero = SIMD16<Float>()
    while i + 16 <= count {
        let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: v.replacing(with: zero, where: v .< zero), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { output[i] = input[i] > 0 ? input[i] : 0; i += 1 }
}

/// dx = dy where the ReLU's output was positive, else 0.
func reluBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, count: Int) {
    var i = 0
    let zero = SIMD16<Float>()
    while i + 16 <= count {
        let y = UnsafeRawPointer(output + i).loadUnaligned(as: SIMD16<Float>.self)
        let dy = UnsafeRawPointer(outputGrad + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(inputGrad + i).storeBytes(of: dy.replacing(with: zero, where: y .<= zero), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { inputGrad[i] = output[i] > 0 ? outputGrad[i] : 0; i += 1 }
}

/// Draws an inverted-dropout mask for one layer in one training step: element i of
/// [count] is 0 with probability `p`, else 1/(1-p). Element i takes word i % 4 of the
/// Philox block with counter (i / 4, layer, step low, step high) under the run's seed;
/// a GPU kernel computing the same formula gets the same mask.
func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, p: Float, key: StepKey, layer: Int) {
    dropoutMask(mask, elements: 0..<count, p: p, key: key, layer: layer)
}

/// Elements `elements` of the same mask (`mask` is the whole [count] mask): a slice of
/// the batch draws its own images' part, the same numbers as a draw of the whole.
func dropoutMask(_ mask: UnsafeMutablePointer<Float>, elements: Range<Int>, p: Float, key: StepKey, layer: Int) {
    let keepScale: Float = p < 1 ? 1 / (1 - p) : 0
    let philoxKey = Philox4x32.key(key.seed)
    let stepLow = UInt32(truncatingIfNeeded: key.step), stepHigh = UInt32(truncatingIfNeeded: key.step >> 32)
    var start = elements.lowerBound & ~3
    while start < elements.upperBound {
        let words = Philox4x32.block(counter: .init(UInt32(truncatingIfNeeded: start / 4), UInt32(layer), stepLow, stepHigh),
                                     key: philoxKey)
        for lane in 0..<4 where elements.contains(start + lane) {
            mask[start + lane] = Philox4x32.unitFloat(words[lane]) < p ? 0 : keepScale
        }
        start += 4
    }
}

/// y = x * mask (forward) and dx = dy * mask (backward) are the same product.
func multiply(_ output: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        let b = UnsafeRawPointer(mask + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: a * b, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { output[i] = x[i] * mask[i]; i += 1 }
}
