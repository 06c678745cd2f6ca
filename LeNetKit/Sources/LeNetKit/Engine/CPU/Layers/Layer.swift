/// A layer of the CPU network: views into the parameter store plus the
/// scratch it needs for the largest batch, allocated once when built.
///
/// The network runs a step slice by slice: each slice of the batch (`sliceRange`) goes
/// through every layer on one thread, forward and backward, so a step meets only where a
/// layer needs the whole batch. Such a layer (BatchNorm in training) splits its call into
/// phases: the network runs phase p for every slice, waits at a barrier, then phase p + 1,
/// and a phase reads what other slices wrote in earlier phases.
///
/// Buffers are per batch: `input` [batch, inputShape...], `output` [batch, outputShape...];
/// a call touches only the rows of its slice's `images`, which may be empty.
protocol Layer: AnyObject {
    /// Phases of `forward` (1: no barrier).
    func forwardPhases(training: Bool) -> Int
    func forward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                 output: UnsafeMutablePointer<Float>, batch: Int, training: Bool, key: StepKey)
    /// Phases of `backward` (1: no barrier).
    var backwardPhases: Int { get }
    /// Writes this slice's part of its parameters' gradients (a partial, at the parameters'
    /// offsets in `partials`, this slice's copy of the gradient block), overwriting, and,
    /// when `inputGrad` is given, the input gradient of the slice's images. A layer whose
    /// gradients come from the whole batch instead (`deferredGradients`) writes no partial.
    func backward(slice: Int, images: Range<Int>, phase: Int, input: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, partials: UnsafeMutablePointer<Float>, batch: Int)
}

extension Layer {
    func forwardPhases(training: Bool) -> Int { 1 }
    var backwardPhases: Int { 1 }
}

/// Work in a batch is split into this many fixed slices of images, whatever the
/// thread count, so partial sums (and so results) never depend on the threads.
let batchSlices = 8

/// The images of slice `slice` when `batch` images are split into `batchSlices`.
@inline(__always)
func sliceRange(_ slice: Int, batch: Int) -> Range<Int> {
    let per = (batch + batchSlices - 1) / batchSlices
    return min(slice * per, batch)..<min((slice + 1) * per, batch)
}
