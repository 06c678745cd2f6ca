import Foundation
@testable import LeNetKit
import Testing

/// PredictionAPI (what `lenet serve` answers) without a server: good requests and every
/// malformed kind.
@Suite struct InferenceAPITests {
    static let api: PredictionAPI? = {
        let store = ParameterStore(definition: .lenet(.lenet))
        var generator = RandomGenerator(seed: 5)
        store.initialize(definition: .lenet(.lenet), generator: &generator)
        guard let checkpoint = try? Checkpoint(store: store, variant: .lenet),
              let predictor = try? Predictor(checkpoint: checkpoint) else { return nil }
        return PredictionAPI(predictor: predictor, maxBodyBytes: 4096)
    }()

    static func json(_ reply: PredictionAPI.Reply) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any])
    }

    static func pngOfSeven() throws -> [UInt8] {
        var pixels = [UInt8](repeating: 255, count: 40 * 40)
        for x in 8..<32 { for y in 6..<10 { pixels[y * 40 + x] = 0 } }
        for i in 0..<26 { for w in 0..<4 { pixels[(10 + i) * 40 + 30 - i / 2 + w - 2] = 0 } }
        let path = try DataFixtures.temporaryDirectory() + "/seven.png"
        try writePNG(grey: pixels, width: 40, height: 40, to: path)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func pngBody() throws {
        let api = try #require(Self.api)
        let reply = api.predict(body: try Self.pngOfSeven(), contentType: "image/png")
        #expect(reply.status == 200)
        let object = try Self.json(reply)
        let probabilities = try #require(object["probabilities"] as? [Double])
        let pixels = try #require(object["pixels"] as? [Double])
        #expect(probabilities.count == 10 && abs(probabilities.reduce(0, +) - 1) < 1e-4)
        #expect(pixels.count == 784 && pixels.allSatisfy { (0...1).contains($0) })
        #expect((0...9).contains(try #require(object["digit"] as? Int)))
    }

    @Test func jsonPixelsEitherPolarity() throws {
        let api = try #require(Self.api)
        var ink = [Double](repeating: 0, count: 784)
        for y in 5..<23 { for x in 12..<15 { ink[y * 28 + x] = 1 } }
        let light = "{\"pixels\": [\(ink.map { String($0) }.joined(separator: ","))]}"
        let dark = "{\"pixels\": [\(ink.map { String(1 - $0) }.joined(separator: ","))]}"
        let first = api.predict(body: Array(light.utf8), contentType: "application/json; charset=utf-8")
        let second = api.predict(body: Array(dark.utf8), contentType: "application/json")
        #expect(first.status == 200 && first == second)
    }

    @Test(arguments: [
        ("{\"pixels\": [1, 2, 3]}", "application/json", 400, "784"),
        ("{\"pixels\": \"no\"}", "application/json", 400, "array"),
        ("{\"picture\": []}", "application/json", 400, "pixels"),
        ("[1, 2]", "application/json", 400, "pixels"),
        ("{\"pixels\": [", "application/json", 400, "malformed JSON"),
        ("not a picture at all", "image/png", 400, "not a PNG"),
        ("\u{89}PNG\r\n\u{1A}\nshort", "image/png", 400, "PNG"),
        ("hello", "text/plain", 415, "content type"),
        ("", "image/png", 400, "empty"),
    ])
    func malformedRequests(_ body: String, _ type: String, _ status: Int, _ phrase: String) throws {
        let api = try #require(Self.api)
        let reply = api.predict(body: Array(body.utf8), contentType: type)
        #expect(reply.status == status)
        let message = try #require(try Self.json(reply)["error"] as? String)
        #expect(message.contains(phrase), "\(message)")
    }

    @Test func outOfRangeBlankAndOversized() throws {
        let api = try #require(Self.api)
        var values = [String](repeating: "0", count: 784)
        values[3] = "1.5"
        let bad = api.predict(body: Array("{\"pixels\": [\(values.joined(separator: ","))]}".utf8), contentType: "application/json")
        #expect(bad.status == 400 && bad.body.contains("[3]"))
        let blank = api.predict(body: Array("{\"pixels\": [\([String](repeating: "0", count: 784).joined(separator: ","))]}".utf8),
                                contentType: "application/json")
        #expect(blank.status == 422 && blank.body.contains("blank"))
        let big = api.predict(body: [UInt8](repeating: 0, count: 4097), contentType: "image/png")
        #expect(big.status == 413)
        #expect(api.health.status == 200 && api.health.body.contains("\"ok\""))
    }

    /// The answer's numbers read back as exactly the Floats the network produced.
    @Test func numbersAreExactJSON() throws {
        let values: [Float] = [0, 1, 0.1, 1e-7, 3.4028235e38, .leastNonzeroMagnitude, -0.5, 0.123456789, .nan, .infinity]
        let text = JSONWriter.text(.numbers(values), .spaced)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [NSNumber])
        #expect(parsed.map(\.floatValue) == Array(values.prefix(8)) + [0, 0])
        #expect(JSONWriter.text(.numbers([]), .spaced) == "[]")
    }
}
