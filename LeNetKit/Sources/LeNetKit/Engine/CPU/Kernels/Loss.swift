/// Softmax cross-entropy, mean over the batch, as `nn.CrossEntropyLoss()`.
/// Writes logitsGrad [batch, classes] = (softmax - onehot) / batch and returns the
/// mean loss and how many argmax predictions equal the label.
func softmaxCrossEntropy(logitsGrad: UnsafeMutablePointer<Float>?, logits: UnsafePointer<Float>,
                         labels: UnsafePointer<Int32>, batch: Int, classes: Int) -> (loss: Float, correct: Int) {
    var totalLoss = 0.0
    var correct = 0
    let scale = 1 / Float(batch)
    for b in 0..<batch {
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
    return (Float(totalLoss / Double(batch)), correct)
}
