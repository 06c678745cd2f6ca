import CZlib

/// Reading and strict validation of IDX files (LeCun's MNIST format), raw or gzip.
///
/// Images: magic 0x00000803, count, rows, columns (big-endian UInt32), then
/// count x 28 x 28 bytes. Labels: magic 0x00000801, count, then count bytes 0...9.
/// Anything else, including a byte too many or too few, is a `DataError`.
public enum IDXFile {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// The decompressed IDX bytes of `path`: gzip is recognised by its header
    /// (1f 8b), whatever the name; a `.gz` name without that header is an error.
    public static func readContent(_ path: String) throws -> [UInt8] {
        // Compressed or not, a file is never larger than its content's limit.
        try content(ofFile: LocalFile.readAll(path, maxBytes: maximumContentBytes), path: path)
    }

    /// The decompressed IDX bytes of a file's `bytes`, as `readContent` reads them;
    /// `path` is the file's name, for messages and the `.gz` check.
    public static func content(ofFile bytes: [UInt8], path: String) throws -> [UInt8] {
        guard !bytes.isEmpty else { throw DataError(file: path, "file is empty") }
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            return try gunzip(bytes, path: path)
        }
        if path.hasSuffix(".gz") {
            throw DataError(file: path, "not gzip data (no 1f 8b header) although the name ends in .gz")
        }
        return bytes
    }

    /// Reads and validates an image file: `pixels` is [count, 28, 28] row-major.
    public static func readImages(_ path: String) throws -> (count: Int, pixels: [UInt8]) {
        try parseImages(readContent(path), path: path)
    }

    /// Reads and validates a label file: [count], each 0...9.
    public static func readLabels(_ path: String) throws -> [UInt8] {
        try parseLabels(readContent(path), path: path)
    }

    /// Validates decompressed image-file bytes; `path` is only for messages. The pixels
    /// are the content with its header removed in place: no second 47 MB copy.
    public static func parseImages(_ content: consuming [UInt8], path: String) throws -> (count: Int, pixels: [UInt8]) {
        let header = 16
        let count = try checkHeader(content, path: path, magic: imagesMagic, headerBytes: header, what: "image")
        let rows = bigEndianWord(content, at: 8)
        let columns = bigEndianWord(content, at: 12)
        guard rows == DataSplit.rows && columns == DataSplit.columns else {
            throw DataError(file: path, "images are \(rows)x\(columns), expected \(DataSplit.rows)x\(DataSplit.columns)")
        }
        try checkLength(content, path: path, expected: header + count * DataSplit.pixelsPerImage, count: count, what: "image")
        var pixels = content
        pixels.removeFirst(header)
        return (count, pixels)
    }

    /// Validates decompressed label-file bytes; `path` is only for messages.
    public static func parseLabels(_ content: consuming [UInt8], path: String) throws -> [UInt8] {
        let header = 8
        let count = try checkHeader(content, path: path, magic: labelsMagic, headerBytes: header, what: "label")
        try checkLength(content, path: path, expected: header + count, count: count, what: "label")
        var labels = content
        labels.removeFirst(header)
        if let index = labels.firstIndex(where: { $0 > 9 }) {
            throw DataError(file: path, "label \(labels[index]) at index \(index) is outside 0-9")
        }
        return labels
    }

    /// Checks size, magic and a non-zero count; returns the count.
    private static func checkHeader(_ content: [UInt8], path: String, magic: UInt32, headerBytes: Int, what: String) throws -> Int {
        guard !content.isEmpty else { throw DataError(file: path, "decompressed content is empty") }
        guard content.count >= headerBytes else {
            throw DataError(file: path, "truncated: \(content.count) bytes, shorter than the \(headerBytes)-byte IDX \(what) header")
        }
        let found = bigEndianWord(content, at: 0)
        guard found == Int(magic) else {
            throw DataError(file: path, "wrong magic number \(hex(found)), expected \(hex(Int(magic))) (IDX \(what) file)")
        }
        let count = bigEndianWord(content, at: 4)
        guard count > 0 else { throw DataError(file: path, "holds no \(what)s (count is 0)") }
        return count
    }

    private static func checkLength(_ content: [UInt8], path: String, expected: Int, count: Int, what: String) throws {
        guard content.count != expected else { return }
        let state = content.count < expected ? "truncated" : "too long"
        throw DataError(file: path, "\(state): \(content.count) bytes, expected \(expected) for \(count) \(what)s")
    }

    private static func bigEndianWord(_ bytes: [UInt8], at offset: Int) -> Int {
        (Int(bytes[offset]) << 24) | (Int(bytes[offset + 1]) << 16) | (Int(bytes[offset + 2]) << 8) | Int(bytes[offset + 3])
    }

    private static func hex(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Larger decompressed content is refused: 64 MiB, a third over the largest IDX file
    /// read here (MNIST's and Fashion-MNIST's training images, 47,040,016 bytes). Whatever a
    /// gzip trailer claims, no more than this is ever allocated for the output.
    public static let maximumContentBytes = 64 << 20

    /// Inflates gzip data (concatenated members allowed) with zlib, to at most `limit` bytes.
    static func gunzip(_ input: [UInt8], path: String, limit: Int = maximumContentBytes) throws -> [UInt8] {
        guard input.count < Int(UInt32.max) else { throw DataError(file: path, "compressed file is larger than 4 GiB") }
        // The last 4 bytes are the last member's ISIZE (its size mod 2^32) if the file is whole,
        // anything if it is cut or damaged: only a first output size, within the limit and
        // what deflate can expand to (~1032x). zlib checks every member's ISIZE at its end.
        let tail = input.count - 4
        let sizeHint = input.count >= 18
            ? Int(input[tail]) | Int(input[tail + 1]) << 8 | Int(input[tail + 2]) << 16 | Int(input[tail + 3]) << 24
            : 0
        var output = [UInt8](repeating: 0, count: min(max(min(sizeHint, 1032 * input.count), 1 << 16), limit))
        var produced = 0

        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header and trailer (CRC and length checked).
        guard inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(file: path, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }

        try input.withUnsafeBufferPointer { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            while true {
                if produced == output.count {
                    // Doubled, but never past the limit, whatever the trailer said.
                    guard output.count < limit else {
                        throw DataError(file: path, "decompresses to more than \(limit) bytes, the limit for an IDX file")
                    }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, limit - output.count)))
                }
                let status = output.withUnsafeMutableBufferPointer { target in
                    let room = min(target.count - produced, Int(UInt32.max))
                    stream.next_out = target.baseAddress.map { $0 + produced }
                    stream.avail_out = UInt32(room)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return status
                }
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    let remaining = Int(stream.avail_in)
                    if remaining == 0 { return }
                    let next = source.count - remaining
                    guard remaining >= 2 && source[next] == 0x1F && source[next + 1] == 0x8B else {
                        throw DataError(file: path, "\(remaining) stray bytes after the gzip data")
                    }
                    inflateReset(&stream)  // another gzip member follows
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw DataError(file: path, "gzip data is truncated (ends after \(produced) decompressed bytes)")
                case Z_BUF_ERROR:
                    continue  // the output is full; it grows above
                case Z_MEM_ERROR:
                    throw DataError(file: path, "out of memory while inflating")
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw DataError(file: path, "invalid gzip data: \(reason)")
                }
            }
        }
        output.removeLast(output.count - produced)
        return output
    }
}
