import CThreadSupport
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
/// A hand-off costs little: after a run a worker spins on the pool's generation counter
/// for `spinNanoseconds` (with the CPU's pause hint) before it sleeps on a condition
/// variable, so that runs in quick succession (the steps of an epoch) wake no thread
/// through the kernel; the caller waits for the workers the same way. Within a run whose
/// tasks are no more than the threads (each task then has a thread of its own), the tasks
/// can meet at `barrier()`.
///
/// Releasing the pool stops its threads: `deinit` returns once every worker has left
/// its loop. The workers hold the shared state (`Coordinator`), never the pool itself,
/// so the pool's last release is the owner's, and the mutex and conditions live until
/// the last worker is done with them.
final class ThreadPool: @unchecked Sendable {
    let threadCount: Int
    private let coordinator: Coordinator

    /// How long an idle worker spins before it sleeps: long enough to bridge the caller's
    /// work between two steps (staging a batch, a few microseconds), short enough not to
    /// hold a core that other programs want.
    static let spinNanoseconds: UInt64 = 50_000

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
            coordinator.barrierParticipants = 1
            for task in 0..<count { work.run(task: task) }
            return
        }
        coordinator.run(work, tasks: count)
    }

    /// Waits until every task of the current run has reached this call. Only for a run
    /// of at most `threadCount` tasks (one thread each), called by every one of them the
    /// same number of times; writes before it are visible to every task after it.
    func barrier() { coordinator.barrier() }
}

/// Spins on a condition with the CPU's pause hint, yielding the CPU now and then so that
/// a thread we wait for can run even where there are more threads than cores.
@inline(__always)
private func spinWait(while condition: () -> Bool) {
    var spins = 0
    while condition() {
        lenet_cpu_relax()
        spins &+= 1
        if spins & 255 == 0 { sched_yield() }
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// The state the caller and the workers share. Each worker thread holds a strong
/// reference to it, so it is freed (and the mutex and conditions destroyed) only after
/// the last worker has returned.
///
/// The hand-off: the caller writes `job`, `taskCount` and `pending`, then advances
/// `generation` (release); a worker that sees the new generation (acquire) reads them,
/// runs its tasks and counts itself out of `pending` (release); the caller returns when
/// `pending` is 0 (acquire). A worker sleeps only under `mutex`, after re-checking the
/// generation there, and the caller takes `mutex` after advancing it: no wake-up is lost.
private final class Coordinator: @unchecked Sendable {
    /// Threads in all, the caller included; `settle` sets the number actually started.
    private var threadCount: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let workDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Atomic counters, each on its own 128-byte line: generation, pending, arrived,
    /// barrierPhase, and the shutdown flag (1 once the pool is released).
    private let atomics: UnsafeMutablePointer<Int>
    private var generation: UnsafeMutablePointer<Int> { atomics }
    private var pending: UnsafeMutablePointer<Int> { atomics + 16 }
    private var arrived: UnsafeMutablePointer<Int> { atomics + 32 }
    private var barrierPhase: UnsafeMutablePointer<Int> { atomics + 48 }
    private var stopping: UnsafeMutablePointer<Int> { atomics + 64 }
    // Written by the caller before advancing `generation`, read by workers after seeing it.
    private var taskCount = 0
    private var job: (any ParallelWork)?
    /// Tasks of the current run that meet at `barrier()` (its task count).
    var barrierParticipants = 1
    // Guarded by `mutex`.
    private var sleepers = 0
    /// Workers that have not yet left `workerLoop` for good.
    private var liveWorkers: Int

    init(threadCount: Int) {
        self.threadCount = threadCount
        liveWorkers = threadCount - 1
        atomics = UnsafeMutablePointer<Int>.allocate(capacity: 80)
        atomics.initialize(repeating: 0, count: 80)
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
        atomics.deallocate()
    }

    /// Hands `work` to every worker, runs the caller's share (tasks 0, threadCount, ...)
    /// and waits for the workers' shares.
    func run(_ work: some ParallelWork, tasks count: Int) {
        let threadCount = self.threadCount
        job = work
        taskCount = count
        barrierParticipants = min(count, threadCount)
        lenet_atomic_store_relaxed(pending, threadCount - 1)
        _ = lenet_atomic_fetch_add(generation, 1)
        pthread_mutex_lock(mutex)
        if sleepers > 0 { pthread_cond_broadcast(workAvailable) }
        pthread_mutex_unlock(mutex)

        var task = 0
        while task < count { work.run(task: task); task += threadCount }

        let pending = self.pending
        spinWait { lenet_atomic_load_acquire(pending) != 0 }
        job = nil
    }

    func barrier() {
        let participants = barrierParticipants
        guard participants > 1 else { return }
        let phase = lenet_atomic_load_acquire(barrierPhase)
        if lenet_atomic_fetch_add(arrived, 1) == participants - 1 {
            lenet_atomic_store_relaxed(arrived, 0)
            _ = lenet_atomic_fetch_add(barrierPhase, 1)
        } else {
            let barrierPhase = self.barrierPhase
            spinWait { lenet_atomic_load_acquire(barrierPhase) == phase }
        }
    }

    /// Tells the workers to leave and waits until every one has.
    func shutDown() {
        pthread_mutex_lock(mutex)
        lenet_atomic_store_release(stopping, 1)
        _ = lenet_atomic_fetch_add(generation, 1)
        pthread_cond_broadcast(workAvailable)
        while liveWorkers > 0 { pthread_cond_wait(workDone, mutex) }
        pthread_mutex_unlock(mutex)
    }

    func workerLoop(_ worker: Int) {
        var seenGeneration = 0
        let generation = self.generation
        while true {
            // Spin a little for the next run, then sleep until it comes.
            let start = monotonicNanoseconds()
            var spins = 0
            while lenet_atomic_load_acquire(generation) == seenGeneration {
                lenet_cpu_relax()
                spins &+= 1
                if spins & 63 == 0 && monotonicNanoseconds() &- start > ThreadPool.spinNanoseconds {
                    pthread_mutex_lock(mutex)
                    sleepers += 1
                    while lenet_atomic_load_acquire(generation) == seenGeneration { pthread_cond_wait(workAvailable, mutex) }
                    sleepers -= 1
                    pthread_mutex_unlock(mutex)
                }
            }
            seenGeneration = lenet_atomic_load_acquire(generation)
            if lenet_atomic_load_acquire(stopping) != 0 { break }

            if let work = job {
                let count = taskCount, stride = threadCount
                var task = worker
                while task < count { work.run(task: task); task += stride }
            }
            _ = lenet_atomic_fetch_add(pending, -1)
        }
        // Count this worker out so that shutDown knows every thread has left.
        pthread_mutex_lock(mutex)
        liveWorkers -= 1
        if liveWorkers == 0 { pthread_cond_signal(workDone) }
        pthread_mutex_unlock(mutex)
    }
}
