import CPNG

extension GreyImage {
    public func writePNG(to path: String) throws {
        try LeNetKit.writePNG(grey: pixels, width: width, height: height, to: path)
    }
}

/// Writes an 8-bit greyscale PNG, via a temporary file and rename.
public func writePNG(grey: [UInt8], width: Int, height: Int, to path: String) throws {
    let encoded = try encodePNG(grey: grey, width: width, height: height, name: path)
    try encoded.withUnsafeBytes { try LocalFile.writeAtomically($0, to: path) }
}

/// An 8-bit greyscale PNG's bytes, through libpng's simplified API (which reports errors
/// by return value: no setjmp/longjmp); `name` labels errors.
func encodePNG(grey: [UInt8], width: Int, height: Int, name path: String) throws -> [UInt8] {
    guard width > 0, height > 0, grey.count == width * height else {
        throw DataError(file: path, "cannot write a \(width)x\(height) PNG from \(grey.count) pixels")
    }
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    image.width = png_uint_32(width)
    image.height = png_uint_32(height)
    image.format = png_uint_32(PNG_FORMAT_GRAY)

    let encoded: [UInt8] = try grey.withUnsafeBytes { source in
        // First pass measures, second pass encodes.
        var size: png_alloc_size_t = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, source.baseAddress, 0, nil) != 0 else {
            throw DataError(file: path, "libpng: \(pngMessage(image))")
        }
        var written = size
        let bytes = try [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, initialized in
            guard png_image_write_to_memory(&image, buffer.baseAddress, &written, 0, source.baseAddress, 0, nil) != 0 else {
                throw DataError(file: path, "libpng: \(pngMessage(image))")
            }
            initialized = Int(written)
        }
        return bytes
    }
    png_image_free(&image)
    return encoded
}

/// libpng's message buffer (`char message[64]`) as a String.
private func pngMessage(_ image: png_image) -> String {
    withUnsafeBytes(of: image.message) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
