import Foundation
@testable import LeNetKit
import Testing

/// Training memory at large batch sizes stays within what `lenet summary` says the CPU
/// backend holds: the peak resident memory of real `lenet train` runs, as the kernel
/// counts it, grows with the batch as the summary's figure does.
@Suite struct TrainingMemoryTests {
    /// Peak resident bytes of `lenet` run with `arguments` (output discarded), and its exit status.
    ///
    /// Read from the child's own `VmHWM` in /proc while it runs (its high-water mark only
    /// rises; it is read every 10 ms until the child exits, and training is followed by
    /// evaluation and the report, so the last read comes after the peak). Not `wait4`'s
    /// `ru_maxrss`: a child started by posix_spawn (vfork) is charged the parent's peak
    /// too, which here is the whole test runner's.
    static func peakResidentBytes(_ arguments: [String]) throws -> (status: Int32, bytes: Int) {
        let lenet = try #require(CommandLineTests.lenet, "lenet binary not found beside the tests")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([lenet] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, lenet, &actions, nil, argv, environ)
        try #require(spawned == 0, "posix_spawn failed: \(spawned)")
        var peak = 0, status: Int32 = 0
        while true {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kibibytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) {
                peak = max(peak, kibibytes * 1024)
            }
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || (done < 0 && errno != EINTR) { break }
            usleep(10_000)
        }
        // The exit status is in bits 8-15 of a normal exit.
        return ((status >> 8) & 0xFF, peak)
    }

    /// The "Training memory of lenet's cpu backend (MB): X" line of `lenet summary`, in bytes.
    static func summaryTrainingBytes(batchSize: Int) throws -> Int {
        let outcome = try CommandLineTests.run(["summary", "--batch-size", String(batchSize)])
        try #require(outcome.status == 0, "\(outcome.stderr)")
        let prefix = "Training memory of lenet's cpu backend (MB): "
        let line = try #require(outcome.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) },
                                "no training-memory line in:\n\(outcome.stdout)")
        let megabytes = try #require(Double(line.dropFirst(prefix.count)))
        return Int(megabytes * 1e6)
    }

    @Test func peakMemoryGrowsWithTheBatchAsTheSummarySays() throws {
        // Under a sanitizer (Scripts/ci/sanitizers.sh sets these) `lenet` keeps shadow memory
        // in proportion to what it touches: its resident size is not the backend's.
        let environment = ProcessInfo.processInfo.environment
        guard environment["TSAN_OPTIONS"] == nil, environment["ASAN_OPTIONS"] == nil else { return }
        // 4,096 images: one step at batch 4,096 (slices of 512 images, far above the 64
        // whose im2col columns a slice keeps), against 64 steps at batch 64. Everything
        // else (runtime, dataset, report) is the same in both runs, so the difference in
        // peak memory is what the network holds for the larger batch.
        let data = try DataFixtures.temporaryDirectory()
        _ = try DataFixtures.writeSmallDataset(in: data, trainCount: 4096, testCount: 64)
        var peaks: [Int: Int] = [:]
        for batch in [64, 4096] {
            let output = try DataFixtures.temporaryDirectory() + "/run"
            let run = try Self.peakResidentBytes(["train", "--data-dir", data, "--no-download", "--epochs", "1",
                                                  "--batch-size", String(batch), "--threads", "2",
                                                  "--output", output, "--quiet"])
            try #require(run.status == 0, "lenet train --batch-size \(batch) failed")
            peaks[batch] = run.bytes
        }
        let measured = peaks[4096]! - peaks[64]!
        let planned = try Self.summaryTrainingBytes(batchSize: 4096) - Self.summaryTrainingBytes(batchSize: 64)
        // Slack for the allocator and, under AddressSanitizer, its shadow memory (1/8) and redzones.
        #expect(measured <= planned + planned / 4 + 32_000_000,
                "peak memory grew \(measured / 1_000_000) MB from batch 64 to 4,096; the summary says \(planned / 1_000_000) MB")
        // And the summary's figure is no gross overestimate: every buffer it counts is touched when built.
        #expect(measured >= planned * 7 / 10,
                "peak memory grew only \(measured / 1_000_000) MB from batch 64 to 4,096; the summary says \(planned / 1_000_000) MB")
    }

    @Test func summaryCountsLessThanKeepingEveryColumnWould() {
        // At batch 65,536 (the largest allowed), the plan keeps columns for 64 images a slice.
        let definition = ModelDefinition.lenet(.lenet)
        let planned = CPUNetwork.plannedBytes(definition, maxBatch: 65_536, trainable: true)
        // im2col columns of both convolutions for every image would be 138 KB an image alone.
        #expect(planned < 65_536 * 80_000, "\(planned / 1_000_000) MB at batch 65,536")
        #expect(planned > 65_536 * 60_000, "\(planned / 1_000_000) MB at batch 65,536: activations and gradients are missing")
        // An inference-only network holds no gradients, no columns for backward, no masks.
        #expect(CPUNetwork.plannedBytes(definition, maxBatch: 65_536, trainable: false) < planned * 6 / 10)
    }
}
