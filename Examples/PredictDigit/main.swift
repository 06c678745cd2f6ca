// Recognises the handwritten digit in a picture with a model trained by LeNetKit.
//
//     swift run -c release predict-digit lenet.safetensors digit.png
//
// The picture may be any PNG, PGM or PPM: dark ink on light paper or the reverse, any
// size. It is prepared as MNIST's digits were (cropped, scaled to 20 pixels, centred).
import Foundation
import LeNetKit

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: predict-digit MODEL.safetensors PICTURE\n".utf8))
    exit(2)
}

do {
    let predictor = try Predictor(checkpointPath: arguments[0])
    let (_, prediction) = try predictor.predict(contentsOf: arguments[1])
    print("\(arguments[1]): \(prediction.digit)")
    for (digit, probability) in prediction.top(3) {
        print("  \(digit)  \(String(format: "%5.1f%%", probability * 100))")
    }
} catch {
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(1)
}
