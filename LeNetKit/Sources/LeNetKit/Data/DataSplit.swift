/// One split decoded once into contiguous buffers.
public struct DataSplit: Sendable {
    public let name: String  // "train" or "test"
    public let count: Int
    public let pixels: [UInt8]  // [count, 28, 28] row-major, raw bytes 0...255
    public let labels: [UInt8]  // [count], 0...9
    public static let rows = 28, columns = 28, pixelsPerImage = 784

    /// Checks that the buffers agree: pixels.count == labels.count * 784, labels 0...9.
    public init(name: String, pixels: [UInt8], labels: [UInt8]) throws {
        guard pixels.count == labels.count * Self.pixelsPerImage else {
            throw DataError(file: name, "\(pixels.count) pixel bytes do not make \(labels.count) images of 28x28")
        }
        if let index = labels.firstIndex(where: { $0 > 9 }) {
            throw DataError(file: name, "label \(labels[index]) at index \(index) is outside 0-9")
        }
        self.name = name
        self.count = labels.count
        self.pixels = pixels
        self.labels = labels
    }

    /// Reads and validates an image file and its label file.
    public init(name: String, imagesPath: String, labelsPath: String) throws {
        let (imageCount, pixels) = try IDXFile.readImages(imagesPath)
        let labels = try IDXFile.readLabels(labelsPath)
        try Self.checkCounts(images: imageCount, imagesPath: imagesPath, labels: labels.count, labelsPath: labelsPath)
        try self.init(name: name, pixels: pixels, labels: labels)
    }

    /// Images and labels must pair up one to one; the label file is blamed.
    static func checkCounts(images: Int, imagesPath: String, labels: Int, labelsPath: String) throws {
        guard images != labels else { return }
        throw DataError(file: labelsPath, "holds \(labels) labels but \(imagesPath) holds \(images) images")
    }

    /// How many images of each class, index = label.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }
}

extension DataSplit {
    /// Gathers images order[range] converted to Float in [0,1] (x/255, torchvision
    /// ToTensor) into images [n,1,28,28] and labels [n] as Int32, n = range.count.
    /// Allocation-free; `order` entries must be < count and `range` inside `order`.
    func gather(order: [Int32], range: Range<Int>, images: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>) {
        let imageBytes = Self.pixelsPerImage
        pixels.withUnsafeBufferPointer { pixelBuffer in
            self.labels.withUnsafeBufferPointer { labelBuffer in
                order.withUnsafeBufferPointer { orderBuffer in
                    guard let source = pixelBuffer.baseAddress else { return }
                    for slot in 0..<range.count {
                        let index = Int(orderBuffer[range.lowerBound + slot])
                        labels[slot] = Int32(labelBuffer[index])
                        convertToUnitFloats(UnsafeRawPointer(source + index * imageBytes), images + slot * imageBytes)
                    }
                }
            }
        }
    }
}

/// 784 bytes -> 784 floats x/255, sixteen at a time (784 = 49 x 16).
/// Division, not multiplication by 1/255, so values match ToTensor exactly.
@inline(__always)
private func convertToUnitFloats(_ source: UnsafeRawPointer, _ target: UnsafeMutablePointer<Float>) {
    let scale = SIMD16<Float>(repeating: 255)
    let out = UnsafeMutableRawPointer(target)
    for block in stride(from: 0, to: DataSplit.pixelsPerImage, by: 16) {
        let bytes = source.loadUnaligned(fromByteOffset: block, as: SIMD16<UInt8>.self)
        let floats = SIMD16<Float>(bytes) / scale
        out.storeBytes(of: floats, toByteOffset: block * MemoryLayout<Float>.stride, as: SIMD16<Float>.self)
    }
}
