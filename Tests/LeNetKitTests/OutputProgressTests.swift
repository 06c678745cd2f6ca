import Foundation
@testable import LeNetKit
import Testing

/// The in-place progress line, written to a pipe and read back.
@Suite struct OutputProgressTests {
    private func capture(_ body: (Int32) -> Void) throws -> String {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        body(fds[1])
        close(fds[1])
        let data = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func redrawsInPlaceAndClearsBeforeTheEpochLine() throws {
        let text = try capture { fd in
            #expect(!TerminalProgress.isTerminal(fd))  // a pipe is not a terminal
            let progress = TerminalProgress(imagesPerBatch: 32, totalImages: 320, descriptor: fd, interval: 0)
            for done in 1...10 { progress.update(done: done, total: 10, loss: 1 / Double(done), accuracy: Double(done) / 10) }
            progress.clear()
            progress.clear()  // nothing drawn since: writes nothing
        }
        let erase = "\r\u{1B}[2K"
        let draws = text.components(separatedBy: erase).filter { !$0.isEmpty }
        #expect(draws.count == 10)
        #expect(draws.first?.hasPrefix(" 1/10 [") == true)
        #expect(draws.last?.hasPrefix("10/10 [") == true)
        #expect(draws.last?.hasSuffix("testing...") == true)
        #expect(text.hasSuffix(erase))  // cleared: the epoch line starts on a clean line
        #expect(text.components(separatedBy: erase).count == 12)  // 10 draws + 1 clear
        #expect(!text.contains("\n"))
    }

    @Test func drawsAtMostOncePerInterval() throws {
        let text = try capture { fd in
            let progress = TerminalProgress(imagesPerBatch: 32, totalImages: 32_000, descriptor: fd, interval: 3600)
            for done in 1...1000 { progress.update(done: done, total: 1000, loss: 0.5, accuracy: 0.5) }
        }
        // The first batch and the last one only.
        #expect(text.components(separatedBy: "\r\u{1B}[2K").filter { !$0.isEmpty }.count == 2)
    }
}
