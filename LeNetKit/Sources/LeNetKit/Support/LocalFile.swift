#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(CryptoKit)
import CryptoKit
#else
import COpenSSL
#endif

/// Whole-file reads and atomic writes over POSIX calls, for every file the project
/// reads or writes. Each failure is thrown as the caller's error type (`failure`
/// makes it from the path and what went wrong), so messages always name the file.
public enum LocalFile {
    typealias Failure = @Sendable (_ path: String, _ message: String) -> Error

    static let dataError: Failure = { DataError(file: $0, $1) }

    /// The bytes of the file at `path`; a file over `maxBytes` is refused before it is read.
    static func readAll(_ path: String, maxBytes: Int = Int.max, failure: Failure = dataError) throws -> [UInt8] {
        let fd = try openRegularFile(path, failure: failure)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(path, "cannot stat: \(errnoDescription())") }
        let size = Int(info.st_size)
        guard size <= maxBytes else { throw failure(path, "file is \(size) bytes, over the \(maxBytes)-byte limit") }
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

    /// What a path that is not a regular file is, in words, or nil for a regular file.
    /// A FIFO or a device cannot be read whole (opening a FIFO waits for a writer, a
    /// device may never end), so every reader refuses them before opening.
    static func notRegularDescription(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "not a regular file: it is a directory"
        case S_IFIFO: return "not a regular file: it is a FIFO (named pipe), which would block waiting for a writer"
        case S_IFCHR, S_IFBLK: return "not a regular file: it is a device"
        case S_IFSOCK: return "not a regular file: it is a socket"
        case S_IFLNK: return "not a regular file: it is a symbolic link"
        default: return "not a regular file"
        }
    }

    /// Opens a regular file for reading, refusing anything else before it is opened:
    /// `stat` first, then `O_NONBLOCK` so that a FIFO swapped in after the check still
    /// cannot block the open, then `fstat` on what was actually opened.
    static func openRegularFile(_ path: String, failure: Failure = dataError) throws -> Int32 {
        var info = stat()
        if stat(path, &info) != 0 {
            throw failure(path, errno == ENOENT ? "cannot open: no such file" : "cannot open: \(errnoDescription())")
        }
        if let what = notRegularDescription(info.st_mode) { throw failure(path, what) }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path, "cannot open: \(errnoDescription())") }
        guard fstat(fd, &info) == 0 else {
            let message = errnoDescription()
            close(fd)
            throw failure(path, "cannot stat: \(message)")
        }
        if let what = notRegularDescription(info.st_mode) {
            close(fd)
            throw failure(path, what)
        }
        return fd
    }

    /// Refuses to write over anything but a regular file or nothing: a symbolic link
    /// would be replaced by a file (not written through), and a FIFO or device would
    /// be swapped for a file, both silently.
    static func checkWritable(_ path: String, failure: Failure = dataError) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there yet
        if (info.st_mode & S_IFMT) == S_IFLNK {
            throw failure(path, "cannot write: it is a symbolic link (refusing to replace it; write to the file it points to, or remove the link)")
        }
        if let what = notRegularDescription(info.st_mode) { throw failure(path, "cannot write: \(what)") }
    }

    /// Removes the temporary files (`NAME.part-PID-RANDOM`) that a writer killed before its
    /// rename left in `folder`, those of processes no longer running. Returns their names.
    @discardableResult
    public static func removeStaleTemporaryFiles(in folder: String) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var removed: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let marker = name.range(of: ".part-", options: .backwards) else { continue }
            let fields = name[marker.upperBound...].split(separator: "-")
            guard fields.count == 2, let pid = Int32(fields[0]), UInt32(fields[1]) != nil else { continue }
            // A live writer's file is left alone; so is one whose owner we cannot ask about.
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                let path = folder + "/" + name
                var info = stat()
                if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, unlink(path) == 0 { removed.append(name) }
            }
        }
        return removed
    }

    /// Writes `bytes` to a temporary file beside `path`, flushes it, then renames it
    /// into place, so a reader never sees a half-written file and a failure leaves none.
    /// Every file the project writes goes through here: an existing symbolic link, FIFO,
    /// device or directory at `path` is refused, not replaced.
    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String, failure: Failure = dataError) throws {
        try checkWritable(path, failure: failure)
        let temporary = "\(path).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
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

    /// `writeAtomically` for the command and other users of the library: errors are `DataError`s naming the path.
    public static func writeFile(_ bytes: [UInt8], to path: String) throws {
        try writeAtomically(bytes, to: path)
    }

    public static func writeFile(_ text: String, to path: String) throws {
        try writeAtomically(Array(text.utf8), to: path)
    }

    /// Throws the error `writeFile` would give for what is at `path` now (a symbolic link, a
    /// FIFO, a device, a directory), so that a command can say so before its work.
    public static func checkReplaceable(_ path: String) throws {
        try checkWritable(path)
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

    public static func errnoDescription() -> String { String(cString: strerror(errno)) }
}

/// Lowercase hex MD5, as published for the MNIST files (CryptoKit on Apple platforms,
/// the system's libcrypto elsewhere). Empty, so that it matches no checksum, if libcrypto
/// fails to compute it.
func md5Hex(_ bytes: [UInt8]) -> String {
    #if canImport(CryptoKit)
    let digest = Array(Insecure.MD5.hash(data: bytes))
    #else
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    let done = bytes.withUnsafeBytes { data in
        EVP_Digest(data.baseAddress, data.count, &digest, &length, EVP_md5(), nil)
    }
    guard done == 1, length == 16 else { return "" }
    digest.removeLast(digest.count - 16)
    #endif
    return digest.map { byte in
        let hex = String(byte, radix: 16)
        return byte < 16 ? "0" + hex : hex
    }.joined()
}
