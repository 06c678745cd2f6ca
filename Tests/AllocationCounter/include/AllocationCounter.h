#ifndef LENET_ALLOCATION_COUNTER_H
#define LENET_ALLOCATION_COUNTER_H

// Counts heap allocations made by chosen threads of the test process, so that a test can
// check that a training step allocates nothing (AllocationTests). The test runner's
// malloc, calloc, realloc and the aligned allocators are replaced by ones that count,
// then call glibc's own (__libc_malloc, ...). Only on Linux with glibc, and not in the
// sanitizer builds (LENET_SAFETY_CHECKS=1, or compiled with AddressSanitizer or
// ThreadSanitizer), whose runtimes replace the allocator themselves: there, nothing is
// replaced and `lenet_test_allocation_counting_available` is 0.
//
// Each thread adds to the counter it was given, so that tests running side by side in
// the same process count only their own threads' allocations.

/// 1 where allocations can be counted in this build, else 0.
int lenet_test_allocation_counting_available(void);

/// From now on, each allocation of the calling thread adds 1 to `*counter` (atomically:
/// several threads may share a counter); NULL stops counting on this thread.
void lenet_test_count_allocations_on_this_thread(long *counter);

/// The counter's value (read atomically).
long lenet_test_read_allocation_counter(const long *counter);

#endif
