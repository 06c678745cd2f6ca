#!/usr/bin/env bash
# Checkpoints, resume and ONNX export against the real tools, on full MNIST (no network
# except PyPI when the Python packages are missing). Needs .build/release/lenet (or $LENET).
#
#   Scripts/ci/check_interop.sh [DATA_DIR]        (default ../shared/mnist)
#
# 1. lenet-bn: 1 epoch, then `--resume` to 2 epochs; must print the same epoch lines as
#    2 epochs straight and leave a byte-identical last.safetensors.
# 2. plain lenet: 1 epoch.
# 3. For both: `lenet evaluate --predictions`, `lenet export --onnx`, then
#    Scripts/ci/check_pytorch_checkpoint.py (load_state_dict(strict=True), PyTorch predictions
#    equal lenet's) and Scripts/ci/check_onnx.py (ONNX Runtime predictions equal lenet's).
#
# Python: $PYTHON if set, else /tmp/peer/bin/python if it has the packages, else a venv
# made in ${LENET_INTEROP_VENV:-/tmp/lenet-interop-venv} with
#   pip install torch safetensors numpy onnx onnxruntime
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=${1:-../shared/mnist}
lenet=${LENET:-.build/release/lenet}
packages=(torch safetensors numpy onnx onnxruntime)
has_packages() { "$1" -c "import torch, safetensors, numpy, onnx, onnxruntime" >/dev/null 2>&1; }

if [ -z "${PYTHON:-}" ]; then
    if [ -x /tmp/peer/bin/python ] && has_packages /tmp/peer/bin/python; then
        PYTHON=/tmp/peer/bin/python
    else
        venv=${LENET_INTEROP_VENV:-/tmp/lenet-interop-venv}
        if [ ! -x "$venv/bin/python" ] || ! has_packages "$venv/bin/python"; then
            echo "interop: installing ${packages[*]} into $venv"
            python3 -m venv "$venv"
            "$venv/bin/pip" install -q "${packages[@]}"
        fi
        PYTHON=$venv/bin/python
    fi
fi
has_packages "$PYTHON" || { echo "interop: $PYTHON lacks one of ${packages[*]}"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--data-dir "$data_dir" --no-download --seed 3)

echo "== exact resume (lenet-bn, full MNIST): 1 epoch + resume to 2 vs 2 straight"
"$lenet" train --model lenet-bn --epochs 1 --output "$work/bn" "${common[@]}" | grep '^Epoch:' > "$work/split.txt"
"$lenet" train --epochs 2 --resume "$work/bn" "${common[@]}" | grep '^Epoch:' >> "$work/split.txt"
"$lenet" train --model lenet-bn --epochs 2 --output "$work/bn-straight" "${common[@]}" | grep '^Epoch:' > "$work/straight.txt"
cat "$work/split.txt"
if ! diff "$work/split.txt" "$work/straight.txt"; then
    echo "FAIL resumed epoch lines differ from straight training"; exit 1
fi
cmp "$work/bn/last.safetensors" "$work/bn-straight/last.safetensors" \
    || { echo "FAIL resumed last.safetensors differs from straight training's"; exit 1; }
echo "ok   same epoch lines; last.safetensors byte-identical"

echo "== plain lenet, 1 epoch"
"$lenet" train --model lenet --epochs 1 --output "$work/plain" "${common[@]}" | grep '^Epoch:'

for run in bn plain; do
    checkpoint="$work/$run/last.safetensors"
    echo "== $run: evaluate, export, PyTorch and ONNX Runtime"
    "$lenet" evaluate --checkpoint "$checkpoint" --data-dir "$data_dir" --no-download \
        --predictions "$work/$run/predictions.txt" > "$work/$run/evaluate.txt"
    head -3 "$work/$run/evaluate.txt"
    "$lenet" export --checkpoint "$checkpoint" --onnx "$work/$run/model.onnx"
    "$PYTHON" Scripts/ci/check_pytorch_checkpoint.py "$checkpoint" --predictions "$work/$run/predictions.txt" --mnist "$data_dir"
    "$PYTHON" Scripts/ci/check_onnx.py "$work/$run/model.onnx" --predictions "$work/$run/predictions.txt" --mnist "$data_dir"
done
echo "interop: all checks passed"
