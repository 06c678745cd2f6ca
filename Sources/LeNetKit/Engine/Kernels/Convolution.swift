/// Convolution as im2col + GEMM, one image at a time, NCHW.
///
/// Sizes are labelled: `channels` (C), `height`/`width` (H, W) of the input,
/// `kernel` (K, square), `stride`, `padding`; the output is OH x OW.

public struct ConvGeometry: Equatable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Rows of the im2col matrix: one per weight of an output channel (C*K*K).
    public var patchSize: Int { inChannels * kernel * kernel }
    /// Columns of the im2col matrix: one per output pixel (OH*OW).
    public var outPixels: Int { outHeight * outWidth }
    public var inputSize: Int { inChannels * height * width }
    public var outputSize: Int { outChannels * outPixels }
}

/// Unfolds one image into columns: `columns` [C*K*K, OH*OW], row (c, ki, kj) in
/// the order of PyTorch's weight layout [OC, C, K, K]; padding reads as zero.
/// Rows are `rowStride` apart (default OH*OW), so several images can sit side by side.
public func im2col(_ columns: UnsafeMutablePointer<Float>, rowStride: Int? = nil,
                   _ image: UnsafePointer<Float>, _ g: ConvGeometry) {
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel, stride = rowStride ?? g.outPixels
    var row = columns
    for c in 0..<g.inChannels {
        let plane = image + c * g.height * g.width
        for ki in 0..<k {
            for kj in 0..<k {
                // Output columns lo..<hi read inside the image (stride 1); the rest is padding.
                let shift = kj - g.padding
                let lo = min(ow, max(0, -shift)), hi = max(lo, min(ow, g.width - shift))
                var out = row
                for oy in 0..<oh {
                    let y = oy * g.stride + ki - g.padding
                    if y < 0 || y >= g.height {
                        out.update(repeating: 0, count: ow)
                    } else {
                        let line = plane + y * g.width
                        if g.stride == 1 {
                            for x in 0..<lo { out[x] = 0 }
                            copyFloats(out + lo, line + lo + shift, count: hi - lo)
                            for x in hi..<ow { out[x] = 0 }
                        } else {
                            for ox in 0..<ow {
                                let x = ox * g.stride + kj - g.padding
                                out[ox] = (x >= 0 && x < g.width) ? line[x] : 0
                            }
                        }
                    }
                    out += ow
                }
                row += stride
            }
        }
    }
}

/// The adjoint of im2col: adds each column entry back onto the pixel it came from.
/// `image` [C, H, W] is accumulated into, not overwritten.
public func col2imAdd(_ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>, _ g: ConvGeometry) {
    // Rows are dense here: the caller unfolds one image's gradient at a time.
    let oh = g.outHeight, ow = g.outWidth, k = g.kernel
    var row = columns
    for c in 0..<g.inChannels {
        let plane = image + c * g.height * g.width
        for ki in 0..<k {
            for kj in 0..<k {
                let shift = kj - g.padding
                let lo = min(ow, max(0, -shift)), hi = max(lo, min(ow, g.width - shift))
                var src = row
                for oy in 0..<oh {
                    let y = oy * g.stride + ki - g.padding
                    if y >= 0 && y < g.height {
                        let line = plane + y * g.width
                        if g.stride == 1 {
                            // Only the entries that came from inside the image.
                            addFloats(line + lo + shift, src + lo, count: hi - lo)
                        } else {
                            for ox in 0..<ow {
                                let x = ox * g.stride + kj - g.padding
                                if x >= 0 && x < g.width { line[x] += src[ox] }
                            }
                        }
                    }
                    src += ow
                }
                row += oh * ow
            }
        }
    }
}

/// Forward of `images` images side by side: for each, `output` [OC, OH*OW] =
/// weight [OC, C*K*K] · its columns + bias [OC]. `columns` [C*K*K, images*OH*OW]
/// is filled from `input` [images, C, H, W] and kept for the backward pass.
public func conv2dForward(output: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>,
                          input: UnsafePointer<Float>, images: Int, weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, _ g: ConvGeometry) {
    let pixels = g.outPixels, rowStride = images * pixels
    for image in 0..<images {
        im2col(columns + image * pixels, rowStride: rowStride, input + image * g.inputSize, g)
        let out = output + image * g.outputSize
        for oc in 0..<g.outChannels { (out + oc * pixels).update(repeating: bias[oc], count: pixels) }
        gemm(MutableMatrixView(out, rows: g.outChannels, columns: pixels),
             MatrixView(weight, rows: g.outChannels, columns: g.patchSize),
             MatrixView(columns + image * pixels, rows: g.patchSize, columns: pixels, rowStride: rowStride),
             accumulate: true)
    }
}

/// Backward of the forward above, for the same `images`. Writes their summed weight
/// gradient [OC, C*K*K] and bias gradient [OC]; when `inputGrad` is given, writes the
/// input gradient [images, C, H, W] there. Scratch: `outputGradRows` [OC, images*OH*OW]
/// and `columnGrad` [C*K*K, OH*OW].
public func conv2dBackward(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                           inputGrad: UnsafeMutablePointer<Float>?, outputGradRows: UnsafeMutablePointer<Float>,
                           columnGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           columns: UnsafePointer<Float>, images: Int, weight: UnsafePointer<Float>, _ g: ConvGeometry) {
    let pixels = g.outPixels, rowStride = images * pixels
    // Lay each channel's gradients of all images in one row, so that the weight
    // gradient is one long dot product per entry rather than one per image.
    for image in 0..<images {
        for oc in 0..<g.outChannels {
            copyFloats(outputGradRows + oc * rowStride + image * pixels, outputGrad + image * g.outputSize + oc * pixels,
                       count: pixels)
        }
    }
    let dOutRows = MatrixView(outputGradRows, rows: g.outChannels, columns: rowStride)
    // dW = dOut · columnsᵀ over every pixel of every image.
    gemm(MutableMatrixView(weightGrad, rows: g.outChannels, columns: g.patchSize),
         dOutRows, MatrixView(columns, rows: g.patchSize, columns: rowStride).transposed, accumulate: false)
    for oc in 0..<g.outChannels { biasGrad[oc] = sum(outputGradRows + oc * rowStride, count: rowStride) }
    guard let inputGrad else { return }
    // dColumns = Wᵀ · dOut, folded back onto each image.
    let weightT = MatrixView(weight, rows: g.outChannels, columns: g.patchSize).transposed
    for image in 0..<images {
        gemm(MutableMatrixView(columnGrad, rows: g.patchSize, columns: pixels), weightT,
             MatrixView(outputGrad + image * g.outputSize, rows: g.outChannels, columns: pixels), accumulate: false)
        let imageGrad = inputGrad + image * g.inputSize
        imageGrad.update(repeating: 0, count: g.inputSize)
        col2imAdd(imageGrad, columnGrad, g)
    }
}

/// Direct convolution of one image by definition, for tests.
public func conv2dForwardReference(output: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ g: ConvGeometry) {
    let k = g.kernel
    for oc in 0..<g.outChannels {
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                var acc = Double(bias[oc])
                for c in 0..<g.inChannels {
                    for ki in 0..<k {
                        for kj in 0..<k {
                            let y = oy * g.stride + ki - g.padding, x = ox * g.stride + kj - g.padding
                            guard y >= 0, y < g.height, x >= 0, x < g.width else { continue }
                            acc += Double(image[(c * g.height + y) * g.width + x])
                                * Double(weight[((oc * g.inChannels + c) * k + ki) * k + kj])
                        }
                    }
                }
                output[(oc * g.outHeight + oy) * g.outWidth + ox] = Float(acc)
            }
        }
    }
}

/// Sum of `count` floats, vectorised, in a fixed order.
@inline(__always)
public func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        i += 16
    }
    var total = horizontalSum(acc)
    while i < count { total += x[i]; i += 1 }
    return total
}

/// dst[0..<count] = src[0..<count] for the short rows of convolution (a call to memmove
/// costs more than the copy): whole vectors, then one overlapping vector for the rest.
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    @inline(__always) func move<V: SIMD>(_: V.Type, _ offset: Int) where V.Scalar == Float {
        UnsafeMutableRawPointer(dst + offset).storeBytes(of: UnsafeRawPointer(src + offset).loadUnaligned(as: V.self), as: V.self)
    }
    if count >= 16 {
        var i = 0
        while i + 16 <= count { move(SIMD16<Float>.self, i); i += 16 }
        if i < count { move(SIMD16<Float>.self, count - 16) }
    } else if count >= 8 {
        move(SIMD8<Float>.self, 0)
        move(SIMD8<Float>.self, count - 8)
    } else if count >= 4 {
        move(SIMD4<Float>.self, 0)
        move(SIMD4<Float>.self, count - 4)
    } else {
        for i in 0..<count { dst[i] = src[i] }
    }
}

/// dst[0..<count] += src[0..<count]: vectors of 16, then 8 and 4, then single floats.
@inline(__always)
func addFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    @inline(__always) func add<V: SIMD>(_: V.Type, _ offset: Int) where V.Scalar == Float {
        let sum = UnsafeRawPointer(dst + offset).loadUnaligned(as: V.self) + UnsafeRawPointer(src + offset).loadUnaligned(as: V.self)
        UnsafeMutableRawPointer(dst + offset).storeBytes(of: sum, as: V.self)
    }
    var i = 0
    while i + 16 <= count { add(SIMD16<Float>.self, i); i += 16 }
    if i + 8 <= count { add(SIMD8<Float>.self, i); i += 8 }
    if i + 4 <= count { add(SIMD4<Float>.self, i); i += 4 }
    while i < count { dst[i] += src[i]; i += 1 }
}
