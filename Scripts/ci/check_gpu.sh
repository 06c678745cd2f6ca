#!/usr/bin/env bash
# The GPU backend's checks that need no GPU (issue 15); PoCL gives OpenCL a device on the CPU.
#  1. KernelSources.generated.swift is what Engine/GPU/Kernels/ holds (Scripts/gpu/embed_kernels.py);
#  2. the committed PTX is what the pinned NVRTC writes, and ptxas assembles it for sm_90;
#  3. the GPU tests through OpenCL: every kernel against the CPU's kernels, the GPU backend
#     against the CPU backend and PyTorch's golden files, a short run to the CPU's accuracy,
#     `lenet predict`, `serve` and `bench` with --device opencl, and the one-line errors
#     without a runtime. LENET_REQUIRE_GPU=1 makes them fail
#     (not skip) when no OpenCL device is found.
# Run it after the main test step has built the tests (it does not build them again).
# `--sources-only` does 1 and 2 (CI, whose test suite already runs the GPU tests).
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
for pkg in pocl-opencl-icd ocl-icd-libopencl1; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

python3 Scripts/gpu/embed_kernels.py --check

# NVRTC (pinned CUDA 12.0 from PyPI) compiles every kernel as CUDA C for compute_80 into
#    exactly the committed PTX, and ptxas assembles it for sm_90 without an error.
Scripts/gpu/generate_ptx.sh --check

[ "${1:-}" = "--sources-only" ] && exit 0
LENET_TEST_GPU_RUNTIME=opencl LENET_REQUIRE_GPU=1 swift test -c release --skip-build --filter 'GPU(Kernel|Runtime|Network|Command|LaunchGraph)Tests'
