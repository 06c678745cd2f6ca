/// A fixed-size, 64-byte aligned block of Float32 owned by one object.
///
/// Every parameter, gradient and activation of a model lives in one of these,
/// allocated once when the model is built; a training step only reads and
/// writes through `pointer`.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "buffer sizes differ")
        pointer.update(from: other.pointer, count: count)
    }

    /// A copy of the contents as an Array (for tests, checkpoints and reports, not hot paths).
    public var array: [Float] { Array(buffer) }
}

/// The same for Int32 (labels, pooling argmax indices).
public final class Int32Buffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Int32>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Int32> { .init(start: pointer, count: count) }
}
