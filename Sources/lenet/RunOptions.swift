import ArgumentParser
import LeNetKit

/// How much of a run `train` and `experiment` do, and how much of it they show.
struct RunOptions: ParsableArguments {
    @Option(parsing: .unconditional,
            help: "A smoke run: train on the first N batches of each epoch and evaluate on the first N test batches. The epoch lines, run folder and report are written as usual.")
    var limitBatches: Int?

    @Flag(help: "The quickest check that everything works: --limit-batches 1 (one training and one test batch an epoch).")
    var dryRun = false

    @Flag(help: "Print only the epoch lines, Done and the run time (experiment: and the comparison): no model summary, no progress bar, no Report line. Errors and the resume hint still print.")
    var quiet = false

    func validate() throws {
        if let limitBatches {
            guard limitBatches >= 1 else { throw ValidationError("--limit-batches must be at least 1") }
            guard !dryRun else { throw ValidationError("--dry-run is --limit-batches 1; give one or the other") }
        }
    }

    /// At most this many batches an epoch and an evaluation; nil: all.
    var batchLimit: Int? { dryRun ? 1 : limitBatches }
}
