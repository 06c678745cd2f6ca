#include "AllocationCounter.h"
#include <limits.h>  // on glibc, defines __GLIBC__ (through features.h)

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LENET_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LENET_SANITIZED 1
#endif

#if defined(LENET_COUNT_ALLOCATIONS) && defined(__linux__) && defined(__GLIBC__) && !defined(LENET_SANITIZED)

#include <stddef.h>

// glibc's allocator under its internal names.
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// This thread's counter, or NULL. Thread-local storage of the executable itself (initial
// exec): reading it allocates nothing.
static _Thread_local long *counter;

static inline void count(void) {
    if (counter) __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t count_, size_t size) { count(); return __libc_calloc(count_, size); }
void *realloc(void *pointer, size_t size) { count(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    count();
    // EINVAL unless a power of two multiple of sizeof(void *); ENOMEM when it fails.
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return 22;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return 12;
    *result = pointer;
    return 0;
}

int lenet_test_allocation_counting_available(void) { return 1; }
void lenet_test_count_allocations_on_this_thread(long *newCounter) { counter = newCounter; }

#else

int lenet_test_allocation_counting_available(void) { return 0; }
void lenet_test_count_allocations_on_this_thread(long *newCounter) { (void)newCounter; }

#endif

long lenet_test_read_allocation_counter(const long *value) { return __atomic_load_n(value, __ATOMIC_RELAXED); }
