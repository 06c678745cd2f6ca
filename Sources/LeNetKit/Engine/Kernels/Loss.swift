import Foundation

/// Softmax cross-entropy, mean over the batch, as `nn.CrossEntropyLoss()`.
/// Writes logitsGrad [batch, classes] = (softmax - onehot) / batch and returns the
/// mean loss and how many argmax predictions equal the label.
public func softmaxCrossEntropy(logitsGrad: UnsafeMutablePointer<Float>?, logits: UnsafePointer<Float>,
                                labels: UnsafePointer<Int32>, batch: Int, classes: Int) -> (loss: Float, correct: Int) {
    var totalLoss = 0.0
    var correct = 0
    let scale = 1 / Float(batch)
    for b in 0..<batch {
        let row = logits + b * classes
        var maxValue = row[0]
        var argmax = 0
        for c in 1..<classes where row[c] > maxValue { maxValue = row[c]; argmax = c }
        var denominator = 0.0
        for c in 0..<classes { denominator += exp(Double(row[c] - maxValue)) }
        let label = Int(labels[b])
        if argmax == label { correct += 1 }
        totalLoss += log(denominator) - Double(row[label] - maxValue)
        if let logitsGrad {
            let grad = logitsGrad + b * classes
            for c in 0..<classes {
                let p = Float(exp(Double(row[c] - maxValue)) / denominator)
                grad[c] = (p - (c == label ? 1 : 0)) * scale
            }
        }
    }
    return (Float(totalLoss / Double(batch)), correct)
}
