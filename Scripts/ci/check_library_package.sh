#!/usr/bin/env bash
# A Swift package outside the repository that depends on the library as the README tells a
# user to (`.package(path: ".../lenet/LeNetKit")`) resolves without the command's
# dependencies, and the README's library calls (Dataset, TrainingConfiguration, Trainer,
# save(to:), Predictor) compile against the library.
# Fails if Hummingbird, SwiftNIO (any swift-nio*) or swift-argument-parser is among the
# package's resolved dependencies (its Package.resolved and `swift package show-dependencies`).
#
#   Scripts/ci/check_library_package.sh            resolve, then type-check against .build/release
#   LENET_LIBRARY_USER_BUILD=1 Scripts/ci/check_library_package.sh   resolve, build and run it
#
# Offline: the temporary package gets a mirror configuration of its own (.swiftpm/ inside
# it; nothing global is changed) that maps each dependency's URL to the clone SwiftPM made
# when it resolved this repository (.build/repositories/, there after CI's test step), and
# resolves with SwiftPM's shared cache off, so the check needs neither the network nor
# ~/.cache. Where this process may make namespaces, it runs in one with no network at all
# (`unshare -n`, or `unshare -rn` for a user that is not root), which proves it. Without
# .build/repositories it resolves as a user would (network, or SwiftPM's cache).
#
# By default (CI) the program is type-checked with swiftc against the LeNetKit module that
# the test step built in .build/release, in a second: the examples in Examples/ already
# build and run the same calls inside the repository. LENET_LIBRARY_USER_BUILD=1 builds the
# package as a user's first `swift build` does (debug; every dependency compiles: 3m50s of
# CPU, about 3 minutes of CI's 2 cores, the reason it is not CI's default) into
# LENET_LIBRARY_USER_SCRATCH (default .build-library-user, ignored by git, kept between
# runs) and runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
scratch=${LENET_LIBRARY_USER_SCRATCH:-$repo/.build-library-user}
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)

package=$(mktemp -d "${TMPDIR:-/tmp}/lenet-library-user.XXXXXX")
trap 'rm -rf "$package"' EXIT
mkdir -p "$package/Sources/LibraryUser"

cat > "$package/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "LibraryUser",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: "$repo/LeNetKit"),
    ],
    targets: [
        .executableTarget(name: "LibraryUser", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")]),
    ]
)
EOF

# The README's library example (Examples/TrainLeNet, Examples/PredictDigit), as a user types it.
cat > "$package/Sources/LibraryUser/main.swift" <<'EOF'
import Foundation
import LeNetKit

/// Trains, saves and predicts as the README shows (compiled here; run only with arguments).
func trainAndPredict(dataDirectory: String?, picture: String) throws {
    let dataset = try Dataset.load(kind: .mnist, dataDirectory: dataDirectory, download: true)
    var configuration = TrainingConfiguration()
    configuration.model = .lenet
    configuration.epochs = 1
    let trainer = try Trainer(configuration: configuration, dataset: dataset)
    trainer.run { epoch in print(epoch.line) }
    try trainer.save(to: "lenet.safetensors")

    let predictor = try Predictor(checkpointPath: "lenet.safetensors")
    let (_, prediction) = try predictor.predict(contentsOf: picture)
    print(prediction.digit, prediction.top(3))
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.count == 2 {
    try trainAndPredict(dataDirectory: arguments[0], picture: arguments[1])
} else {
    // No data needed: the library links and runs.
    let configuration = TrainingConfiguration()
    print(ModelSummary(definition: .lenet(configuration.model), batchSize: configuration.batchSize).text)
}
EOF

# Mirrors: every repository SwiftPM cloned for this repository, by its original URL.
mirrors=()
if [ -d .build/repositories ]; then
    for clone in .build/repositories/*/; do
        url=$(git -C "$clone" config --get remote.origin.url 2>/dev/null) || continue
        mirrors+=("{\"original\": \"$url\", \"mirror\": \"$repo/${clone%/}\"}")
    done
fi
offline=()
if [ ${#mirrors[@]} -gt 0 ]; then
    mkdir -p "$package/.swiftpm/configuration"
    { echo '{"version": 1, "object": ['; (IFS=,; echo "${mirrors[*]}"); echo ']}'; } \
        > "$package/.swiftpm/configuration/mirrors.json"
    offline=(--disable-dependency-cache)
    echo "check_library_package: dependencies from the ${#mirrors[@]} clones in .build/repositories (no network)"
else
    echo "check_library_package: no .build/repositories; resolving from the network or SwiftPM's cache"
fi

# No network at all where a namespace can be made: proves the check is offline.
isolate=()
if [ ${#mirrors[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
        isolate=(unshare -n)
    elif unshare -rn true 2>/dev/null; then
        isolate=(unshare -rn)
    fi
fi

swiftpm=(swift package --package-path "$package" --scratch-path "$scratch" "${offline[@]}")
"${isolate[@]}" "${swiftpm[@]}" resolve
"${isolate[@]}" "${swiftpm[@]}" show-dependencies --format json > "$package/dependencies.json"

# Every identity in the dependency tree, and in Package.resolved.
identities=$(python3 - "$package/dependencies.json" "$package/Package.resolved" <<'EOF'
import json, sys
tree = json.load(open(sys.argv[1]))
found = set()
def walk(node):
    for dependency in node.get("dependencies", []):
        found.add(dependency["identity"])
        walk(dependency)
walk(tree)
found.update(pin["identity"] for pin in json.load(open(sys.argv[2])).get("pins", []))
print("\n".join(sorted(found)))
EOF
)
# (Through a mirror SwiftPM names a package after the mirror's folder: swift-crypto-7e0614ea.)
identities=$(echo "$identities" | sed -E 's/-[0-9a-f]{8}$//')
echo "check_library_package: resolved dependencies: $(echo $identities)"
# By identity, and anywhere in the tree or the pins (a URL, a product name).
forbidden=$( { echo "$identities"; cat "$package/dependencies.json" "$package/Package.resolved"; } \
    | grep -Eio 'hummingbird|swift-nio[a-z0-9-]*|swift-argument-parser' | sort -u || true)
if [ -n "$forbidden" ]; then
    echo "check_library_package: FAIL: a package depending on LeNetKit fetches $(echo $forbidden)" >&2
    exit 1
fi

if [ "${LENET_LIBRARY_USER_BUILD:-0}" != 1 ]; then
    # The module LeNetKit's interface imports: its C modules' maps (the system libraries'
    # and its own C targets'), as the DocC build finds them.
    modules=.build/release/Modules
    [ -e "$modules/LeNetKit.swiftmodule" ] \
        || { echo "check_library_package: FAIL: no $modules/LeNetKit.swiftmodule; run the README's test command first" >&2; exit 1; }
    maps=()
    found=$("$repo/Scripts/ci/lenetkit_module_maps.sh" .build/release)
    while IFS= read -r map; do maps+=(-Xcc "-fmodule-map-file=$map"); done <<< "$found"
    swiftc -typecheck -I "$modules" "${maps[@]}" "$package/Sources/LibraryUser/main.swift"
    echo "check_library_package: a package outside the repository resolves LeNetKit without Hummingbird, NIO or swift-argument-parser, and the README's library calls compile against it"
    exit 0
fi

echo "check_library_package: building (scratch path $scratch)"
start=$SECONDS
"${isolate[@]}" swift build --package-path "$package" --scratch-path "$scratch" "${offline[@]}"
echo "check_library_package: built in $((SECONDS - start)) s"
"$scratch/debug/LibraryUser" | tee "$package/run.log"
grep -q "Total params: 61,706" "$package/run.log" \
    || { echo "check_library_package: FAIL: the library user's program did not print LeNet's summary" >&2; exit 1; }
echo "check_library_package: a package outside the repository resolves and builds LeNetKit without Hummingbird, NIO or swift-argument-parser"
