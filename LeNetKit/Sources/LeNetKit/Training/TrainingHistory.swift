import Foundation

/// Per-epoch history as files: CSV for spreadsheets, JSON for programs.
public enum TrainingHistory {
    public static func csv(_ history: [EpochRecord]) -> String {
        var text = "epoch,train_accuracy,train_loss,test_accuracy,test_loss,seconds\n"
        for r in history {
            text += String(format: "%d,%.6f,%.6f,%.6f,%.6f,%.3f\n",
                           r.epoch, r.trainAccuracy, r.trainLoss, r.testAccuracy, r.testLoss, r.seconds)
        }
        return text
    }

    /// One object per epoch, keys in alphabetical order, indented: history.json as it has
    /// always been written. Throws for a NaN or infinite figure, which JSON cannot hold.
    public static func json(_ history: [EpochRecord]) throws -> Data {
        let records = try history.map { record -> JSONValue in
            .object([
                ("epoch", JSONValue(record.epoch)),
                ("seconds", try JSONValue(record.seconds)),
                ("testAccuracy", try JSONValue(record.testAccuracy)),
                ("testLoss", try JSONValue(record.testLoss)),
                ("trainAccuracy", try JSONValue(record.trainAccuracy)),
                ("trainLoss", try JSONValue(record.trainLoss)),
            ])
        }
        return Data(JSONWriter.bytes(.array(records), .indented))
    }
}

/// The `experiment` command's closing comparison of the two variants.
public struct ExperimentComparison {
    public struct Row {
        public var model: ModelVariant
        public var history: [EpochRecord]
        public var seconds: Double
        public init(model: ModelVariant, history: [EpochRecord], seconds: Double) {
            self.model = model
            self.history = history
            self.seconds = seconds
        }
    }

    public var rows: [Row]
    public init(_ rows: [Row]) { self.rows = rows }

    /// The first epoch whose test accuracy reached `threshold` (a fraction), if any.
    public static func firstEpoch(reaching threshold: Double, in history: [EpochRecord]) -> Int? {
        history.first { $0.testAccuracy >= threshold }?.epoch
    }

    public var table: String {
        func padded(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = [padded("model", 10) + " " + padded("first >= 98.0%", 16) + " " + padded("final", 10) + " "
                     + padded("best (epoch)", 18) + " time"]
        for row in rows {
            let first = Self.firstEpoch(reaching: 0.98, in: row.history).map { "epoch \($0)" } ?? "never"
            let final = row.history.last.map { String(format: "%.2f%%", $0.testAccuracy * 100) } ?? "-"
            let best = row.history.max { $0.testAccuracy < $1.testAccuracy }
                .map { String(format: "%.2f%% (%d)", $0.testAccuracy * 100, $0.epoch) } ?? "-"
            lines.append(padded(row.model.rawValue, 10) + " " + padded(first, 16) + " " + padded(final, 10) + " "
                         + padded(best, 18) + " " + formatDuration(seconds: row.seconds))
        }
        return lines.joined(separator: "\n")
    }
}

/// A duration as a person reads it, rounded to what matters: `0.84 s`, `11.3 s`,
/// `4 min 05 s`, `1 h 02 min 05 s`. (`formatRunTime` keeps the tutorial's microseconds
/// for the line `lenet train` prints.)
public func formatDuration(seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "-" }
    if seconds < 9.995 { return String(format: "%.2f s", seconds) }
    if seconds < 59.95 { return String(format: "%.1f s", seconds) }
    let whole = Int(seconds.rounded())
    let (hours, minutes, rest) = (whole / 3600, whole / 60 % 60, whole % 60)
    return hours > 0 ? String(format: "%d h %02d min %02d s", hours, minutes, rest)
                     : String(format: "%d min %02d s", minutes, rest)
}
