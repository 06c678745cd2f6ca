import CPNG
import Foundation
@testable import LeNetKit
import Testing

/// PNG grid and terminal drawing of sample images.
@Suite struct DataOutputTests {
    /// Reads a PNG back with libpng's simplified API as 8-bit grey.
    private func readGreyPNG(_ path: String) throws -> GreyImage {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else { throw ServerError("cannot read \(path)") }
        image.format = png_uint_32(PNG_FORMAT_GRAY)
        var pixels = [UInt8](repeating: 0, count: Int(image.width * image.height))
        let ok = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw ServerError("cannot decode \(path)") }
        return GreyImage(width: Int(image.width), height: Int(image.height), pixels: pixels)
    }

    @Test func pngRoundTrips() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/grey.png"
        let original = GreyImage(width: 7, height: 5, pixels: (0..<35).map { UInt8($0 * 7) })
        try original.writePNG(to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(bytes[12..<16]) == Array("IHDR".utf8))
        #expect(try readGreyPNG(path) == original)
        #expect(DataFixtures.files(in: directory) == ["grey.png"])  // no temporary left
    }

    @Test func pngWriteErrorsNameTheFile() {
        #expect { try writePNG(grey: [1, 2], width: 3, height: 1, to: "/tmp/x.png") } throws: { "\($0)".hasPrefix("/tmp/x.png: ") }
        #expect { try writePNG(grey: [0], width: 1, height: 1, to: "/no/such/dir/x.png") } throws: { "\($0)".hasPrefix("/no/such/dir/x.png: ") }
    }

    @Test func gridIsDarkOnWhiteTwoRowsOfTen() throws {
        // 20 images: image i is all ink except its first pixel.
        var images = [Float](repeating: 1, count: 20 * 784)
        for i in 0..<20 { images[i * 784] = 0 }
        let grid = images.withUnsafeBufferPointer { ImageGrid.make(images: $0, count: 20, perRow: 10, scale: 2, gap: 4) }
        #expect(grid.width == 4 + 10 * (56 + 4))
        #expect(grid.height == 4 + 2 * (56 + 4))
        #expect(grid.pixels[0] == 255)  // white border
        let secondRowSecondImage = (4 + 60 + 10) * grid.width + (4 + 60 + 10)
        #expect(grid.pixels[secondRowSecondImage] == 0)  // ink is black
        #expect(grid.pixels[4 * grid.width + 4] == 255)  // the blank first pixel, scaled 2x
        #expect(grid.pixels[5 * grid.width + 5] == 255)
    }

    /// With captions, each image's label is drawn in the digit font under it, dark on white.
    @Test func gridDrawsEachLabelUnderItsImage() throws {
        let images = [Float](repeating: 0, count: 3 * 784)  // blank images: only labels are ink
        let grid = images.withUnsafeBufferPointer {
            ImageGrid.make(images: $0, count: 3, perRow: 3, scale: 2, gap: 4, captions: ["7", "1", "7"])
        }
        #expect(grid.width == 4 + 3 * (56 + 4))
        #expect(grid.height == 4 + 56 + 4 + 5 * 2 + 4)  // image, gap, label, gap
        // The label band under image i, as rows of 0 (white) and 1 (ink).
        func band(_ i: Int) -> [[Int]] {
            let left = 4 + i * 60, top = 4 + 56 + 4
            return (0..<10).map { (y: Int) -> [Int] in
                (0..<56).map { (x: Int) -> Int in grid.pixels[(top + y) * grid.width + left + x] == 0 ? 1 : 0 }
            }
        }
        #expect(band(0) == band(2) && band(0) != band(1))
        // "7" is the font's glyph scaled twice, centred under the 56-pixel image: columns 25...30.
        let seven = band(0).map { Array($0[25..<31]) }
        #expect(seven[0] == [1, 1, 1, 1, 1, 1] && seven[2] == [0, 0, 0, 0, 1, 1] && seven[9] == [0, 0, 0, 0, 1, 1])
        let inkUnderTheFirstImage: Int = band(0).joined().reduce(0, +), inkOfTheSeven: Int = seven.joined().reduce(0, +)
        #expect(inkUnderTheFirstImage == inkOfTheSeven)  // nothing drawn elsewhere
        // Without captions the grid is as before: no label band.
        let plain = images.withUnsafeBufferPointer { ImageGrid.make(images: $0, count: 3, perRow: 3, scale: 2, gap: 4) }
        #expect(plain.height == 4 + 56 + 4 && plain.pixels.allSatisfy { $0 == 255 })
    }

    @Test func terminalDrawingFitsTheWidth() {
        #expect(TerminalImage.imagesPerLine(columns: 80) == 5)  // 5 x 14 + 4 spaces = 74
        #expect(TerminalImage.imagesPerLine(columns: 149) == 10)
        #expect(TerminalImage.imagesPerLine(columns: 10) == 1)
    }

    @Test func terminalDrawingUsesQuadrants() {
        var images = [Float](repeating: 0, count: 2 * 784)
        for j in 0..<784 { images[784 + j] = 1 }
        let text = images.withUnsafeBufferPointer { TerminalImage.render(images: $0, count: 2, captions: ["0", "1"]) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 15)  // caption + 14 character rows
        #expect(lines[1] == Substring(String(repeating: " ", count: 14) + " " + String(repeating: "█", count: 14)))
    }
}
