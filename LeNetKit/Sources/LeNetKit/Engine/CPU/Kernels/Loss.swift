/// Softmax cross-entropy, mean over the batch, as `nn.CrossEntropyLoss()`.
/// Writes logitsGrad [batch, classes] = (softmax - onehot) / batch and returns the
/// mean loss and how many argmax predictions equal the label.
func softmaxCrossEntropy(logitsGrad: UnsafeMutablePointer<Float>?, logits: UnsafePointer<Float>,
                         labels: UnsafePointer<Int32>, batch: Int, classes: Int) -> (loss: Float, correct: Int) {
    let result = softmaxCrossEntropySum(logitsGrad: logitsGrad, logits: logits, labels: labels,
                                        images: 0..<batch, batch: batch, classes: classes)
    return (Float(result.lossSum / Double(batch)), result.correct)
}

/// The same over the images `images` of a batch of `batch` (a slice): their summed loss,
/// their correct count, and their rows of logitsGrad (scaled by 1/batch, the whole batch's mean).
func softmaxCrossEntropySum(logitsGrad: UnsafeMutablePointer<Float>?, logits: UnsafePointer<Float>,
                            labels: UnsafePointer<Int32>, images: Range<Int>, batch: Int,
                            classes: Int) -> (lossSum: Double, correct: Int) {
    var totalLoss = 0.0
    var correct = 0
    let scale = 1 / Float(batch)
    for b in images {
        let row = logits + b * classes
        let softmax = SoftmaxRow(row, classes: classes)
        let label = Int(labels[b])
        if softmax.argmax == label { correct += 1 }
        totalLoss += softmax.crossEntropy(row, label: label)
        if let logitsGrad {
            let grad = logitsGrad + b * classes
            for c in 0..<classes {
                grad[c] = (Float(softmax.probability(row, c)) - (c == label ? 1 : 0)) * scale
            }
        }
    }
    return (totalLoss, correct)
}
