import Foundation

/// Work made of independent tasks 0..<count for `ThreadPool.run`. A conforming object
/// is made once and holds the current call's arguments in stored properties, so that
/// running it allocates nothing (a closure handed to other threads would be copied to
/// the heap on every call).
protocol ParallelWork: AnyObject {
    func run(task: Int)
}

/// A fixed set of worker threads that run the tasks of one piece of work at a time.
///
/// Task `i` always runs on worker `i % threadCount`, and callers give each task
/// its own output and scratch, indexed by task, never by thread: results do not
/// depend on how many threads there are. Nothing is allocated per call.
///
/// Releasing the pool stops its threads: `deinit` returns once every worker has left
/// its loop. The workers hold the shared state (`Coordinator`), never the pool itself,
/// so the pool's last release is the owner's, and the mutex and conditions live until
/// the last worker is done with them.
final class ThreadPool: @unchecked Sendable {
    let threadCount: Int
    private let coordinator: Coordinator

    /// `threadCount` threads in all, the calling thread included, or fewer when the system
    /// refuses to start more (a thread or process limit): then the pool runs with the
    /// threads it got. That costs speed only: callers cut their work into fixed tasks, so
    /// results do not depend on the thread count, and a run that has started is not lost
    /// for want of a thread. (Foundation's `Thread` gives no error: a worker that never
    /// started left the caller waiting for it for ever.)
    ///
    /// `refuseStart` is for tests: worker N (1...) is treated as refused by the system when it says yes.
    init(threadCount: Int = ProcessInfo.processInfo.activeProcessorCount, refuseStart: (Int) -> Bool = { _ in false }) {
        let requested = max(1, threadCount)
        let coordinator = Coordinator(threadCount: requested)
        var started = 0
        for worker in 1..<requested {
            guard !refuseStart(worker), Self.startThread(running: { coordinator.workerLoop(worker) }) else { break }
            started += 1
        }
        coordinator.settle(workers: started)
        self.threadCount = started + 1
        self.coordinator = coordinator
    }

    /// Starts a detached thread with a 1 MiB stack running `body`; false when pthread_create fails.
    private static func startThread(running body: @escaping () -> Void) -> Bool {
        final class Body { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 1 << 20)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        if result != 0 { Unmanaged<Body>.fromOpaque(context).release() }
        return result == 0
    }

    deinit { coordinator.shutDown() }

    /// Runs `work.run(task:)` for tasks 0..<count across the pool and returns when all are done.
    func run(_ work: some ParallelWork, tasks count: Int) {
        if threadCount == 1 || count <= 1 {
            for task in 0..<count { work.run(task: task) }
            return
        }
        coordinator.run(work, tasks: count)
    }
}

/// The state the caller and the workers share, every field guarded by `mutex`. Each
/// worker thread holds a strong reference to it, so it is freed (and the mutex and
/// conditions destroyed) only after the last worker has returned.
private final class Coordinator: @unchecked Sendable {
    /// Threads in all, the caller included; `settle` sets the number actually started.
    private var threadCount: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let workDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var generation = 0
    private var busyWorkers = 0
    private var taskCount = 0
    private var job: (any ParallelWork)?
    private var shuttingDown = false
    /// Workers that have not yet left `workerLoop` for good.
    private var liveWorkers: Int

    init(threadCount: Int) {
        self.threadCount = threadCount
        liveWorkers = threadCount - 1
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(workDone, nil)
    }

    /// Records how many workers started, before any `run`: the tasks are dealt among those.
    func settle(workers: Int) {
        pthread_mutex_lock(mutex)
        threadCount = workers + 1
        liveWorkers = workers
        pthread_mutex_unlock(mutex)
    }

    deinit {
        pthread_cond_destroy(workAvailable)
        pthread_cond_destroy(workDone)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        workAvailable.deallocate()
        workDone.deallocate()
    }

    /// Hands `work` to every worker, runs the caller's share (tasks 0, threadCount, ...)
    /// and waits for the workers' shares. Writes made before the call are visible to the
    /// workers, and the workers' writes to the caller afterwards: both pass through `mutex`.
    func run(_ work: some ParallelWork, tasks count: Int) {
        pthread_mutex_lock(mutex)
        let threadCount = self.threadCount
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

    /// Tells the workers to leave and waits until every one has.
    func shutDown() {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(workAvailable)
        while liveWorkers > 0 { pthread_cond_wait(workDone, mutex) }
        pthread_mutex_unlock(mutex)
    }

    func workerLoop(_ worker: Int) {
        var seenGeneration = 0
        pthread_mutex_lock(mutex)
        while true {
            while generation == seenGeneration && !shuttingDown { pthread_cond_wait(workAvailable, mutex) }
            if shuttingDown { break }
            seenGeneration = generation
            let work = job
            let count = taskCount, stride = threadCount
            pthread_mutex_unlock(mutex)

            if let work {
                var task = worker
                while task < count { work.run(task: task); task += stride }
            }

            pthread_mutex_lock(mutex)
            busyWorkers -= 1
            if busyWorkers == 0 { pthread_cond_signal(workDone) }
        }
        // Count this worker out so that shutDown knows every thread has left.
        liveWorkers -= 1
        if liveWorkers == 0 { pthread_cond_signal(workDone) }
        pthread_mutex_unlock(mutex)
    }
}
