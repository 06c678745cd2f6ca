/// Max pooling with a square window equal to its stride (2x2, stride 2 in LeNet).
/// `planes` is batch x channels: every plane [H, W] pools to [H/size, W/size].
///
/// The 2x2 forward records which of the four won (0-3, row-major, the first on
/// ties as PyTorch), so that the backward is a branch-free scatter.

/// Plain forward for any window size; the reference for the SIMD 2x2 kernel.
func maxPoolForwardReference(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
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
/// SIMD, 8 windows a step (`poolWindows`): on rows of 16 inputs or more (conv1's 28) 8
/// neighbours in one row pair; on rows of 8 to 14 (conv2's 10) 4 neighbours in each of two
/// row pairs. A row's last block ends at its end and may overlap the one before, and an odd
/// last row pair is paired with itself: both only write the same values twice.
func maxPool2x2Forward(output: UnsafeMutablePointer<Float>, choice: UnsafeMutablePointer<UInt8>,
                              input: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                              rectify: Bool = false) {
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = output + plane * oh * ow, pick = choice + plane * oh * ow
        if ow >= 8 {
            for oy in 0..<oh {
                let row0 = src + 2 * oy * width, row1 = row0 + width
                forEachBlock(of: 8, windows: ow) { x in
                    let (best, picks) = poolWindows(upper: load(SIMD16<Float>.self, row0 + 2 * x),
                                                    lower: load(SIMD16<Float>.self, row1 + 2 * x), rectify: rectify)
                    store(best, dst + oy * ow + x)
                    store(picks, pick + oy * ow + x)
                }
            }
        } else if ow >= 4 {
            for oy in stride(from: 0, to: oh, by: 2) {
                let next = min(oy + 1, oh - 1)  // the second row pair of the step
                let rowA = src + 2 * oy * width, rowB = src + 2 * next * width
                forEachBlock(of: 4, windows: ow) { x in
                    let upper = SIMD16(lowHalf: load(SIMD8<Float>.self, rowA + 2 * x),
                                       highHalf: load(SIMD8<Float>.self, rowB + 2 * x))
                    let lower = SIMD16(lowHalf: load(SIMD8<Float>.self, rowA + width + 2 * x),
                                       highHalf: load(SIMD8<Float>.self, rowB + width + 2 * x))
                    let (best, picks) = poolWindows(upper: upper, lower: lower, rectify: rectify)
                    store(best.lowHalf, dst + oy * ow + x)
                    store(best.highHalf, dst + next * ow + x)
                    store(picks.lowHalf, pick + oy * ow + x)
                    store(picks.highHalf, pick + next * ow + x)
                }
            }
        } else {
            for oy in 0..<oh {
                let row0 = src + 2 * oy * width, row1 = row0 + width
                for ox in 0..<ow {
                    (dst[oy * ow + ox], pick[oy * ow + ox]) =
                        poolWindow(row0[2 * ox], row0[2 * ox + 1], row1[2 * ox], row1[2 * ox + 1], rectify: rectify)
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

/// `poolWindow` for 8 windows: lane i of the result is the window whose top inputs are
/// lanes 2i, 2i+1 of `upper` and bottom inputs the same lanes of `lower`.
@inline(__always)
private func poolWindows(upper: SIMD16<Float>, lower: SIMD16<Float>, rectify: Bool) -> (SIMD8<Float>, SIMD8<UInt8>) {
    let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
    // Selects rather than the standard library's pointwiseMax, which is not inlined here.
    let right = b .> a, bottomRight = d .> c
    let top = a.replacing(with: b, where: right), bottom = c.replacing(with: d, where: bottomRight)
    let fromBottom = bottom .> top
    var best = top.replacing(with: bottom, where: fromBottom)
    let zero = SIMD8<Int32>(repeating: 0)
    var pick = zero.replacing(with: 1, where: right)
        .replacing(with: zero.replacing(with: 1, where: bottomRight) &+ 2, where: fromBottom)
    if rectify {
        let cut = .!(best .> 0)
        pick.replace(with: 4, where: cut)
        best.replace(with: 0, where: cut)
    }
    return (best, SIMD8<UInt8>(truncatingIfNeeded: pick))
}

/// The value `poolWindows` gives one window with `rectify`, by the same selects (so the
/// same bits), for 16 windows side by side: lane i is max(a, b, c, d, 0) of lane i.
@inline(__always)
func rectifiedWindowMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) -> SIMD16<Float> {
    let top = a.replacing(with: b, where: b .> a), bottom = c.replacing(with: d, where: d .> c)
    let best = top.replacing(with: bottom, where: bottom .> top)
    return best.replacing(with: 0, where: .!(best .> 0))
}

/// The same for 8 windows. (Not one generic function: the standard library's generic SIMD
/// comparisons and selects compile to a loop over the lanes, its concrete ones to vector
/// instructions.)
@inline(__always)
func rectifiedWindowMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) -> SIMD8<Float> {
    let top = a.replacing(with: b, where: b .> a), bottom = c.replacing(with: d, where: d .> c)
    let best = top.replacing(with: bottom, where: bottom .> top)
    return best.replacing(with: 0, where: .!(best .> 0))
}

/// Backward of `maxPool2x2Forward`: each output gradient goes to the input its window
/// chose (none where a rectified window was cut), and every other input gradient is 0.
/// `inputGrad` [planes, H, W] is overwritten. Rows go through SIMD in the forward's blocks.
func maxPool2x2Backward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                               choice: UnsafePointer<UInt8>, planes: Int, height: Int, width: Int) {
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let dst = inputGrad + plane * height * width, grad = outputGrad + plane * oh * ow, pick = choice + plane * oh * ow
        if ow >= 8 {
            for oy in 0..<oh {
                let top = dst + 2 * oy * width
                forEachBlock(of: 8, windows: ow) { x in
                    let (upper, lower) = unpoolWindows(load(SIMD8<Float>.self, grad + oy * ow + x),
                                                       load(SIMD8<UInt8>.self, pick + oy * ow + x))
                    store(upper, top + 2 * x)
                    store(lower, top + width + 2 * x)
                }
            }
        } else if ow >= 4 {
            for oy in stride(from: 0, to: oh, by: 2) {
                let next = min(oy + 1, oh - 1)
                let topA = dst + 2 * oy * width, topB = dst + 2 * next * width
                forEachBlock(of: 4, windows: ow) { x in
                    let g = SIMD8(lowHalf: load(SIMD4<Float>.self, grad + oy * ow + x),
                                  highHalf: load(SIMD4<Float>.self, grad + next * ow + x))
                    let k = SIMD8(lowHalf: load(SIMD4<UInt8>.self, pick + oy * ow + x),
                                  highHalf: load(SIMD4<UInt8>.self, pick + next * ow + x))
                    let (upper, lower) = unpoolWindows(g, k)
                    store(upper.lowHalf, topA + 2 * x)
                    store(lower.lowHalf, topA + width + 2 * x)
                    store(upper.highHalf, topB + 2 * x)
                    store(lower.highHalf, topB + width + 2 * x)
                }
            }
        } else {
            for oy in 0..<oh {
                let top = dst + 2 * oy * width, bottom = top + width
                for ox in 0..<ow {
                    let g = grad[oy * ow + ox], k = pick[oy * ow + ox]
                    top[2 * ox] = k == 0 ? g : 0
                    top[2 * ox + 1] = k == 1 ? g : 0
                    bottom[2 * ox] = k == 2 ? g : 0
                    bottom[2 * ox + 1] = k == 3 ? g : 0
                }
            }
        }
    }
}

/// The backward of `poolWindows`: each gradient doubled under the two columns of its
/// window, then kept in the column and row its choice names.
@inline(__always)
private func unpoolWindows(_ g: SIMD8<Float>, _ picks: SIMD8<UInt8>) -> (upper: SIMD16<Float>, lower: SIMD16<Float>) {
    let k = SIMD8<Int32>(truncatingIfNeeded: picks)
    let g2 = SIMD16(g[0], g[0], g[1], g[1], g[2], g[2], g[3], g[3], g[4], g[4], g[5], g[5], g[6], g[6], g[7], g[7])
    let k2 = SIMD16(k[0], k[0], k[1], k[1], k[2], k[2], k[3], k[3], k[4], k[4], k[5], k[5], k[6], k[6], k[7], k[7])
    let column = SIMD16<Int32>(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1)
    let zero = SIMD16<Float>(repeating: 0)
    return (zero.replacing(with: g2, where: k2 .== column), zero.replacing(with: g2, where: k2 .== column &+ 2))
}

/// Calls `body` with the first window of each block of `block` windows covering
/// 0..<windows (windows >= block); the last block ends at the last window.
@inline(__always)
private func forEachBlock(of block: Int, windows: Int, _ body: (Int) -> Void) {
    var start = 0
    while start < windows {
        body(min(start, windows - block))
        start += block
    }
}

@inline(__always)
func load<V: SIMD>(_: V.Type, _ pointer: UnsafePointer<V.Scalar>) -> V {
    UnsafeRawPointer(pointer).loadUnaligned(as: V.self)
}

@inline(__always)
func store<V: SIMD>(_ value: V, _ pointer: UnsafeMutablePointer<V.Scalar>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: V.self)
}

/// Plain backward for any window size, finding each window's first maximum again by
/// comparing the input with the pooled output; the reference for the 2x2 kernel.
func maxPoolBackwardReference(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
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
