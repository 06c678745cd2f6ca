#!/usr/bin/env bash
# The tutorial's 8-epoch run (plain LeNet, batch 32, SGD 0.01) on the CPU backend and
# through OpenCL, with the same seed: the two must end within 0.2 points of test accuracy.
# On PoCL (OpenCL on the CPU) the OpenCL run takes over an hour on 2 cores (1 h 27 min on
# 2026-12-04, sharing them with builds), far too long for CI; its output is in
# BENCHMARKS.md ("The GPU backend: the tutorial's run through OpenCL").
#
#   Scripts/gpu/tutorial_run_opencl.sh [DATA_DIR] [SEED] [EPOCHS]
#
# Needs .build/release/lenet (or $LENET). Prints both runs' epoch lines and run times,
# then one verdict line; exits non-zero if the final test accuracies differ by more than 0.2.
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=${1:-../shared/mnist}
seed=${2:-1}
epochs=${3:-8}
lenet=${LENET:-.build/release/lenet}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for device in cpu opencl; do
    echo "== $device: $epochs epochs, seed $seed"
    "$lenet" train --device "$device" --epochs "$epochs" --seed "$seed" --data-dir "$data_dir" --no-download \
        --output "$work/$device" | grep --line-buffered -E "^(Epoch:|Done|Run time)" | tee "$work/$device.txt"
done

python3 - "$work/cpu.txt" "$work/opencl.txt" <<'PY'
import re, sys
def final_test_accuracy(path):
    lines = [l for l in open(path) if l.startswith("Epoch:")]
    return float(re.search(r"Test_acc:([\d.]+)%", lines[-1]).group(1))
cpu, opencl = (final_test_accuracy(p) for p in sys.argv[1:3])
gap = abs(cpu - opencl)
ok = gap <= 0.2 + 1e-9
print(f"final test accuracy: cpu {cpu:.1f}%, opencl {opencl:.1f}%, gap {gap:.1f} points -> "
      f"{'within' if ok else 'OVER'} 0.2")
sys.exit(0 if ok else 1)
PY
