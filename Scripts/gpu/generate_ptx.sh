#!/usr/bin/env bash
# The CUDA kernels as PTX, for machines with NVIDIA's driver but no NVRTC.
#
# NVRTC from the pinned PyPI package compiles the kernel program as CUDA C for compute_80
# (Scripts/gpu/lenet_kernels.ptx, committed), ptxas from the same CUDA release assembles it
# for sm_90 (Hopper) to prove the driver will accept it, and embed_kernels.py puts it in the
# library. 12.0 is the oldest CUDA 12: its PTX (ISA 8.0) loads on every driver from CUDA 12.0
# on, where a newer NVRTC's would be refused by older drivers.
#
#   Scripts/gpu/generate_ptx.sh           regenerate lenet_kernels.ptx and the Swift file
#   Scripts/gpu/generate_ptx.sh --check   fail if either is not what the kernels give (CI)
set -euo pipefail
cd "$(dirname "$0")/../.."

cuda=12.0.140
venv=${LENET_CUDA_VENV:-/tmp/lenet-cuda-$cuda}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import nvidia.cuda_nvrtc, nvidia.cuda_nvcc" 2>/dev/null \
    || "$venv/bin/pip" install -q "nvidia-cuda-nvrtc-cu12==$cuda" "nvidia-cuda-nvcc-cu12==$cuda"
ptxas=$("$venv/bin/python" -c "import nvidia.cuda_nvcc, os; print(os.path.join(list(nvidia.cuda_nvcc.__path__)[0], 'bin', 'ptxas'))")

ptx=Scripts/gpu/lenet_kernels.ptx
if [ "${1:-}" = "--check" ]; then
    "$venv/bin/python" Scripts/gpu/compile_ptx.py --check "$ptx"
else
    "$venv/bin/python" Scripts/gpu/compile_ptx.py "$ptx"
    python3 Scripts/gpu/embed_kernels.py
fi
"$ptxas" -arch=sm_90 "$ptx" -o /dev/null
echo "ptxas assembled $ptx for sm_90"
python3 Scripts/gpu/embed_kernels.py --check
