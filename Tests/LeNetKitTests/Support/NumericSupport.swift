import Foundation
@testable import LeNetKit

/// Random test data from a fixed seed.
struct TestRandom {
    var generator: RandomGenerator
    init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in generator.nextUniform(range.lowerBound, range.upperBound) }
    }
    mutating func int(below bound: Int) -> Int { generator.nextIndex(below: bound) }
    /// A split of `count` random images (every pixel, then every label, drawn in order).
    mutating func split(name: String = "synthetic", count: Int) throws -> DataSplit {
        let pixels = (0..<count * DataSplit.pixelsPerImage).map { _ in UInt8(int(below: 256)) }
        return try DataSplit(name: name, pixels: pixels, labels: (0..<count).map { _ in UInt8(int(below: 10)) })
    }
}

/// The largest |a - b| / max(1, |b|) over two arrays of equal length.
func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    var worst: Float = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
    return worst
}

/// Central-difference gradient of a scalar function of `x`, perturbing each entry by ±h.
/// The function is evaluated in Double so only the forward's Float32 rounding adds noise.
func numericGradient(_ x: inout [Float], h: Float = 1e-2, _ f: ([Float]) -> Double) -> [Float] {
    var grad = [Float](repeating: 0, count: x.count)
    for i in x.indices {
        let saved = x[i]
        x[i] = saved + h
        let plus = f(x)
        x[i] = saved - h
        let minus = f(x)
        x[i] = saved
        grad[i] = Float((plus - minus) / Double(2 * h))
    }
    return grad
}

/// Asserts analytic and numeric gradients agree within atol + rtol·|numeric|, and reports the worst entry.
func gradientMismatch(_ analytic: [Float], _ numeric: [Float], atol: Float = 2e-3, rtol: Float = 2e-2) -> String? {
    for i in analytic.indices {
        let a = analytic[i], n = numeric[i]
        if abs(a - n) > atol + rtol * abs(n) { return "entry \(i): analytic \(a), numeric \(n)" }
    }
    return nil
}

/// Σ y·r: a scalar whose gradient w.r.t. y is r, to test a backward pass with any upstream gradient.
func dot(_ y: [Float], _ r: [Float]) -> Double { zip(y, r).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

/// The repository's Tests/LeNetKitTests/Fixtures folder, found from this file's path at
/// build time, or the folder LENET_TEST_FIXTURES names: tests built here and run from a
/// copy of the repository elsewhere (a lent GPU machine: Scripts/gpu/device_run.sh).
let fixturesDirectory: String = {
    if let folder = ProcessInfo.processInfo.environment["LENET_TEST_FIXTURES"], !folder.isEmpty { return folder }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path
}()

/// A golden file written by Scripts/fixtures/make_fixtures.py (PyTorch), read by name.
struct GoldenFile {
    let file: SafeTensorsFile
    init(_ name: String) throws { file = try SafeTensorsFile(contentsOf: fixturesDirectory + "/" + name) }

    /// The tensor `name` as floats; a name the file lacks is an error naming it.
    func floats(_ name: String) throws -> [Float] {
        guard let tensor = file.tensors[name] else { throw ParameterStoreError.missing(name) }
        return try tensor.floats()
    }

    /// The batch's class labels (the int64 tensor `target`).
    func labels() throws -> [Int32] {
        guard let tensor = file.tensors["target"] else { throw ParameterStoreError.missing("target") }
        return try tensor.int64s().map { Int32($0) }
    }
}
