#include "CThreadSupport.h"

long lenet_atomic_load_acquire(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
long lenet_atomic_load_relaxed(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
void lenet_atomic_store_release(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }
void lenet_atomic_store_relaxed(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_RELAXED); }
long lenet_atomic_fetch_add(long *p, long value) { return __atomic_fetch_add(p, value, __ATOMIC_ACQ_REL); }

void lenet_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}
