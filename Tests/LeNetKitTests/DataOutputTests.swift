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

    @Test func terminalDrawingUsesQuadrants() {
        var images = [Float](repeating: 0, count: 2 * 784)
        for j in 0..<784 { images[784 + j] = 1 }
        let text = images.withUnsafeBufferPointer { TerminalImage.render(images: $0, count: 2, captions: ["0", "1"]) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 15)  // caption + 14 character rows
        #expect(lines[1] == Substring(String(repeating: " ", count: 14) + " " + String(repeating: "█", count: 14)))
    }
}
