import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LeNetKit
import Testing

/// `lenet serve` over loopback: the built `lenet` binary (next to the test bundle) started
/// on a free port with a checkpoint of untrained weights; good requests, every malformed
/// kind, a body over the 1 MB cap, and many requests at once.
@Suite(.serialized) struct InferenceServeTests {
    /// The `lenet` executable built alongside the tests.
    static func lenetBinary() -> String? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("lenet").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    final class Server: @unchecked Sendable {
        let process: Process
        let base: URL

        init() throws {
            let binary = try #require(InferenceServeTests.lenetBinary(), "the lenet executable is not next to the tests")
            let directory = try DataFixtures.temporaryDirectory()
            let store = ParameterStore(definition: .lenet(.lenet))
            var generator = RandomGenerator(seed: 9)
            store.initialize(definition: .lenet(.lenet), generator: &generator)
            let checkpoint = directory + "/model.safetensors"
            try Checkpoint(store: store, variant: .lenet).write(to: checkpoint)
            let output = Pipe()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--checkpoint", checkpoint, "--port", "0"]
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            var text = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
                if let range = text.range(of: #"on http://127\.0\.0\.1:[0-9]+/"#, options: .regularExpression) {
                    self.process = process
                    base = try #require(URL(string: String(text[range].dropFirst(3))))
                    return
                }
            }
            process.terminate()
            throw InferenceError(file: "lenet serve", "did not print its address: \(text)")
        }

        deinit {
            if process.isRunning { process.terminate(); process.waitUntilExit() }
        }

        func request(_ path: String, method: String = "GET", body: Data? = nil, type: String? = nil) async throws -> (Int, String, [String: Any]) {
            var request = URLRequest(url: base.appendingPathComponent(path))
            request.httpMethod = method
            request.httpBody = body
            if let type { request.setValue(type, forHTTPHeaderField: "Content-Type") }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.connectionProxyDictionary = [:]
            let session = URLSession(configuration: configuration)
            let (data, response) = try await session.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return (http.statusCode, http.value(forHTTPHeaderField: "Content-Type") ?? "", object)
        }
    }

    @Test func pageHealthGoodAndMalformedRequests() async throws {
        let server = try Server()
        let page = try await server.request("/")
        #expect(page.0 == 200 && page.1.hasPrefix("text/html"))
        let health = try await server.request("healthz")
        #expect(health.0 == 200 && health.2["status"] as? String == "ok")

        let png = try Data(contentsOf: URL(fileURLWithPath: InferenceDecoderTests.directory + "/gray8.png"))
        let good = try await server.request("api/predict", method: "POST", body: png, type: "image/png")
        #expect(good.0 == 200 && good.1.hasPrefix("application/json"))
        #expect((good.2["probabilities"] as? [Double])?.count == 10 && (good.2["pixels"] as? [Double])?.count == 784)
        #expect(good.2["digit"] is Int)

        var ink = [String](repeating: "0", count: 784)
        for y in 6..<22 { ink[y * 28 + 14] = "1" }
        let pixels = Data("{\"pixels\": [\(ink.joined(separator: ","))]}".utf8)
        let json = try await server.request("api/predict", method: "POST", body: pixels, type: "application/json")
        #expect(json.0 == 200 && (json.2["pixels"] as? [Double])?.count == 784)

        let cases: [(Data, String, Int)] = [
            (Data("{\"pixels\": [1]}".utf8), "application/json", 400),
            (Data("{oops".utf8), "application/json", 400),
            (Data("not a png".utf8), "image/png", 400),
            (Data("hello".utf8), "text/plain", 415),
            (Data("{\"pixels\": [\([String](repeating: "0", count: 784).joined(separator: ","))]}".utf8), "application/json", 422),
            (Data(count: 2 << 20), "image/png", 413),
        ]
        for (body, type, status) in cases {
            let reply = try await server.request("api/predict", method: "POST", body: body, type: type)
            #expect(reply.0 == status, "\(type) \(body.count) bytes: \(reply.0)")
            #expect(reply.2["error"] is String, "\(type) \(body.count) bytes: no JSON error")
        }
        // The router's own errors are JSON too: an unknown path, a known path with another method.
        for (path, method) in [("no/such/page", "GET"), ("api/predict", "GET"), ("healthz", "DELETE")] {
            let reply = try await server.request(path, method: method)
            #expect(reply.0 == 404 || reply.0 == 405, "\(method) /\(path): \(reply.0)")
            #expect(reply.1.hasPrefix("application/json") && reply.2["error"] is String, "\(method) /\(path): \(reply.1)")
        }
        #expect(try await server.request("healthz").0 == 200)
    }

    @Test func manyConcurrentRequests() async throws {
        let server = try Server()
        let png = try Data(contentsOf: URL(fileURLWithPath: InferenceDecoderTests.directory + "/gray8.png"))
        let replies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for _ in 0..<48 {
                group.addTask {
                    let reply = try await server.request("api/predict", method: "POST", body: png, type: "image/png")
                    let probabilities = (reply.2["probabilities"] as? [Double]) ?? []
                    return (reply.0, probabilities.map { String($0) }.joined(separator: ","))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.count == 48 && replies.allSatisfy { $0.0 == 200 })
        #expect(Set(replies.map(\.1)).count == 1)
    }
}
