#!/usr/bin/env bash
# The programs in Examples/ run as a Swift user would run them: train-lenet trains one epoch
# and saves lenet.safetensors; predict-digit reads it back and recognises MNIST test digits
# drawn as PNG pictures (at least 9 of the first 10); both say what is wrong with bad input
# and exit 1.
# Usage: Scripts/ci/check_examples.sh BIN_DIR MNIST_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "$1" && pwd)
data_dir=$(cd "$2" && pwd)
scripts=$PWD/Scripts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$bin/train-lenet" 1 "$data_dir" | tee train.log
grep -Eq '^Epoch: 1, Train_acc:[0-9.]+%, Train_loss:[0-9.]+, Test_acc:(9[0-9]|100)\.[0-9]%' train.log \
    || { echo "check_examples: train-lenet printed no epoch line at 90% or more"; exit 1; }
[ -s lenet.safetensors ] || { echo "check_examples: train-lenet wrote no lenet.safetensors"; exit 1; }

right=0
for index in 0 1 2 3 4 5 6 7 8 9; do
    label=$(python3 "$scripts/ci/load/make_digit_png.py" "$data_dir" "$index" "digit$index.png")
    answer=$("$bin/predict-digit" lenet.safetensors "digit$index.png" | head -n 1)
    echo "$answer (label $label)"
    [ "$answer" = "digit$index.png: $label" ] && right=$((right + 1))
done
echo "check_examples: predict-digit recognised $right of 10"
[ "$right" -ge 9 ]

# A missing picture is one line on standard error and exit status 1.
if "$bin/predict-digit" lenet.safetensors missing.png 2>err.log; then
    echo "check_examples: predict-digit accepted a missing file"; exit 1
fi
grep -q "missing.png" err.log || { echo "check_examples: the error does not name the file"; cat err.log; exit 1; }

# So is a data folder with a damaged file in it: train-lenet names the file, exits 1, no trap.
raw=$data_dir; [ -e "$raw/train-images-idx3-ubyte.gz" ] || raw=$data_dir/MNIST/raw
mkdir -p bad-data
cp "$raw"/*-ubyte.gz bad-data/
head -c 1000 "$raw/train-labels-idx1-ubyte.gz" > bad-data/train-labels-idx1-ubyte.gz
status=0
"$bin/train-lenet" 1 bad-data >/dev/null 2>err.log || status=$?
[ "$status" -eq 1 ] || { echo "check_examples: train-lenet exited $status on a damaged file (expected 1)"; cat err.log; exit 1; }
grep -q "train-labels-idx1-ubyte.gz" err.log || { echo "check_examples: the error does not name the file"; cat err.log; exit 1; }
echo "check_examples: train-lenet on a damaged file: $(cat err.log)"
