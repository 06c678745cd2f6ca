import Foundation
@testable import LeNetKit
import Testing

/// The real MNIST files (`DataFixtures.mnistDirectory`).
@Suite struct DataLoadTests {
    @Test func loadsMNIST() throws {
        let dataset = try DataFixtures.mnist.get()
        #expect(dataset.train.count == 60000)
        #expect(dataset.test.count == 10000)
        #expect(dataset.train.pixels.count == 60000 * 784)
        #expect(dataset.train.classCounts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(dataset.test.classCounts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        #expect(dataset.train.labels.prefix(5) == [5, 0, 4, 1, 9])
        #expect(dataset.test.labels.prefix(3) == [7, 2, 1])
        #expect(dataset.train.pixels.max() == 255)
    }

    @Test func verifyPassesOnMNIST() throws {
        let checks = try Dataset.verify(kind: .mnist, dataDirectory: (try DataFixtures.mnistDirectory))
        #expect(checks.count == 4)
        for check in checks {
            #expect(check.problem == nil, "\(check.path): \(String(describing: check.problem))")
            #expect(check.summary.contains("MD5 of content matches"))
        }
    }

    @Test func verifyReportsAChecksumMismatch() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try DataFixtures.writeSmallDataset(in: directory)
        let checks = try Dataset.verify(kind: .mnist, dataDirectory: directory)
        #expect(checks.allSatisfy { $0.problem?.message.contains("MD5 of content is") == true })
    }

    @Test func gatherConvertsExactly() throws {
        let pixels = (0..<(3 * 784)).map { UInt8($0 % 256) }
        let split = try DataSplit(name: "tiny", pixels: pixels, labels: [4, 7, 9])
        let order: [Int32] = [2, 0, 1]
        var images = [Float](repeating: -1, count: 2 * 784)
        var labels = [Int32](repeating: -1, count: 2)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                split.gather(order: order, range: 1..<3, images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!)
            }
        }
        #expect(labels == [4, 7])
        for slot in 0..<2 {
            let index = Int(order[1 + slot])
            for j in 0..<784 {
                #expect(images[slot * 784 + j] == Float(pixels[index * 784 + j]) / 255)
            }
        }
        #expect(images.contains(1.0) && images.contains(0.0))
    }

    @Test func splitInitRejectsInconsistentBuffers() {
        #expect(throws: DataError.self) { try DataSplit(name: "x", pixels: [0, 1], labels: [0]) }
        #expect(throws: DataError.self) { try DataSplit(name: "x", pixels: [UInt8](repeating: 0, count: 784), labels: [12]) }
    }
}

/// Loading all 70,000 images must stay well under a second in a release build.
@Suite struct DataLoadTimeTests {
    @Test func loadsQuickly() throws {
        let clock = ContinuousClock()
        var best = Duration.seconds(1000)
        for _ in 0..<3 {
            let start = clock.now
            let dataset = try Dataset.load(kind: .mnist, dataDirectory: (try DataFixtures.mnistDirectory), download: false)
            best = min(best, clock.now - start)
            #expect(dataset.train.count + dataset.test.count == 70000)
        }
        print("Loading MNIST (70,000 images, gzip): best of 3 \(best)")
        // Generous bound: debug builds and a busy machine are slower than the ~0.2 s release figure.
        #expect(best < .seconds(3))
    }
}
