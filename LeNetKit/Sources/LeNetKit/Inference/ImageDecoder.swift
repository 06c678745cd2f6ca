import CPNG
import Foundation

/// Reads PNG (through libpng's simplified API: every colour type, bit depth, palette,
/// transparency and interlacing) and binary or plain PGM/PPM (P2, P3, P5, P6) into an
/// 8-bit grey image. The format is recognised by its first bytes, not by the file name.
///
/// Transparency: a digit drawn on a transparent canvas has its ink in the alpha channel.
/// An image with any pixel less than opaque is composited over the background that
/// contrasts with its ink: over white when the ink (the alpha-weighted mean grey) is
/// dark, over black when it is light. Fully opaque images are taken as they are.
public enum ImageDecoder {
    /// Largest width or height accepted.
    public static let maxDimension = 8192
    /// Largest file accepted, in bytes (64 MiB).
    public static let maxFileBytes = 64 << 20
    /// Default pixel budget: width x height at most 2^25 (33,554,432: 8192x4096, a 32 MP
    /// photo). Decoding costs up to about 10 bytes a pixel at once (16-bit grey + alpha for
    /// libpng, the grey result, the preprocessor's floats), so about 350 MB at the budget.
    public static let defaultMaxPixels = 1 << 25

    /// Reads and decodes the file at `path`; every error names the file. Pictures over
    /// `maxPixels` are refused before anything is allocated for their pixels.
    public static func decode(contentsOf path: String, maxPixels: Int = defaultMaxPixels) throws -> GreyImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InferenceError(file: path, "no such file")
        }
        guard !isDirectory.boolValue else { throw InferenceError(file: path, "is a directory, not an image") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber,
           size.intValue > maxFileBytes {
            throw InferenceError(file: path, "file is \(size.intValue) bytes; images over \(maxFileBytes >> 20) MiB are refused")
        }
        // LocalFile, as for every file the library reads: Foundation's FileManager.contents
        // leaks a 4 KiB buffer on each empty file (LeakSanitizer, Scripts/ci/sanitizers.sh).
        return try decode(LocalFile.readAll(path) { InferenceError(file: $0, $1) }, name: path, maxPixels: maxPixels)
    }

    /// Decodes PNG or PGM/PPM bytes; `name` labels errors. Pictures over `maxPixels` are
    /// refused (`InferenceError.isTooLarge`) before anything is allocated for their pixels.
    public static func decode(_ bytes: [UInt8], name: String, maxPixels: Int = defaultMaxPixels) throws -> GreyImage {
        guard bytes.count <= maxFileBytes else {
            throw InferenceError(file: name, "\(bytes.count) bytes; images over \(maxFileBytes >> 20) MiB are refused")
        }
        guard !bytes.isEmpty else { throw InferenceError(file: name, "empty file") }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try decodePNG(bytes, name: name, maxPixels: maxPixels)
        }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(bytes[1]) {
            return try decodePNM(bytes, name: name, maxPixels: maxPixels)
        }
        throw InferenceError(file: name, "not a PNG, PGM or PPM image (unrecognised first bytes)")
    }

    static func checkSize(width: Int, height: Int, name: String) throws {
        guard width > 0, height > 0 else { throw InferenceError(file: name, "image is \(width)x\(height); it has no pixels") }
        guard width <= maxDimension, height <= maxDimension else {
            throw InferenceError(file: name, "image is \(width)x\(height); images over \(maxDimension)x\(maxDimension) are refused")
        }
    }

    static func checkPixelBudget(width: Int, height: Int, maxPixels: Int, name: String) throws {
        guard width * height <= maxPixels else {
            throw InferenceError(file: name, "image is \(width)x\(height) = \(width * height) pixels; at most \(maxPixels) are accepted "
                                 + "(a digit needs far fewer: scale the picture down)", isTooLarge: true)
        }
    }

    /// Walks the PNG's chunks before libpng sees the file, and returns the header's size.
    /// Every chunk's length (known type or not) must fit in the bytes actually present, and
    /// the file must reach IEND: libpng would otherwise allocate what a length claims (up to
    /// 2 GiB for a chunk of a file of a few bytes) before finding the data missing.
    /// The size is checked (dimensions, pixel budget) as soon as IHDR is read.
    static func checkPNGChunks(_ bytes: [UInt8], name: String, maxPixels: Int) throws {
        func word(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        func type(_ at: Int) -> String { String(decoding: bytes[at..<at + 4], as: UTF8.self) }
        var offset = 8, sawHeader = false
        while true {
            guard bytes.count - offset >= 12 else {
                throw InferenceError(file: name, "truncated PNG: the file ends at byte \(bytes.count) before the IEND chunk")
            }
            let length = word(offset)
            let isLetter = { (b: UInt8) in (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
            guard bytes[(offset + 4)..<(offset + 8)].allSatisfy(isLetter) else {
                throw InferenceError(file: name, "corrupt PNG: the chunk at byte \(offset) has no valid type (4 letters)")
            }
            let kind = type(offset + 4)
            // PNG caps lengths at 2^31 - 1; here they must also fit what is left of the file.
            guard length <= bytes.count - offset - 12 else {
                throw InferenceError(file: name, "truncated PNG: chunk \(kind) at byte \(offset) claims \(length) bytes, "
                                     + "only \(bytes.count - offset - 12) are left")
            }
            if !sawHeader {
                guard kind == "IHDR", length == 13 else {
                    throw InferenceError(file: name, "corrupt PNG: the first chunk is \(kind) of \(length) bytes, not a 13-byte IHDR")
                }
                let width = word(offset + 8), height = word(offset + 12)
                try checkSize(width: width, height: height, name: name)
                try checkPixelBudget(width: width, height: height, maxPixels: maxPixels, name: name)
                sawHeader = true
            }
            offset += 12 + length
            if kind == "IEND" { return }
        }
    }
    // MARK: PNG

    private static func decodePNG(_ bytes: [UInt8], name: String, maxPixels: Int) throws -> GreyImage {
        try checkPNGChunks(bytes, name: name, maxPixels: maxPixels)
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        // libpng keeps a pointer to the bytes from begin to finish: both happen in one closure.
        return try bytes.withUnsafeBytes { raw -> GreyImage in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw InferenceError(file: name, "not a readable PNG (libpng: \(message(image)))")
            }
            let width = Int(image.width), height = Int(image.height)
            try checkSize(width: width, height: height, name: name)
            try checkPixelBudget(width: width, height: height, maxPixels: maxPixels, name: name)
            // Grey + alpha; libpng converts colour, palettes, tRNS and bit depths, and
            // de-interlaces. 16-bit files are read as 16-bit linear light (premultiplied):
            // libpng 1.6's reduction of interlaced 16-bit images to 8 bits misplaces pixels.
            let sixteen = image.format & png_uint_32(PNG_FORMAT_FLAG_LINEAR) != 0
            image.format = png_uint_32(PNG_FORMAT_FLAG_ALPHA) | (sixteen ? png_uint_32(PNG_FORMAT_FLAG_LINEAR) : 0)
            func finish(_ target: UnsafeMutableRawBufferPointer, stride: Int) throws {
                guard png_image_finish_read(&image, nil, target.baseAddress, png_int_32(stride), nil) != 0 else {
                    throw InferenceError(file: name, "corrupt or truncated PNG (libpng: \(message(image)))")
                }
            }
            if sixteen {
                var samples = [UInt16](repeating: 0, count: width * height * 2)
                try samples.withUnsafeMutableBytes { try finish($0, stride: width * 2) }
                return composite(linearPremultiplied: samples, width: width, height: height)
            }
            var pixels = [UInt8](repeating: 0, count: width * height * 2)
            try pixels.withUnsafeMutableBytes { try finish($0, stride: width * 2) }
            return composite(greyAlpha: pixels, width: width, height: height)
        }
    }

    /// 16-bit linear grey (premultiplied by alpha) + alpha to 8-bit sRGB grey, composited
    /// in linear light over the background that contrasts with the ink.
    static func composite(linearPremultiplied samples: [UInt16], width: Int, height: Int) -> GreyImage {
        let count = width * height
        var greySum = 0.0, alphaSum = 0.0, translucent = false
        for i in 0..<count {
            greySum += Double(samples[2 * i]); alphaSum += Double(samples[2 * i + 1])
            if samples[2 * i + 1] < 65535 { translucent = true }
        }
        let background: Double = translucent && alphaSum > 0 && encodeSRGB(greySum / alphaSum) > 0.5 ? 0 : 1
        var grey = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            let alpha = Double(samples[2 * i + 1]) / 65535
            let linear = Double(samples[2 * i]) / 65535 + background * (1 - alpha)
            grey[i] = UInt8((encodeSRGB(min(1, max(0, linear))) * 255).rounded())
        }
        return GreyImage(width: width, height: height, pixels: grey)
    }

    /// Linear light in [0,1] to the sRGB transfer curve.
    static func encodeSRGB(_ linear: Double) -> Double {
        linear <= 0.0031308 ? 12.92 * linear : 1.055 * Foundation.pow(linear, 1 / 2.4) - 0.055
    }

    /// libpng's message buffer as a String.
    private static func message(_ image: png_image) -> String {
        let text = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "unknown error" : text
    }

    /// Grey + alpha pairs to grey, over the background that contrasts with the ink.
    static func composite(greyAlpha: [UInt8], width: Int, height: Int) -> GreyImage {
        let count = width * height
        var weighted = 0.0, alphaSum = 0.0, translucent = false
        for i in 0..<count {
            let alpha = Double(greyAlpha[2 * i + 1])
            if alpha < 255 { translucent = true }
            weighted += Double(greyAlpha[2 * i]) * alpha
            alphaSum += alpha
        }
        var grey = [UInt8](repeating: 255, count: count)
        if !translucent {
            for i in 0..<count { grey[i] = greyAlpha[2 * i] }
        } else {
            let background: Float = alphaSum > 0 && weighted / alphaSum > 127.5 ? 0 : 255
            for i in 0..<count {
                let value = Float(greyAlpha[2 * i]), alpha = Float(greyAlpha[2 * i + 1]) / 255
                grey[i] = UInt8((value * alpha + background * (1 - alpha)).rounded())
            }
        }
        return GreyImage(width: width, height: height, pixels: grey)
    }

    // MARK: PGM / PPM

    /// P2 (plain grey), P3 (plain RGB), P5 (binary grey), P6 (binary RGB); maxval up to
    /// 65535 (two big-endian bytes per sample in the binary forms when over 255).
    private static func decodePNM(_ bytes: [UInt8], name: String, maxPixels: Int) throws -> GreyImage {
        let kind = bytes[1]
        guard [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(kind) else {
            throw InferenceError(file: name, "P\(Character(UnicodeScalar(kind))) images are not supported (only P2, P3, P5, P6: PGM and PPM)")
        }
        let channels = kind == UInt8(ascii: "3") || kind == UInt8(ascii: "6") ? 3 : 1
        let binary = kind == UInt8(ascii: "5") || kind == UInt8(ascii: "6")
        var position = 2

        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        /// Skips whitespace and `#` comments, then reads one decimal number.
        func number(_ what: String) throws -> Int {
            while position < bytes.count {
                if isSpace(bytes[position]) {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count, bytes[position] != 0x0A, bytes[position] != 0x0D { position += 1 }
                } else {
                    break
                }
            }
            var value = 0, digits = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                value = value * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                digits += 1
                position += 1
                guard value <= 1 << 30 else { throw InferenceError(file: name, "\(what) is too large") }
            }
            guard digits > 0 else {
                throw InferenceError(file: name, position >= bytes.count ? "truncated: the file ends before the \(what)"
                                                                          : "malformed header: expected the \(what), a decimal number")
            }
            return value
        }

        let width = try number("width"), height = try number("height")
        try checkSize(width: width, height: height, name: name)
        let maxValue = try number("maximum value")
        guard (1...65535).contains(maxValue) else {
            throw InferenceError(file: name, "maximum value \(maxValue) is not in 1...65535")
        }
        let samples = width * height * channels
        if binary {
            guard position < bytes.count, isSpace(bytes[position]) else {
                throw InferenceError(file: name, "truncated: no pixel data after the header")
            }
            position += 1
        }
        // The pixel data must be there before anything is allocated for it: a header of a few
        // bytes can claim 8192x8192x3 samples. Binary: `size` bytes a sample; plain: at least
        // a separator and a digit each.
        let size = maxValue > 255 ? 2 : 1
        let left = bytes.count - position
        guard left >= (binary ? samples * size : 2 * samples) else {
            throw InferenceError(file: name, binary ? "truncated: \(left) bytes of pixel data, expected \(samples * size)"
                : "truncated: \(left) bytes after the header cannot hold \(samples) samples (a separator and a digit each)")
        }
        try checkPixelBudget(width: width, height: height, maxPixels: maxPixels, name: name)
        var values = [Int](repeating: 0, count: samples)
        if binary {
            for i in 0..<samples {
                values[i] = size == 1 ? Int(bytes[position + i])
                                      : Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1])
            }
        } else {
            for i in 0..<samples { values[i] = try number("sample \(i + 1) of \(samples)") }
        }
        if let bad = values.first(where: { $0 > maxValue }) {
            throw InferenceError(file: name, "sample \(bad) exceeds the maximum value \(maxValue)")
        }
        let scale = 255 / Double(maxValue)
        var grey = [UInt8](repeating: 0, count: width * height)
        for i in 0..<(width * height) {
            let level: Double = channels == 1 ? Double(values[i])
                : 0.299 * Double(values[3 * i]) + 0.587 * Double(values[3 * i + 1]) + 0.114 * Double(values[3 * i + 2])
            grey[i] = UInt8(min(255, (level * scale).rounded()))
        }
        return GreyImage(width: width, height: height, pixels: grey)
    }
}
