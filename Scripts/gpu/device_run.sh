#!/usr/bin/env bash
# The one run on a lent GPU machine (no Swift toolchain, no network): from the repository
# root, with the bundle that Scripts/gpu/build_device_bundle.sh wrote carried along
# (README.md, "The GPU backend", has the exact call):
#
#   Scripts/gpu/device_run.sh [--gpu cuda|opencl] [--short] [--budget SECONDS] [--bundle ARCHIVE]
#
#   --gpu     the runtime of the GPU steps (default cuda); `opencl` runs them on PoCL here
#             (Scripts/gpu/device_dry_run.sh)
#   --short   fewer batches, epochs and thread counts: a check of the script, not figures
#   --budget  seconds for all the steps (default 420): a step gets at most what is left, and
#             a step reached with under 15 s left is skipped, so that one hang cannot eat
#             the machine's time
#
# Steps, in order of worth: the machine (nvidia-smi when present, CPU, glibc), `lenet
# devices`, the GPU test suites through the runtime (and through OpenCL too when the
# machine has an OpenCL device), the tutorial's 8 epochs (default settings), one epoch with
# CUDA graphs off and on (LENET_CUDA_GRAPHS=0/1; the epoch lines must agree), `lenet bench`
# on the GPU, then `lenet bench --threads N` for the CPU's scaling.
#
# Writes to $OUT (only 8 files come back from there): summary.txt (a line per step and its
# figures), steps.log (every step's output in order, written as it runs) and steps.tar.gz
# (a file per step). Every step runs even when one before it failed; the exit status is 1
# when any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

gpu=cuda
short=0
budget=420
archive=.build/device-bundle/lenet-device-bundle.tar.xz
while [ $# -gt 0 ]; do
    case $1 in
        --gpu) gpu=$2; shift 2 ;;
        --short) short=1; shift ;;
        --budget) budget=$2; shift 2 ;;
        --bundle) archive=$2; shift 2 ;;
        *) echo "device_run: unknown argument $1 (see the script's first lines)" >&2; exit 2 ;;
    esac
done
case $gpu in cuda|opencl) ;; *) echo "device_run: --gpu is cuda or opencl, not $gpu" >&2; exit 2 ;; esac
: "${OUT:?device_run: OUT must name the folder to write to}"
mkdir -p "$OUT"

work=$(mktemp -d /tmp/lenet-device-run.XXXXXX)
steps=$work/steps
mkdir -p "$steps"
summary=$OUT/summary.txt
log=$OUT/steps.log
: > "$log"
started=$SECONDS
failed=()
step_number=0

# A line of the summary, also shown as it happens.
note() { echo "$*" | tee -a "$summary"; }

# run_step NAME TIMEOUT FIGURES -- COMMAND...: runs COMMAND under `timeout` (at most what
# is left of the budget), its output in steps/NN-NAME.txt and steps.log; the summary gets
# its status, its time and the output lines that match the extended regex FIGURES. A shell
# function cannot run under `timeout`: the step's functions put `limited` before the
# programs they start.
limited() { timeout --kill-after=10 "$step_limit" "$@"; }
run_step() {
    local name=$1 limit=$2 figures=$3
    shift 4
    step_number=$((step_number + 1))
    local file
    file=$steps/$(printf '%02d' $step_number)-$name.txt
    local left=$((budget - (SECONDS - started)))
    if [ $left -lt 15 ]; then
        note "$(printf '%-28s SKIPPED   (%d s of the %d s budget left)' "$name" "$left" "$budget")"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    step_limit=$limit
    echo "== $name (timeout ${limit} s): $*" | tee -a "$log" > "$file"
    local start=$SECONDS status
    if [ "$(type -t "$1")" = function ]; then "$@"; else limited "$@"; fi 2>&1 | tee -a "$file" >> "$log"
    status=${PIPESTATUS[0]}
    local took=$((SECONDS - start)) verdict=ok
    if [ $status -eq 124 ] || [ $status -eq 137 ]; then verdict="TIMED OUT"
    elif [ $status -ne 0 ]; then verdict="FAILED ($status)"; fi
    echo "== $name: $verdict after $took s" | tee -a "$file" >> "$log"
    note "$(printf '%-28s %-10s %4d s' "$name" "$verdict" "$took")"
    if [ -n "$figures" ]; then grep -E -- "$figures" "$file" | grep -v '^== ' | sed 's/^/    /' >> "$summary"; fi
    [ "$verdict" = ok ] || failed+=("$name")
    tar -C "$work" -czf "$OUT/steps.tar.gz" steps
    return $status
}

# The bundle, unpacked outside the repository copy.
bundle=$work/bundle
mkdir -p "$bundle"
: > "$summary"
note "device_run: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), --gpu $gpu, $([ $short = 1 ] && echo short || echo full), budget $budget s"
if ! tar -C "$bundle" -xJf "$archive"; then
    note "device_run: cannot unpack $archive (run Scripts/gpu/build_device_bundle.sh and carry .build/device-bundle)"
    exit 1
fi
sed 's/^/    /' "$bundle/BUNDLE.txt" | grep -v '^    files:\|MiB  \./' >> "$summary"
lenet=$bundle/bin/lenet
tests=$bundle/bin/lenetPackageTests.xctest
mnist=$bundle/mnist

# The bundle's libraries first; the machine's own after them (the NVIDIA driver's folder is
# often reached through LD_LIBRARY_PATH, and without it `--device cuda` finds no libcuda).
library_path=$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)  # /sbin is often not on PATH
# The machine's own C++ runtime when it has one: the bundle's needs a newer glibc than the rest.
for cxx_library in libstdc++.so.6 libgcc_s.so.1; do
    if "$ldconfig" -p 2>/dev/null | grep -q "^[[:space:]]*$cxx_library .*x86-64"; then
        rm -f "$bundle/lib/$cxx_library"
        echo "    $cxx_library: the machine's" >> "$summary"
    fi
done
if ! "$ldconfig" -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    for folder in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib64 /usr/lib/x86_64-linux-gnu; do
        if [ -e "$folder/libcuda.so.1" ]; then library_path=$library_path:$folder; break; fi
    done
fi
bundle_env=(env LD_LIBRARY_PATH="$library_path" LENET_MNIST_DIR="$mnist"
            LENET_TEST_FIXTURES="$repo/Tests/LeNetKitTests/Fixtures" TMPDIR="$work")
# NVIDIA's OpenCL driver without an ICD file naming it: the bundle's ICD loader is told of it.
if [ -z "$(ls -A /etc/OpenCL/vendors 2>/dev/null)" ]; then
    for folder in ${library_path//:/ }; do
        if [ -e "$folder/libnvidia-opencl.so.1" ]; then
            mkdir -p "$work/icd"
            echo "$folder/libnvidia-opencl.so.1" > "$work/icd/nvidia.icd"
            bundle_env+=(OCL_ICD_VENDORS="$work/icd")
            break
        fi
    done
fi

machine() {
    echo "kernel: $(uname -srm)"
    echo "glibc: $(ldd --version 2>&1 | head -1)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) logical CPUs"
    local feature
    for feature in avx2 fma bmi2; do  # what the bundle's target CPU, haswell, may use
        grep -qw "$feature" /proc/cpuinfo || { echo "the CPU lacks $feature, which the bundle (built for haswell) uses"; return 1; }
    done
    echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    # The machine's glibc must be at least the bundle's.
    local have needed
    have=$(ldd --version 2>&1 | head -1 | grep -oE '[0-9]+\.[0-9]+$')
    needed=$(sed -n 's/^glibc needed: \([0-9.]*\).*/\1/p' "$bundle/BUNDLE.txt")
    if [ "$(printf '%s\n%s\n' "$needed" "$have" | sort -V | head -1)" != "$needed" ]; then
        echo "glibc $have is older than the $needed the bundle needs"; return 1
    fi
}
run_step machine 10 '^(cpu|glibc|memory):|lacks|older' -- machine

if command -v nvidia-smi >/dev/null; then
    run_step nvidia-smi 30 'H200|Driver Version|MiB /' -- nvidia-smi
else
    note "$(printf '%-28s %s' nvidia-smi 'not on this machine')"
fi

run_step devices 30 '.' -- "${bundle_env[@]}" "$lenet" devices

# The GPU suites, as CI runs them on PoCL: kernels, network, graph replay, predict/serve/bench on the GPU, one-line errors.
gpu_tests() {
    limited "${bundle_env[@]}" LENET_TEST_GPU_RUNTIME="$1" LENET_REQUIRE_GPU=1 LENET_TEST_WORKLOAD="$workload" \
        "$tests" --testing-library swift-testing --filter 'GPU(Kernel|Runtime|Network|Command|LaunchGraph)Tests'
}
workload=$([ $short = 1 ] && echo small || echo full)
test_figures='^GPU tests run on|Test run with|recorded an issue|✘'
run_step "tests-$gpu" 240 "$test_figures" -- gpu_tests "$gpu"
if [ "$gpu" = cuda ]; then
    if grep -q '^opencl [0-9]' "$steps"/*-devices.txt; then
        run_step tests-opencl 120 "$test_figures" -- gpu_tests opencl
    else
        note "$(printf '%-28s %s' tests-opencl 'no OpenCL device on this machine')"
    fi
fi

# The tutorial's run: default settings, 8 epochs (--short: 2 epochs of 20 batches).
train() {
    local name=$1; shift
    limited "${bundle_env[@]}" "$@" "$lenet" train --device "$gpu" --data-dir "$mnist" --no-download --quiet \
        --output "$work/runs/$name" "${train_size[@]}"
}
if [ $short = 1 ]; then train_size=(--epochs 2 --limit-batches 20); else train_size=(); fi
run_step train-8-epochs 150 '^Epoch|^Run time' -- train tutorial
if [ $short = 1 ]; then train_size=(--epochs 1 --limit-batches 20); else train_size=(--epochs 1); fi
run_step train-1-epoch-graphs-off 60 '^Epoch|^Run time' -- train graphs-off LENET_CUDA_GRAPHS=0
run_step train-1-epoch-graphs-on 60 '^Epoch|^Run time' -- train graphs-on LENET_CUDA_GRAPHS=1

# Replaying a step as a CUDA graph must not change what it computes.
compare_graphs() {
    local off on
    off=$(grep '^Epoch' "$steps"/*-train-1-epoch-graphs-off.txt) || { echo "no epoch line with graphs off"; return 1; }
    on=$(grep '^Epoch' "$steps"/*-train-1-epoch-graphs-on.txt) || { echo "no epoch line with graphs on"; return 1; }
    if [ "$off" = "$on" ]; then echo "the same epoch lines with graphs off and on"; return 0; fi
    echo "the epoch lines differ:"; echo "  off: $off"; echo "  on:  $on"; return 1
}
run_step graphs-compare 10 'epoch lines|off:|on:' -- compare_graphs

# `lenet bench --device` is new; a lenet without it says so, and that is no failure of this run.
bench_gpu() {
    local output status
    output=$(limited "${bundle_env[@]}" "$lenet" bench --device "$gpu" --data-dir "$mnist" --no-download 2>&1)
    status=$?
    echo "$output"
    if [ $status -ne 0 ] && grep -q 'measures the CPU backend only' <<< "$output"; then
        echo "(this lenet's bench has no --device yet: no GPU figures, not counted as a failure)"
        return 0
    fi
    return $status
}
run_step "bench-$gpu" 90 'img/s|epoch \(|latency|no --device' -- bench_gpu

# The CPU's scaling, one thread count a run (bench measures one epoch and inference each).
if [ $short = 1 ]; then thread_counts=(1 2); else thread_counts=(1 2 4 8 16); fi
for threads in "${thread_counts[@]}"; do
    run_step "bench-cpu-$threads-threads" 60 'FMA peak|img/s|epoch \(' -- \
        "${bundle_env[@]}" "$lenet" bench --threads "$threads" --data-dir "$mnist" --no-download
done

note "device_run: $((SECONDS - started)) s in all; $([ ${#failed[@]} -eq 0 ] && echo 'every step passed' || echo "failed: ${failed[*]}")"
tar -C "$work" -czf "$OUT/steps.tar.gz" steps
rm -rf "$work"
[ ${#failed[@]} -eq 0 ]
