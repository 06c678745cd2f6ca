import Foundation

/// One image's classification: softmax probabilities of the ten digits.
public struct Prediction: Sendable, Equatable {
    /// The most likely digit (the first on a tie).
    public let digit: Int
    /// [classes] softmax probabilities, summing to 1.
    public let probabilities: [Float]

    public init(logits: UnsafePointer<Float>, classes: Int) {
        let softmax = SoftmaxRow(logits, classes: classes)
        digit = softmax.argmax
        probabilities = (0..<classes).map { Float(softmax.probability(logits, $0)) }
    }

    /// The `k` most likely digits, most likely first (ties: smaller digit first).
    public func top(_ k: Int) -> [(digit: Int, probability: Float)] {
        probabilities.enumerated()
            .sorted { $0.element != $1.element ? $0.element > $1.element : $0.offset < $1.offset }
            .prefix(max(0, k)).map { (digit: $0.offset, probability: $0.element) }
    }
}

/// A checkpoint's model for inference: prepares pictures with `MNISTPreprocessor` and
/// classifies them. Calls may come from many threads: they take turns on one network.
public final class Predictor: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let preprocessor: MNISTPreprocessor
    private let network: any Network
    private let lock = NSLock()
    private let images: FloatBuffer  // [maxBatch, 1, 28, 28] staging for the network
    private let logits: FloatBuffer  // [maxBatch, classes]

    /// An inference-only network (no gradients) for batches of up to `maxBatch`.
    public init(checkpoint: Checkpoint, preprocessor: MNISTPreprocessor = MNISTPreprocessor(),
                device: ComputeDevice = .cpu(threads: 1), maxBatch: Int = 64) throws {
        self.checkpoint = checkpoint
        self.preprocessor = preprocessor
        network = try checkpoint.makeNetwork(device: device, maxBatch: max(1, maxBatch))
        images = FloatBuffer(count: network.maxBatch * DataSplit.pixelsPerImage)
        logits = FloatBuffer(count: network.maxBatch * network.definition.classes)
    }

    /// Loads the checkpoint at `path` (errors name the file).
    public convenience init(checkpointPath path: String, preprocessor: MNISTPreprocessor = MNISTPreprocessor(),
                            device: ComputeDevice = .cpu(threads: 1), maxBatch: Int = 64) throws {
        try self.init(checkpoint: Checkpoint(contentsOf: path), preprocessor: preprocessor, device: device, maxBatch: maxBatch)
    }

    /// Classifies prepared images: each 784 values in [0,1], ink = 1.
    public func predict(prepared images: [[Float]]) throws -> [Prediction] {
        let pixels = DataSplit.pixelsPerImage, classes = network.definition.classes
        if let bad = images.firstIndex(where: { $0.count != pixels }) {
            throw InferenceError(file: "", "image \(bad) has \(images[bad].count) values; a prepared image has \(pixels) (28x28)")
        }
        if let bad = images.firstIndex(where: { $0.contains { !$0.isFinite } }) {
            throw InferenceError(file: "", "image \(bad) holds a value that is not a finite number")
        }
        lock.lock()
        defer { lock.unlock() }
        var predictions: [Prediction] = []
        predictions.reserveCapacity(images.count)
        for start in stride(from: 0, to: images.count, by: network.maxBatch) {
            let batch = min(network.maxBatch, images.count - start)
            for slot in 0..<batch {
                images[start + slot].withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress else { return }
                    (self.images.pointer + slot * pixels).update(from: base, count: pixels)
                }
            }
            network.infer(self.images.pointer, count: batch, logits: logits.pointer)
            for slot in 0..<batch { predictions.append(Prediction(logits: logits.pointer + slot * classes, classes: classes)) }
        }
        return predictions
    }

    /// Classifies one prepared image (784 values in [0,1], ink = 1).
    public func predict(prepared image: [Float]) throws -> Prediction {
        try predict(prepared: [image])[0]
    }

    /// Prepares a picture of one digit and classifies it; returns the 28x28 the network saw too.
    public func predict(_ image: GreyImage, name: String = "") throws -> (prepared: [Float], prediction: Prediction) {
        let prepared = try preprocessor.prepare(image, name: name)
        return (prepared, try predict(prepared: prepared))
    }

    /// Reads, prepares and classifies an image file (PNG, PGM or PPM).
    public func predict(contentsOf path: String) throws -> (prepared: [Float], prediction: Prediction) {
        try predict(ImageDecoder.decode(contentsOf: path), name: path)
    }
}

extension Prediction {
    /// One line of JSON: `{"file": ..., "digit": ..., "probabilities": [10 numbers]}`, and
    /// with `top`, `"top": [{"digit": ..., "probability": ...}, ...]`: the `top` most likely
    /// digits, most likely first, as `top(_:)` ranks them.
    public func jsonLine(file: String, top: Int? = nil) -> String {
        var fields: [(String, JSONValue)] = [("file", .string(file)), ("digit", JSONValue(digit)),
                                             ("probabilities", .numbers(probabilities))]
        if let top {
            fields.append(("top", .array(self.top(top).map { ranked in
                // Written as `probabilities` writes it (a non-finite value as 0).
                .object([("digit", JSONValue(ranked.digit)), ("probability", (try? JSONValue(ranked.probability)) ?? .number("0"))])
            })))
        }
        return JSONWriter.text(.object(fields), .spaced)
    }
}
