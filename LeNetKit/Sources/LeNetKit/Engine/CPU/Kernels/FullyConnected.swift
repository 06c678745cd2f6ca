/// Fully-connected layer over a batch: weight [out, in] as PyTorch stores it.

/// output [batch, out] = input [batch, in] · weightᵀ + bias [out]
func linearForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          batch: Int, inFeatures: Int, outFeatures: Int) {
    for b in 0..<batch { (output + b * outFeatures).update(from: bias, count: outFeatures) }
    gemm(MutableMatrixView(output, rows: batch, columns: outFeatures),
         MatrixView(input, rows: batch, columns: inFeatures),
         MatrixView(weight, rows: outFeatures, columns: inFeatures).transposed,
         accumulate: true)
}

/// Writes weightGrad [out, in] = outputGradᵀ · input and biasGrad [out] = column sums;
/// when `inputGrad` is given, writes inputGrad [batch, in] = outputGrad · weight.
func linearBackward(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                           inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           batch: Int, inFeatures: Int, outFeatures: Int) {
    let dOut = MatrixView(outputGrad, rows: batch, columns: outFeatures)
    gemm(MutableMatrixView(weightGrad, rows: outFeatures, columns: inFeatures),
         dOut.transposed, MatrixView(input, rows: batch, columns: inFeatures), accumulate: false)
    biasGrad.update(repeating: 0, count: outFeatures)
    for b in 0..<batch {
        let row = outputGrad + b * outFeatures
        for o in 0..<outFeatures { biasGrad[o] += row[o] }
    }
    if let inputGrad {
        gemm(MutableMatrixView(inputGrad, rows: batch, columns: inFeatures),
             dOut, MatrixView(weight, rows: outFeatures, columns: inFeatures), accumulate: false)
    }
}

/// Rows `rows` of `linearBackward`'s weight and bias gradients: weightGrad [out, in] and
/// biasGrad [out] are the whole tensors, and only those rows are written. Each entry is
/// the same sum over the batch whichever rows are asked for together.
func linearWeightGradient(weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>,
                          rows: Range<Int>, outputGrad: UnsafePointer<Float>, input: UnsafePointer<Float>,
                          batch: Int, inFeatures: Int, outFeatures: Int) {
    guard !rows.isEmpty else { return }
    // dOut[:, rows]ᵀ: rows.count x batch, element (o, b) at outputGrad[b * out + rows.lowerBound + o].
    let dOutRowsT = MatrixView(outputGrad + rows.lowerBound, rows: batch, columns: rows.count, rowStride: outFeatures).transposed
    gemm(MutableMatrixView(weightGrad + rows.lowerBound * inFeatures, rows: rows.count, columns: inFeatures),
         dOutRowsT, MatrixView(input, rows: batch, columns: inFeatures), accumulate: false)
    for o in rows { biasGrad[o] = 0 }
    for b in 0..<batch {
        let row = outputGrad + b * outFeatures
        for o in rows { biasGrad[o] += row[o] }
    }
}

/// `linearBackward`'s input gradient alone: inputGrad [batch, in] = outputGrad · weight.
func linearInputGradient(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int) {
    gemm(MutableMatrixView(inputGrad, rows: batch, columns: inFeatures),
         MatrixView(outputGrad, rows: batch, columns: outFeatures),
         MatrixView(weight, rows: outFeatures, columns: inFeatures), accumulate: false)
}
