#!/usr/bin/env bash
# Scripts/gpu/device_run.sh proved here, without a GPU, as the lent machine will run it:
#
#   Scripts/gpu/device_dry_run.sh [OUTPUT_DIR] [-- DEVICE_RUN_ARGUMENTS...]
#                                       (default .build/device-dry-run; --gpu opencl --short)
#
# - from a copy of the working tree as the device tool sends it (tracked and untracked files
#   that git does not ignore) with .build/device-bundle carried into it;
# - in a clean environment: `env -i PATH=/usr/bin:/bin HOME=<temporary folder>`;
# - with the Swift toolchain gone: an empty tmpfs is mounted over it in a mount namespace of
#   its own (`unshare -m`; `unshare -rm` when not root), so that a binary that still needed
#   a toolchain library would fail; before that, `ldd` shows every library of the bundle's
#   binaries resolving inside the bundle or the system, none inside the toolchain;
# - through OpenCL on PoCL, with --short (fewer batches, epochs and thread counts).
# OUTPUT_DIR gets what $OUT would bring back (summary.txt, steps.log, steps.tar.gz), the
# steps unpacked, and ldd.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
output=${1:-.build/device-dry-run}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
run_arguments=("$@")
[ ${#run_arguments[@]} -gt 0 ] || run_arguments=(--gpu opencl --short)
archive=.build/device-bundle/lenet-device-bundle.tar.xz
[ -f "$archive" ] || { echo "device_dry_run: no $archive (run Scripts/gpu/build_device_bundle.sh)" >&2; exit 1; }
toolchain=$(cd "$(dirname "$(readlink -f "$(command -v swift)")")/../.." && pwd)

rm -rf "$output"
mkdir -p "$output"
output=$(cd "$output" && pwd)
scratch=$(mktemp -d /tmp/lenet-dry-run.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# The working tree as it travels, the bundle carried.
mkdir -p "$scratch/repo/.build/device-bundle" "$scratch/home" "$scratch/out"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$scratch/repo" -xf -
cp "$archive" "$scratch/repo/.build/device-bundle/"

# No library of the bundle's binaries may resolve into the toolchain (their RUNPATH points
# there; LD_LIBRARY_PATH must win) nor be missing.
mkdir -p "$scratch/ldd"
tar -C "$scratch/ldd" -xJf "$archive"
for binary in "$scratch"/ldd/bin/*; do
    echo "== $(basename "$binary")"
    env -i LD_LIBRARY_PATH="$scratch/ldd/lib" ldd "$binary" | sed "s|$scratch/ldd|<bundle>|g"
done > "$output/ldd.txt"
if grep -F "$toolchain" "$output/ldd.txt" || grep 'not found' "$output/ldd.txt"; then
    echo "device_dry_run: FAIL: a library resolves into $toolchain or is missing ($output/ldd.txt)" >&2; exit 1
fi
echo "device_dry_run: ldd: $(grep -c '<bundle>/lib' "$output/ldd.txt") libraries from the bundle, none from $toolchain (ldd.txt)"

if [ "$(id -u)" = 0 ]; then namespace=(unshare -m --propagation private)
else namespace=(unshare -rm --propagation private); fi
# Inside the namespace: hide the toolchain, show that it is gone, run the device script.
inner='set -euo pipefail
mount -t tmpfs -o ro,size=1k,mode=0555 lenet-no-toolchain "$TOOLCHAIN"
if [ -n "$(ls -A "$TOOLCHAIN")" ]; then echo "device_dry_run: FAIL: $TOOLCHAIN is still visible" >&2; exit 1; fi
echo "device_dry_run: $TOOLCHAIN hidden (empty); environment: $(env -u TOOLCHAIN | tr "\n" " ")"
cd "$REPO"
exec env -u TOOLCHAIN -u REPO bash Scripts/gpu/device_run.sh "$@"'
status=0
env -i PATH=/usr/bin:/bin HOME="$scratch/home" OUT="$scratch/out" TOOLCHAIN="$toolchain" REPO="$scratch/repo" \
    "${namespace[@]}" bash -c "$inner" device_dry_run "${run_arguments[@]}" || status=$?

cp "$scratch"/out/* "$output/"
tar -C "$output" -xzf "$output/steps.tar.gz"
echo "device_dry_run: device_run.sh exited $status; its files are in $output"
exit $status
