import Foundation
import LeNetKit
import Testing

/// ImageDecoder on the fixtures of Scripts/make_image_fixtures.py: every PNG colour type,
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

    @Test func pngWrittenByLeNetKitRoundTrips() throws {
        let path = try DataFixtures.temporaryDirectory() + "/round.png"
        let pixels = (0..<(37 * 23)).map { UInt8(($0 * 7) % 256) }
        try writePNG(grey: pixels, width: 37, height: 23, to: path)
        let image = try ImageDecoder.decode(contentsOf: path)
        #expect(image == GreyImage(width: 37, height: 23, pixels: pixels))
    }
}
