import Foundation
@testable import LeNetKit

/// Paths and small synthetic IDX files for the data tests.
enum DataFixtures {
    /// The package root, found from this file's location (Tests/LeNetKitTests/Support/).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The folder holding the real MNIST files (the four .gz files under their usual names),
    /// found as the product finds them: `$LENET_MNIST_DIR` when set (CI points it at a copy
    /// it has; nothing is downloaded then), else the package's `data/` (itself or
    /// `data/MNIST/raw`), else downloaded into `data/MNIST/raw` from the public mirrors.
    static let mnistLocation: Result<DataLocation, Error> = Result {
        if let directory = ProcessInfo.processInfo.environment["LENET_MNIST_DIR"], !directory.isEmpty {
            return try Dataset.locate(kind: .mnist, dataDirectory: directory, downloader: nil)
        }
        return try Dataset.locate(kind: .mnist, dataDirectory: packageRoot + "/data", downloader: Downloader(kind: .mnist),
                                  progress: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
    }

    /// The MNIST folder; the tests that need it fail with the reason when there is none.
    static var mnistDirectory: String {
        get throws { try mnistLocation.get().directory }
    }

    /// MNIST loaded once for all tests that need it.
    static let mnist: Result<Dataset, Error> = Result {
        try Dataset.load(kind: .mnist, dataDirectory: mnistDirectory, download: false)
    }

    /// One folder per test process under the system's temporary directory, removed when the
    /// process exits, so a test run leaves nothing behind in /tmp.
    private static let testRunDirectory: String = {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lenet-tests-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAtExit = path
        atexit {
            if let path = DataFixtures.removeAtExit { try? FileManager.default.removeItem(atPath: path) }
        }
        return path
    }()
    nonisolated(unsafe) private static var removeAtExit: String?

    /// A fresh empty directory inside this process's test folder.
    static func temporaryDirectory() throws -> String {
        let path = testRunDirectory + "/\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func files(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// IDX image bytes: `count` images whose pixel j of image i is (i * 7 + j) % 256.
    static func imageFile(count: Int, rows: Int = 28, columns: Int = 28, magic: Int = 0x803) -> [UInt8] {
        var bytes = bigEndian(magic) + bigEndian(count) + bigEndian(rows) + bigEndian(columns)
        for i in 0..<count { for j in 0..<(rows * columns) { bytes.append(UInt8((i * 7 + j) % 256)) } }
        return bytes
    }

    /// IDX label bytes: label i is i % 10 unless `labels` is given.
    static func labelFile(count: Int, labels: [UInt8]? = nil, magic: Int = 0x801) -> [UInt8] {
        bigEndian(magic) + bigEndian(count) + (labels ?? (0..<count).map { UInt8($0 % 10) })
    }

    /// Raw names, dashed (`train-images-idx3-ubyte`) or dotted (`train-images.idx3-ubyte`),
    /// in DatasetKind.files order.
    static func rawNames(dotted: Bool) -> [String] {
        ["train-images", "train-labels", "t10k-images", "t10k-labels"].map { stem in
            let type = stem.hasSuffix("images") ? "idx3-ubyte" : "idx1-ubyte"
            return dotted ? "\(stem).\(type)" : "\(stem)-\(type)"
        }
    }

    /// Writes a valid small dataset (by default 3 train, 2 test images) under raw names;
    /// `replace` swaps in other bytes for a file, by index (0 train images ... 3 test labels).
    static func writeSmallDataset(in directory: String, dotted: Bool = false, trainCount: Int = 3, testCount: Int = 2,
                                  replace: [Int: [UInt8]] = [:]) throws -> [String] {
        let contents = [imageFile(count: trainCount), labelFile(count: trainCount),
                        imageFile(count: testCount), labelFile(count: testCount)]
        let paths = rawNames(dotted: dotted).map { directory + "/" + $0 }
        for (index, path) in paths.enumerated() { try write(replace[index] ?? contents[index], to: path) }
        return paths
    }
}
