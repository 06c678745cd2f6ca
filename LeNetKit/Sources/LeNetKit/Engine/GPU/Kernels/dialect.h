/* The kernel dialect: the few words that differ between OpenCL C and CUDA C.
 *
 * Every kernel file is written once against these macros. The OpenCL runtime compiles
 * them as OpenCL C 1.2, NVRTC as CUDA C (as Blender Cycles does with its kernels).
 * Scripts/gpu/embed_kernels.py pastes this header and the kernel files, in name order,
 * into one program (KernelSources.generated.swift), dropping their `#include "dialect.h"`.
 *
 * Launch model: one dimension. A kernel is launched over `global` work items in groups
 * of `local` (a multiple of it); items past the end of the work return at once. */
#ifndef LENET_DIALECT_H
#define LENET_DIALECT_H

#if defined(__OPENCL_C_VERSION__) || defined(__OPENCL_VERSION__)
/* ---- OpenCL C ---- */
#define KERNEL __kernel void
#define GLOBAL __global          /* device memory, through a pointer argument */
#define LOCAL __local            /* memory shared by one work group */
#define GLOBAL_ID() ((int)get_global_id(0))
#define LOCAL_ID() ((int)get_local_id(0))
#define GROUP_ID() ((int)get_group_id(0))
#define LOCAL_SIZE() ((int)get_local_size(0))
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define DEVICE_FUNCTION static inline
typedef uint u32;
typedef ulong u64;
typedef uchar u8;

#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
/* ---- CUDA C ---- */
#define KERNEL extern "C" __global__ void
#define GLOBAL
#define LOCAL __shared__
#define GLOBAL_ID() ((int)(blockIdx.x * blockDim.x + threadIdx.x))
#define LOCAL_ID() ((int)threadIdx.x)
#define GROUP_ID() ((int)blockIdx.x)
#define LOCAL_SIZE() ((int)blockDim.x)
#define BARRIER() __syncthreads()
#define DEVICE_FUNCTION static __device__ __forceinline__
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned char u8;
/* The float versions of the math functions the kernels call (OpenCL C overloads them). */
#define exp expf
#define log logf
#define sqrt sqrtf

#else
#error "compile as OpenCL C or CUDA C"
#endif

/* Work groups that reduce (a sum per channel or per weight) have exactly this many
 * items, and sum in a tree of fixed shape: the same order on every run, no atomics. */
#define REDUCE_ITEMS 64

/* Sums `value` over the REDUCE_ITEMS items of a group through `scratch` [REDUCE_ITEMS]
 * in a fixed tree order; every item gets the total. */
#define GROUP_SUM(result, value, scratch)                                   \
    do {                                                                    \
        scratch[LOCAL_ID()] = (value);                                      \
        BARRIER();                                                          \
        for (int span = REDUCE_ITEMS / 2; span > 0; span /= 2) {            \
            if (LOCAL_ID() < span) scratch[LOCAL_ID()] += scratch[LOCAL_ID() + span]; \
            BARRIER();                                                      \
        }                                                                   \
        (result) = scratch[0];                                              \
        BARRIER();                                                          \
    } while (0)

#endif
