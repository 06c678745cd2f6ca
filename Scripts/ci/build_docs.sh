#!/usr/bin/env bash
# Builds the DocC documentation of LeNetKit (LeNetKit/Sources/LeNetKit/LeNetKit.docc) with
# the toolchain's `docc`, from the release build that is already there: no plugin in the
# library's package, no second build.
#
#   Scripts/ci/build_docs.sh [OUT_DIR]     (default .build/docs; the archive is OUT_DIR/LeNetKit.doccarchive)
#
# 1. LeNetKit's module from .build/release, as CI's test step left it (the README's test
#    command builds it); only when it is missing, `swift build -c release`. (Not always: after
#    a test build `swift build` recompiles the executables, whose entry point a test build
#    renames.)
# 2. `swift-symbolgraph-extract` reads that compiled module and writes the graph of its
#    public symbols; it compiles nothing. (Asking the compiler for the graph while building,
#    `-Xswiftc -emit-symbol-graph`, changes every module's command line and so rebuilds them
#    all.)
# 3. `docc convert` with --warnings-as-errors: a link to a symbol or an article that does not
#    resolve (``Trainer/run(stoppingWhen:onEpoch:)``, <doc:GettingStarted>) fails the step,
#    and every diagnostic is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.build/docs}
catalog=LeNetKit/Sources/LeNetKit/LeNetKit.docc

swift_bin=$(dirname "$(readlink -f "$(command -v swift)")")
docc=${DOCC:-$swift_bin/docc}
[ -x "$docc" ] || docc=$(command -v docc)
extract=$swift_bin/swift-symbolgraph-extract
[ -x "$extract" ] || extract=$(command -v swift-symbolgraph-extract)

bin=$(swift build -c release --show-bin-path)
[ -f "$bin/Modules/LeNetKit.swiftmodule" ] || swift build -c release
[ -f "$bin/Modules/LeNetKit.swiftmodule" ] || { echo "build_docs: no $bin/Modules/LeNetKit.swiftmodule" >&2; exit 1; }

graphs=$out/symbol-graphs
rm -rf "$graphs" "$out/LeNetKit.doccarchive"
mkdir -p "$graphs"

# The C modules that LeNetKit's interface reaches (zlib, libpng, libcrypto and its own C
# targets), as the build found them.
module_maps=()
maps=$(Scripts/ci/lenetkit_module_maps.sh "$bin")
while IFS= read -r map; do module_maps+=(-Xcc "-fmodule-map-file=$map"); done <<< "$maps"

"$extract" -module-name LeNetKit -target "$(uname -m)-unknown-linux-gnu" \
    -I "$bin/Modules" "${module_maps[@]}" \
    -minimum-access-level public -skip-inherited-docs -output-dir "$graphs"
echo "build_docs: symbol graph: $(ls "$graphs" | tr '\n' ' ')"

"$docc" convert "$catalog" \
    --additional-symbol-graph-dir "$graphs" \
    --fallback-display-name LeNetKit --fallback-bundle-identifier org.lenet.LeNetKit \
    --output-dir "$out/LeNetKit.doccarchive" \
    --warnings-as-errors
echo "build_docs: $out/LeNetKit.doccarchive ($(find "$out/LeNetKit.doccarchive/data/documentation" -name '*.json' | wc -l) pages)"
