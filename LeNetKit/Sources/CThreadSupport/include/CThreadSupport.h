#ifndef LENET_CTHREADSUPPORT_H
#define LENET_CTHREADSUPPORT_H

/// What Swift's standard library does not give a package that still builds for macOS 14:
/// atomic loads, stores and adds on plain memory, the CPU's spin-wait hint, and whether
/// the CPU has AVX-512. The thread
/// pool (Sources/LeNetKit/Engine/CPU/ThreadPool.swift) spins on these before it sleeps.
///
/// They are compiled in CThreadSupport.c rather than inline here, so that a build with
/// `--sanitize=thread` instruments them (clang turns the builtins into TSan's atomic
/// calls) and ThreadSanitizer sees the pool's hand-offs. A call costs a few nanoseconds;
/// a step makes a handful of them.

long lenet_atomic_load_acquire(const long *p);
long lenet_atomic_load_relaxed(const long *p);
void lenet_atomic_store_release(long *p, long value);
void lenet_atomic_store_relaxed(long *p, long value);
/// Adds `value` and returns the value before, ordered both ways (acquire and release).
long lenet_atomic_fetch_add(long *p, long value);
/// A hint that the caller is spinning: `pause` on x86 (frees the core's other hardware
/// thread, saves power), `yield` on ARM.
void lenet_cpu_relax(void);

/// 1 where the CPU has AVX-512 (AVX512F) and the OS keeps its 512-bit registers, else 0
/// (and on every CPU that is not x86). The GEMM sizes its register blocks by it
/// (`GemmBlocking.native`); Swift has no `cpuid`.
int lenet_cpu_has_avx512f(void);

#endif
