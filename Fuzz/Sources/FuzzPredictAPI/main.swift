import Foundation
import LeNetKit

/// `POST /api/predict` without the server: `PredictionAPI.predict(body:contentType:)`
/// with a seeded, freshly initialised LeNet, so a body that prepares well runs the
/// network too. The first byte picks the Content-Type (the low 3 bits index `types`;
/// index 7: the type is the bytes up to the first newline, the body the rest). Every
/// reply must be a status `lenet serve` documents and a JSON object of the documented
/// shape; a trap, a sanitizer report or any other reply is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    guard let selector = input.first else { return 0 }
    var body = Array(input.dropFirst())
    var contentType = types[Int(selector & 7)]
    if selector & 7 == 7 {
        let end = body.firstIndex(of: 0x0A) ?? body.endIndex
        contentType = String(decoding: body[..<end], as: UTF8.self)
        body = Array(body[min(end + 1, body.endIndex)...])
    }
    check(api.predict(body: body, contentType: contentType))
    return 0
}

let types: [String?] = [
    nil, "image/png", "application/json", "application/json; charset=utf-8", "application/octet-stream",
    "image/x-portable-graymap", "text/plain", "(free-form)",
]

let api: PredictionAPI = {
    let store = ParameterStore(definition: .lenet(.lenet))
    var generator = RandomGenerator(seed: 1)
    store.initialize(definition: .lenet(.lenet), generator: &generator)
    do {
        return PredictionAPI(predictor: try Predictor(checkpoint: try Checkpoint(store: store, variant: .lenet)))
    } catch {
        fatalError("cannot make the predictor: \(error)")
    }
}()

/// The reply is one of the documented statuses with the documented JSON object.
func check(_ reply: PredictionAPI.Reply) {
    let parsed = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))
    guard let object = parsed as? [String: Any] else { preconditionFailure("reply is not a JSON object: \(reply.body)") }
    switch reply.status {
    case 200:
        let probabilities = object["probabilities"] as? [Double] ?? []
        let pixels = object["pixels"] as? [Double] ?? []
        precondition((object["digit"] as? Int).map { (0...9).contains($0) } == true, "digit: \(reply.body)")
        precondition(probabilities.count == 10 && abs(probabilities.reduce(0, +) - 1) < 1e-3, "probabilities: \(reply.body)")
        precondition(pixels.count == 784 && pixels.allSatisfy { (0...1).contains($0) }, "pixels: \(reply.body)")
    case 400, 413, 415, 422:
        precondition((object["error"] as? String).map { !$0.isEmpty } == true, "error reply without a message: \(reply.body)")
    default:
        preconditionFailure("status \(reply.status): \(reply.body)")
    }
}
