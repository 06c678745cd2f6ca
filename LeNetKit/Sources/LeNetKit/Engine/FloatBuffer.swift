/// A fixed-size, 64-byte aligned block of Float32 owned by one object.
///
/// Every parameter, gradient and activation of a model lives in one of these,
/// allocated once when the model is built; a training step only reads and
/// writes through `pointer`.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }

    func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    func copy(from other: FloatBuffer) {
        precondition(other.count == count, "buffer sizes differ")
        pointer.update(from: other.pointer, count: count)
    }

    /// A copy of the contents as an Array (for tests, checkpoints and reports, not hot paths).
    var array: [Float] { Array(buffer) }
}

/// The same for Int32 (labels, pooling argmax indices).
final class Int32Buffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Int32>

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    var buffer: UnsafeMutableBufferPointer<Int32> { .init(start: pointer, count: count) }
}
