/// A layer of the CPU network: views into the parameter store plus the
/// scratch it needs for the largest batch, allocated once when built.
///
/// Buffers are per batch: `input` [batch, inputShape...], `output` [batch, outputShape...].
protocol Layer: AnyObject {
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                 training: Bool, key: StepKey)
    /// Writes the gradients of this layer's parameters (overwriting) and, when
    /// `inputGrad` is given, the gradient of its input.
    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, batch: Int)
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
