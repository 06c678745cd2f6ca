import Foundation

/// Prepares any picture of one digit the way MNIST's were prepared (LeCun et al.): ink
/// white on black, the ink's bounding box scaled so its longer side is 20 pixels (aspect
/// ratio kept, antialiased), placed in 28x28 with its centre of mass at the centre.
///
/// Steps: grey levels in [0,1]; the background is the median of the border pixels, and a
/// light background means dark ink, so the image is inverted; ink is the difference from
/// the background, stretched so the strongest ink is 1, and ink under `inkThreshold` is
/// cleared as noise. The bounding box of what remains is cropped and resampled: area
/// averaging (a box filter over exact pixel coverage) along an axis that shrinks, bilinear
/// along one that grows. The result is stretched so its brightest pixel is 1 (MNIST's
/// strokes reach 255), then shifted by whole pixels so the centre of mass, in pixel-index
/// coordinates, is at (14, 14) — where MNIST's training images have theirs — unless that
/// would push ink off the 28x28, in which case it is shifted as far as fits.
public struct MNISTPreprocessor: Sendable, Equatable {
    public static let side = 28
    /// The longer side of the ink's bounding box after scaling.
    public var boxSide = 20
    /// Ink below this (after stretching to [0,1]) is background noise.
    public var inkThreshold: Float = 0.2
    /// Images whose strongest ink differs from the background by less than this are blank.
    public var minimumContrast: Float = 0.08

    public init() {}

    /// 784 values in [0,1], row-major 28x28, ink = 1. `name` labels errors.
    public func prepare(_ image: GreyImage, name: String = "") throws -> [Float] {
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height else {
            throw InferenceError(file: name, "image is \(image.width)x\(image.height) with \(image.pixels.count) pixels")
        }
        // Levels 0...255 as they are, so that differences are exact and an inverted image
        // gives exactly the same result.
        return try prepare(levels: image.pixels.map { Float($0) }, white: 255, width: image.width, height: image.height, name: name)
    }

    /// `grey` in [0,1] (0 = black), row-major [height, width].
    public func prepare(grey: [Float], width: Int, height: Int, name: String = "") throws -> [Float] {
        guard width > 0, height > 0, grey.count == width * height else {
            throw InferenceError(file: name, "image is \(width)x\(height) with \(grey.count) values")
        }
        if grey.contains(where: { !$0.isFinite }) { throw InferenceError(file: name, "image holds a value that is not a finite number") }
        return try prepare(levels: grey.map { min(1, max(0, $0)) }, white: 1, width: width, height: height, name: name)
    }

    /// `grey` in 0...white.
    private func prepare(levels grey: [Float], white: Float, width: Int, height: Int, name: String) throws -> [Float] {
        // The background: the median of the border.
        var border: [Float] = []
        for x in 0..<width {
            border.append(grey[x])
            if height > 1 { border.append(grey[(height - 1) * width + x]) }
        }
        if height > 2 {
            for y in 1..<(height - 1) {
                border.append(grey[y * width])
                if width > 1 { border.append(grey[y * width + width - 1]) }
            }
        }
        border.sort()
        let background = border[border.count / 2]
        let darkInk = background > white / 2
        var ink = grey.map { max(0, darkInk ? background - $0 : $0 - background) }
        let strongest = ink.max() ?? 0
        guard strongest >= minimumContrast * white else {
            throw InferenceError(file: name, "blank image: nothing differs from the background (\(Self.percent(background / white)) grey) by \(Self.percent(minimumContrast)) or more")
        }
        var left = width, right = -1, top = height, bottom = -1
        for y in 0..<height {
            for x in 0..<width {
                var value = ink[y * width + x] / strongest
                if value < inkThreshold { value = 0 }
                ink[y * width + x] = value
                if value > 0 {
                    left = min(left, x); right = max(right, x)
                    top = min(top, y); bottom = max(bottom, y)
                }
            }
        }
        guard right >= 0 else { throw InferenceError(file: name, "blank image: no ink") }
        let boxWidth = right - left + 1, boxHeight = bottom - top + 1
        var cropped = [Float](repeating: 0, count: boxWidth * boxHeight)
        for y in 0..<boxHeight {
            for x in 0..<boxWidth { cropped[y * boxWidth + x] = ink[(top + y) * width + left + x] }
        }
        return place(cropped, width: boxWidth, height: boxHeight)
    }

    /// Scales the cropped ink to fit `boxSide` and centres its mass in 28x28.
    func place(_ ink: [Float], width: Int, height: Int) -> [Float] {
        let scale = Double(boxSide) / Double(max(width, height))
        let newWidth = max(1, min(boxSide, Int((Double(width) * scale).rounded())))
        let newHeight = max(1, min(boxSide, Int((Double(height) * scale).rounded())))
        let scaled = Self.resize(ink, width: width, height: height, toWidth: newWidth, toHeight: newHeight)
        let peak = scaled.max() ?? 0
        var mass = 0.0, sumX = 0.0, sumY = 0.0
        for y in 0..<newHeight {
            for x in 0..<newWidth {
                let value = Double(scaled[y * newWidth + x])
                mass += value; sumX += value * Double(x); sumY += value * Double(y)
            }
        }
        let side = Self.side, centre = Double(side / 2)
        let centreX = mass > 0 ? sumX / mass : Double(newWidth - 1) / 2
        let centreY = mass > 0 ? sumY / mass : Double(newHeight - 1) / 2
        let offsetX = min(max(0, Int((centre - centreX).rounded())), side - newWidth)
        let offsetY = min(max(0, Int((centre - centreY).rounded())), side - newHeight)
        var output = [Float](repeating: 0, count: side * side)
        let gain: Float = peak > 0 ? 1 / peak : 0
        for y in 0..<newHeight {
            for x in 0..<newWidth {
                output[(offsetY + y) * side + offsetX + x] = min(1, scaled[y * newWidth + x] * gain)
            }
        }
        return output
    }

    /// Separable resampling: rows, then columns.
    static func resize(_ values: [Float], width: Int, height: Int, toWidth: Int, toHeight: Int) -> [Float] {
        let horizontal = weights(from: width, to: toWidth), vertical = weights(from: height, to: toHeight)
        var rows = [Float](repeating: 0, count: toWidth * height)
        for y in 0..<height {
            for (x, taps) in horizontal.enumerated() {
                var sum: Float = 0
                for (index, weight) in taps { sum += values[y * width + index] * weight }
                rows[y * toWidth + x] = sum
            }
        }
        var output = [Float](repeating: 0, count: toWidth * toHeight)
        for (y, taps) in vertical.enumerated() {
            for x in 0..<toWidth {
                var sum: Float = 0
                for (index, weight) in taps { sum += rows[index * toWidth + x] * weight }
                output[y * toWidth + x] = sum
            }
        }
        return output
    }

    /// For each output sample, its source samples and weights (summing to 1). Shrinking:
    /// each output pixel averages the source pixels it covers, weighted by overlap. Growing
    /// (or equal): bilinear between the two nearest source pixel centres, edges clamped.
    static func weights(from source: Int, to target: Int) -> [[(Int, Float)]] {
        let ratio = Double(source) / Double(target)
        return (0..<target).map { output in
            if target < source {
                let start = Double(output) * ratio, end = Double(output + 1) * ratio
                var taps: [(Int, Float)] = []
                for index in Int(start.rounded(.down))..<min(source, Int(end.rounded(.up))) {
                    let overlap = min(end, Double(index + 1)) - max(start, Double(index))
                    if overlap > 1e-9 { taps.append((index, Float(overlap / ratio))) }
                }
                return taps
            }
            let position = min(max(0, (Double(output) + 0.5) * ratio - 0.5), Double(source - 1))
            let lower = Int(position.rounded(.down)), fraction = position - Double(lower)
            if lower + 1 >= source || fraction < 1e-9 { return [(lower, 1)] }
            return [(lower, Float(1 - fraction)), (lower + 1, Float(fraction))]
        }
    }

    private static func percent(_ value: Float) -> String { "\(Int((value * 100).rounded()))%" }
}
