import Foundation
@testable import LeNetKit
import Testing

/// What the training loop prints and writes, character for character.
@Suite struct TrainingOutputTests {
    static let record = EpochRecord(epoch: 1, trainAccuracy: 0.5929, trainLoss: 1.2071, testAccuracy: 0.9234,
                                    testLoss: 0.2549, seconds: 3.5)

    @Test func epochLineIsTheTutorials() {
        #expect(Self.record.line == "Epoch: 1, Train_acc:59.3%, Train_loss:1.207, Test_acc:92.3%, Test_loss:0.255")
        var tenth = Self.record
        tenth.epoch = 10
        #expect(tenth.line.hasPrefix("Epoch:10, Train_acc:"))
    }

    @Test func runTimeIsPrintedLikeATimedelta() {
        #expect(formatRunTime(seconds: 0) == "0:00:00.000000")
        #expect(formatRunTime(seconds: 41.1234567) == "0:00:41.123457")
        #expect(formatRunTime(seconds: 3_725.5) == "1:02:05.500000")
    }

    @Test func durationsInReportsAreRoundedToWhatMatters() {
        #expect(formatDuration(seconds: 0.8449) == "0.84 s")
        #expect(formatDuration(seconds: 11.279971) == "11.3 s")
        #expect(formatDuration(seconds: 59.96) == "1 min 00 s")
        #expect(formatDuration(seconds: 245.4) == "4 min 05 s")
        #expect(formatDuration(seconds: 3_725.5) == "1 h 02 min 06 s")
    }

    @Test func historyCSVHasOneRowPerEpoch() {
        let csv = TrainingHistory.csv([Self.record, Self.record])
        let lines = csv.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0] == "epoch,train_accuracy,train_loss,test_accuracy,test_loss,seconds")
        #expect(lines[1] == "1,0.592900,1.207100,0.923400,0.254900,3.500")
    }

    @Test func historyJSONRoundTrips() throws {
        let data = try TrainingHistory.json([Self.record])
        #expect(try JSONDecoder().decode([EpochRecord].self, from: data) == [Self.record])
    }

    @Test func comparisonFindsTheFirstEpochAt98AndAlignsColumns() {
        func history(_ accuracies: [Double]) -> [EpochRecord] {
            accuracies.enumerated().map { EpochRecord(epoch: $0 + 1, trainAccuracy: 0, trainLoss: 0, testAccuracy: $1,
                                                      testLoss: 0, seconds: 1) }
        }
        let plain = history([0.92, 0.97, 0.981, 0.979])
        let bn = history([0.95, 0.96, 0.97])
        #expect(ExperimentComparison.firstEpoch(reaching: 0.98, in: plain) == 3)
        #expect(ExperimentComparison.firstEpoch(reaching: 0.98, in: bn) == nil)
        let table = ExperimentComparison([.init(model: .lenet, history: plain, seconds: 12),
                                          .init(model: .lenetBN, history: bn, seconds: 15)]).table
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[1].contains("epoch 3") && lines[1].contains("97.90%") && lines[1].contains("98.10% (3)"))
        #expect(lines[2].contains("never"))
        // Columns line up: "final" starts at the same place in every row.
        let finalColumn = lines[0].range(of: "final")!.lowerBound.utf16Offset(in: lines[0])
        #expect(lines[1].range(of: "97.90%")!.lowerBound.utf16Offset(in: lines[1]) == finalColumn)
    }
}
