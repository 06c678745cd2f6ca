#!/usr/bin/env bash
# The test suite's in-process tests (see below) under AddressSanitizer (with LeakSanitizer),
# then under ThreadSanitizer: `Scripts/ci/sanitizers.sh [--build-only] [address] [thread]`
# (both by default, in that order). Exits non-zero if a build fails, a test fails, or any
# process reported anything: each writes its reports to a file under <scratch>/sanitizer-logs/,
# so in a full run (below) a report from a `lenet` child whose stderr a test discards (lenet
# serve) still fails the run. --build-only builds and stops: CI builds both early, in the
# background (.ci/run says why), and its later run of this script finds nothing to rebuild.
#
# - Release builds with LENET_SAFETY_CHECKS=1 (LeNetKit/Package.swift): -O instead of -Ounchecked,
#   so Swift's bounds, overflow and exclusivity checks stay on as in a debug build, at
#   release speed. A debug build's kernels are >100x slower (a one-epoch `lenet bench`
#   did not finish in 5 minutes), far too slow for the tests that train.
# - Scratch paths of their own (.build-asan, .build-tsan), kept between runs: a clean
#   build compiles every dependency (SwiftProtobuf, NIO, Hummingbird) again with the
#   sanitizer, an incremental one only what changed.
# - LENET_TEST_WORKLOAD=small (unless set otherwise): the slowest training test trains
#   less (Tests/LeNetKitTests/Support/TestWorkload.swift).
# - What each sanitizer builds and runs: the library and the test runner only (`--product
#   lenetPackageTests`), every test that runs in-process; not the suites that start `lenet`
#   (Command/, InferenceServeTests), so that neither `lenet` nor SwiftNIO, Hummingbird and
#   swift-argument-parser are compiled again with each sanitizer. That is CI's time: the
#   full ThreadSanitizer build and run (NIO, Hummingbird, `lenet`, the kill-at-every-rename
#   suite at ThreadSanitizer's speed) took 16 minutes to build and 6 to test on the 2-vCPU
#   development VM with other builds running, in a CI run of 39 minutes whose budget is 20.
#   - The unsafe code, where memory errors live, is the library's (kernels, buffers, IDX,
#     gzip, safetensors, PNG through libpng), and the in-process suites run all of it; what
#     `lenet serve` hands the library from the network is fuzzed under AddressSanitizer in
#     the fuzzing step (FuzzPredictAPI).
#   - The library's threads (the compute pool, one parallel region per step, a Predictor
#     shared by many threads as `lenet serve` shares it) run in-process: ThreadPoolTests,
#     SliceStepTests, ConcurrentUseTests.
#   - What only a full run covers: `lenet`'s own code where its threads meet (the serve
#     command's prediction limit and waiting queue on NIO's event loops, Ctrl-C and SIGTERM
#     handled while training runs), with SwiftNIO, Hummingbird and swift-argument-parser
#     built with ThreadSanitizer as they must be for its reports to be right. A developer
#     who touches that code runs it: LENET_SANITIZE_FULL="thread" (or "address thread")
#     lists the sanitizers that build and run everything.
# - LeakSanitizer suppressions for leaks inside system libraries only, each explained:
#   Scripts/ci/sanitizers/lsan.supp. ThreadSanitizer: one, for a false report on values that
#   SwiftNIO hands to Hummingbird through a continuation (Scripts/ci/sanitizers/tsan.supp);
#   before the suite, continuation_handoff.swift shows that false report without lenet, and
#   the script says so if this toolchain stops making it.
set -uo pipefail
cd "$(dirname "$0")/../.."

build_only=0
if [ "${1-}" = --build-only ]; then build_only=1; shift; fi
sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)
export LENET_TEST_WORKLOAD=${LENET_TEST_WORKLOAD:-small}
# The GPU tests skip here: PoCL's own threads and allocations are not built with the
# sanitizer, so its reports would be about PoCL, not lenet (CI runs them in the plain suite).
# The tests' runtime is OpenCL (LENET_TEST_GPU_RUNTIME unset), whose library is made missing.
export LENET_OPENCL_LIBRARY=none
unset LENET_REQUIRE_GPU LENET_TEST_GPU_RUNTIME
export LENET_SAFETY_CHECKS=${LENET_SAFETY_CHECKS:-1}
full=" ${LENET_SANITIZE_FULL-} "
# The suites (and one GPU test) that start the `lenet` executable (it sits next to the test runner).
command_suites='LeNetKitTests\.(GPURuntimeTests/theCommandSaysWhatIsMissing|GPUCommandTests|KillAtEveryRenameTests|TrainingMemoryTests|InterruptCommandTests|TrainingSafetyCommandTests|FirstHourCommandTests|BadInputCommandTests|RunFolderCommandTests|CommandLineTests|InferenceServeTests)'

suppressions=$PWD/Scripts/ci/sanitizers/lsan.supp
tsan_suppressions=$PWD/Scripts/ci/sanitizers/tsan.supp

# Does ThreadSanitizer still misread a continuation hand-over (the reason for tsan.supp)?
check_continuation_handoff() {
    local demo=$1/continuation-handoff
    if ! swiftc -O -sanitize=thread -parse-as-library Scripts/ci/sanitizers/continuation_handoff.swift \
            -o "$demo" >"$1/continuation-handoff-build.log" 2>&1; then
        echo "== thread: could not build continuation_handoff.swift (see $1/continuation-handoff-build.log)"
        return
    fi
    TSAN_OPTIONS="halt_on_error=0" "$demo" >"$1/continuation-handoff.log" 2>&1
    if grep -q "WARNING: ThreadSanitizer: data race" "$1/continuation-handoff.log"; then
        echo "== thread: continuation_handoff.swift still gets a false race report: tsan.supp stays"
    else
        echo "== thread: NOTE: continuation_handoff.swift got no race report with this toolchain;" \
             "the entry in Scripts/ci/sanitizers/tsan.supp may no longer be needed"
    fi
}

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

failed=0
summary=()
for sanitizer in "${sanitizers[@]}"; do
    case "$sanitizer" in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "sanitizers.sh: unknown sanitizer '$sanitizer' (address or thread)" >&2; exit 2 ;;
    esac
    logs=$PWD/$scratch/sanitizer-logs
    mkdir -p "$scratch"
    rm -rf "$logs"
    mkdir -p "$logs"

    if [[ "$full" == *" $sanitizer "* ]]; then
        what=(--build-tests) skip=() scope="everything"
    else
        what=(--product lenetPackageTests) skip=(--skip "$command_suites") scope="the library and the in-process tests"
    fi
    echo "== $sanitizer: building $scope (scratch path $scratch)"
    start=$(now)
    if ! swift build -c release "${what[@]}" --sanitize="$sanitizer" --scratch-path "$scratch" \
            >"$scratch/sanitizer-build.log" 2>&1; then
        tail -n 60 "$scratch/sanitizer-build.log"
        build_seconds=$(seconds "$start" "$(now)")
        summary+=("$sanitizer: build FAILED after ${build_seconds} s (log: $scratch/sanitizer-build.log)")
        failed=1
        continue
    fi
    build_seconds=$(seconds "$start" "$(now)")
    if [ "$build_only" = 1 ]; then
        summary+=("$sanitizer ($scope): built in ${build_seconds} s")
        continue
    fi
    echo "== $sanitizer: built in ${build_seconds} s; testing (LENET_TEST_WORKLOAD=$LENET_TEST_WORKLOAD)"
    # (tsan.supp is about NIO and Hummingbird, which only a full run builds.)
    [ "$sanitizer" = thread ] && [[ "$full" == *" thread "* ]] && check_continuation_handoff "$scratch"

    start=$(now)
    # Reports go to files (log_path: one per process, named by pid). LeakSanitizer runs at
    # each process's exit; ThreadSanitizer keeps going after a report and exits 66.
    ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1" \
    LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0" \
    TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$tsan_suppressions:print_suppressions=0" \
        swift test -c release --sanitize="$sanitizer" --scratch-path "$scratch" --skip-build "${skip[@]}"
    status=$?
    test_seconds=$(seconds "$start" "$(now)")

    reports=("$logs"/*)
    [ -e "${reports[0]}" ] || reports=()
    outcome="passed"
    if [ ${#reports[@]} -gt 0 ]; then
        for report in "${reports[@]}"; do
            echo "== $sanitizer: report $report (first 150 lines):"
            head -n 150 "$report"
        done
        outcome="FAILED: ${#reports[@]} process(es) reported, see $logs"
        failed=1
    elif [ "$status" -ne 0 ]; then
        outcome="FAILED: swift test exited $status"
        failed=1
    fi
    [ "$status" -ne 0 ] && [ ${#reports[@]} -gt 0 ] && outcome="$outcome (swift test exited $status)"
    summary+=("$sanitizer ($scope): build ${build_seconds} s, tests ${test_seconds} s: $outcome")
done

echo "== sanitizers:"
for line in "${summary[@]}"; do echo "   $line"; done
exit $failed
