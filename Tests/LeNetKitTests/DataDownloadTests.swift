import Foundation
@testable import LeNetKit
import Testing

/// Downloads from a local HTTP server on 127.0.0.1 serving the MNIST folder the tests use.
@Suite struct DataDownloadTests {
    let labels = "t10k-labels-idx1-ubyte.gz"
    let labelsChecksums = Checksums(compressed: "ec29112dd5afa0611ce80d1b7f02629c", content: "27ae3e4e09519cfbb04c329615203637")
    let images = "t10k-images-idx3-ubyte.gz"
    let imagesChecksums = Checksums(compressed: "9fb629c4189551a2d022fa330f9573f3", content: "2646ac647ad5339dbf082846283269ea")

    private func withServer<T>(_ body: (HTTPTestServer, String) throws -> T) throws -> T {
        let server = try HTTPTestServer(root: (try DataFixtures.mnistDirectory))
        defer { server.stop() }
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(server, directory)
    }

    private func downloader(_ mirrors: [URL], timeout: TimeInterval = 10) -> Downloader {
        Downloader(mirrors: mirrors, timeout: timeout, showsProgress: false)
    }

    private func sameBytes(_ a: String, _ b: String) -> Bool {
        FileManager.default.contentsEqual(atPath: a, andPath: b)
    }

    @Test func downloadsWholeDatasetIntoTorchvisionLayout() throws {
        try withServer { server, directory in
            var log: [String] = []
            let dataset = try Dataset.load(kind: .mnist, dataDirectory: directory,
                                           downloader: downloader([server.mirror(.serve)]), progress: { log.append($0) })
            let raw = directory + "/MNIST/raw"
            #expect(dataset.directory == raw)
            #expect(dataset.train.count == 60000 && dataset.test.count == 10000)
            // A recompressed .gz (as the CI copy of train-images is) is accepted by its content MD5.
            #expect(DataFixtures.files(in: raw) == [
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            ])
            #expect(log.filter { $0.hasPrefix("Downloading ") }.count == 4)
            // Present now: a second load downloads nothing.
            let before = server.requests.count
            _ = try Dataset.load(kind: .mnist, dataDirectory: directory, downloader: downloader([server.mirror(.serve)]))
            #expect(server.requests.count == before)
        }
    }

    @Test func corruptedFileIsRejectedAndNextMirrorTried() throws {
        try withServer { server, directory in
            #expect {
                try downloader([server.mirror(.corrupt)]).download(labels, checksums: labelsChecksums, into: directory)
            } throws: { "\($0)".contains("MD5 mismatch") }
            #expect(DataFixtures.files(in: directory).isEmpty)

            var log: [String] = []
            let path = try downloader([server.mirror(.corrupt), server.mirror(.serve)])
                .download(labels, checksums: labelsChecksums, into: directory, log: { log.append($0) })
            #expect(sameBytes(path, (try DataFixtures.mnistDirectory) + "/" + labels))
            #expect(server.requests.suffix(2) == ["corrupt/\(labels)", "serve/\(labels)"])
            #expect(log.contains { $0.contains("corrupt/\(labels)") && $0.contains("MD5 mismatch") })
            #expect(DataFixtures.files(in: directory) == [labels])
        }
    }

    @Test func connectionClosedMidFileLeavesNothing() throws {
        try withServer { server, directory in
            #expect(throws: DataError.self) {
                try downloader([server.mirror(.cutoff)]).download(images, checksums: imagesChecksums, into: directory)
            }
            #expect(DataFixtures.files(in: directory).isEmpty)

            let path = try downloader([server.mirror(.cutoff), server.mirror(.serve)])
                .download(images, checksums: imagesChecksums, into: directory)
            #expect(sameBytes(path, (try DataFixtures.mnistDirectory) + "/" + images))
            #expect(DataFixtures.files(in: directory) == [images])
        }
    }

    @Test func deadFirstMirrorFallsBackToSecond() throws {
        try withServer { server, directory in
            let path = try downloader([try HTTPTestServer.deadMirror(), server.mirror(.serve)])
                .download(labels, checksums: labelsChecksums, into: directory)
            #expect(sameBytes(path, (try DataFixtures.mnistDirectory) + "/" + labels))
        }
    }

    @Test func stalledServerTimesOut() throws {
        try withServer { server, directory in
            let start = Date()
            let path = try downloader([server.mirror(.stall), server.mirror(.serve)], timeout: 1)
                .download(labels, checksums: labelsChecksums, into: directory)
            #expect(Date().timeIntervalSince(start) < 5.5)
            #expect(sameBytes(path, (try DataFixtures.mnistDirectory) + "/" + labels))
        }
    }

    @Test func missingOnServerIsAnHTTPError() throws {
        try withServer { server, directory in
            #expect {
                try downloader([server.mirror(.serve)]).download("no-such-file.gz", checksums: labelsChecksums, into: directory)
            } throws: { "\($0)".contains("HTTP status 404") }
            #expect(DataFixtures.files(in: directory).isEmpty)
        }
    }

    @Test func noNetworkErrorSaysWhereToPutTheFiles() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dead = try HTTPTestServer.deadMirror()
        #expect {
            try Dataset.load(kind: .mnist, dataDirectory: directory, downloader: downloader([dead]))
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(directory + "/MNIST/raw/train-images-idx3-ubyte.gz: could not download")
                && text.contains("into \(directory)/MNIST/raw") && text.contains("https://ossci-datasets.s3.amazonaws.com/mnist/")
                && text.contains("t10k-labels-idx1-ubyte.gz") && !text.contains("\n")
        }
        #expect(DataFixtures.files(in: directory + "/MNIST/raw").isEmpty)
    }

    /// The MD5 the downloads are checked with (the system's libcrypto on Linux): RFC 1321's
    /// test suite, and a buffer longer than one 64-byte block with every byte value.
    @Test func md5MatchesRFC1321() {
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (text, expected) in suite { #expect(md5Hex(Array(text.utf8)) == expected, "\(text)") }
        #expect(md5Hex((0..<256).map { UInt8($0) }) == "e2c865db4162bed963bfaa9ef6ac18f0")
    }
}
