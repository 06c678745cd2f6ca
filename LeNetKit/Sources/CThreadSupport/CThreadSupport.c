#include "CThreadSupport.h"

#if defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

int lenet_cpu_has_avx512f(void) {
#if defined(__APPLE__)
    // macOS enables the AVX-512 state on first use, so XCR0 cannot tell; it says here.
    int value = 0;
    size_t size = sizeof(value);
    if (sysctlbyname("hw.optional.avx512f", &value, &size, 0, 0) != 0) return 0;
    return value != 0;
#elif defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE: xgetbv usable
    unsigned xcr0, xcr0High;
    __asm__ __volatile__("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    // The OS saves SSE, AVX, opmask and both halves of the 512-bit registers.
    if ((xcr0 & 0xE6) != 0xE6) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 16) & 1;  // AVX512F
#else
    return 0;
#endif
}
