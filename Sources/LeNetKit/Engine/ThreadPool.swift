import Foundation

/// Work made of independent tasks 0..<count for `ThreadPool.run`. A conforming object
/// is made once and holds the current call's arguments in stored properties, so that
/// running it allocates nothing (a closure handed to other threads would be copied to
/// the heap on every call).
public protocol ParallelWork: AnyObject {
    func run(task: Int)
}

/// A fixed set of worker threads that run the tasks of one piece of work at a time.
///
/// Task `i` always runs on worker `i % threadCount`, and callers give each task
/// its own output and scratch, indexed by task, never by thread: results do not
/// depend on how many threads there are. Nothing is allocated per call.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let workDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var generation = 0
    private var busyWorkers = 0
    private var taskCount = 0
    private var job: (any ParallelWork)?
    private var shuttingDown = false
    private var workers: [Thread] = []

    /// `threadCount` threads in all, the calling thread included.
    public init(threadCount: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.threadCount = max(1, threadCount)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(workDone, nil)
        for worker in 1..<self.threadCount {
            let thread = Thread { [unowned self] in self.workerLoop(worker) }
            thread.stackSize = 1 << 20
            thread.start()
            workers.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(workAvailable)
        while busyWorkers > -(threadCount - 1) { pthread_cond_wait(workDone, mutex) }
        pthread_mutex_unlock(mutex)
        pthread_cond_destroy(workAvailable)
        pthread_cond_destroy(workDone)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        workAvailable.deallocate()
        workDone.deallocate()
    }

    /// Runs `work.run(task:)` for tasks 0..<count across the pool and returns when all are done.
    public func run(_ work: some ParallelWork, tasks count: Int) {
        if threadCount == 1 || count <= 1 {
            for task in 0..<count { work.run(task: task) }
            return
        }
        pthread_mutex_lock(mutex)
        job = work
        taskCount = count
        busyWorkers = threadCount - 1
        generation &+= 1
        pthread_cond_broadcast(workAvailable)
        pthread_mutex_unlock(mutex)

        var task = 0
        while task < count { work.run(task: task); task += threadCount }

        pthread_mutex_lock(mutex)
        while busyWorkers > 0 { pthread_cond_wait(workDone, mutex) }
        job = nil
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop(_ worker: Int) {
        var seenGeneration = 0
        pthread_mutex_lock(mutex)
        while true {
            while generation == seenGeneration && !shuttingDown { pthread_cond_wait(workAvailable, mutex) }
            if shuttingDown { break }
            seenGeneration = generation
            let work = job
            let count = taskCount
            pthread_mutex_unlock(mutex)

            if let work {
                var task = worker
                while task < count { work.run(task: task); task += threadCount }
            }

            pthread_mutex_lock(mutex)
            busyWorkers -= 1
            if busyWorkers == 0 { pthread_cond_signal(workDone) }
        }
        // Count this worker out so deinit knows every thread has left.
        busyWorkers -= 1
        pthread_cond_signal(workDone)
        pthread_mutex_unlock(mutex)
    }
}
