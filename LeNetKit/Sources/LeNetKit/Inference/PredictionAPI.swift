import Foundation

/// The HTTP API of `lenet serve`, independent of any server library: a request body and
/// its content type in, a status and a JSON body out.
///
/// `POST /api/predict` takes a PNG (or PGM/PPM) picture of one digit (`image/png`,
/// `image/x-portable-graymap`, `application/octet-stream`, ...) or JSON
/// `{"pixels": [784 numbers in 0...1]}` (a 28x28 grey picture, either polarity), prepares
/// it with the predictor's `MNISTPreprocessor` and answers
/// `{"digit": d, "probabilities": [10 numbers], "pixels": [784 numbers]}` (the 28x28 the
/// network saw, ink = 1). Errors are `{"error": "one line"}` with 400 (malformed), 413 (body
/// over the cap, or a picture over the pixel budget), 415 (unsupported content type) or 422
/// (a readable picture with no digit).
public struct PredictionAPI: Sendable {
    public let predictor: Predictor
    /// The largest request body accepted, in bytes.
    public let maxBodyBytes: Int
    /// The most pixels (width x height) a posted picture may have. A digit needs no large
    /// picture (the page sends 280x280), and decoding costs time and memory by the pixel:
    /// 2^22 (2048x2048) bounds one request to about 40 MB and a fraction of a second.
    public let maxPixels: Int
    public static let defaultMaxPixels = 1 << 22

    public init(predictor: Predictor, maxBodyBytes: Int = 1 << 20, maxPixels: Int = defaultMaxPixels) {
        self.predictor = predictor
        self.maxBodyBytes = maxBodyBytes
        self.maxPixels = maxPixels
    }

    public struct Reply: Sendable, Equatable {
        public let status: Int
        /// A JSON object.
        public let body: String
    }

    public static func error(_ status: Int, _ message: String) -> Reply {
        reply(status, [("error", .string(message))])
    }

    /// `GET /healthz`.
    public var health: Reply {
        Self.reply(200, [("status", .string("ok")), ("model", .string(predictor.checkpoint.variant.rawValue))])
    }

    private static func reply(_ status: Int, _ entries: [(String, JSONValue)]) -> Reply {
        Reply(status: status, body: JSONWriter.text(.object(entries), .spaced))
    }

    public func tooLarge() -> Reply {
        Self.error(413, "request body over \(maxBodyBytes) bytes")
    }

    /// `POST /api/predict`.
    public func predict(body: [UInt8], contentType: String?) -> Reply {
        guard body.count <= maxBodyBytes else { return tooLarge() }
        guard !body.isEmpty else { return Self.error(400, "empty request body: send a PNG or {\"pixels\": [784 numbers]}") }
        let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let prepared: [Float]
        do {
            if type == "application/json" || type.hasSuffix("+json") {
                prepared = try predictor.preprocessor.prepare(grey: try Self.pixels(fromJSON: body), width: 28, height: 28, name: "pixels")
            } else if type.isEmpty || type.hasPrefix("image/") || type == "application/octet-stream" {
                let image = try ImageDecoder.decode(body, name: "image", maxPixels: maxPixels)
                prepared = try predictor.preprocessor.prepare(image, name: "image")
            } else {
                return Self.error(415, "unsupported content type \(type): send image/png or application/json")
            }
        } catch let error as InferenceError {
            let status = error.isTooLarge ? 413 : error.message.hasPrefix("blank") ? 422 : 400
            return Self.error(status, error.description)
        } catch {
            return Self.error(400, "\(error)")
        }
        do {
            let prediction = try predictor.predict(prepared: prepared)
            return Self.reply(200, [("digit", JSONValue(prediction.digit)), ("probabilities", .numbers(prediction.probabilities)),
                                    ("pixels", .numbers(prepared))])
        } catch {
            return Self.error(500, "\(error)")
        }
    }

    /// `{"pixels": [784 numbers in 0...1]}`.
    static func pixels(fromJSON body: [UInt8]) throws -> [Float] {
        let object: JSONValue
        do {
            object = try JSONParser.parse(body)
        } catch {
            throw InferenceError(file: "", "malformed JSON")
        }
        guard let values = object["pixels"] else {
            throw InferenceError(file: "", "JSON must be an object with \"pixels\": [784 numbers]")
        }
        guard case .array(let array) = values else { throw InferenceError(file: "", "\"pixels\" must be an array of 784 numbers") }
        guard array.count == 784 else { throw InferenceError(file: "", "\"pixels\" has \(array.count) values, expected 784 (28x28)") }
        return try array.enumerated().map { index, value in
            guard let number = value.double, case let float = Float(number),
                  float.isFinite, (0...1).contains(float) else {
                throw InferenceError(file: "", "\"pixels\"[\(index)] is not a number in 0...1")
            }
            return float
        }
    }
}
