#!/usr/bin/env bash
# Prints, one absolute path a line, the module maps of the C modules that LeNetKit's
# interface reaches: the hand-written ones of the system libraries (zlib, libpng, libcrypto:
# every module.modulemap under LeNetKit/Sources) and those SwiftPM generated, in BIN_DIR,
# for LeNetKit's own C targets with an include/ folder (CThreadSupport). A tool that reads
# the compiled LeNetKit module without SwiftPM (the DocC symbol graph, the library check's
# type-check) passes each with -Xcc -fmodule-map-file=PATH. Fails if a map is missing.
#
#   Scripts/ci/lenetkit_module_maps.sh BIN_DIR      e.g. .build/release
set -euo pipefail
bin=$(cd "${1:?usage: lenetkit_module_maps.sh BIN_DIR}" && pwd)  # from the caller's directory
cd "$(dirname "$0")/../.."
{
    find "$PWD/LeNetKit/Sources" -name module.modulemap
    for include in LeNetKit/Sources/*/include; do
        [ -d "$include" ] && echo "$bin/$(basename "$(dirname "$include")").build/module.modulemap"
    done
} | sort | while IFS= read -r map; do
    [ -e "$map" ] || { echo "lenetkit_module_maps: no $map (is $bin a release build of LeNetKit?)" >&2; exit 1; }
    echo "$map"
done
