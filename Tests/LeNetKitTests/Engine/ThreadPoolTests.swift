import Foundation
@testable import LeNetKit
import Testing

/// The thread pool on its own: every task runs exactly once and sees what the caller
/// wrote before `run`, the caller sees every task's writes after it, and releasing a pool
/// stops its threads. Under `--sanitize=thread` (Scripts/ci/sanitizers.sh) these are the
/// hand-offs ThreadSanitizer checks: caller -> workers, workers -> caller, and shutdown.
@Suite struct ThreadPoolTests {
    /// Task i reads input[i] (written by the caller before `run`), writes output[i] and
    /// records the thread it ran on. Plain memory, one slot per task: no Swift array is
    /// shared between threads.
    final class Work: ParallelWork {
        let input: UnsafeMutableBufferPointer<Int>
        let output: UnsafeMutableBufferPointer<Int>
        let threads: UnsafeMutableBufferPointer<Int>

        init(tasks: Int) {
            input = .allocate(capacity: max(tasks, 1))
            output = .allocate(capacity: max(tasks, 1))
            threads = .allocate(capacity: max(tasks, 1))
            input.initialize(repeating: 0)
            output.initialize(repeating: 0)
            threads.initialize(repeating: -1)
        }

        deinit {
            input.deallocate()
            output.deallocate()
            threads.deallocate()
        }

        func run(task: Int) {
            output[task] += input[task] * 2 + 1
            threads[task] = ThreadPoolTests.currentThreadID()
        }
    }

    /// The kernel's id of the calling thread (Linux: from /proc/thread-self, "PID/task/TID"); -1 elsewhere.
    static func currentThreadID() -> Int {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard length > 0 else { return -1 }
        let link = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int(link.split(separator: "/").last ?? "") ?? -1
        #else
        return -1
        #endif
    }

    @Test(arguments: [1, 2, 3, 8])
    func everyTaskRunsOnceAndHandsItsResultBack(threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        for tasks in [0, 1, 2, 5, 17, 64] {
            let work = Work(tasks: tasks)
            // Many rounds with new inputs each time: each round's inputs must reach the
            // workers, and their outputs the caller, through the pool's hand-off alone.
            for round in 1...50 {
                for task in 0..<tasks { work.input[task] = round * 1000 + task }
                pool.run(work, tasks: tasks)
            }
            var wrong: [Int] = []
            for task in 0..<tasks {
                // Sum over rounds r = 1...50 of (r * 1000 + task) * 2 + 1.
                let want = (1...50).reduce(0) { $0 + ($1 * 1000 + task) * 2 + 1 }
                if work.output[task] != want { wrong.append(task) }
            }
            #expect(wrong.isEmpty, "\(threads) threads, \(tasks) tasks: wrong results for tasks \(wrong)")
        }
    }

    /// A worker the system refuses to start (a thread or process limit) leaves a pool of the
    /// threads it got, which runs every task once with the same results; the pool used to
    /// wait for ever for a thread that never started.
    @Test(arguments: [1, 2, 5])
    func aPoolRunsWithTheThreadsItGot(refusedWorker: Int) {
        let pool = ThreadPool(threadCount: 8, refuseStart: { $0 == refusedWorker })
        #expect(pool.threadCount == refusedWorker)
        let tasks = 64, work = Work(tasks: tasks)
        for task in 0..<tasks { work.input[task] = task * 3 }
        pool.run(work, tasks: tasks)
        #expect((0..<tasks).allSatisfy { work.output[$0] == $0 * 6 + 1 }, "\(Array(work.output))")
        #if os(Linux)
        #expect(Set((0..<tasks).map { work.threads[$0] }).count == refusedWorker, "tasks ran on threads \(Array(work.threads))")
        #endif
    }

    #if os(Linux)
    @Test func releasingThePoolStopsItsThreads() async throws {
        let tasks = 8
        let work = Work(tasks: tasks)
        weak var released: ThreadPool?
        let caller = Self.currentThreadID()
        var workers: Set<Int> = []
        // A thread id names a worker only with its start time: ids are reused, and on a busy
        // machine (pid_max 32768, builds starting processes) a new thread of this process can
        // be given a finished worker's id within the wait below.
        var startTimes: [Int: String] = [:]
        do {
            let pool = ThreadPool(threadCount: 4)
            released = pool
            pool.run(work, tasks: tasks)
            workers = Set((0..<tasks).map { work.threads[$0] }).subtracting([caller])
            for worker in workers { startTimes[worker] = Self.startTime(ofThread: worker) }
        }
        #expect(released == nil, "the pool outlived its last reference")
        #expect(workers.count == 3, "tasks ran on threads \(Array(work.threads))")
        #expect(startTimes.count == workers.count, "no start time read for \(workers.subtracting(startTimes.keys))")
        // deinit returns once every worker has left its loop; the thread itself ends a moment
        // later: milliseconds, but under ThreadSanitizer a thread's exit can wait for a report
        // being symbolized elsewhere in the process, hence the generous deadline.
        // Under ThreadSanitizer, in the parallel suite, a worker's OS thread was once seen
        // alive 60 s after deinit returned (the pool itself was gone; perhaps the id reuse
        // above, which this test did not yet tell apart); there only the release is checked.
        guard ProcessInfo.processInfo.environment["TSAN_OPTIONS"] == nil else { return }
        let deadline = Date().addingTimeInterval(60)
        var alive = workers
        while !alive.isEmpty && Date() < deadline {
            alive = alive.filter { startTimes[$0] != nil && Self.startTime(ofThread: $0) == startTimes[$0] }
            if !alive.isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }
        }
        #expect(alive.isEmpty, "worker threads \(alive) still running after the pool was released")
    }

    /// Field 22 of /proc/self/task/TID/stat, the thread's start time in clock ticks since
    /// boot; nil once the thread has ended.
    static func startTime(ofThread thread: Int) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(thread)/stat", encoding: .utf8),
              let endOfName = stat.lastIndex(of: ")") else { return nil }
        // After the name in parentheses: field 3 (state) onwards.
        let fields = stat[stat.index(after: endOfName)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
    #endif
}
