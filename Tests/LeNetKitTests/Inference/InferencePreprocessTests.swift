import Foundation
@testable import LeNetKit
import Testing

/// MNISTPreprocessor's properties on MNIST test digits drawn large and moved about.
@Suite struct InferencePreprocessTests {
    /// Centre of mass in pixel-index coordinates (as MNIST's own average (14.0, 14.0)).
    static func centreOfMass(_ image: [Float], side: Int = 28) -> (x: Double, y: Double) {
        var mass = 0.0, x = 0.0, y = 0.0
        for row in 0..<side {
            for column in 0..<side {
                let value = Double(image[row * side + column])
                mass += value; x += value * Double(column); y += value * Double(row)
            }
        }
        return (x / mass, y / mass)
    }

    /// Width and height of the box around every non-zero pixel.
    static func boundingBox(_ image: [Float], side: Int = 28) -> (width: Int, height: Int) {
        let rows = (0..<side).filter { r in (0..<side).contains { image[r * side + $0] > 0 } }
        let columns = (0..<side).filter { c in (0..<side).contains { image[$0 * side + c] > 0 } }
        return ((columns.last ?? -1) - (columns.first ?? 0) + 1, (rows.last ?? -1) - (rows.first ?? 0) + 1)
    }

    static func digits(_ count: Int) throws -> [(GreyImage, Int)] {
        let test = try DataFixtures.mnist.get().test
        return (0..<count).map { i in
            (DigitPictures.draw(test, index: i, scale: 4, shift: (i * 7 % 30, i * 13 % 30), dilation: 1, darkOnLight: true, canvas: 150),
             Int(test.labels[i]))
        }
    }

    @Test func centreOfMassAndBoxSize() throws {
        let preprocessor = MNISTPreprocessor()
        for (image, _) in try Self.digits(50) {
            let prepared = try preprocessor.prepare(image)
            #expect(prepared.count == 784 && prepared.allSatisfy { (0...1).contains($0) })
            #expect(abs((prepared.max() ?? 0) - 1) < 1e-6)
            let (x, y) = Self.centreOfMass(prepared)
            #expect(abs(x - 14) <= 0.5 && abs(y - 14) <= 0.5, "centre of mass (\(x), \(y))")
            let box = Self.boundingBox(prepared)
            #expect(max(box.width, box.height) == 20, "box \(box)")
        }
    }

    @Test func invertedInputGivesTheSameImage() throws {
        let preprocessor = MNISTPreprocessor()
        for (image, _) in try Self.digits(20) {
            let inverted = GreyImage(width: image.width, height: image.height, pixels: image.pixels.map { 255 - $0 })
            #expect(try preprocessor.prepare(image) == preprocessor.prepare(inverted))
        }
    }

    @Test func shiftedInputGivesTheSameImage() throws {
        let preprocessor = MNISTPreprocessor()
        let test = try DataFixtures.mnist.get().test
        for i in 0..<20 {
            let first = DigitPictures.draw(test, index: i, scale: 3, shift: (0, 0), dilation: 0, darkOnLight: true, canvas: 120)
            let moved = DigitPictures.draw(test, index: i, scale: 3, shift: (31, 17), dilation: 0, darkOnLight: true, canvas: 120)
            #expect(first != moved)
            #expect(try preprocessor.prepare(first) == preprocessor.prepare(moved))
        }
    }

    @Test func mnistDigitsStayCloseToThemselves() throws {
        // An MNIST digit already prepared comes back nearly unchanged.
        let test = try DataFixtures.mnist.get().test
        let preprocessor = MNISTPreprocessor()
        var total = 0.0
        for i in 0..<100 {
            let pixels = Array(test.pixels[(i * 784)..<((i + 1) * 784)])
            let original = pixels.map { Float($0) / 255 }
            let prepared = try preprocessor.prepare(GreyImage(width: 28, height: 28, pixels: pixels))
            total += zip(original, prepared).map { Double(abs($0 - $1)) }.reduce(0, +) / 784
        }
        #expect(total / 100 < 0.08, "mean absolute difference \(total / 100)")
    }

    @Test func aspectRatioIsKept() throws {
        // A 10x60 bar becomes a bar 20 tall and about 3 wide.
        var pixels = [UInt8](repeating: 255, count: 100 * 100)
        for y in 20..<80 { for x in 45..<55 { pixels[y * 100 + x] = 0 } }
        let prepared = try MNISTPreprocessor().prepare(GreyImage(width: 100, height: 100, pixels: pixels))
        let box = Self.boundingBox(prepared)
        #expect(box.height == 20 && (3...4).contains(box.width), "box \(box)")
    }

    @Test(arguments: [UInt8(0), 128, 255])
    func blankImagesAreErrors(_ level: UInt8) {
        let blank = GreyImage(width: 40, height: 30, pixels: [UInt8](repeating: level, count: 1200))
        #expect { try MNISTPreprocessor().prepare(blank, name: "blank.png") } throws: { error in
            "\(error)".hasPrefix("blank.png: blank image")
        }
    }

    @Test func tinyImagesWork() throws {
        // One pixel is all border: nothing stands out from the background.
        #expect(throws: InferenceError.self) { try MNISTPreprocessor().prepare(GreyImage(width: 1, height: 1, pixels: [0])) }
        var pixels = [UInt8](repeating: 255, count: 9)
        pixels[4] = 0
        let centred = try MNISTPreprocessor().prepare(GreyImage(width: 3, height: 3, pixels: pixels))
        let (x, y) = Self.centreOfMass(centred)
        #expect(abs(x - 14) <= 0.5 && abs(y - 14) <= 0.5)
    }
}

/// MNIST test digits drawn as people's pictures: enlarged (bilinear), thickened, shifted
/// on a larger canvas, optionally dark on light.
enum DigitPictures {
    static func draw(_ split: DataSplit, index: Int, scale: Int, shift: (x: Int, y: Int), dilation: Int,
                     darkOnLight: Bool, canvas: Int) -> GreyImage {
        let side = 28 * scale
        var large = [Float](repeating: 0, count: side * side)
        for y in 0..<side {
            let sy = min(max(0, (Double(y) + 0.5) / Double(scale) - 0.5), 27)
            let y0 = Int(sy), y1 = min(27, y0 + 1), fy = Float(sy - Double(y0))
            for x in 0..<side {
                let sx = min(max(0, (Double(x) + 0.5) / Double(scale) - 0.5), 27)
                let x0 = Int(sx), x1 = min(27, x0 + 1), fx = Float(sx - Double(x0))
                func p(_ yy: Int, _ xx: Int) -> Float { Float(split.pixels[index * 784 + yy * 28 + xx]) / 255 }
                large[y * side + x] = (p(y0, x0) * (1 - fx) + p(y0, x1) * fx) * (1 - fy) + (p(y1, x0) * (1 - fx) + p(y1, x1) * fx) * fy
            }
        }
        if dilation > 0 {
            var thick = large
            for y in 0..<side {
                for x in 0..<side {
                    var best: Float = 0
                    for dy in -dilation...dilation {
                        for dx in -dilation...dilation {
                            let yy = y + dy, xx = x + dx
                            if yy >= 0, yy < side, xx >= 0, xx < side { best = max(best, large[yy * side + xx]) }
                        }
                    }
                    thick[y * side + x] = best
                }
            }
            large = thick
        }
        var pixels = [UInt8](repeating: darkOnLight ? 255 : 0, count: canvas * canvas)
        for y in 0..<side where y + shift.y < canvas {
            for x in 0..<side where x + shift.x < canvas {
                let ink = UInt8((large[y * side + x] * 255).rounded())
                pixels[(y + shift.y) * canvas + x + shift.x] = darkOnLight ? 255 - ink : ink
            }
        }
        return GreyImage(width: canvas, height: canvas, pixels: pixels)
    }
}
