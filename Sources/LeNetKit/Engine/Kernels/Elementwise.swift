/// ReLU and dropout: elementwise over `count` floats.

public func reluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
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
public func reluBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
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

/// Draws an inverted-dropout mask: each entry is 0 with probability `p`, else 1/(1-p).
public func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, p: Float, generator: inout RandomGenerator) {
    let keepScale = p < 1 ? 1 / (1 - p) : 0
    for i in 0..<count { mask[i] = generator.nextUnitFloat() < p ? 0 : keepScale }
}

/// y = x * mask (forward) and dx = dy * mask (backward) are the same product.
public func multiply(_ output: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        let b = UnsafeRawPointer(mask + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: a * b, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { output[i] = x[i] * mask[i]; i += 1 }
}
