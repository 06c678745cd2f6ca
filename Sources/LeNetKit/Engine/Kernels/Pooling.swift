/// Max pooling with a square window equal to its stride (2x2, stride 2 in LeNet).
/// `planes` is batch x channels: every plane [H, W] pools to [H/size, W/size].

/// Forward: `output` [planes, H/s, W/s]; `argmax` records, per output, the index
/// into its input plane of the maximum (the first one on ties, as PyTorch).
public func maxPoolForward(output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
                           input: UnsafePointer<Float>, planes: Int, height: Int, width: Int, size: Int) {
    let oh = height / size, ow = width / size
    for plane in 0..<planes {
        let src = input + plane * height * width
        let dst = output + plane * oh * ow
        let idx = argmax + plane * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.infinity
                var bestIndex = 0
                for dy in 0..<size {
                    let row = (oy * size + dy) * width + ox * size
                    for dx in 0..<size where src[row + dx] > best || (src[row + dx].isNaN && !best.isNaN) {
                        best = src[row + dx]
                        bestIndex = row + dx
                    }
                }
                dst[oy * ow + ox] = best
                idx[oy * ow + ox] = Int32(bestIndex)
            }
        }
    }
}

/// Backward: routes each output gradient to the input that was the maximum;
/// every other input gradient is zero. `inputGrad` [planes, H, W] is overwritten.
public func maxPoolBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                            argmax: UnsafePointer<Int32>, planes: Int, height: Int, width: Int, size: Int) {
    let outPerPlane = (height / size) * (width / size)
    inputGrad.update(repeating: 0, count: planes * height * width)
    for plane in 0..<planes {
        let dst = inputGrad + plane * height * width
        for o in 0..<outPerPlane {
            dst[Int(argmax[plane * outPerPlane + o])] += outputGrad[plane * outPerPlane + o]
        }
    }
}
