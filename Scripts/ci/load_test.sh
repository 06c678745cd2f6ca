#!/usr/bin/env bash
# Load test of `lenet serve` on 127.0.0.1 with wrk (Debian package `wrk`):
#   1. 64 connections POST a real PNG (an MNIST test digit drawn as the page sends it,
#      280x280 RGBA) to /api/predict for DURATION seconds: every answer must be 200 and
#      no socket error; throughput and latency percentiles are printed.
#   2. Meanwhile GET /healthz every 0.2 s must answer 200 (within 10 s: on 2 vCPUs wrk
#      and the server share the cores, and /healthz waits behind the queued predictions).
#   3. Then a burst of malformed requests (10 kinds, 64 connections, 5 s): only 4xx answers.
#   4. After it /healthz and a good prediction still answer.
# The figures go to OUT/load.json.
#
# usage: Scripts/ci/load_test.sh LENET_BINARY MNIST_DIR [DURATION=30] [OUT=.build/load-test]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lenet=$1 data=$2 duration=${3:-30} out=${4:-.build/load-test}
command -v wrk >/dev/null || { echo "load_test.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"

# A checkpoint worth asking: one epoch of the tutorial's training (~98% accurate).
"$lenet" train --data-dir "$data" --no-download --epochs 1 --output "$out/run" > "$out/train.log"
label=$(python3 "$here/load/make_digit_png.py" "$data" 0 "$out/digit.png")

"$lenet" serve --checkpoint "$out/run/last.safetensors" --port 0 > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "^Serving" "$out/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$out/serve.log" | head -1)
url=${url%/}
[ -n "$url" ] || { echo "load_test.sh: the server did not start:" >&2; cat "$out/serve.log" >&2; exit 1; }

fail() { echo "load_test.sh: FAILED: $*" >&2; exit 1; }
health() { curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}\n' "$url/healthz" || echo "000 10"; }
predicted_digit() {
    curl -s --max-time 5 -H 'Content-Type: image/png' --data-binary "@$out/digit.png" "$url/api/predict" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["digit"])'
}
[ "$(predicted_digit)" = "$label" ] || fail "the test digit ($label) is not recognised before the load"

# 1 + 2: the load, with health checks beside it.
( end=$((SECONDS + duration)); while [ $SECONDS -lt $end ]; do health; sleep 0.2; done ) > "$out/health-during.txt" &
checker=$!
LOAD_PNG="$out/digit.png" wrk -t2 -c64 -d"${duration}s" --timeout 10s -s "$here/load/predict_png.lua" \
    "$url/api/predict" > "$out/wrk.txt"
wait $checker
load=$(tail -1 "$out/wrk.txt")
echo "load:      $load"
python3 - "$load" <<'PY' || fail "errors under load (see $out/wrk.txt)"
import json, sys
figures = json.loads(sys.argv[1])
sys.exit(0 if figures["requests"] > 0 and figures["not_200"] == 0 and figures["socket_errors"] == 0 and figures["timeouts"] == 0 else 1)
PY
checks=$(wc -l < "$out/health-during.txt")
bad=$(grep -vc '^200 ' "$out/health-during.txt" || true)
slowest=$(awk '{ if ($2 > m) m = $2 } END { printf "%.3f", m }' "$out/health-during.txt")
echo "healthz:   $checks checks during the load, $bad not 200, slowest ${slowest} s"
[ "$checks" -gt 0 ] && [ "$bad" -eq 0 ] || fail "/healthz did not answer 200 during the load"

# 3: malformed requests.
burst=$(wrk -t2 -c64 -d5s --timeout 10s -s "$here/load/malformed.lua" "$url/api/predict" | tail -1)
echo "malformed: $burst"
python3 - "$burst" <<'PY' || fail "a malformed request got a 5xx or no 4xx at all"
import json, sys
figures = json.loads(sys.argv[1])
sys.exit(0 if figures["answered_5xx"] == 0 and figures["answered_4xx"] > 0 else 1)
PY

# 4: still serving.
after=$(health)
[ "${after%% *}" = 200 ] || fail "/healthz answers $after after the malformed burst"
[ "$(predicted_digit)" = "$label" ] || fail "the test digit is not recognised after the malformed burst"
kill -0 $server 2>/dev/null || fail "the server is gone"
echo "after:     /healthz 200, digit $label still recognised"

python3 - "$load" "$burst" "$checks" "$slowest" "$duration" > "$out/load.json" <<'PY'
import json, sys
print(json.dumps({"duration_s": int(sys.argv[5]), "connections": 64, "predict": json.loads(sys.argv[1]),
                  "malformed_burst": json.loads(sys.argv[2]),
                  "healthz_during_load": {"checks": int(sys.argv[3]), "slowest_s": float(sys.argv[4])}}, indent=2))
PY
echo "figures:   $out/load.json"
