import LeNetKit

/// Picture bytes (PNG, PGM, PPM or anything else) through `ImageDecoder` and, when they
/// decode, `MNISTPreprocessor`: what `lenet predict` does with a file. An
/// `InferenceError` naming the input (one line) is the answer to bad input; a trap, a sanitizer
/// report or any other error is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let name = "input"
    do {
        let image = try ImageDecoder.decode(bytes, name: name)
        precondition(image.width > 0 && image.height > 0 && image.pixels.count == image.width * image.height,
                     "decoded \(image.width)x\(image.height) with \(image.pixels.count) pixels")
        let prepared = try MNISTPreprocessor().prepare(image, name: name)
        precondition(prepared.count == 28 * 28 && prepared.allSatisfy { $0 >= 0 && $0 <= 1 },
                     "prepared image is not 784 values in 0...1")
    } catch let error as InferenceError {
        precondition(error.file == name && !error.message.isEmpty, "error does not name the input: \(error)")
        precondition(!error.message.contains(where: \.isNewline), "error is not one line: \(error)")
    } catch {
        preconditionFailure("not an InferenceError: \(error)")
    }
    return 0
}
