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
public func maxPool2x2Forward(output: UnsafeMutablePointer<Float>, choice: UnsafeMutablePointer<UInt8>,
                              input: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                              rectify: Bool = false) {
    let floor: Float = rectify ? 0 : -.infinity
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = output + plane * oh * ow, pick = choice + plane * oh * ow
        for oy in 0..<oh {
            let row0 = src + 2 * oy * width, row1 = row0 + width
            for ox in 0..<ow {
                let a = row0[2 * ox], b = row0[2 * ox + 1], c = row1[2 * ox], d = row1[2 * ox + 1]
                // A later element wins only when strictly larger: the first maximum on ties.
                // Written as max and flag arithmetic so that it compiles without branches.
                let top = max(a, b), bottom = max(c, d)
                let right = UInt8(unsafeBitCast(b > a, to: UInt8.self))
                let bottomRight = UInt8(unsafeBitCast(d > c, to: UInt8.self))
                let fromBottom = UInt8(unsafeBitCast(bottom > top, to: UInt8.self))
                let best = max(top, bottom)
                dst[oy * ow + ox] = max(best, floor)
                // 4: the ReLU cut this window (its maximum is not positive), so no input gets a gradient.
                let cut = UInt8(unsafeBitCast(rectify && !(best > 0), to: UInt8.self))
                pick[oy * ow + ox] = cut &* 4 &+ (1 &- cut) &* (fromBottom &* (2 &+ bottomRight) &+ (1 &- fromBottom) &* right)
            }
        }
    }
}

/// Backward of `maxPool2x2Forward`: each output gradient goes to the input its window
/// chose (none where a rectified window was cut), and every other input gradient is 0.
/// `inputGrad` [planes, H, W] is overwritten.
public func maxPool2x2Backward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                               choice: UnsafePointer<UInt8>, planes: Int, height: Int, width: Int) {
    let oh = height / 2, ow = width / 2
    for plane in 0..<planes {
        let dst = inputGrad + plane * height * width, grad = outputGrad + plane * oh * ow, pick = choice + plane * oh * ow
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
