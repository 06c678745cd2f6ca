// The pattern ThreadSanitizer misreads with this toolchain on Linux, shown without lenet,
// Hummingbird or NIO: a plain thread builds an object and hands it to an awaiting task
// with `CheckedContinuation.resume(returning:)`; the task then reads it. That is correct
// Swift (the resume orders the writes before the reads), yet TSan reports a data race,
// because it does not see the ordering the concurrency runtime provides between resuming a
// continuation on one thread and running the task on another.
//
// SwiftNIO hands every request head to Hummingbird's handler task this way (the event loop
// resumes the waiting `NIOAsyncChannel` iterator), so `lenet serve` under load gets the
// same false report on HTTPTypes values: tsan.supp. Scripts/ci/sanitizers.sh runs this
// program first and says so if it stops reporting (then the suppression can go).
import Foundation

final class Message: @unchecked Sendable {
    var first = 0
    var second = 0
}

final class Mailbox: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: CheckedContinuation<Message, Never>?

    func wait(_ continuation: CheckedContinuation<Message, Never>) {
        lock.lock(); defer { lock.unlock() }
        waiting = continuation
    }

    func deliver(_ message: Message) {
        lock.lock()
        let continuation = waiting!
        waiting = nil
        lock.unlock()
        continuation.resume(returning: message)
    }
}

@main
struct ContinuationHandoff {
    static func main() async {
        var sum = 0
        for _ in 0..<2_000 {
            let mailbox = Mailbox()
            let message: Message = await withCheckedContinuation { continuation in
                mailbox.wait(continuation)
                Thread {
                    let message = Message()
                    message.first = 1
                    message.second = 2
                    mailbox.deliver(message)
                }.start()
            }
            sum += message.first + message.second
        }
        print(sum == 6_000 ? "handed over 2000 messages" : "wrong sum \(sum)")
    }
}
