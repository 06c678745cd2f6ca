#!/usr/bin/env python3
"""Compiles the kernel program (as embed_kernels.py assembles it) to PTX with NVRTC.

    compile_ptx.py OUT.ptx            write the PTX NVRTC gives for compute_80
    compile_ptx.py --check OUT.ptx    exit 1 if OUT.ptx differs from it

Run by generate_ptx.sh with the pinned nvidia-cuda-nvrtc-cu12 (it finds libnvrtc.so.12 in
that package, or where LENET_NVRTC points). The options are the CUDA runtime's
(CUDARuntime.swift): keep them the same.
"""
import ctypes
import glob
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from embed_kernels import program, write_or_check  # noqa: E402

ARCHITECTURE = "compute_80"  # any CUDA 12 driver JIT-compiles it for Ampere, Hopper and later
OPTIONS = [f"--gpu-architecture={ARCHITECTURE}", "--fmad=false", "--std=c++11"]


def nvrtc_library() -> ctypes.CDLL:
    path = os.environ.get("LENET_NVRTC")
    if not path:
        import nvidia.cuda_nvrtc  # the pinned PyPI package
        found = glob.glob(os.path.join(list(nvidia.cuda_nvrtc.__path__)[0], "lib", "libnvrtc.so.12"))
        if not found:
            sys.exit("compile_ptx: libnvrtc.so.12 not found in nvidia-cuda-nvrtc-cu12")
        path = found[0]
    return ctypes.CDLL(path)


def compile_ptx() -> str:
    nvrtc = nvrtc_library()
    handle = ctypes.c_void_p()
    if nvrtc.nvrtcCreateProgram(ctypes.byref(handle), program().encode(), b"lenet_kernels.cu", 0, None, None) != 0:
        sys.exit("compile_ptx: nvrtcCreateProgram failed")
    options = (ctypes.c_char_p * len(OPTIONS))(*[o.encode() for o in OPTIONS])
    status = nvrtc.nvrtcCompileProgram(handle, len(OPTIONS), options)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(handle, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(handle, log)
    if status != 0:
        sys.exit("compile_ptx: NVRTC could not compile the kernels:\n" + log.value.decode())
    nvrtc.nvrtcGetPTXSize(handle, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetPTX(handle, ptx)
    nvrtc.nvrtcDestroyProgram(ctypes.byref(handle))
    return ptx.value.decode()


def main() -> int:
    arguments = [a for a in sys.argv[1:] if a != "--check"]
    if len(arguments) != 1:
        sys.exit(__doc__)
    out = pathlib.Path(arguments[0])
    return write_or_check(out, compile_ptx(), "--check" in sys.argv[1:],
                          stale=f"{out} is not what NVRTC writes: run Scripts/gpu/generate_ptx.sh",
                          fresh=f"{out.name} is what NVRTC writes")


if __name__ == "__main__":
    sys.exit(main())
