/// An 8-bit greyscale image, row-major. Data draws samples as one, Inference decodes
/// pictures into one, Output writes and shows them: so it lives below all three.
public struct GreyImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]  // [height, width], 0 = black, 255 = white

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
