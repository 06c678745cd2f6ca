/// ReLU, MaxPool2d, Flatten and Dropout: layers with no parameters.

final class ReLULayer: Layer {
    let features: Int  // per sample
    init(features: Int) { self.features = features }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        let first = images.lowerBound * features
        reluForward(output: output + first, input: input + first, count: images.count * features)
    }

    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        guard let inputGrad else { return }
        let first = images.lowerBound * features
        reluBackward(inputGrad: inputGrad + first, outputGrad: outputGrad + first, output: output + first,
                     count: images.count * features)
    }
}

final class MaxPool2dLayer: Layer {
    let channels, height, width, size: Int
    /// Whether this layer also applies the ReLU before it (the network fuses the two).
    let rectifies: Bool
    /// 2x2 windows on even planes (LeNet's) take the fast kernels; others the plain ones.
    let usesFastKernels: Bool
    let choice: UnsafeMutableBufferPointer<UInt8>  // [maxBatch, C, H/2, W/2]: which input won each window
    /// Floats per image in and out.
    var inputSize: Int { channels * height * width }
    var outputSize: Int { channels * (height / size) * (width / size) }

    /// A fast (2x2, even-sized) pooling layer can take over the ReLU before it.
    static func canRectify(inputShape: [Int], size: Int) -> Bool {
        size == 2 && inputShape[1] % 2 == 0 && inputShape[2] % 2 == 0
    }

    /// The bytes `choice` takes: one a window for the fast kernel, none for the reference.
    static func choiceBytes(inputShape: [Int], size: Int, maxBatch: Int) -> Int {
        canRectify(inputShape: inputShape, size: size) ? maxBatch * inputShape[0] * (inputShape[1] / 2) * (inputShape[2] / 2) : 0
    }

    init(inputShape: [Int], size: Int, maxBatch: Int, rectifies: Bool = false) {
        (channels, height, width) = (inputShape[0], inputShape[1], inputShape[2])
        self.size = size
        usesFastKernels = Self.canRectify(inputShape: inputShape, size: size)
        precondition(!rectifies || usesFastKernels, "only the 2x2 kernel takes over a ReLU")
        self.rectifies = rectifies
        choice = .allocate(capacity: Self.choiceBytes(inputShape: inputShape, size: size, maxBatch: maxBatch))
        choice.initialize(repeating: 0)
    }

    deinit { choice.deallocate() }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        let planes = images.count * channels, inOffset = images.lowerBound * inputSize
        let outOffset = images.lowerBound * outputSize
        if usesFastKernels {
            maxPool2x2Forward(output: output + outOffset, choice: choice.baseAddress! + outOffset, input: input + inOffset,
                              planes: planes, height: height, width: width, rectify: rectifies)
        } else {
            maxPoolForwardReference(output: output + outOffset, input: input + inOffset, planes: planes,
                                    height: height, width: width, size: size)
        }
    }

    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        guard let inputGrad else { return }
        let planes = images.count * channels, inOffset = images.lowerBound * inputSize
        let outOffset = images.lowerBound * outputSize
        if usesFastKernels {
            maxPool2x2Backward(inputGrad: inputGrad + inOffset, outputGrad: outputGrad + outOffset,
                               choice: choice.baseAddress! + outOffset, planes: planes, height: height, width: width)
        } else {
            maxPoolBackwardReference(inputGrad: inputGrad + inOffset, outputGrad: outputGrad + outOffset,
                                     input: input + inOffset, output: output + outOffset,
                                     planes: planes, height: height, width: width, size: size)
        }
    }
}

/// A layer that moves nothing: the network gives its output the same buffer as its
/// input. NCHW flattens to [N, C*H*W] this way, and a ReLU that the following max
/// pool took over becomes one.
final class PassThroughLayer: Layer {
    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {}
    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {}
}

/// Inverted dropout: in training each feature is zeroed with probability p and the
/// rest scaled by 1/(1-p); in evaluation it passes values through unchanged.
final class DropoutLayer: Layer {
    let p: Float
    let features: Int
    /// Which dropout layer of the network this is: part of its masks' Philox counter.
    let ordinal: Int
    let mask: FloatBuffer  // [maxBatch, features]: 0 or 1/(1-p), drawn each training step
    /// A keep-mask (0/1 per feature) to use on the next training step instead of a
    /// random draw, to compare with a reference implementation (the network clears it
    /// after that step's forward).
    var presetKeepMask: [Float]?

    init(p: Float, features: Int, maxBatch: Int, ordinal: Int) {
        self.p = p
        self.features = features
        self.ordinal = ordinal
        mask = FloatBuffer(count: maxBatch * features)
    }

    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey) {
        let first = images.lowerBound * features, count = images.count * features
        guard training else { (output + first).update(from: input + first, count: count); return }
        if let keep = presetKeepMask {
            for i in first..<(first + count) { mask.pointer[i] = keep[i] / (1 - p) }
        } else {
            dropoutMask(mask.pointer, elements: first..<(first + count), p: p, key: key, layer: ordinal)
        }
        multiply(output + first, input + first, mask.pointer + first, count: count)
    }

    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int) {
        guard let inputGrad else { return }
        let first = images.lowerBound * features
        multiply(inputGrad + first, outputGrad + first, mask.pointer + first, count: images.count * features)
    }
}
