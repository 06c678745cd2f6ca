import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Fetches dataset files from mirrors, tried in order, checking each file's
/// MD5 before it is renamed into place: a failed, cut-short or corrupted
/// download never leaves a file behind.
public struct Downloader: Sendable {
    /// Base URLs, each ending in `/`, that serve the files by name.
    public let mirrors: [URL]
    /// A request fails when no data arrives for this many seconds.
    public let timeout: TimeInterval
    /// Draw a byte-count progress line on standard error.
    public let showsProgress: Bool

    public init(mirrors: [URL], timeout: TimeInterval = 30, showsProgress: Bool = isatty(STDERR_FILENO) != 0) {
        self.mirrors = mirrors
        self.timeout = timeout
        self.showsProgress = showsProgress
    }

    /// The public mirrors of `kind`.
    public init(kind: DatasetKind, timeout: TimeInterval = 30, showsProgress: Bool = isatty(STDERR_FILENO) != 0) {
        self.init(mirrors: kind.mirrors.compactMap(URL.init(string:)), timeout: timeout, showsProgress: showsProgress)
    }

    /// Downloads `name` into `directory/name` from the first mirror whose copy
    /// matches `checksums`, and returns the path. `log` hears one line per attempt.
    @discardableResult
    public func download(_ name: String, checksums: Checksums, into directory: String, log: ((String) -> Void)? = nil) throws -> String {
        let path = directory + "/" + name
        try LocalFile.makeDirectories(directory)
        LocalFile.removeStaleTemporaryFiles(in: directory)  // a download killed before its rename
        var failures: [String] = []
        for mirror in mirrors {
            let url = mirror.appendingPathComponent(name)
            log?("Downloading \(url.absoluteString)")
            do {
                let bytes = try fetch(url, label: name)
                try Self.check(bytes, against: checksums, path: path)
                try bytes.withUnsafeBytes { try LocalFile.writeAtomically($0, to: path) }
                return path
            } catch {
                let reason = (error as? DataError)?.message ?? "\(error)"
                failures.append("\(url.absoluteString): \(reason)")
                log?("Failed: \(url.absoluteString): \(reason)")
            }
        }
        let tried = failures.isEmpty ? "no mirrors given" : failures.joined(separator: "; ")
        throw DataError(file: path, "could not download (\(tried))")
    }

    /// Accepts the mirrors' compressed MD5, or, for a file that was recompressed,
    /// the MD5 of its decompressed content where that is known.
    static func check(_ bytes: [UInt8], against checksums: Checksums, path: String) throws {
        let compressed = md5Hex(bytes)
        if compressed == checksums.compressed { return }
        if let content = checksums.content, (try? md5Hex(IDXFile.gunzip(bytes, path: path))) == content { return }
        throw DataError(file: path, "MD5 mismatch: got \(compressed), expected \(checksums.compressed)")
    }

    /// One GET, held in memory (the largest file is ~10 MB).
    private func fetch(_ url: URL, label: String) throws -> [UInt8] {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let receiver = Receiver(label: label, showsProgress: showsProgress)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1  // delegate calls in order, one at a time
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: url).resume()
        receiver.finished.wait()
        return try receiver.result()
    }
}

/// Collects one response body; the delegate queue is serial and `finished`
/// is signalled last, so reads after `finished.wait()` see every write.
private final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private let label: String
    private let showsProgress: Bool
    private var body: [UInt8] = []
    private var expected: Int64 = -1
    private var status = 0
    private var failure: Error?
    private var lastPercent = -1

    init(label: String, showsProgress: Bool) {
        self.label = label
        self.showsProgress = showsProgress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        if body.isEmpty, let response = dataTask.response {
            expected = response.expectedContentLength
            if expected > 0 { body.reserveCapacity(Int(expected)) }
        }
        body.append(contentsOf: data)
        drawProgress(done: false)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        status = (task.response as? HTTPURLResponse)?.statusCode ?? 0
        failure = error
        drawProgress(done: true)
        finished.signal()
    }

    func result() throws -> [UInt8] {
        if let failure {
            let message = (failure as? URLError).map { "\($0.localizedDescription) (URLError \($0.code.rawValue))" } ?? "\(failure)"
            throw DataError(file: label, message)
        }
        guard status == 200 else { throw DataError(file: label, "HTTP status \(status)") }
        guard expected < 0 || Int64(body.count) == expected else {
            throw DataError(file: label, "connection closed after \(body.count) of \(expected) bytes")
        }
        return body
    }

    private func drawProgress(done: Bool) {
        guard showsProgress else { return }
        let megabytes = String(format: "%.1f", Double(body.count) / 1_000_000)
        var line: String
        if expected > 0 {
            let percent = Int(Int64(body.count) * 100 / expected)
            guard percent != lastPercent || done else { return }
            lastPercent = percent
            line = "\r\(label): \(percent)% (\(megabytes) of \(String(format: "%.1f", Double(expected) / 1_000_000)) MB)"
        } else {
            line = "\r\(label): \(megabytes) MB"
        }
        if done { line += "\n" }
        FileHandle.standardError.write(Data(line.utf8))
    }
}
