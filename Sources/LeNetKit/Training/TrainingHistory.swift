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

    public static func json(_ history: [EpochRecord]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(history)
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
        var lines = [String(format: "%-10@ %-16@ %-10@ %-18@ %@", "model" as NSString, "first >= 98.0%" as NSString,
                            "final" as NSString, "best (epoch)" as NSString, "time" as NSString)]
        for row in rows {
            let first = Self.firstEpoch(reaching: 0.98, in: row.history).map { "epoch \($0)" } ?? "never"
            let final = row.history.last.map { String(format: "%.2f%%", $0.testAccuracy * 100) } ?? "-"
            let best = row.history.max { $0.testAccuracy < $1.testAccuracy }
                .map { String(format: "%.2f%% (%d)", $0.testAccuracy * 100, $0.epoch) } ?? "-"
            lines.append(String(format: "%-10@ %-16@ %-10@ %-18@ %@", row.model.rawValue as NSString, first as NSString,
                                final as NSString, best as NSString, formatRunTime(seconds: row.seconds) as NSString))
        }
        return lines.joined(separator: "\n")
    }
}
