import Foundation
@testable import LeNetKit
import Testing

/// A run whose loss turns NaN or infinite ends at that epoch before anything of it is
/// handed on to be saved: the files of the last finite epoch keep their bytes.
@Suite struct DivergenceTests {
    static func smallMNIST() throws -> Dataset {
        let full = try DataFixtures.mnist.get()
        return Dataset(train: full.train.prefix(320), test: full.test.prefix(64))  // 10 steps an epoch
    }

    static func savedFiles(_ checkpoints: RunCheckpoints) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for path in [checkpoints.lastPath, checkpoints.bestPath, checkpoints.statePath] {
            files[path] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
        return files
    }

    @Test func aDivergingEpochEndsTheRunBeforeItIsSaved() throws {
        var configuration = TrainingConfiguration()
        configuration.epochs = 4
        let trainer = try Trainer(configuration: configuration, dataset: try Self.smallMNIST(), device: .cpu(threads: 2))
        let checkpoints = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        var handedOn: [Int] = [], afterEpoch1: [String: Data] = [:]
        let outcome = try trainer.run { record in
            handedOn.append(record.epoch)
            try checkpoints.save(trainer)
            if record.epoch == 1 {
                afterEpoch1 = try Self.savedFiles(checkpoints)
                trainer.network.optimizer.learningRate = 1e30  // the next step's weights overflow
            }
        }
        #expect(outcome == .diverged(epoch: 2))
        #expect(handedOn == [1])
        #expect(try Self.savedFiles(checkpoints) == afterEpoch1)
        #expect(try checkpoints.loadState().epochsDone == 1)
    }

    /// Stopped mid-epoch after the loss went non-finite, the run reports the divergence
    /// instead of `.stopped`, whose state (non-finite sums) could not be resumed.
    @Test func aStopAfterTheLossWentNonFiniteIsADivergence() throws {
        var configuration = TrainingConfiguration()
        configuration.epochs = 4
        let trainer = try Trainer(configuration: configuration, dataset: try Self.smallMNIST(), device: .cpu(threads: 2))
        var steps = 0
        trainer.onBatch = { _, _ in steps += 1 }
        let outcome = trainer.run(stoppingWhen: { steps == 14 }) { record in
            if record.epoch == 1 { trainer.network.optimizer.learningRate = 1e30 }
        }
        #expect(outcome == .diverged(epoch: 2))
        #expect(trainer.history.count == 1)

        // The same stop with a finite loss is an ordinary stop.
        let calm = try Trainer(configuration: configuration, dataset: try Self.smallMNIST(), device: .cpu(threads: 2))
        steps = 0
        calm.onBatch = { _, _ in steps += 1 }
        #expect(calm.run(stoppingWhen: { steps == 14 }) { _ in } == .stopped)
    }
}
