import LeNetKit

/// One IDX file's bytes, raw or gzip, through what `IDXFile.readImages` and
/// `readLabels` do after reading the file: decompression, then both parsers.
/// A `DataError` naming the file (one line) is the answer to bad input; a trap, a sanitizer
/// report or any other error is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let path = "input"
    expectDataError(path) {
        let content = try IDXFile.content(ofFile: bytes, path: path)
        expectDataError(path) {
            let images = try IDXFile.parseImages(content, path: path)
            precondition(images.count > 0 && images.pixels.count == images.count * 28 * 28, "images: wrong pixel count")
        }
        expectDataError(path) {
            let labels = try IDXFile.parseLabels(content, path: path)
            precondition(!labels.isEmpty && labels.allSatisfy { $0 <= 9 }, "labels: empty or outside 0-9")
        }
    }
    return 0
}

func expectDataError(_ path: String, _ body: () throws -> Void) {
    do {
        try body()
    } catch let error as DataError {
        precondition(error.file == path && !error.message.isEmpty, "error does not name the file: \(error)")
        precondition(!error.message.contains(where: \.isNewline), "error is not one line: \(error)")
    } catch {
        preconditionFailure("not a DataError: \(error)")
    }
}
