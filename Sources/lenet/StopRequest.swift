import Dispatch
import Foundation
import Synchronization

/// Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal closed, an SSH session dropped) during
/// training: the first one asks the training loop to stop after the step it is in, save a
/// resumable state and say how to resume; a second one exits at once (every file on disk is
/// then that of the last save, each written through a temporary file and a rename, so none
/// is half-written).
///
/// The signals are taken by dispatch sources, not a signal handler, so the code that
/// reacts runs on an ordinary thread; the training loop only reads an atomic flag.
enum StopRequest {
    private static let signalsSeen = Atomic<Int>(0)
    /// The dispatch sources, kept alive while installed (set once, from the main thread).
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// True once a stop was asked for.
    static var isRequested: Bool { signalsSeen.load(ordering: .relaxed) > 0 }

    /// Starts listening for SIGINT, SIGTERM and SIGHUP (idempotent).
    static func install() {
        guard sources.isEmpty else { return }
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)  // the source sees it; the default action would kill the process
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if signalsSeen.wrappingAdd(1, ordering: .relaxed).newValue == 1 {
                    printToStandardError("\nStopping after the current step to save the run (press Ctrl-C again to quit at once)")
                } else {
                    printToStandardError("Stopped without saving: the run folder keeps its last save")
                    exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }
}
