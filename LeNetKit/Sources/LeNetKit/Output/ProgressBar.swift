import Foundation

/// One line of progress for a training epoch:
/// ` 937/1875 [==============>               ] 6,210 img/s  loss 0.412  acc 87.3%  ETA 0:09`
public struct ProgressLine: Sendable, Equatable {
    public var done: Int
    public var total: Int
    public var imagesPerSecond: Double
    public var loss: Double
    public var accuracy: Double
    /// Seconds left at the current rate, nil before any rate is known.
    public var secondsLeft: Double?

    public init(done: Int, total: Int, imagesPerSecond: Double, loss: Double, accuracy: Double, secondsLeft: Double?) {
        self.done = done
        self.total = total
        self.imagesPerSecond = imagesPerSecond
        self.loss = loss
        self.accuracy = accuracy
        self.secondsLeft = secondsLeft
    }

    /// The line, at most `width` characters (the bar shrinks first).
    public func text(width: Int = 80) -> String {
        let digits = String(total).count
        let counter = String(repeating: " ", count: max(0, digits - String(done).count)) + "\(done)/\(total)"
        let rate = imagesPerSecond > 0 ? "\(ModelSummary.grouped(Int(imagesPerSecond.rounded()))) img/s" : "- img/s"
        let eta = secondsLeft.map { "ETA " + Self.clock($0) } ?? "ETA -"
        let stats = String(format: "loss %.3f  acc %.1f%%", loss, accuracy * 100)
        let tail = " \(rate)  \(stats)  \(eta)"
        let barWidth = min(30, width - counter.count - tail.count - 3)
        guard barWidth >= 5 else { return String((counter + tail).prefix(width)) }
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let bar = String(repeating: "=", count: filled) + (filled < barWidth ? ">" : "")
            + String(repeating: " ", count: max(0, barWidth - filled - 1))
        return "\(counter) [\(bar)]\(tail)"
    }

    /// "1:05" or "1:02:05".
    public static func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Draws a `ProgressLine` in place on a terminal (carriage return, erase line), at most
/// every `interval` seconds, and erases it before other output. Writes straight to the
/// file descriptor after flushing stdio, so it interleaves correctly with `print`.
public final class TerminalProgress {
    private let descriptor: Int32
    private let imagesPerBatch: Int
    private let totalImages: Int
    private let interval: Double
    private var epochStart: Double?
    private var lastDraw = -Double.infinity
    private var drawn = false

    /// Whether a file descriptor is a terminal; progress is only drawn on one.
    public static func isTerminal(_ descriptor: Int32 = STDOUT_FILENO) -> Bool { isatty(descriptor) != 0 }

    public init(imagesPerBatch: Int, totalImages: Int, descriptor: Int32 = STDOUT_FILENO, interval: Double = 0.1) {
        self.imagesPerBatch = imagesPerBatch
        self.totalImages = totalImages
        self.descriptor = descriptor
        self.interval = interval
    }

    /// Trainer.onBatch's arguments, and the running loss and accuracy. The epoch's clock
    /// starts at its first batch.
    public func update(done: Int, total: Int, loss: Double, accuracy: Double) {
        update(done: done, total: total) { (loss, accuracy) }
    }

    /// The same, asking `figures` for the running loss and accuracy only when the line is
    /// redrawn (about ten times a second): reading them may cost a trip to the device.
    public func update(done: Int, total: Int, figures: () -> (loss: Double, accuracy: Double)) {
        let now = Self.now()
        if done <= 1 || epochStart == nil { epochStart = now - 1e-9 }
        guard done == total || now - lastDraw >= interval else { return }
        lastDraw = now
        let (loss, accuracy) = figures()
        let elapsed = now - (epochStart ?? now)
        let images = min(done * imagesPerBatch, totalImages)
        let rate = elapsed > 0.05 ? Double(images) / elapsed : 0
        let left = rate > 0 ? Double(totalImages - images) / rate : nil
        var line = ProgressLine(done: done, total: total, imagesPerSecond: rate, loss: loss, accuracy: accuracy,
                                secondsLeft: left).text(width: Self.columns() - 13)  // room for "  testing..."
        if done == total { line += "  testing..." }
        write("\r\u{1B}[2K" + line)
        drawn = true
    }

    /// Erases the line, so that the next output starts on a clean line.
    public func clear() {
        guard drawn else { return }
        write("\r\u{1B}[2K")
        drawn = false
        epochStart = nil
    }

    private func write(_ text: String) {
        fflush(nil)
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(descriptor, base + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Terminal width from $COLUMNS or the tty, 80 if unknown.
    private static func columns() -> Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        if let text = ProcessInfo.processInfo.environment["COLUMNS"], let value = Int(text), value > 20 { return value }
        return 80
    }
}
