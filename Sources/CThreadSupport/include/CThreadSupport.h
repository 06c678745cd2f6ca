#ifndef LENET_CTHREADSUPPORT_H
#define LENET_CTHREADSUPPORT_H

/// What Swift's standard library does not give a package that still builds for macOS 14:
/// atomic loads, stores and adds on plain memory, and the CPU's spin-wait hint. The thread
/// pool (Sources/LeNetKit/Engine/CPU/ThreadPool.swift) spins on these before it sleeps.

static inline long lenet_atomic_load_acquire(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline long lenet_atomic_load_relaxed(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void lenet_atomic_store_release(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }
static inline void lenet_atomic_store_relaxed(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_RELAXED); }
/// Adds `value` and returns the value before, ordered both ways (acquire and release).
static inline long lenet_atomic_fetch_add(long *p, long value) { return __atomic_fetch_add(p, value, __ATOMIC_ACQ_REL); }

/// A hint that the caller is spinning: `pause` on x86 (frees the core's other hardware
/// thread, saves power), `yield` on ARM.
static inline void lenet_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#endif
