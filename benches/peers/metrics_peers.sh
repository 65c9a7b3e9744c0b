#!/usr/bin/env bash
# Prometheus remote write: Lumen vs Prometheus vs VictoriaMetrics on the same samples, one system at a
# time on loopback ports. docs/benchmarks.md ("Metrics: remote write …") reports what it prints.
#
#   benches/peers/metrics_peers.sh                       # ~8 min on 2 cores
#   SYSTEMS=lumen RW_RUNS=1 BIG_SERIES=0 benches/peers/metrics_peers.sh
#
# For each system in SYSTEMS, RW_RUNS times: a fresh instance with an empty data directory, then
# `lumen-rwbench write` (SERIES series scraped every INTERVAL over WINDOW, ending at END_MS; the
# requests are encoded before the timed phase; CONNECTIONS connections, SAMPLES_PER_REQUEST samples per
# request), then the data is made durable and measured on disk:
#   lumen            POST /api/v1/admin/flush and /api/v1/admin/compact; bytes of the manifest's
#                    segments (Parquet + series index sidecars) and of the WAL
#   prometheus       WAL and chunks_head as they stand (the head is cut into a block only after 2-3 h
#                    of data), then POST /api/v1/admin/tsdb/snapshot, which writes the head as a block
#                    (chunks + index): the bytes a 2 h block of this data takes
#   victoriametrics  /internal/force_flush; data/ + indexdb/; then /internal/force_merge and again
# and, on the first run, `lumen-rwbench query` (QUERY_RUNS timed runs per query, 1 h at 15 s steps).
# Then, when BIG_SERIES > 0, one more fresh instance per system loaded with BIG_SERIES series over
# BIG_WINDOW (one system at a time, the ones loaded before staying up, idle); all of them stay up,
# and the selective query is timed in BIG_ROUNDS rounds that alternate between the systems, each
# round a warm-up and ceil(QUERY_RUNS / BIG_ROUNDS) timed runs per system.
#
# Every system gets the same samples (same END_MS and seed). Reports go to OUT as JSON;
# benches/peers/metrics_summary.py turns them into the tables of docs/benchmarks.md.
# Needs: the release binaries (lumen, lumen-rwbench), Debian's prometheus and victoria-metrics, curl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA_ROOT=${DATA_ROOT:-/tmp/lumen-bench}
OUT=${OUT:-$DATA_ROOT/results/metrics}
SYSTEMS=${SYSTEMS:-lumen,prometheus,victoriametrics}
RW_RUNS=${RW_RUNS:-3}
SERIES=${SERIES:-10000}
INTERVAL=${INTERVAL:-15s}
WINDOW=${WINDOW:-2h}
CONNECTIONS=${CONNECTIONS:-4}
SAMPLES_PER_REQUEST=${SAMPLES_PER_REQUEST:-2000}
QUERY_RUNS=${QUERY_RUNS:-5}
BIG_SERIES=${BIG_SERIES:-1000000}
BIG_WINDOW=${BIG_WINDOW:-1m}
BIG_ROUNDS=${BIG_ROUNDS:-10}            # the big selective query's runs are split into rounds alternating between systems
IDLE_SHARE=${IDLE_SHARE:-0}            # share of series constant over the window (lumen-rwbench --idle-share)
LUMEN_FLAGS=${LUMEN_FLAGS:-}            # extra `lumen serve` flags (default: none, Lumen's defaults)
LUMEN_HTTP_PORT=${LUMEN_HTTP_PORT:-14318}
LUMEN_GRPC_PORT=${LUMEN_GRPC_PORT:-14317}
PROM_PORT=${PROM_PORT:-19090}
VM_PORT=${VM_PORT:-18428}
SKIP_BUILD=${SKIP_BUILD:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}   # or dist: the thin-LTO build we ship (docs/benchmarks.md, "Build profiles")
BIN=${BIN:-$TARGET_DIR/$PROFILE}
PROMETHEUS=${PROMETHEUS:-prometheus}
VICTORIA=${VICTORIA:-victoria-metrics}
# One end for every system and run, so they all get the same samples.
END_MS=${END_MS:-$(( $(date +%s) / 15 * 15000 ))}

mkdir -p "$OUT"
# Reports of an earlier run in the same OUT would mix into this run's summary.
rm -f "$OUT"/write-*.json "$OUT"/disk-*.json "$OUT"/query-*.json "$OUT"/*.progress
WORK=$DATA_ROOT/metrics
mkdir -p "$WORK"

if [ "$SKIP_BUILD" != 1 ]; then
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p lumen -p lumen-benches)
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') × $(nproc)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "prometheus: $(dpkg-query -W -f '${Version}' prometheus 2>/dev/null || "$PROMETHEUS" --version 2>&1 | head -1)"
  echo "victoria-metrics: $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown)"
  echo "end_ms: $END_MS"
  echo "series: $SERIES, interval $INTERVAL, window $WINDOW, idle share $IDLE_SHARE, $CONNECTIONS connections, $SAMPLES_PER_REQUEST samples/request; big: $BIG_SERIES series over $BIG_WINDOW"
  echo "lumen flags: ${LUMEN_FLAGS:-(defaults)}"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

PID=
BASE=
stop_system() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
  fi
  PID=
}
trap stop_system EXIT

wait_ready() { # URL LOG
  for _ in $(seq 1 240); do
    if curl -sf "$1" > /dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "not ready: $1; see $2" >&2
  exit 1
}

# start_system SYSTEM DIR: a fresh instance with an empty DIR; sets PID and BASE.
start_system() {
  local dir=$2
  rm -rf "$dir"
  mkdir -p "$dir"
  case $1 in
    lumen)
      # shellcheck disable=SC2086
      "$BIN/lumen" serve --data-dir "$dir/data" --http-addr "127.0.0.1:$LUMEN_HTTP_PORT" --grpc-addr "127.0.0.1:$LUMEN_GRPC_PORT" $LUMEN_FLAGS \
        > "$dir/stdout.log" 2> "$dir/stderr.log" &
      PID=$!
      BASE=http://127.0.0.1:$LUMEN_HTTP_PORT
      wait_ready "$BASE/ready" "$dir/stderr.log"
      ;;
    prometheus)
      printf 'global:\n  scrape_interval: 15s\n' > "$dir/prometheus.yml"   # no scrape jobs
      "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver --web.enable-admin-api \
        > "$dir/stdout.log" 2> "$dir/stderr.log" &
      PID=$!
      BASE=http://127.0.0.1:$PROM_PORT
      wait_ready "$BASE/-/ready" "$dir/stderr.log"
      ;;
    victoriametrics)
      # The rollup result cache is off so every timed query computes its answer.
      "$VICTORIA" -storageDataPath="$dir/data" -httpListenAddr="127.0.0.1:$VM_PORT" -search.disableCache \
        > "$dir/stdout.log" 2> "$dir/stderr.log" &
      PID=$!
      BASE=http://127.0.0.1:$VM_PORT
      wait_ready "$BASE/health" "$dir/stderr.log"
      ;;
    *) echo "unknown system $1" >&2; exit 1 ;;
  esac
}

bytes_of() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

# persist_and_measure SYSTEM DIR JSON: makes the data durable and writes its bytes on disk to JSON.
persist_and_measure() {
  local system=$1 dir=$2 json=$3 t0 t1 primary=0 extra=0 note=
  t0=$(date +%s.%N)
  case $system in
    lumen)
      curl -sf -X POST "$BASE/api/v1/admin/flush" > "$dir/flush.json"
      # Merge each hour's segments (as VictoriaMetrics' force_merge below): the state data settles in.
      curl -sf -X POST "$BASE/api/v1/admin/compact" > "$dir/compact.json"
      t1=$(date +%s.%N)
      # The manifest's segments and their sidecars (merged-away files wait out a grace period).
      primary=$(python3 - "$dir/data" <<'PY'
import json, os, sys
root = sys.argv[1]
total = 0
for s in json.load(open(os.path.join(root, "manifest.json")))["segments"]:
    path = os.path.join(root, s["path"])
    total += s["bytes"]
    sidecar = path[: -len(".parquet")] + ".series"
    if os.path.exists(sidecar):
        total += os.path.getsize(sidecar)
print(total)
PY
)
      extra=$(bytes_of "$dir/data/wal")
      note="segments (Parquet + series index sidecars) in the manifest after POST /api/v1/admin/flush and /api/v1/admin/compact ($(python3 -c 'import json, sys; print(", ".join(f"{k} {v}" for k, v in json.load(open(sys.argv[1])).items()))' "$dir/compact.json")); extra = WAL left"
      ;;
    prometheus)
      local wal head snap name
      wal=$(bytes_of "$dir/data/wal")
      head=$(bytes_of "$dir/data/chunks_head")
      name=$(curl -sf -X POST "$BASE/api/v1/admin/tsdb/snapshot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["name"])')
      t1=$(date +%s.%N)
      snap=$(bytes_of "$dir/data/snapshots/$name")
      primary=$snap
      extra=$((wal + head))
      cp "$dir/data/snapshots/$name"/*/meta.json "$dir/snapshot-meta.json" 2>/dev/null || true
      note="block written by /api/v1/admin/tsdb/snapshot (chunks+index); extra = wal ($wal) + chunks_head ($head) before it"
      ;;
    victoriametrics)
      curl -sf "$BASE/internal/force_flush" > /dev/null
      sleep 5   # the flush is asynchronous
      local flushed merged
      flushed=$(bytes_of "$dir/data/data" "$dir/data/indexdb")
      curl -sf "$BASE/internal/force_merge?partition_prefix=$(date -u -d "@$((END_MS / 1000))" +%Y_%m)" > /dev/null || true
      for _ in $(seq 1 120); do
        sleep 1
        if [ "$(curl -sf "$BASE/metrics" | awk '/^vm_active_merges/ {s += $2} END {print s + 0}')" = 0 ]; then break; fi
      done
      t1=$(date +%s.%N)
      merged=$(bytes_of "$dir/data/data" "$dir/data/indexdb")
      primary=$merged
      extra=$flushed
      note="data/ + indexdb/ after /internal/force_flush and /internal/force_merge; extra = the same right after force_flush, before merging"
      ;;
  esac
  local hwm
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  printf '{"system":"%s","bytes":%s,"extra_bytes":%s,"persist_secs":%s,"rss_hwm_kib":%s,"note":"%s"}\n' \
    "$system" "$primary" "$extra" "$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")" "$hwm" "$note" > "$json"
  cat "$json"
}

IFS=, read -r -a systems <<< "$SYSTEMS"
write_url() { echo "$BASE/api/v1/write"; }

for system in "${systems[@]}"; do
  for run in $(seq 1 "$RW_RUNS"); do
    echo "=== $system run $run: $SERIES series × $WINDOW at $INTERVAL"
    dir=$WORK/$system
    start_system "$system" "$dir"
    lumen_http=
    if [ "$system" = lumen ]; then lumen_http=$BASE; fi
    "$BIN/lumen-rwbench" write --url "$(write_url)" --series "$SERIES" --interval "$INTERVAL" --window "$WINDOW" --end-ms "$END_MS" --idle-share "$IDLE_SHARE" \
      --connections "$CONNECTIONS" --samples-per-request "$SAMPLES_PER_REQUEST" --pid "$PID" --lumen-http "$lumen_http" \
      --label "$system" --json-out "$OUT/write-$system-$run.json" 2> "$OUT/write-$system-$run.progress"
    persist_and_measure "$system" "$dir" "$OUT/disk-$system-$run.json"
    if [ "$run" = 1 ]; then
      "$BIN/lumen-rwbench" query --url "$BASE" --series "$SERIES" --interval "$INTERVAL" --window "$WINDOW" --end-ms "$END_MS" \
        --runs "$QUERY_RUNS" --label "$system" --json-out "$OUT/query-$system.json" 2> "$OUT/query-$system.progress"
      if [ "$system" = lumen ]; then curl -sf "$BASE/metrics" > "$OUT/lumen-metrics.txt" || true; fi
      cp "$dir/stderr.log" "$OUT/$system-stderr.log" 2>/dev/null || true
    fi
    stop_system
  done
done

if [ "$BIG_SERIES" != 0 ]; then
  # Each system is loaded alone (the ingest figures are its own), then stays up with its data; the
  # selective query is then asked in rounds that alternate between the systems, so every system
  # meets the same moments of this shared machine (one system after another, minutes apart, the
  # machine's state moved medians by more than the systems differ).
  declare -A big_pid big_base
  stop_big() {
    for s in "${!big_pid[@]}"; do PID=${big_pid[$s]}; stop_system; unset 'big_pid[$s]'; done
  }
  trap 'stop_system; stop_big' EXIT
  for system in "${systems[@]}"; do
    echo "=== $system: $BIG_SERIES series × $BIG_WINDOW at $INTERVAL"
    dir=$WORK/$system-big
    start_system "$system" "$dir"
    lumen_http=
    if [ "$system" = lumen ]; then lumen_http=$BASE; fi
    "$BIN/lumen-rwbench" write --url "$(write_url)" --series "$BIG_SERIES" --interval "$INTERVAL" --window "$BIG_WINDOW" --end-ms "$END_MS" --idle-share "$IDLE_SHARE" \
      --connections "$CONNECTIONS" --samples-per-request "$SAMPLES_PER_REQUEST" --pid "$PID" --lumen-http "$lumen_http" \
      --label "$system" --json-out "$OUT/write-big-$system.json" 2> "$OUT/write-big-$system.progress"
    persist_and_measure "$system" "$dir" "$OUT/disk-big-$system.json"
    big_pid[$system]=$PID
    big_base[$system]=$BASE
    PID=
  done
  if [ "$BIG_ROUNDS" -lt 1 ]; then echo "BIG_ROUNDS must be at least 1" >&2; exit 1; fi
  per_round=$(( (QUERY_RUNS + BIG_ROUNDS - 1) / BIG_ROUNDS ))
  echo "=== selective query over $BIG_SERIES series: $BIG_ROUNDS rounds × $per_round runs, alternating ${systems[*]}"
  for round in $(seq 1 "$BIG_ROUNDS"); do
    for system in "${systems[@]}"; do
      "$BIN/lumen-rwbench" query --url "${big_base[$system]}" --series "$BIG_SERIES" --interval "$INTERVAL" --window "$BIG_WINDOW" --end-ms "$END_MS" \
        --only selective --runs "$per_round" --label "$system" --json-out "$OUT/query-big-$system-round$round.json" 2>> "$OUT/query-big-$system.progress"
    done
  done
  for system in "${systems[@]}"; do
    # One report per system: every round's timed runs; "first" is round 1's warm-up.
    python3 - "$OUT" "$system" "$BIG_ROUNDS" <<'PY'
import json, statistics, sys
out, system, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = [json.load(open(f"{out}/query-big-{system}-round{r}.json")) for r in range(1, rounds + 1)]
report = parts[0]
q = report["queries"][0]
q["runs_ms"] = [t for p in parts for t in p["queries"][0]["runs_ms"]]
q["error"] = next((p["queries"][0]["error"] for p in parts if p["queries"][0]["error"]), None)
if q["runs_ms"]:
    q["median_ms"], q["min_ms"], q["max_ms"] = statistics.median(q["runs_ms"]), min(q["runs_ms"]), max(q["runs_ms"])
q["round_medians_ms"] = [p["queries"][0]["median_ms"] for p in parts]
report["runs"] = len(q["runs_ms"])
report["rounds"] = rounds
json.dump(report, open(f"{out}/query-big-{system}.json", "w"), indent=2)
PY
  done
  stop_big
  for system in "${systems[@]}"; do rm -rf "$WORK/$system-big"; done
fi

python3 "$ROOT/benches/peers/metrics_summary.py" "$OUT" | tee "$OUT/summary.md"
