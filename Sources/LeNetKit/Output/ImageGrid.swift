/// Tiles 28x28 images into one picture a person can read: dark ink on white,
/// each image scaled up and separated by a white gap.
enum ImageGrid {
    /// `images` holds `count` images of [rows, columns] floats, 0 = background,
    /// 1 = ink (the batch layout [n, 1, 28, 28]). Returns `perRow` images per row.
    static func make(
        images: UnsafeBufferPointer<Float>, count: Int,
        rows: Int = DataSplit.rows, columns: Int = DataSplit.columns,
        perRow: Int = 10, scale: Int = 2, gap: Int = 4
    ) -> GreyImage {
        let count = max(0, min(count, images.count / max(1, rows * columns)))
        let perRow = max(1, min(perRow, max(count, 1)))
        let scale = max(1, scale)
        let gridRows = max(1, (count + perRow - 1) / perRow)
        let cellWidth = columns * scale, cellHeight = rows * scale
        let width = gap + perRow * (cellWidth + gap)
        let height = gap + gridRows * (cellHeight + gap)
        var pixels = [UInt8](repeating: 255, count: width * height)  // [height, width], white
        for index in 0..<count {
            let left = gap + (index % perRow) * (cellWidth + gap)
            let top = gap + (index / perRow) * (cellHeight + gap)
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

extension SampleBatch {
    /// The first `limit` images, `perRow` to a row, dark on white, scaled 2x.
    public func grid(limit: Int = 20, perRow: Int = 10) -> GreyImage {
        images.withUnsafeBufferPointer { ImageGrid.make(images: $0, count: min(limit, count), perRow: perRow) }
    }
}
