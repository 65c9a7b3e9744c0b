#!/usr/bin/env bash
# Lumen's benchmarks in one command; docs/benchmarks.md reports what it prints.
#
#   benches/run.sh                      # default scale: about 10 minutes on 2 cores
#   SPANS=10000000 benches/run.sh       # the 10-million-span store for the trace-by-id target
#   PHASES=query SPANS=10M benches/run.sh
#
# Phases (PHASES, comma-separated, default "ingest,query"):
#   ingest  a fresh Lumen (release build, default flags plus LUMEN_ARGS, loopback ports GRPC_PORT/HTTP_PORT);
#           for each of SIGNALS, INGEST_RUNS timed runs of DURATION at maximum rate over PROTOCOL with CONNECTIONS
#           connections and BATCH items per request (lumen-loadgen; Lumen's RSS and CPU sampled).
#   query   another fresh Lumen loaded with SPANS spans, LOGS log records and POINTS data points,
#           flushed and compacted; then lumen-querybench (RUNS timed runs per query, bytes on disk per row) and the
#           DuckDB peer over the same Parquet segment files (benches/peers/duckdb_queries.py).
#   metrics Prometheus remote write: Lumen vs Prometheus vs VictoriaMetrics on the same samples (ingest
#           rate, resident memory, bytes per sample on disk, PromQL latency), one fresh instance at a
#           time; benches/peers/metrics_peers.sh, whose knobs (SERIES, WINDOW, RW_RUNS, BIG_SERIES…)
#           are read from the environment too. Needs Debian's prometheus and victoria-metrics.
#   chdb    bytes per span and per log record in ClickHouse (chdb, MergeTree + ZSTD) against Lumen's,
#           from the Parquet segments the query phase left in $DATA_ROOT/query
#           (benches/peers/chdb_bytes.py; pip install chdb pyarrow).
#
# Everything is written to OUT (default $DATA_ROOT/results): JSON reports, text outputs, Lumen's
# /metrics and log. Needs: cargo, curl, python3 with duckdb (pip install duckdb) for the peer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA_ROOT=${DATA_ROOT:-/tmp/lumen-bench}
OUT=${OUT:-$DATA_ROOT/results}
PHASES=${PHASES:-ingest,query}
PROTOCOL=${PROTOCOL:-grpc}
CONNECTIONS=${CONNECTIONS:-4}
BATCH=${BATCH:-1000}
DURATION=${DURATION:-20s}
INGEST_RUNS=${INGEST_RUNS:-3}
SPANS=${SPANS:-2000000}
LOGS=${LOGS:-1000000}
POINTS=${POINTS:-2000000}
RUNS=${RUNS:-5}
GRPC_PORT=${GRPC_PORT:-14317}
HTTP_PORT=${HTTP_PORT:-14318}
SKIP_BUILD=${SKIP_BUILD:-0}   # 1: use the binaries already in BIN
SIGNALS=${SIGNALS:-traces,logs,metrics}   # the ingest phase's signals
LUMEN_ARGS=${LUMEN_ARGS:-}    # extra `lumen serve` flags, e.g. "--span-metrics false"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}   # or dist: the thin-LTO build we ship (docs/benchmarks.md, "Build profiles")
BIN=${BIN:-$TARGET_DIR/$PROFILE}

mkdir -p "$OUT"
HTTP=http://127.0.0.1:$HTTP_PORT
if [ "$PROTOCOL" = grpc ]; then ENDPOINT=http://127.0.0.1:$GRPC_PORT; else ENDPOINT=$HTTP; fi

say() { printf '\n=== %s\n' "$*" | tee -a "$OUT/summary.txt"; }

if [ "$SKIP_BUILD" != 1 ]; then
  say "building the release binaries"
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p lumen -p lumen-benches)
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') × $(nproc)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
  dev=$(df --output=source "$DATA_ROOT" | tail -1)
  echo "disk: $dev $(df -h "$DATA_ROOT" | awk 'NR==2 {print $2}'), rotational=$(lsblk -dno ROTA "$dev" 2>/dev/null || echo '?'), filesystem $(df --output=fstype "$DATA_ROOT" | tail -1)"
  echo "kernel: $(uname -r)"
  echo "duckdb: $(python3 -c 'import duckdb; print(duckdb.__version__)' 2>/dev/null || echo 'not installed')"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

LUMEN_PID=
stop_lumen() {
  if [ -n "$LUMEN_PID" ] && kill -0 "$LUMEN_PID" 2>/dev/null; then
    kill -TERM "$LUMEN_PID"
    wait "$LUMEN_PID" 2>/dev/null || true
  fi
  LUMEN_PID=
}
trap stop_lumen EXIT

# start_lumen NAME: a fresh data directory $DATA_ROOT/NAME, default flags, loopback ports.
start_lumen() {
  local dir=$DATA_ROOT/$1
  rm -rf "$dir"
  # shellcheck disable=SC2086 # LUMEN_ARGS is a list of flags
  "$BIN/lumen" serve --data-dir "$dir" --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" $LUMEN_ARGS \
    > "$OUT/lumen-$1.stdout" 2> "$OUT/lumen-$1.log" &
  LUMEN_PID=$!
  for _ in $(seq 1 120); do
    if curl -sf "$HTTP/ready" > /dev/null; then return 0; fi
    sleep 0.5
  done
  echo "Lumen did not become ready; see $OUT/lumen-$1.log" >&2
  exit 1
}

flush() {
  curl -sf -X POST "$HTTP/api/v1/admin/flush"
  echo
}

rss() {
  awk '/^VmHWM|^VmRSS/ {printf "%s %.0f MiB  ", $1, $2/1024}' "/proc/$LUMEN_PID/status"
  echo
}

if [[ ",$PHASES," == *",ingest,"* ]]; then
  say "ingest: ${INGEST_RUNS} runs × ${DURATION} per signal, max rate, $PROTOCOL, $CONNECTIONS connections, $BATCH items/request"
  start_lumen ingest
  for signal in ${SIGNALS//,/ }; do
    "$BIN/lumen-loadgen" --endpoint "$ENDPOINT" --protocol "$PROTOCOL" --lumen-http "$HTTP" --pid "$LUMEN_PID" \
      --signal "$signal" --connections "$CONNECTIONS" --batch-size "$BATCH" --duration "$DURATION" --repeat "$INGEST_RUNS" \
      --json-out "$OUT/ingest-$signal.json" | tee -a "$OUT/summary.txt"
  done
  echo "lumen after the ingest phase: $(rss)" | tee -a "$OUT/summary.txt"
  curl -sf "$HTTP/metrics" > "$OUT/metrics-ingest.txt" || true
  stop_lumen
fi

if [[ ",$PHASES," == *",query,"* ]]; then
  say "query dataset: $SPANS spans, $LOGS log records, $POINTS data points (max rate, $PROTOCOL)"
  start_lumen query
  load() {
    "$BIN/lumen-loadgen" --endpoint "$ENDPOINT" --protocol "$PROTOCOL" --lumen-http "$HTTP" --pid "$LUMEN_PID" \
      --signal "$1" --items "$2" --connections "$CONNECTIONS" --batch-size "$BATCH" --pool-mb 100000 \
      --json-out "$OUT/load-$1.json" | tee -a "$OUT/summary.txt"
  }
  load traces "$SPANS"
  load logs "$LOGS"
  load metrics "$POINTS"
  echo "flush: $(flush)" | tee -a "$OUT/summary.txt"
  # Each hour's segments merged into one, as the background compactor leaves them once an hour settles.
  compacted=$(curl -sf -X POST "$HTTP/api/v1/admin/compact") || { echo "compaction failed; see $OUT/lumen-query.log" >&2; exit 1; }
  echo "compact: $compacted" | tee -a "$OUT/summary.txt"
  echo "lumen after loading, flushing and compacting: $(rss)" | tee -a "$OUT/summary.txt"
  # (Sizes per table: lumen-querybench below, from the manifest; segments/ also holds merged-away
  # files until their grace period ends.)

  say "query benchmark: Lumen ($RUNS timed runs per query)"
  "$BIN/lumen-querybench" --server "$HTTP" --runs "$RUNS" --data-dir "$DATA_ROOT/query" \
    --loadgen-report "$OUT/load-logs.json" --loadgen-report "$OUT/load-traces.json" \
    --json-out "$OUT/query-lumen.json" | tee -a "$OUT/summary.txt"
  curl -sf "$HTTP/metrics" > "$OUT/metrics-query.txt" || true
  echo "lumen after the queries: $(rss)" | tee -a "$OUT/summary.txt"
  # DuckDB reads the files while Lumen is stopped, so the two never compete for the 2 cores.
  stop_lumen

  say "query benchmark: DuckDB over the same segment files ($RUNS timed runs per query)"
  python3 "$ROOT/benches/peers/duckdb_queries.py" --data-dir "$DATA_ROOT/query" --lumen "$OUT/query-lumen.json" \
    --runs "$RUNS" --json-out "$OUT/query-duckdb.json" | tee -a "$OUT/summary.txt"
fi

if [[ ",$PHASES," == *",metrics,"* ]]; then
  say "metrics: remote write into Lumen, Prometheus and VictoriaMetrics"
  SKIP_BUILD=1 BIN=$BIN DATA_ROOT=$DATA_ROOT OUT=$OUT/metrics LUMEN_HTTP_PORT=$HTTP_PORT LUMEN_GRPC_PORT=$GRPC_PORT \
    "$ROOT/benches/peers/metrics_peers.sh" | tee -a "$OUT/summary.txt"
fi

if [[ ",$PHASES," == *",chdb,"* ]]; then
  say "bytes on disk: ClickHouse (chdb) over the query phase's segments"
  for level in 3 1; do
    python3 "$ROOT/benches/peers/chdb_bytes.py" --data-dir "$DATA_ROOT/query" --zstd-level "$level" \
      --json-out "$OUT/chdb-zstd$level.json" | tee -a "$OUT/summary.txt"
  done
  python3 "$ROOT/benches/peers/chdb_bytes.py" --data-dir "$DATA_ROOT/query" --zstd-level 1 --plain-maps \
    --json-out "$OUT/chdb-zstd1-plain-maps.json" | tee -a "$OUT/summary.txt"
fi

say "done: results in $OUT"
