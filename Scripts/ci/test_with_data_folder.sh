#!/usr/bin/env bash
# The README's test command as a fresh clone runs it: LENET_MNIST_DIR unset, MNIST in ./data,
# and no ../shared to read from (CI's other steps read MNIST there).
#
#   Scripts/ci/test_with_data_folder.sh MNIST_DIR
#
# - ./data: the four MNIST files are copied from MNIST_DIR into ./data (only those missing;
#   what this script copied is removed at the end). The tests find them as the product
#   does: $LENET_MNIST_DIR, else ./data, else a download into ./data (CI has no network, so
#   a test that looked anywhere else would fail).
# - ../shared hidden: the command runs in a mount namespace of its own (`unshare -m`; as root,
#   or `unshare -rm` in a user namespace otherwise) in which an empty read-only tmpfs is
#   mounted over ../shared. Inside it ../shared is an empty folder: ../shared/mnist and
#   everything else there do not exist. Nothing changes outside the namespace. Before the
#   tests, the script checks from inside that ../shared/mnist is gone.
# - The build is reused: same command, same flags as CI's test step, so SwiftPM only checks
#   that it is up to date. LENET_TEST_WORKLOAD=small (unless set): every test runs, the
#   slowest training test trains less (Tests/LeNetKitTests/Support/TestWorkload.swift). What
#   this run checks is where the data comes from; the full workload already ran in the test
#   step, and running it twice would add its whole time to CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
source_dir=$(cd "$1" && pwd)
repo=$PWD
shared=$(cd .. && pwd)/shared

copied=()
cleanup() { for file in "${copied[@]}"; do rm -f "$file"; done; rmdir data 2>/dev/null || true; }
trap cleanup EXIT
mkdir -p data
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -e "data/$name.gz" ] || [ -e "data/$name" ] || [ -e "data/MNIST/raw/$name.gz" ] || [ -e "data/MNIST/raw/$name" ]; then
        continue
    fi
    if [ -e "$source_dir/$name.gz" ]; then cp "$source_dir/$name.gz" data/; copied+=("$repo/data/$name.gz")
    else cp "$source_dir/$name" data/; copied+=("$repo/data/$name"); fi
done
echo "test_with_data_folder: ./data holds $(ls data | tr '\n' ' ')"

if [ "$(id -u)" = 0 ]; then namespace=(unshare -m --propagation private)
else namespace=(unshare -rm --propagation private); fi

# Runs inside the namespace: hide ../shared, show that it is gone, run the README's test command.
inner='set -euo pipefail
if [ -d "$SHARED" ]; then mount -t tmpfs -o ro,size=1k,mode=0555 lenet-no-shared "$SHARED"; fi
if [ -e "$SHARED/mnist" ] || [ -n "$(ls -A "$SHARED" 2>/dev/null)" ]; then
    echo "test_with_data_folder: FAIL: ../shared is still visible" >&2; exit 1
fi
echo "test_with_data_folder: ../shared hidden (empty: $(ls -A "$SHARED" 2>/dev/null | wc -l) entries); LENET_MNIST_DIR unset"
exec swift test -c release --disable-testable-imports'

env -u LENET_MNIST_DIR SHARED="$shared" LENET_TEST_WORKLOAD="${LENET_TEST_WORKLOAD:-small}" \
    "${namespace[@]}" bash -c "$inner"
