/// Tiles 28x28 images into one picture a person can read: dark ink on white,
/// each image scaled up and separated by a white gap.
enum ImageGrid {
    /// `images` holds `count` images of [rows, columns] floats, 0 = background,
    /// 1 = ink (the batch layout [n, 1, 28, 28]). Returns `perRow` images per row. With
    /// `captions` (digits: other characters are left out), each image's caption is drawn
    /// centred under it in `DigitFont`, scaled like the images.
    static func make(
        images: UnsafeBufferPointer<Float>, count: Int,
        rows: Int = DataSplit.rows, columns: Int = DataSplit.columns,
        perRow: Int = 10, scale: Int = 2, gap: Int = 4, captions: [String] = []
    ) -> GreyImage {
        let count = max(0, min(count, images.count / max(1, rows * columns)))
        let perRow = max(1, min(perRow, max(count, 1)))
        let scale = max(1, scale)
        let gridRows = max(1, (count + perRow - 1) / perRow)
        let cellWidth = columns * scale, cellHeight = rows * scale
        let captionHeight = captions.isEmpty ? 0 : DigitFont.height * scale + gap  // below the image, a gap above
        let width = gap + perRow * (cellWidth + gap)
        let height = gap + gridRows * (cellHeight + captionHeight + gap)
        var pixels = [UInt8](repeating: 255, count: width * height)  // [height, width], white
        for index in 0..<count {
            let left = gap + (index % perRow) * (cellWidth + gap)
            let top = gap + (index / perRow) * (cellHeight + captionHeight + gap)
            if index < captions.count {
                DigitFont.draw(captions[index], into: &pixels, width: width, centredAt: left + cellWidth / 2,
                               top: top + cellHeight + gap, scale: scale)
            }
            let image = index * rows * columns
            for y in 0..<cellHeight {
                let sourceRow = image + (y / scale) * columns
                let targetRow = (top + y) * width + left
                for x in 0..<cellWidth {
                    let ink = min(max(images[sourceRow + x / scale], 0), 1)
                    pixels[targetRow + x] = UInt8((1 - ink) * 255 + 0.5)
                }
            }
        }
        return GreyImage(width: width, height: height, pixels: pixels)
    }
}

/// A 3x5 pixel font of the ten digits, enough to label MNIST images (and Fashion-MNIST's
/// by class number) in a PNG without a font file.
enum DigitFont {
    static let width = 3, height = 5
    /// Each digit's rows, top first; bit 2 is the left column.
    static let glyphs: [[UInt8]] = [
        [0b111, 0b101, 0b101, 0b101, 0b111], [0b010, 0b110, 0b010, 0b010, 0b111],
        [0b111, 0b001, 0b111, 0b100, 0b111], [0b111, 0b001, 0b111, 0b001, 0b111],
        [0b101, 0b101, 0b111, 0b001, 0b001], [0b111, 0b100, 0b111, 0b001, 0b111],
        [0b111, 0b100, 0b111, 0b101, 0b111], [0b111, 0b001, 0b001, 0b001, 0b001],
        [0b111, 0b101, 0b111, 0b101, 0b111], [0b111, 0b101, 0b111, 0b001, 0b111],
    ]

    /// Draws the digits of `text` in black, one blank column between them, centred on
    /// column `centre` with their top at row `top`; what falls outside the image is cut.
    static func draw(_ text: String, into pixels: inout [UInt8], width imageWidth: Int, centredAt centre: Int, top: Int,
                     scale: Int) {
        let digits = text.compactMap(\.wholeNumberValue).filter { (0...9).contains($0) }
        guard !digits.isEmpty, imageWidth > 0 else { return }
        let imageHeight = pixels.count / imageWidth
        let textWidth = (digits.count * (width + 1) - 1) * scale
        var left = centre - textWidth / 2
        for digit in digits {
            for (row, bits) in glyphs[digit].enumerated() {
                for column in 0..<width where bits & (1 << (width - 1 - column)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let y = top + row * scale + dy, x = left + column * scale + dx
                            if (0..<imageHeight).contains(y) && (0..<imageWidth).contains(x) { pixels[y * imageWidth + x] = 0 }
                        }
                    }
                }
            }
            left += (width + 1) * scale
        }
    }
}

extension SampleBatch {
    /// The first `limit` images, `perRow` to a row, dark on white, scaled 2x, each with
    /// its label (the class number) under it.
    public func grid(limit: Int = 20, perRow: Int = 10) -> GreyImage {
        images.withUnsafeBufferPointer {
            ImageGrid.make(images: $0, count: min(limit, count), perRow: perRow, captions: labels.map { String($0) })
        }
    }
}
