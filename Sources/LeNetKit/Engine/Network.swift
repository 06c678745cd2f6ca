/// The device boundary. Training, evaluation and the commands speak only to
/// `Network`; the CPU backend (`CPUNetwork`) implements it today, and a GPU
/// backend would implement the same calls over its own memory, keeping
/// `store` as the host copy that checkpoints read and write.
public protocol Network: AnyObject {
    var definition: ModelDefinition { get }
    /// Host copy of parameters, gradients and running statistics.
    var store: ParameterStore { get }
    /// The largest batch the network's buffers hold.
    var maxBatch: Int { get }
    /// Staging for the next batch's images [maxBatch, 1, 28, 28] in [0, 1].
    var inputs: UnsafeMutablePointer<Float> { get }
    /// Staging for the next batch's labels [maxBatch].
    var labels: UnsafeMutablePointer<Int32> { get }

    /// Forward in training mode, loss, backward and one optimizer step on the
    /// first `batch` staged images. Returns the batch's mean loss and correct count.
    func trainStep(batch: Int, optimizer: inout SGD, generator: inout RandomGenerator) -> BatchResult
    /// Forward in evaluation mode (running statistics, no dropout, no gradients).
    func evaluate(batch: Int) -> BatchResult
    /// Logits [batch, classes] of the staged images in evaluation mode.
    func logits(batch: Int) -> UnsafePointer<Float>
}

public struct BatchResult: Sendable, Equatable {
    public var loss: Float
    public var correct: Int
    public init(loss: Float, correct: Int) { self.loss = loss; self.correct = correct }
}

/// Where to compute.
public enum ComputeDevice: Sendable, Equatable {
    case cpu(threads: Int)

    public static var allCores: ComputeDevice { .cpu(threads: ThreadPool.defaultThreadCount) }

    /// A network for batches of up to `maxBatch`; `trainable: false` builds one for
    /// inference only, without gradients or backward scratch.
    public func makeNetwork(_ definition: ModelDefinition, maxBatch: Int, trainable: Bool = true) -> any Network {
        switch self {
        case .cpu(let threads): CPUNetwork(definition, maxBatch: maxBatch, threads: threads, trainable: trainable)
        }
    }
}
