#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (ASan, Swift's bounds and overflow checks on) and
# runs each for SECONDS (default 30), as many at once as there are cores, each on a
# temporary copy of its seed corpus in Fuzz/Corpus/<target>/ (the committed corpora are
# never changed).
# Fails if any target crashes, traps, times out on one input or runs out of memory,
# naming the target and the input that did it.
#
#   Scripts/ci/fuzz.sh [SECONDS] [TARGET...]     e.g. Scripts/ci/fuzz.sh 600 FuzzImage
#   Scripts/ci/fuzz.sh --build-only              builds and stops (CI builds early, in the background)
#
# LENET_FUZZ_SCRATCH: the build folder (default .build-fuzz). LENET_FUZZ_JOBS: targets run
# at once (default: the number of cores). LENET_FUZZ_KEEP=1 keeps
# the grown corpora and logs (in a temporary folder it names) after a clean run.
set -euo pipefail
cd "$(dirname "$0")/../.."

build_only=0
if [ "${1-}" = --build-only ]; then build_only=1; shift; fi
seconds=${1:-30}
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzIDX FuzzSafeTensors FuzzImage FuzzPredictAPI)
scratch=${LENET_FUZZ_SCRATCH:-.build-fuzz}

# Largest input per target: room for a few MNIST images or labels, a small safetensors
# file, the fixture pictures, a JSON body of 784 numbers.
max_len() {
    case $1 in
        FuzzIDX) echo 4096 ;;
        FuzzSafeTensors) echo 4096 ;;
        FuzzImage) echo 4096 ;;
        FuzzPredictAPI) echo 8192 ;;
        *) echo "unknown fuzz target $1" >&2; return 1 ;;
    esac
}
for target in "${targets[@]}"; do max_len "$target" >/dev/null; done

build=(swift build -c release --package-path Fuzz --scratch-path "$scratch"
       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
echo "Building the fuzzers ($scratch)..."
# (ld.gold warns about one ASan symbol for every fuzzer it links; harmless, so not shown.)
LENET_SAFETY_CHECKS=1 "${build[@]}" 2>&1 | { grep -v "Cannot export local symbol '__asan_extra_spill_area'" || true; }
bin=$(LENET_SAFETY_CHECKS=1 "${build[@]}" --show-bin-path)
for target in "${targets[@]}"; do
    [ -x "$bin/$target" ] || { echo "FAIL: $bin/$target was not built" >&2; exit 1; }
done
[ "$build_only" = 0 ] || exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/lenet-fuzz.XXXXXX")

# One target: fuzz it from a copy of its seeds, then write its report to $work/<target>/report
# and its exit status to $work/<target>/status (0: no crash, trap, hang or memory blow-up).
fuzz_target() {
    local target=$1
    local corpus="$work/$target/corpus" artifacts="$work/$target/crashes/" log="$work/$target/log"
    local report="$work/$target/report"
    mkdir -p "$corpus" "$artifacts"
    cp Fuzz/Corpus/"$target"/* "$corpus"/
    echo "== $target: ${seconds}s, $(ls "$corpus" | wc -l) seeds, max_len $(max_len "$target")" > "$report"
    # -timeout: one input taking over 10 s is a hang. -malloc_limit_mb: an input of a few KB
    # that makes one allocation over 512 MB is a bug (the largest legitimate one is a PNG
    # header claiming 8192x8192 at 16 bits, 256 MB, before libpng finds no pixels).
    # SWIFT_BACKTRACE: Swift's own crash backtracer off, so that libFuzzer reports a trap
    # itself (the backtracer, reading memory under ASan, adds a report of its own).
    local status=0
    SWIFT_BACKTRACE=enable=no "$bin/$target" "$corpus" -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$artifacts" \
        >"$log" 2>&1 || status=$?
    {
        # The last status line (#N DONE or the last pulse) and the final statistics.
        grep -E '^#[0-9]+' "$log" | tail -n 1 || true
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' ' || true
        echo
    } >> "$report"
    local crashes
    crashes=$(ls "$artifacts")
    if [ "$status" -eq 0 ] && [ -n "$crashes" ]; then status=1; fi
    if [ "$status" -ne 0 ]; then
        {
            echo "FAIL: $target exited with status $status"
            grep -E -A 30 '==[0-9]+==ERROR|Fatal error|Precondition failed|ERROR: libFuzzer' "$log" | head -n 60 || true
            for crash in $crashes; do echo "FAIL: $target crashing input: $artifacts$crash"; done
            echo "FAIL: $target full log: $log"
        } >> "$report"
    fi
    echo "$status" > "$work/$target/status"
}

# Each libFuzzer process is one thread: run as many targets at once as there are cores
# (LENET_FUZZ_JOBS to choose), so CI's 4 x 30 s take about a minute on two.
jobs=${LENET_FUZZ_JOBS:-$(nproc)}
running=0
for target in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    fuzz_target "$target" &
    running=$((running + 1))
done
wait

failed=()
for target in "${targets[@]}"; do
    cat "$work/$target/report" 2>/dev/null || echo "FAIL: $target did not run (see $work/$target)"
    [ "$(cat "$work/$target/status" 2>/dev/null || echo 1)" = 0 ] || failed+=("$target")
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (inputs and logs kept in $work)" >&2
    exit 1
fi
if [ "${LENET_FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz: all ${#targets[@]} target(s) ran ${seconds}s without a failure (corpora and logs in $work)"
else
    rm -rf "$work"
    echo "fuzz: all ${#targets[@]} target(s) ran ${seconds}s without a failure"
fi
