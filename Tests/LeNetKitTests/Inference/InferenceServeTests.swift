import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LeNetKit
import Synchronization
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
        /// What it printed up to its address: `Serving lenet from ... on http://...`.
        let announcement: String

        /// `lenet serve` on `checkpoint`, or on one of untrained weights written here.
        init(_ extraArguments: [String] = [], checkpoint given: String? = nil) throws {
            let binary = try #require(InferenceServeTests.lenetBinary(), "the lenet executable is not next to the tests")
            let checkpoint: String
            if let given {
                checkpoint = given
            } else {
                let directory = try DataFixtures.temporaryDirectory()
                let store = ParameterStore(definition: .lenet(.lenet))
                var generator = RandomGenerator(seed: 9)
                store.initialize(definition: .lenet(.lenet), generator: &generator)
                checkpoint = directory + "/model.safetensors"
                try Checkpoint(store: store, variant: .lenet).write(to: checkpoint)
            }
            let output = Pipe()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--checkpoint", checkpoint, "--port", "0"] + extraArguments
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
                    announcement = text
                    return
                }
            }
            process.terminate()
            throw InferenceError(file: "lenet serve", "did not print its address: \(text)")
        }

        deinit {
            if process.isRunning { process.terminate(); process.waitUntilExit() }
        }

        /// Status, Content-Type and the JSON object of the reply (empty when not JSON).
        func request(_ path: String, method: String = "GET", body: Data? = nil, type: String? = nil) async throws -> (Int, String, [String: Any]) {
            let (status, type, data) = try await rawRequest(path, method: method, body: body, type: type)
            return (status, type, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
        }

        func rawRequest(_ path: String, method: String = "GET", body: Data? = nil, type: String? = nil) async throws -> (Int, String, Data) {
            var request = URLRequest(url: base.appendingPathComponent(path))
            request.httpMethod = method
            request.httpBody = body
            if let type { request.setValue(type, forHTTPHeaderField: "Content-Type") }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.connectionProxyDictionary = [:]
            let session = URLSession(configuration: configuration)
            let (data, response) = try await session.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            return (http.statusCode, http.value(forHTTPHeaderField: "Content-Type") ?? "", data)
        }

        /// Sends `text` on a new TCP connection and reads until the server closes it; nil if
        /// it is still open after `patience` seconds (a generous bound, not a measurement).
        func readUntilClosed(sending text: String, patience: Int = 120) throws -> String? {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(try #require(base.port)).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            var wait = timeval(tv_sec: patience, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            if !text.isEmpty { _ = text.withCString { send(fd, $0, strlen($0), 0) } }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { received += buffer[..<n]; continue }
                if n == 0 || errno == ECONNRESET { return String(decoding: received, as: UTF8.self) }
                if errno == EINTR { continue }
                return nil  // still open when patience ran out
            }
        }
    }

    @Test func pageHealthGoodAndMalformedRequests() async throws {
        let server = try Server()
        let page = try await server.request("/")
        #expect(page.0 == 200 && page.1.hasPrefix("text/html"))
        // Before the first stroke the page says what to do.
        let html = String(decoding: try await server.rawRequest("/").2, as: UTF8.self)
        #expect(html.contains("<p id=\"hint\">Draw one digit (0 to 9) in the white box"))
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

    /// HEAD answers wherever GET does (same status, no body); a picture over the pixel budget
    /// (2048x2048) is refused with 413 and a JSON error, from its header.
    @Test func headRequestsAndThePixelBudget() async throws {
        let server = try Server()
        for path in ["", "healthz"] {
            let head = try await server.rawRequest(path, method: "HEAD")
            #expect(head.0 == 200 && head.2.isEmpty, "HEAD /\(path): \(head.0)")
        }
        let directory = try DataFixtures.temporaryDirectory()
        let (side, path) = (2049, directory + "/big.png")
        try writePNG(grey: (0..<(side * side)).map { UInt8(($0 / side) % 256) }, width: side, height: side, to: path)
        let big = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(big.count < 1 << 20)
        let reply = try await server.request("api/predict", method: "POST", body: big, type: "image/png")
        #expect(reply.0 == 413, "\(reply.0)")
        #expect((reply.2["error"] as? String)?.contains("2049x2049 = 4198401 pixels; at most 4194304") == true, "\(reply.2)")
    }

    /// Connections that sit idle, stop half-way through a request, or speak HTTP/1.0 with
    /// keep-alive are closed by the server after --idle-timeout (here 1 s): they used to stay
    /// open for good, each holding a file descriptor.
    @Test func idleAndHalfSentConnectionsAreClosed() async throws {
        let server = try Server(["--idle-timeout", "1"])
        #expect(try server.readUntilClosed(sending: "") == "", "an idle connection stayed open")
        #expect(try server.readUntilClosed(sending: "GET /healthz HTTP/1.1\r\nHost: x\r\n") == "",
                "a half-sent request head stayed open")
        let halfBody = try server.readUntilClosed(sending: "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                                  + "Content-Length: 1000\r\n\r\nabc")
        #expect(halfBody != nil, "a half-sent body stayed open")
        let old = try server.readUntilClosed(sending: "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(old?.hasPrefix("HTTP/1.") == true && old?.contains("\"ok\"") == true, "HTTP/1.0: \(old ?? "still open")")
        #expect(try await server.request("healthz").0 == 200)
    }

    /// With one prediction at a time and slow pictures queued, /healthz is answered while
    /// predictions still wait: predictions run outside the threads that serve requests.
    @Test func healthIsAnsweredWhilePredictionsWait() async throws {
        let server = try Server(["--max-predictions", "1"])
        let slow = try Self.slowPicture()
        let count = 6
        final class Counter: Sendable { let value = Mutex(0) }
        let finished = Counter()
        let healthSawFinished = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<count {
                group.addTask {
                    let reply = try await server.request("api/predict", method: "POST", body: slow, type: "image/png")
                    #expect(reply.0 == 200 || reply.0 == 422, "\(reply.0) \(reply.2)")
                    finished.value.withLock { $0 += 1 }
                    return nil
                }
            }
            group.addTask { () async throws -> Int? in
                let health = try await server.request("healthz")
                #expect(health.0 == 200)
                return finished.value.withLock { $0 }
            }
            var seen: Int?
            for try await value in group { if let value { seen = value } }
            return try #require(seen)
        }
        #expect(healthSawFinished < count, "/healthz was answered only after all \(count) predictions")
    }

    /// With one prediction running and one waiting allowed, the rest of a burst of slow
    /// pictures is answered 503 with a JSON error at once instead of piling up.
    @Test func predictionsBeyondTheQueueAreAnswered503() async throws {
        let server = try Server(["--max-predictions", "1", "--max-waiting", "1"])
        let slow = try Self.slowPicture()
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let reply = try await server.request("api/predict", method: "POST", body: slow, type: "image/png")
                    return (reply.0, reply.2["error"] as? String)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { [200, 422, 503].contains($0.0) }, "\(statuses)")
        #expect(statuses.contains { $0.0 == 503 && $0.1?.hasPrefix("busy: 1 predictions running and 1 waiting") == true }, "\(statuses)")
        #expect(statuses.contains { $0.0 != 503 }, "\(statuses)")
        #expect(try await server.request("healthz").0 == 200)
    }

    /// A 2048x2048 PNG (the API's pixel budget) with some ink: slow to decode and prepare.
    static func slowPicture() throws -> Data {
        let directory = try DataFixtures.temporaryDirectory()
        let (side, path) = (2048, directory + "/slow.png")
        try writePNG(grey: (0..<(side * side)).map { $0 % side < side / 2 && ($0 / side) % 64 < 32 ? 0 : 255 },
                     width: side, height: side, to: path)
        return try Data(contentsOf: URL(fileURLWithPath: path))
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
