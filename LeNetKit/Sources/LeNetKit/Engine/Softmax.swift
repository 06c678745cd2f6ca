import Foundation

/// The softmax of one row of logits, computed in one place for the loss, evaluation and
/// prediction: the largest logit and its index (the first on ties), and the sum of
/// exp(logit − largest) in Double, from which each probability follows.
struct SoftmaxRow {
    let argmax: Int
    let maxLogit: Float
    /// Σ_c exp(row[c] − maxLogit), at least 1.
    let expSum: Double

    @inline(__always)
    init(_ row: UnsafePointer<Float>, classes: Int) {
        var best = 0
        for c in 1..<classes where row[c] > row[best] { best = c }
        var sum = 0.0
        for c in 0..<classes { sum += exp(Double(row[c] - row[best])) }
        argmax = best
        maxLogit = row[best]
        expSum = sum
    }

    /// The softmax probability of class `c` of the same row.
    @inline(__always)
    func probability(_ row: UnsafePointer<Float>, _ c: Int) -> Double { exp(Double(row[c] - maxLogit)) / expSum }

    /// −log p(label): the cross-entropy of the row against `label`.
    @inline(__always)
    func crossEntropy(_ row: UnsafePointer<Float>, label: Int) -> Double { log(expSum) - Double(row[label] - maxLogit) }

    /// The probability of the most likely class.
    var topProbability: Float { Float(1 / expSum) }
}
