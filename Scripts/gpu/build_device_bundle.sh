#!/usr/bin/env bash
# Everything a lent GPU machine (no Swift toolchain, no network) needs to run
# Scripts/gpu/device_run.sh, as one archive to carry there:
#
#   Scripts/gpu/build_device_bundle.sh [MNIST_DIR]      (default ../shared/mnist)
#
# writes .build/device-bundle/lenet-device-bundle.tar.xz (and BUNDLE.txt beside it), holding
#   bin/lenet                     release, stripped
#   bin/lenetPackageTests.xctest  the test runner, beside lenet as the command tests expect
#   lib/                          the shared libraries the two load that are not glibc's: the
#                                 Swift runtime, Foundation and swift-testing from the toolchain,
#                                 libcurl, libpng, zlib and the C++ runtime from the system, and
#                                 the OpenCL ICD loader (lenet dlopens it; a bare machine may lack it)
#
# lenet is linked as the tests build it, against the Swift libraries in lib/, not with
# --static-swift-stdlib: the runner needs those libraries anyway (swift-testing exists only
# as a shared library), a static lenet would carry Foundation and ICU a second time (~40 MB),
# and its other flags made SwiftPM compile every module twice on each run (measured: 21 min
# for the second build on 2 vCPUs).
#   mnist/                        the four MNIST .gz files
#   BUNDLE.txt                    commit, toolchain, target CPU, the glibc version needed
#
# The build is for LENET_TARGET_CPU=haswell (AVX2, FMA, BMI2, which any x86-64 GPU host of
# the last decade has; the importer's clang knows no `x86-64-v3`) unless LENET_TARGET_CPU
# says otherwise: `native` here could use instructions the other machine lacks. It has a
# build folder of its own (.build-device), so that the usual .build stays native and
# neither rebuilds the other.
set -euo pipefail
cd "$(dirname "$0")/../.."
mnist_dir=$(cd "${1:-../shared/mnist}" && pwd)
scratch=.build-device
out=.build/device-bundle
archive=$out/lenet-device-bundle.tar.xz
# What travels to the machine (the working tree and the carried paths) is limited to 64 MiB.
limit_bytes=$((56 * 1024 * 1024))
export LENET_TARGET_CPU=${LENET_TARGET_CPU:-haswell}

mnist_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
for name in "${mnist_files[@]}"; do
    [ -f "$mnist_dir/$name" ] || { echo "build_device_bundle: $mnist_dir/$name is missing" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/mnist"
bin_dir=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

swift build -c release --scratch-path "$scratch" --build-tests
cp "$bin_dir/lenet" "$bin_dir/lenetPackageTests.xctest" "$stage/bin/"
# Debug sections go; the symbol tables stay, for readable crash backtraces.
strip --strip-debug "$stage/bin/lenet" "$stage/bin/lenetPackageTests.xctest"

# Every library the binaries load (ldd lists them transitively) except glibc's own, which
# the machine has and which must match its loader.
glibc='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libutil|libresolv)\.so'
copy_dependencies() {
    ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
        [[ $name =~ $glibc ]] && continue
        [ -e "$stage/lib/$name" ] || cp -L "$path" "$stage/lib/$name"
    done
    if ldd "$1" | grep -q 'not found'; then
        echo "build_device_bundle: $1 has unresolved libraries:" >&2; ldd "$1" | grep 'not found' >&2; exit 1
    fi
}
copy_dependencies "$stage/bin/lenet"
copy_dependencies "$stage/bin/lenetPackageTests.xctest"
opencl_loader=$("$(command -v ldconfig || echo /sbin/ldconfig)" -p | awk '$1 == "libOpenCL.so.1" && /x86-64/ { print $NF; exit }')
[ -n "$opencl_loader" ] || { echo "build_device_bundle: no libOpenCL.so.1 here (apt-get install ocl-icd-libopencl1)" >&2; exit 1; }
cp -L "$opencl_loader" "$stage/lib/libOpenCL.so.1"

cp "${mnist_files[@]/#/$mnist_dir/}" "$stage/mnist/"

# The newest glibc symbol version any of them needs: the machine's glibc must be at least
# that. The C++ runtime is left out: device_run.sh uses the machine's own when it has one
# (this one, Debian 12's, needs glibc 2.36, newer than the rest).
cxx_runtime='^(libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'
glibc_needed=$(for file in "$stage"/bin/* "$stage"/lib/*; do
                   [[ $(basename "$file") =~ $cxx_runtime ]] || objdump -T "$file"; done \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
{
    echo "commit:       $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
    echo "built:        $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(ldd --version | head -1)"
    echo "toolchain:    $(swift --version 2>&1 | head -1)"
    echo "target CPU:   $LENET_TARGET_CPU"
    echo "glibc needed: $glibc_needed or newer"
    echo "files:"
    (cd "$stage" && find . -type f -printf '%s\t%p\n' | sort -k2 | awk -F'\t' '{ printf "  %8.1f MiB  %s\n", $1 / 1048576, $2 }')
} > "$stage/BUNDLE.txt"

mkdir -p "$out"
rm -f "$archive"
tar -C "$stage" -cf - . | xz -T0 -6 > "$archive"
cp "$stage/BUNDLE.txt" "$out/BUNDLE.txt"
cat "$out/BUNDLE.txt"
size=$(stat -c %s "$archive")
unpacked=$(du -sb "$stage" | cut -f1)
awk -v a="$archive" -v s="$size" -v u="$unpacked" \
    'BEGIN { printf "build_device_bundle: %s is %.1f MiB (%.1f MiB unpacked)\n", a, s / 1048576, u / 1048576 }'
if [ "$size" -gt "$limit_bytes" ]; then
    echo "build_device_bundle: over $((limit_bytes / 1048576)) MiB: with the working tree it would not fit the 64 MiB that travel" >&2
    exit 1
fi
