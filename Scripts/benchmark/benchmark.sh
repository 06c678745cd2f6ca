#!/usr/bin/env bash
# Measures lenet and its peers (PyTorch eager, ONNX Runtime) side by side, in one run on
# this machine, and prints the figures and ratios as Markdown rows for BENCHMARKS.md.
# Creates .venv-bench with torch, onnx and onnxruntime from PyPI on first use (large).
# Usage: Scripts/benchmark/benchmark.sh [MNIST_DIR]   (default ../shared/mnist)
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=${1:-../shared/mnist}
venv=.venv-bench
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch onnx onnxruntime numpy
fi
swift build -c release >/dev/null
"$venv/bin/python" Scripts/benchmark/benchmark.py "$data_dir"
