#!/usr/bin/env bash
# PromQL latency while Lumen ingests: the selective query of metrics_peers.sh, asked RUNS times while
# a remote-write load (SERIES series over WINDOW, as metrics_peers.sh sends it) runs. Prints the
# query's median and quartiles and the load's rate. docs/benchmarks.md ("Queries during ingest").
#
#   benches/peers/query_under_load.sh                     # release binaries in target/release
#   BIN=/tmp/copy REPEAT=2 benches/peers/query_under_load.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
PORT=${PORT:-14418}
SERIES=${SERIES:-10000}
WINDOW=${WINDOW:-2h}
RUNS=${RUNS:-400}
REPEAT=${REPEAT:-1}
WORK=${WORK:-/tmp/lumen-bench/under-load}
END_MS=${END_MS:-$(( $(date +%s) / 15 * 15000 ))}
# The queried data: 10 minutes of the same fleet, ending where the load's 2-hour window starts.
QUERY_END_MS=$(( END_MS - 7200000 ))

PID=
load=
stop() {
  if [ -n "$load" ]; then kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; load=; fi
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi
}
trap stop EXIT

for n in $(seq 1 "$REPEAT"); do
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN/lumen" serve --data-dir "$WORK/data" --http-addr "127.0.0.1:$PORT" --grpc-addr "127.0.0.1:$((PORT + 1))" > "$WORK/stdout.log" 2> "$WORK/stderr.log" &
  PID=$!
  ready=0
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; then ready=1; break; fi
    sleep 0.5
  done
  if [ "$ready" != 1 ]; then echo "Lumen did not become ready; see $WORK/stderr.log" >&2; exit 1; fi
  "$BIN/lumen-rwbench" write --url "http://127.0.0.1:$PORT/api/v1/write" --series "$SERIES" --interval 15s --window 10m \
    --end-ms "$QUERY_END_MS" --connections 4 --samples-per-request 2000 > /dev/null 2> "$WORK/preload.log"
  "$BIN/lumen-rwbench" write --url "http://127.0.0.1:$PORT/api/v1/write" --series "$SERIES" --interval 15s --window "$WINDOW" \
    --end-ms "$END_MS" --connections 4 --samples-per-request 2000 --json-out "$WORK/load.json" > /dev/null 2> "$WORK/load.progress" &
  load=$!
  # The load encodes its requests first; ask once it is sending.
  for _ in $(seq 1 600); do
    if grep -q "samples/s" "$WORK/load.progress" 2>/dev/null; then break; fi
    sleep 0.1
  done
  "$BIN/lumen-rwbench" query --url "http://127.0.0.1:$PORT" --series "$SERIES" --interval 15s --window 10m --end-ms "$QUERY_END_MS" \
    --only selective --runs "$RUNS" --label under-load --json-out "$WORK/query.json" > /dev/null 2> "$WORK/query.progress"
  wait "$load"
  load=
  python3 - "$WORK/query.json" "$WORK/load.json" "$n" <<'PY'
import json, statistics, sys
query = json.load(open(sys.argv[1]))["queries"][0]
load = json.load(open(sys.argv[2]))
if query.get("error") or len(query["runs_ms"]) < 2:
    sys.exit(f"the query failed: {query.get('error')}")
if load.get("failures"):
    sys.exit(f"the load had {load['failures']} failed requests: {load.get('first_error')}")
runs = query["runs_ms"]
q = statistics.quantiles(runs, n=20)
print(f"run {sys.argv[3]}: selective query during the load: median {statistics.median(runs):.3f} ms "
      f"(quartiles {q[4]:.3f}–{q[14]:.3f}, p95 {q[18]:.3f}); load {load['samples_per_sec']:,.0f} samples/s")
PY
  stop
done
