/// Max pooling with a square window equal to its stride (2x2, stride 2 in LeNet).
/// `planes` is batch x channels: every plane [H, W] pools to [H/size, W/size].
///
/// The backward pass finds each window's maximum again by comparing the input
/// with the pooled output, so the forward stores no indices.

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

/// Forward: `output` [planes, H/s, W/s]. 2x2 windows on planes at least 8 wide use SIMD.
public func maxPoolForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                           planes: Int, height: Int, width: Int, size: Int) {
    guard size == 2, width >= 8, width % 2 == 0 else {
        maxPoolForwardReference(output: output, input: input, planes: planes, height: height, width: width, size: size)
        return
    }
    let oh = height / 2, ow = width / 2
    // Chunks of 16 input columns (8 outputs), or 8 (4 outputs) for narrow planes; the
    // last chunk is moved back to end at the row's end and may redo a few outputs.
    let chunk = width >= 16 ? 16 : 8
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = output + plane * oh * ow
        for oy in 0..<oh {
            let row0 = src + 2 * oy * width, row1 = row0 + width, out = dst + oy * ow
            var x = 0
            while x < width {
                let start = min(x, width - chunk)
                if chunk == 16 {
                    let m = pointwiseMax(load16(row0 + start), load16(row1 + start))
                    UnsafeMutableRawPointer(out + start / 2).storeBytes(of: pointwiseMax(m.evenHalf, m.oddHalf), as: SIMD8<Float>.self)
                } else {
                    let m = pointwiseMax(load8(row0 + start), load8(row1 + start))
                    UnsafeMutableRawPointer(out + start / 2).storeBytes(of: pointwiseMax(m.evenHalf, m.oddHalf), as: SIMD4<Float>.self)
                }
                x = start + chunk
            }
        }
    }
}

/// Backward: each output gradient goes to the first input of its window that equals
/// the window's maximum (PyTorch's choice on ties); every other input gradient is 0.
/// `inputGrad` [planes, H, W] is overwritten.
public func maxPoolBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                            input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                            planes: Int, height: Int, width: Int, size: Int) {
    let oh = height / size, ow = width / size
    inputGrad.update(repeating: 0, count: planes * height * width)
    for plane in 0..<planes {
        let src = input + plane * height * width, dst = inputGrad + plane * height * width
        let pooled = output + plane * oh * ow, grad = outputGrad + plane * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                let best = pooled[oy * ow + ox]
                search: for dy in 0..<size {
                    let row = (oy * size + dy) * width + ox * size
                    for dx in 0..<size where src[row + dx] == best {
                        dst[row + dx] = grad[oy * ow + ox]
                        break search
                    }
                }
            }
        }
    }
}

@inline(__always) private func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
