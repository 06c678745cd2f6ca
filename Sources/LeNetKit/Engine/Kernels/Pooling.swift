/// Max pooling with a square window equal to its stride (2x2, stride 2 in LeNet).
/// `planes` is batch x channels: every plane [H, W] pools to [H/size, W/size].
///
/// The 2x2 forward records which of the four won (0-3, row-major, the first on
/// ties as PyTorch), so that the backward is a branch-free scatter.

/// Plain forward for any window size; the reference for the SIMD 2x2 kernel.
public func maxPoolForwardReference(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                    planes: Int, height: Int, width: Int, size: Int) {
    let oh = height / size, ow = width / size
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = output + plane * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.infinity
                for dy in 0..<size {
                    for dx in 0..<size { best = max(best, src[(oy * size + dy) * width + ox * size + dx]) }
                }
                dst[oy * ow + ox] = best
            }
        }
    }
}

/// Forward of 2x2 windows on planes of even size: `output` and `choice` [planes, H/2, W/2].
/// With `rectify` the outputs are max(·, 0): ReLU then pooling in one pass (they commute).
///
/// Rows of 16 inputs or more go 8 windows at a time through SIMD (16 inputs of each of the
/// two rows, split into even and odd columns); a row's last 8 windows end at its end and may
/// overlap the previous ones, which only writes the same values twice.
public func maxPool2x2Forward(output: UnsafeMutablePointer<Float>, choice: UnsafeMutablePointer<UInt8>,
                              input: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                              rectify: Bool = false) {
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = output + plane * oh * ow, pick = choice + plane * oh * ow
        for oy in 0..<oh {
            let row0 = src + 2 * oy * width, row1 = row0 + width
            let out = dst + oy * ow, picks = pick + oy * ow
            if ow >= 8 {
                var ox = 0
                while true {
                    let start = min(ox, ow - 8)
                    pool8Windows(out + start, picks + start, row0 + 2 * start, row1 + 2 * start, rectify: rectify)
                    ox += 8
                    if ox >= ow { break }
                }
            } else {
                for ox in 0..<ow {
                    (out[ox], picks[ox]) = poolWindow(row0[2 * ox], row0[2 * ox + 1], row1[2 * ox], row1[2 * ox + 1],
                                                      rectify: rectify)
                }
            }
        }
    }
}

/// One window [a b; c d]: its maximum (at least 0 with `rectify`) and which input won:
/// 0-3 row-major, a later one only when strictly larger (the first maximum on ties), or 4
/// when `rectify` cut the window (its maximum is not positive, so no input gets a gradient).
/// Written as max and flag arithmetic so that it compiles without branches.
@inline(__always)
private func poolWindow(_ a: Float, _ b: Float, _ c: Float, _ d: Float, rectify: Bool) -> (Float, UInt8) {
    let top = max(a, b), bottom = max(c, d), best = max(top, bottom)
    let right = UInt8(unsafeBitCast(b > a, to: UInt8.self))
    let bottomRight = UInt8(unsafeBitCast(d > c, to: UInt8.self))
    let fromBottom = UInt8(unsafeBitCast(bottom > top, to: UInt8.self))
    let cut = UInt8(unsafeBitCast(rectify && !(best > 0), to: UInt8.self))
    let pick = cut &* 4 &+ (1 &- cut) &* (fromBottom &* (2 &+ bottomRight) &+ (1 &- fromBottom) &* right)
    return (rectify ? max(best, 0) : best, pick)
}

/// `poolWindow` for 8 neighbouring windows: 16 inputs of the top row and 16 of the bottom.
@inline(__always)
private func pool8Windows(_ out: UnsafeMutablePointer<Float>, _ picks: UnsafeMutablePointer<UInt8>,
                          _ row0: UnsafePointer<Float>, _ row1: UnsafePointer<Float>, rectify: Bool) {
    let upper = UnsafeRawPointer(row0).loadUnaligned(as: SIMD16<Float>.self)
    let lower = UnsafeRawPointer(row1).loadUnaligned(as: SIMD16<Float>.self)
    let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
    // Selects rather than the standard library's pointwiseMax, which is not inlined here.
    let right = b .> a, bottomRight = d .> c
    let top = a.replacing(with: b, where: right), bottom = c.replacing(with: d, where: bottomRight)
    let fromBottom = bottom .> top
    let best = top.replacing(with: bottom, where: fromBottom)
    let zero = SIMD8<Int32>(repeating: 0)
    var pick = zero.replacing(with: 1, where: right)
        .replacing(with: zero.replacing(with: 1, where: bottomRight) &+ 2, where: fromBottom)
    var value = best
    if rectify {
        let cut = .!(best .> 0)
        pick.replace(with: 4, where: cut)
        value.replace(with: 0, where: cut)
    }
    UnsafeMutableRawPointer(out).storeBytes(of: value, as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(picks).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: pick), as: SIMD8<UInt8>.self)
}

/// Backward of `maxPool2x2Forward`: each output gradient goes to the input its window
/// chose (none where a rectified window was cut), and every other input gradient is 0.
/// `inputGrad` [planes, H, W] is overwritten. Rows of 16 inputs or more go through SIMD
/// as in the forward.
public func maxPool2x2Backward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                               choice: UnsafePointer<UInt8>, planes: Int, height: Int, width: Int) {
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let dst = inputGrad + plane * height * width, grad = outputGrad + plane * oh * ow, pick = choice + plane * oh * ow
        for oy in 0..<oh {
            let top = dst + 2 * oy * width, bottom = top + width
            let grads = grad + oy * ow, picks = pick + oy * ow
            if ow >= 8 {
                var ox = 0
                while true {
                    let start = min(ox, ow - 8)
                    unpool8Windows(top + 2 * start, bottom + 2 * start, grads + start, picks + start)
                    ox += 8
                    if ox >= ow { break }
                }
            } else {
                for ox in 0..<ow {
                    let g = grads[ox], k = picks[ox]
                    top[2 * ox] = k == 0 ? g : 0
                    top[2 * ox + 1] = k == 1 ? g : 0
                    bottom[2 * ox] = k == 2 ? g : 0
                    bottom[2 * ox + 1] = k == 3 ? g : 0
                }
            }
        }
    }
}

/// The backward of `pool8Windows`: each gradient doubled into the two columns of its
/// window, then kept in the column and row its choice names.
@inline(__always)
private func unpool8Windows(_ top: UnsafeMutablePointer<Float>, _ bottom: UnsafeMutablePointer<Float>,
                            _ grads: UnsafePointer<Float>, _ picks: UnsafePointer<UInt8>) {
    let g = UnsafeRawPointer(grads).loadUnaligned(as: SIMD8<Float>.self)
    let k = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(picks).loadUnaligned(as: SIMD8<UInt8>.self))
    let g2 = SIMD16(g[0], g[0], g[1], g[1], g[2], g[2], g[3], g[3], g[4], g[4], g[5], g[5], g[6], g[6], g[7], g[7])
    let k2 = SIMD16(k[0], k[0], k[1], k[1], k[2], k[2], k[3], k[3], k[4], k[4], k[5], k[5], k[6], k[6], k[7], k[7])
    let column = SIMD16<Int32>(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1)
    let zero = SIMD16<Float>(repeating: 0)
    UnsafeMutableRawPointer(top).storeBytes(of: zero.replacing(with: g2, where: k2 .== column), as: SIMD16<Float>.self)
    UnsafeMutableRawPointer(bottom).storeBytes(of: zero.replacing(with: g2, where: k2 .== column &+ 2),
                                               as: SIMD16<Float>.self)
}

/// Plain backward for any window size, finding each window's first maximum again by
/// comparing the input with the pooled output; the reference for the 2x2 kernel.
public func maxPoolBackwardReference(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                     input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                                     planes: Int, height: Int, width: Int, size: Int) {
    let oh = height / size, ow = width / size
    inputGrad.update(repeating: 0, count: planes * height * width)
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = inputGrad + plane * height * width
        let pooled = output + plane * oh * ow, grad = outputGrad + plane * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                let best = pooled[oy * ow + ox], top = (oy * size) * width + ox * size
                search: for dy in 0..<size {
                    let row = top + dy * width
                    for dx in 0..<size where src[row + dx] == best {
                        dst[row + dx] = grad[oy * ow + ox]
                        break search
                    }
                }
            }
        }
    }
}
