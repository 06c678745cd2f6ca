import Foundation
@testable import LeNetKit
import Testing

/// ImageDecoder on the fixtures of Scripts/fixtures/make_image_fixtures.py: every PNG colour type,
/// bit depth, palette, transparency and interlacing, PGM/PPM, and malformed files.
@Suite struct InferenceDecoderTests {
    static let directory = DataFixtures.packageRoot + "/Tests/LeNetKitTests/Fixtures/images"

    struct Expected: Decodable {
        let width: Int
        let height: Int
        let grey: [Int]
    }

    static let expected: [String: Expected] = {
        guard let data = FileManager.default.contents(atPath: directory + "/expected.json"),
              let table = try? JSONDecoder().decode([String: Expected].self, from: data) else { return [:] }
        return table
    }()

    @Test func fixturesArePresent() {
        #expect(Self.expected.count >= 25)
        for name in ["gray1.png", "gray16.png", "palette2.png", "ga16.png", "rgba8-interlaced.png", "plain.ppm"] {
            #expect(Self.expected[name] != nil, "\(name) missing from expected.json")
        }
    }

    @Test(arguments: expected.keys.sorted())
    func decodesToTheExpectedGreyLevels(_ name: String) throws {
        let image = try ImageDecoder.decode(contentsOf: Self.directory + "/" + name)
        let want = try #require(Self.expected[name])
        #expect(image.width == want.width && image.height == want.height)
        let worst = zip(image.pixels, want.grey).map { abs(Int($0) - $1) }.max() ?? 999
        #expect(image.pixels.count == want.grey.count && worst <= 1, "\(name): largest difference \(worst)")
    }

    @Test(arguments: [
        ("bad-truncated.png", "PNG"), ("bad-crc.png", "PNG"), ("bad-signature.png", "not a PNG"),
        ("bad-header-only.png", "PNG"), ("bad-oversized.png", "10000x10000"), ("bad-truncated.pgm", "truncated"),
        ("bad-maxval.pgm", "maximum value"), ("bad-sample.pgm", "exceeds"), ("bad-text.pgm", "not a PNG"),
        ("bad-bitmap.pbm", "P1"), ("bad-empty.png", "empty"), ("no-such-file.png", "no such file"),
    ])
    func malformedFilesGiveOneLineNamingTheFile(_ name: String, _ phrase: String) {
        let path = Self.directory + "/" + name
        do {
            let image = try ImageDecoder.decode(contentsOf: path)
            Issue.record("\(name) decoded as \(image.width)x\(image.height)")
        } catch let error as InferenceError {
            #expect(error.file == path)
            #expect(error.description.hasPrefix(path + ": "))
            #expect(error.description.contains(phrase), "\(error)")
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("\(name): unexpected error \(error)")
        }
    }

    @Test func directoriesAndHugeDimensionsAreRefused() throws {
        #expect(throws: InferenceError.self) { try ImageDecoder.decode(contentsOf: Self.directory) }
        let header = Array("P5\n9000 10\n255\n".utf8) + [UInt8](repeating: 0, count: 90_000)
        #expect { try ImageDecoder.decode(header, name: "wide.pgm") } throws: { error in
            "\(error)".contains("9000x10") && "\(error)".contains("8192")
        }
    }

    /// A PGM/PPM header of a few bytes can claim 8192x8192x3 samples: the decoder refuses it
    /// as truncated before allocating for them (it used to allocate 1.6 GB first; the seeds
    /// Fuzz/Corpus/FuzzImage/oom-* trip the fuzzer's malloc limit on that).
    @Test(arguments: [
        ("P6 8192 8192 255\n", "0 bytes of pixel data, expected 201326592"),
        ("P5 8192 8192 65535\n\u{0}\u{1}", "2 bytes of pixel data, expected 134217728"),
        ("P3 8192 8192 255\n1 2 3", "6 bytes after the header cannot hold 201326592 samples"),
        ("P2 2 2 255\n1 2 3 ", "7 bytes after the header cannot hold 4 samples"),
    ])
    func headersClaimingMorePixelsThanTheFileHoldsAreTruncated(_ text: String, _ phrase: String) {
        #expect { try ImageDecoder.decode(Array(text.utf8), name: "big.pnm") } throws: { error in
            "\(error)".hasPrefix("big.pnm: truncated: ") && "\(error)".contains(phrase)
        }
    }

    /// A PNG chunk: length, type, data, and a CRC (zeros: the decoder's own checks come first).
    static func chunk(_ type: String, _ data: [UInt8], claimedLength: Int? = nil) -> [UInt8] {
        DataFixtures.bigEndian(claimedLength ?? data.count) + Array(type.utf8) + data + [0, 0, 0, 0]
    }

    static func pngHeader(width: Int, height: Int) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", DataFixtures.bigEndian(width) + DataFixtures.bigEndian(height) + [16, 6, 0, 0, 0])
    }

    /// Every chunk's length, known type or not, is checked against the bytes present before
    /// libpng sees the file, so a file of a few dozen bytes cannot make it allocate what a
    /// length claims.
    @Test(arguments: [
        (chunk("zzZz", [1, 2], claimedLength: 0x7FFF_FFF0) + chunk("IEND", []), "chunk zzZz at byte 33 claims 2147483632 bytes, only 14 are left"),
        (chunk("IDAT", [1, 2, 3], claimedLength: 1 << 30), "chunk IDAT at byte 33 claims 1073741824 bytes, only 3 are left"),
        (chunk("IDAT", [1, 2, 3], claimedLength: 0xFFFF_FFFF), "chunk IDAT at byte 33 claims 4294967295 bytes"),
        (chunk("tEXt", Array("a\u{0}b".utf8)), "the file ends at byte 48 before the IEND chunk"),
        (chunk("t3Xt", []) + chunk("IEND", []), "the chunk at byte 33 has no valid type"),
    ])
    func pngChunkLengthsAreCheckedAgainstTheFile(_ chunks: [UInt8], _ phrase: String) {
        let bytes = Self.pngHeader(width: 10, height: 10) + chunks
        #expect { try ImageDecoder.decode(bytes, name: "crafted.png") } throws: { error in
            "\(error)".hasPrefix("crafted.png: ") && "\(error)".contains("PNG") && "\(error)".contains(phrase)
        }
    }

    /// The pixel budget is applied to the header, before anything is allocated for pixels:
    /// a 45-byte PNG claiming 8192x8192 at 16 bits is refused as too large.
    @Test func picturesOverThePixelBudgetAreRefusedFromTheirHeader() throws {
        let huge = Self.pngHeader(width: 8192, height: 8192) + Self.chunk("IEND", [])
        #expect(huge.count < 200)
        #expect { try ImageDecoder.decode(huge, name: "huge.png") } throws: { error in
            let error = error as? InferenceError
            return error?.isTooLarge == true && error?.message.hasPrefix("image is 8192x8192 = 67108864 pixels; at most 33554432") == true
        }
        // A real 40x40 picture within and over a budget; PGM likewise.
        let path = try DataFixtures.temporaryDirectory() + "/forty.png"
        try writePNG(grey: [UInt8](repeating: 200, count: 1600), width: 40, height: 40, to: path)
        #expect(try ImageDecoder.decode(contentsOf: path, maxPixels: 1600).width == 40)
        #expect { try ImageDecoder.decode(contentsOf: path, maxPixels: 1599) } throws: { ($0 as? InferenceError)?.isTooLarge == true }
        let pgm = Array("P5 100 100 255\n".utf8) + [UInt8](repeating: 7, count: 10_000)
        #expect(try ImageDecoder.decode(pgm, name: "a.pgm", maxPixels: 10_000).height == 100)
        #expect { try ImageDecoder.decode(pgm, name: "a.pgm", maxPixels: 9_999) } throws: { ($0 as? InferenceError)?.isTooLarge == true }
    }

    /// A FIFO or a device given as a picture is refused without opening it.
    @Test func fifosAndDevicesAreNotOpened() throws {
        let fifo = try DataFixtures.temporaryDirectory() + "/digit.png"
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect { try ImageDecoder.decode(contentsOf: fifo) } throws: { "\($0)".hasPrefix("\(fifo): not a regular file: it is a FIFO") }
        #expect { try ImageDecoder.decode(contentsOf: "/dev/zero") } throws: { "\($0)".hasPrefix("/dev/zero: not a regular file: it is a device") }
    }

    @Test func pngWrittenByLeNetKitRoundTrips() throws {
        let path = try DataFixtures.temporaryDirectory() + "/round.png"
        let pixels = (0..<(37 * 23)).map { (i: Int) -> UInt8 in UInt8((i * 7) % 256) }
        try writePNG(grey: pixels, width: 37, height: 23, to: path)
        let image = try ImageDecoder.decode(contentsOf: path)
        #expect(image == GreyImage(width: 37, height: 23, pixels: pixels))
    }
}
