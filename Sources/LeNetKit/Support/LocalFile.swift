#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto

/// Whole-file reads and atomic writes over POSIX calls, for every file the project
/// reads or writes. Each failure is thrown as the caller's error type (`failure`
/// makes it from the path and what went wrong), so messages always name the file.
enum LocalFile {
    typealias Failure = @Sendable (_ path: String, _ message: String) -> Error

    static let dataError: Failure = { DataError(file: $0, $1) }

    /// The bytes of the file at `path`.
    static func readAll(_ path: String, failure: Failure = dataError) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure(path, "cannot open: \(errnoDescription())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(path, "cannot stat: \(errnoDescription())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw failure(path, "not a regular file") }
        let size = Int(info.st_size)
        // Not `[UInt8](unsafeUninitializedCapacity: 0)`: for capacity 0 the standard library
        // writes the count of the one empty-array storage that every empty array shares, a
        // data race (ThreadSanitizer) with any thread reading an empty array at the time.
        guard size > 0 else { return [] }
        var readError: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            while initialized < size {
                let n = read(fd, base + initialized, size - initialized)
                if n > 0 {
                    initialized += n
                } else if n == 0 || errno != EINTR {
                    readError = n == 0 ? 0 : errno
                    break
                }
            }
        }
        if readError != 0 { throw failure(path, "cannot read: \(String(cString: strerror(readError)))") }
        guard bytes.count == size else { throw failure(path, "file shrank while being read") }
        return bytes
    }

    /// Writes `bytes` to a temporary file beside `path`, flushes it, then renames it
    /// into place, so a reader never sees a half-written file and a failure leaves none.
    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String, failure: Failure = dataError) throws {
        let temporary = "\(path).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw failure(path, "cannot create \(temporary): \(errnoDescription())") }
        var written = 0
        var failure_: String?
        while written < bytes.count, let base = bytes.baseAddress {
            let n = write(fd, base + written, bytes.count - written)
            if n > 0 {
                written += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                failure_ = "cannot write: \(errnoDescription())"
                break
            }
        }
        if failure_ == nil && fsync(fd) != 0 { failure_ = "cannot flush: \(errnoDescription())" }
        if close(fd) != 0 && failure_ == nil { failure_ = "cannot close: \(errnoDescription())" }
        if failure_ == nil && rename(temporary, path) != 0 { failure_ = "cannot rename into place: \(errnoDescription())" }
        if let problem = failure_ {
            unlink(temporary)
            throw failure(path, problem)
        }
        // Make the rename itself durable; a failure here still leaves a complete file.
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let directoryDescriptor = open(directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            _ = close(directoryDescriptor)
        }
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String, failure: Failure = dataError) throws {
        try bytes.withUnsafeBytes { try writeAtomically($0, to: path, failure: failure) }
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Creates `path` and its missing parents (`mkdir -p`).
    static func makeDirectories(_ path: String, failure: Failure = dataError) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw failure(path, "cannot create directory \(prefix): \(errnoDescription())")
            }
        }
    }

    static func errnoDescription() -> String { String(cString: strerror(errno)) }
}

/// Lowercase hex MD5, as published for the MNIST files.
func md5Hex(_ bytes: [UInt8]) -> String {
    Insecure.MD5.hash(data: bytes).map { byte in
        let hex = String(byte, radix: 16)
        return byte < 16 ? "0" + hex : hex
    }.joined()
}
