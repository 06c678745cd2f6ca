import Foundation

/// A model's predictions over a whole split, and what follows from them: accuracy,
/// the tutorial's loss (mean of per-batch mean losses), a confusion matrix,
/// per-class precision and recall, and the most confident mistakes.
public struct Evaluation: Sendable {
    public let classes: Int
    /// Predicted class per image, in split order.
    public let predictions: [UInt8]
    /// Softmax probability of the predicted class per image.
    public let confidences: [Float]
    public let labels: [UInt8]
    public let loss: Double

    /// Evaluates `network` on `split` in batches of `batchSize` (the tutorial's 32 keeps its
    /// loss figure). The split becomes the network's test split.
    public init(network: any Network, split: DataSplit, batchSize: Int) {
        let classes = network.definition.classes
        let sampler = BatchSampler(count: split.count, batchSize: min(batchSize, network.maxBatch), shuffle: false)
        var predictions = [UInt8](repeating: 0, count: split.count)
        var confidences = [Float](repeating: 0, count: split.count)
        var logits = [Float](repeating: 0, count: sampler.batchSize * classes)  // [batch, classes]
        network.attach(split, as: .test)
        logits.withUnsafeMutableBufferPointer { logits in
            guard let logits = logits.baseAddress else { return }
            for range in sampler.batches {
                network.evaluate(range, of: .test, logits: logits)
                for (row, index) in range.enumerated() {
                    let (best, probability) = softmaxArgmax(logits + row * classes, classes: classes)
                    predictions[index] = UInt8(best)
                    confidences[index] = probability
                }
            }
        }
        self.classes = classes
        self.predictions = predictions
        self.confidences = confidences
        labels = split.labels
        loss = network.totals(of: .test).meanLoss
    }

    public var correct: Int { zip(predictions, labels).filter { $0 == $1 }.count }
    public var accuracy: Double { labels.isEmpty ? 0 : Double(correct) / Double(labels.count) }

    /// confusion[truth][predicted] = count.
    public var confusionMatrix: [[Int]] {
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (p, t) in zip(predictions, labels) { matrix[Int(t)][Int(p)] += 1 }
        return matrix
    }

    /// Of the images predicted as each class, the fraction that are (nil when none predicted).
    public var precision: [Double?] {
        let m = confusionMatrix
        return (0..<classes).map { c in
            let predicted = (0..<classes).reduce(0) { $0 + m[$1][c] }
            return predicted == 0 ? nil : Double(m[c][c]) / Double(predicted)
        }
    }

    /// Of the images of each class, the fraction predicted as it (nil when the class is absent).
    public var recall: [Double?] {
        let m = confusionMatrix
        return (0..<classes).map { c in
            let actual = m[c].reduce(0, +)
            return actual == 0 ? nil : Double(m[c][c]) / Double(actual)
        }
    }

    /// Indices of wrongly predicted images, most confident first.
    public func mostConfidentMistakes(_ limit: Int) -> [Int] {
        labels.indices.filter { predictions[$0] != labels[$0] }
            .sorted { confidences[$0] != confidences[$1] ? confidences[$0] > confidences[$1] : $0 < $1 }
            .prefix(limit).map { $0 }
    }
}

/// The most likely class (first on ties) and its softmax probability.
func softmaxArgmax(_ logits: UnsafePointer<Float>, classes: Int) -> (index: Int, probability: Float) {
    let softmax = SoftmaxRow(logits, classes: classes)
    return (softmax.argmax, softmax.topProbability)
}
