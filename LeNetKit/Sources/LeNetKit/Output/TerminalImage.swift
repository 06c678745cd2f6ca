/// Draws 28x28 images as text with Unicode quadrant blocks: each character
/// covers 2x2 pixels, so a digit is 14 characters wide and 14 lines tall.
public enum TerminalImage {
    /// Quadrant characters indexed by bits (upper-left 1, upper-right 2, lower-left 4, lower-right 8).
    private static let quadrants: [Character] = [
        " ", "▘", "▝", "▀", "▖", "▌", "▞", "▛", "▗", "▚", "▐", "▜", "▄", "▙", "▟", "█",
    ]

    /// `images` as in `ImageGrid.make` (ink = 1); a pixel is drawn when ink >= `threshold`.
    /// `captions` (e.g. labels) are printed above each image.
    public static func render(
        images: UnsafeBufferPointer<Float>, count: Int,
        rows: Int = DataSplit.rows, columns: Int = DataSplit.columns,
        perRow: Int = 10, captions: [String] = [], threshold: Float = 0.5
    ) -> String {
        let count = max(0, min(count, images.count / max(1, rows * columns)))
        let perRow = max(1, perRow)
        let cellWidth = (columns + 1) / 2, cellHeight = (rows + 1) / 2
        var text = ""
        for first in stride(from: 0, to: count, by: perRow) {
            let members = first..<min(first + perRow, count)
            if !captions.isEmpty {
                let line = members.map { index in
                    let caption = String((index < captions.count ? captions[index] : "").prefix(cellWidth))
                    return caption + String(repeating: " ", count: cellWidth - caption.count)
                }
                text += trimmed(line.joined(separator: " ")) + "\n"
            }
            for line in 0..<cellHeight {
                let cells = members.map { index in
                    String((0..<cellWidth).map { cell in
                        var bits = 0
                        for (bit, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].enumerated() {
                            let y = line * 2 + dy, x = cell * 2 + dx
                            if y < rows && x < columns && images[index * rows * columns + y * columns + x] >= threshold {
                                bits |= 1 << bit
                            }
                        }
                        return quadrants[bits]
                    })
                }
                text += trimmed(cells.joined(separator: " ")) + "\n"
            }
        }
        return text
    }

    /// How many images `render` fits side by side in `columns` characters: each takes half
    /// its pixel width, with one space between (5 for 80 columns, 10 for 150); at least 1.
    public static func imagesPerLine(columns: Int, imageColumns: Int = DataSplit.columns) -> Int {
        max(1, (columns + 1) / ((imageColumns + 1) / 2 + 1))
    }

    /// Without trailing spaces, so copied text stays tidy.
    private static func trimmed(_ line: String) -> String {
        String(line[..<(line.lastIndex { $0 != " " }.map(line.index(after:)) ?? line.startIndex)])
    }
}

extension SampleBatch {
    /// The first `limit` images as text, each captioned with its class name.
    public func terminalDrawing(limit: Int = 20, perRow: Int = 10, classNames: [String] = DatasetKind.mnist.classNames) -> String {
        let captions = labels.map { Int($0) < classNames.count ? classNames[Int($0)] : "\($0)" }
        return images.withUnsafeBufferPointer {
            TerminalImage.render(images: $0, count: min(limit, count), perRow: perRow, captions: captions)
        }
    }
}
