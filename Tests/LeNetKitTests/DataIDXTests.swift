import Foundation
@testable import LeNetKit
import Testing

/// Strict IDX validation: every malformed input is a one-line error naming the file.
@Suite struct DataIDXTests {
    /// Loads a small dataset whose file `index` is replaced by `bytes` (written under
    /// `name`, default the raw dashed name) and returns the error's description.
    private func loadError(replacing index: Int, with bytes: [UInt8], name: String? = nil) throws -> (path: String, description: String) {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var paths = try DataFixtures.writeSmallDataset(in: directory)
        if let name {
            try FileManager.default.removeItem(atPath: paths[index])
            paths[index] = directory + "/" + name
        }
        try DataFixtures.write(bytes, to: paths[index])
        do {
            _ = try Dataset.load(dataDirectory: directory, download: false)
        } catch let error as DataError {
            #expect(error.file == paths[index])
            return (paths[index], error.description)
        }
        Issue.record("loading should have failed")
        return (paths[index], "")
    }

    private func expectError(replacing index: Int, with bytes: [UInt8], name: String? = nil, saying fragment: String) throws {
        let (path, description) = try loadError(replacing: index, with: bytes, name: name)
        #expect(description.hasPrefix(path + ": "), "\(description)")
        #expect(description.contains(fragment), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test func smallDatasetLoads() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try DataFixtures.writeSmallDataset(in: directory)
        let dataset = try Dataset.load(dataDirectory: directory, download: false)
        #expect(dataset.train.count == 3 && dataset.test.count == 2)
        #expect(dataset.train.pixels.count == 3 * 784)
        #expect(dataset.train.pixels[784 + 5] == UInt8((7 + 5) % 256))
        #expect(dataset.test.labels == [0, 1])
    }

    @Test func wrongMagic() throws {
        try expectError(replacing: 0, with: DataFixtures.imageFile(count: 3, magic: 0x801),
                        saying: "wrong magic number 0x00000801, expected 0x00000803")
        try expectError(replacing: 1, with: DataFixtures.labelFile(count: 3, magic: 0x803),
                        saying: "wrong magic number 0x00000803, expected 0x00000801")
    }

    @Test func truncatedAndTooLong() throws {
        try expectError(replacing: 0, with: Array(DataFixtures.imageFile(count: 3).dropLast()),
                        saying: "truncated: 2367 bytes, expected 2368 for 3 images")
        try expectError(replacing: 3, with: DataFixtures.labelFile(count: 2) + [1], saying: "too long")
        try expectError(replacing: 2, with: [0, 0, 8, 3, 0], saying: "shorter than the 16-byte IDX image header")
    }

    @Test func countMismatchNamesTheLabelFile() throws {
        let (path, description) = try loadError(replacing: 1, with: DataFixtures.labelFile(count: 2))
        #expect(description.hasPrefix(path + ": holds 2 labels but "))
        #expect(description.hasSuffix("train-images-idx3-ubyte holds 3 images"))
    }

    @Test func labelOutOfRange() throws {
        let (path, description) = try loadError(replacing: 1, with: DataFixtures.labelFile(count: 3, labels: [0, 1, 10]))
        #expect(description == "\(path): label 10 at index 2 is outside 0-9")
    }

    @Test func emptyFile() throws {
        try expectError(replacing: 2, with: [], saying: "file is empty")
        try expectError(replacing: 2, with: [], name: "t10k-images-idx3-ubyte.gz", saying: "file is empty")
    }

    @Test func zeroCount() throws {
        try expectError(replacing: 0, with: DataFixtures.imageFile(count: 0), saying: "holds no images")
    }

    @Test func wrongDimensions() throws {
        try expectError(replacing: 0, with: DataFixtures.imageFile(count: 3, rows: 28, columns: 27),
                        saying: "images are 28x27, expected 28x28")
    }

    @Test func badGzip() throws {
        let real = try [UInt8](Data(contentsOf: URL(fileURLWithPath: (try DataFixtures.mnistDirectory) + "/t10k-labels-idx1-ubyte.gz")))
        // Not gzip at all, though named .gz.
        try expectError(replacing: 3, with: [1, 2, 3, 4, 5], name: "t10k-labels-idx1-ubyte.gz", saying: "not gzip data")
        // A minimal gzip header (no file name) followed by garbage.
        try expectError(replacing: 3, with: [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3] + [UInt8](repeating: 0xFF, count: 64),
                        name: "t10k-labels-idx1-ubyte.gz", saying: "invalid gzip data")
        // A real file cut in half.
        try expectError(replacing: 3, with: Array(real[..<(real.count / 2)]), name: "t10k-labels-idx1-ubyte.gz",
                        saying: "gzip data is truncated")
        // Trailing garbage after a complete member.
        try expectError(replacing: 3, with: real + [0, 1, 2], name: "t10k-labels-idx1-ubyte.gz", saying: "stray bytes")
    }

    /// `bytes` compressed by the system's gzip.
    static func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try DataFixtures.write(bytes, to: directory + "/content")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -c -9 content > content.gz"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/content.gz")))
    }

    /// Inflating is bounded whatever the trailers say: 70 members of 1 MiB of zeros each (a
    /// 70 KB file; each trailer honestly says 1 MiB) inflate past the 64 MiB limit and are
    /// refused there (the cap used to be checked only before doubling, up to 1 GiB); a trailer
    /// claiming 4 GiB sizes nothing beyond the limit and is found to lie by zlib.
    @Test func gzipContentIsBoundedWhateverTheTrailerSays() throws {
        let member = try Self.gzipped([UInt8](repeating: 0, count: 1 << 20))
        #expect(member.count < 2000)
        let bomb = [[UInt8]](repeating: member, count: 70).flatMap { $0 }
        #expect {
            try IDXFile.content(ofFile: bomb, path: "bomb.gz")
        } throws: { error in
            "\(error)" == "bomb.gz: decompresses to more than \(IDXFile.maximumContentBytes) bytes, the limit for an IDX file"
        }
        var lying = try Self.gzipped(DataFixtures.labelFile(count: 2))
        lying.replaceSubrange((lying.count - 4)..., with: [0xF0, 0xFF, 0xFF, 0xFF])
        #expect {
            try IDXFile.content(ofFile: lying, path: "lying.gz")
        } throws: { error in
            "\(error)" == "lying.gz: invalid gzip data: incorrect length check"
        }
        // Within the limit, many members are still one file's content.
        let fine = [[UInt8]](repeating: member, count: 3).flatMap { $0 }
        #expect(try IDXFile.content(ofFile: fine, path: "fine.gz").count == 3 << 20)
    }

    /// A FIFO or a device where a data file is expected is refused without opening it
    /// (opening a FIFO for reading would wait for a writer forever).
    @Test func fifosAndDevicesAreRefusedBeforeTheyAreOpened() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/train-images-idx3-ubyte"
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect { try IDXFile.readImages(fifo) } throws: { "\($0)" == "\(fifo): not a regular file: it is a FIFO (named pipe), which would block waiting for a writer" }
        #expect { try IDXFile.readLabels("/dev/zero") } throws: { "\($0)" == "/dev/zero: not a regular file: it is a device" }
        #expect { try IDXFile.readLabels(directory) } throws: { "\($0)" == "\(directory): not a regular file: it is a directory" }
    }

    @Test func bothNamingsRaw() throws {
        for dotted in [false, true] {
            let directory = try DataFixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let paths = try DataFixtures.writeSmallDataset(in: directory, dotted: dotted)
            let dataset = try Dataset.load(dataDirectory: directory, download: false)
            #expect(dataset.train.count == 3)
            #expect(Dataset.find(kind: .mnist, dataDirectory: directory)?.paths == paths)
        }
    }

    /// The shared .gz files under both namings, and the torchvision layout DIR/MNIST/raw.
    @Test func bothNamingsGzipAndTorchvisionLayout() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let raw = directory + "/MNIST/raw"
        try FileManager.default.createDirectory(atPath: raw, withIntermediateDirectories: true)
        for (dashed, dotted) in zip(DataFixtures.rawNames(dotted: false), DataFixtures.rawNames(dotted: true)) {
            try FileManager.default.createSymbolicLink(atPath: raw + "/" + dotted + ".gz",
                                                       withDestinationPath: (try DataFixtures.mnistDirectory) + "/" + dashed + ".gz")
        }
        let dataset = try Dataset.load(dataDirectory: directory, download: false)
        #expect(dataset.directory == raw)
        #expect(dataset.test.count == 10000)
    }

    @Test func missingFilesSayWhereToPutThem() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect {
            try Dataset.load(dataDirectory: directory, download: false)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(directory + "/MNIST/raw: ") && text.contains("train-images-idx3-ubyte.gz")
                && text.contains("https://ossci-datasets.s3.amazonaws.com/mnist/") && !text.contains("\n")
        }
    }
}
