#!/usr/bin/env python3
"""The query benchmark's peer: DuckDB over the very Parquet segment files Lumen wrote.

Runs the six queries of `lumen-querybench` (same meaning, SQL adapted to DuckDB), with the parameters
that `lumen-querybench --json` picked (trace id, service, token, time bounds), one untimed warm-up and
then --runs timed runs each, and prints the median / min / max per query beside Lumen's and the ratio
(Lumen median / DuckDB median: above 1 means Lumen is slower).

It also breaks the bytes on disk down by column (from the Parquet footers), to show where the bytes go.

    pip install duckdb
    lumen-querybench --json --data-dir DATA > lumen.json
    python3 benches/peers/duckdb_queries.py --data-dir DATA --lumen lumen.json [--runs 5] [--json]

Differences from Lumen's SQL, all forced by the dialect: ids are BLOBs in the files, so the trace id is
compared with unhex('<hex>'); date_bin -> time_bucket; approx_percentile_cont -> approx_quantile (both
t-digest based); timestamp literals are TIMESTAMPTZ. DuckDB timing includes fetching the result into
Python objects, Lumen's includes the HTTP round trip and JSON encoding of the result.
"""

import argparse
import json
import os
import statistics
import sys
import time

try:
    import duckdb
except ImportError:  # pragma: no cover
    sys.exit("duckdb is not installed: pip install duckdb")

TABLES = ("spans", "logs", "metrics")


def queries(p):
    """The six queries in DuckDB's SQL, keyed like lumen-querybench's."""
    return {
        "trace_by_id": f"SELECT * FROM spans WHERE trace_id = unhex('{p['trace_id']}') ORDER BY time",
        "service_errors_15m": (
            "SELECT time, trace_id, span_id, name, duration_ns, status_message FROM spans "
            f"WHERE service_name = '{p['service']}' AND status_code = 'error' "
            f"AND time >= TIMESTAMPTZ '{p['t_minus_15m']}' AND time <= TIMESTAMPTZ '{p['t_max']}' "
            "ORDER BY time DESC LIMIT 1000"
        ),
        "p99_by_operation_5m": (
            "SELECT time_bucket(INTERVAL '5 minutes', time) AS bucket, service_name, name, "
            "approx_quantile(duration_ns, 0.99) AS p99_ns, count(*) AS spans FROM spans "
            f"WHERE time >= TIMESTAMPTZ '{p['t_minus_1h']}' AND time <= TIMESTAMPTZ '{p['t_max']}' "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
        "log_search": (
            "SELECT time, service_name, severity_text, body, trace_id FROM logs "
            f"WHERE body LIKE '%{p['token']}%' ORDER BY time DESC LIMIT 100"
        ),
        "error_rate_by_service": (
            "SELECT service_name, count(*) AS spans, sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS errors, "
            "avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate FROM spans "
            "GROUP BY service_name ORDER BY error_rate DESC LIMIT 10"
        ),
        "metrics_agg_1m": (
            "SELECT metric_name, count(*) AS points, avg(value) AS avg_value, min(value) AS min_value, "
            'max(value) AS max_value, sum("count") AS observations FROM metrics '
            f"WHERE time >= TIMESTAMPTZ '{p['metrics_cutoff']}' GROUP BY metric_name ORDER BY metric_name"
        ),
    }


def segment_files(data_dir, table):
    """The table's live segments, from the manifest: files merged away by compaction stay on disk
    for a grace period (and until the next start) and must not be read twice."""
    with open(os.path.join(data_dir, "manifest.json")) as f:
        segments = json.load(f)["segments"]
    return sorted(os.path.join(data_dir, s["path"]) for s in segments if s["table"] == table)


def column_bytes(con, files, rows):
    """Compressed bytes per row of each top-level column, largest first."""
    if not files or rows == 0:
        return []
    got = con.execute(
        "SELECT split_part(path_in_schema, ',', 1) AS col, sum(total_compressed_size) AS bytes "
        "FROM parquet_metadata(?) GROUP BY 1 ORDER BY 2 DESC",
        [files],
    ).fetchall()
    return [{"column": c, "bytes": int(b), "bytes_per_row": b / rows} for c, b in got]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="Lumen's data directory (flushed)")
    ap.add_argument("--lumen", required=True, help="lumen-querybench --json output (parameters and Lumen's figures)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query after one warm-up")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: DuckDB's default, one per core)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--json-out", help="also write the JSON results to this file")
    args = ap.parse_args()

    with open(args.lumen) as f:
        lumen = json.load(f)
    params = lumen["params"]
    lumen_by_name = {q["name"]: q for q in lumen["queries"]}

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.threads > 0:
        con.execute(f"SET threads = {args.threads}")
    files = {}
    rows = {}
    for table in TABLES:
        files[table] = segment_files(args.data_dir, table)
        if not files[table]:
            sys.exit(f"no segments under {args.data_dir}/segments/{table}: flush Lumen first (POST /api/v1/admin/flush)")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files[table]!r})")
        rows[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    results = []
    for name, sql in queries(params).items():
        answer = con.execute(sql).fetchall()  # warm-up
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            answer = con.execute(sql).fetchall()
            runs.append((time.perf_counter() - started) * 1000.0)
        med = statistics.median(runs)
        lq = lumen_by_name.get(name, {})
        results.append({
            "name": name,
            "sql": sql,
            "rows": len(answer),
            "median_ms": med,
            "min_ms": min(runs),
            "max_ms": max(runs),
            "runs_ms": runs,
            "lumen_median_ms": lq.get("median_ms"),
            "lumen_rows": lq.get("rows"),
            "ratio_lumen_to_duckdb": (lq["median_ms"] / med) if lq.get("median_ms") and med > 0 else None,
        })
        print(f"duckdb_queries: {name:<22} median {med:9.1f} ms ({len(answer)} rows)", file=sys.stderr)

    layout = {t: column_bytes(con, files[t], rows[t]) for t in TABLES}
    out = {
        "engine": "duckdb",
        "duckdb_version": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "runs": args.runs,
        "rows": rows,
        "segment_files": {t: len(files[t]) for t in TABLES},
        "queries": results,
        "column_bytes": layout,
    }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)
    if args.json:
        print(json.dumps(out, indent=2))
        return

    print(f"DuckDB {out['duckdb_version']} ({out['threads']} threads) over {sum(len(v) for v in files.values())} segment files "
          f"— {args.runs} timed runs per query after one warm-up")
    print(f"{rows['spans']} spans, {rows['logs']} log records, {rows['metrics']} metric points")
    print()
    print(f"{'query':<24}{'lumen ms':>10}{'duckdb ms':>11}{'ratio':>8}{'min':>9}{'max':>9}  rows (lumen/duckdb)")
    for r in results:
        ratio = f"{r['ratio_lumen_to_duckdb']:.2f}" if r["ratio_lumen_to_duckdb"] is not None else "-"
        lm = f"{r['lumen_median_ms']:.1f}" if r["lumen_median_ms"] is not None else "-"
        same = "" if r["lumen_rows"] == r["rows"] else "  ROW COUNTS DIFFER"
        print(f"{r['name']:<24}{lm:>10}{r['median_ms']:>11.1f}{ratio:>8}{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}  "
              f"{r['lumen_rows']}/{r['rows']}{same}")
    print("(ratio = Lumen median / DuckDB median; ≤ 1.00 meets the target)")
    for t in ("spans", "logs"):
        print()
        total = sum(c["bytes"] for c in layout[t])
        print(f"{t}: {total / max(rows[t], 1):.2f} compressed column bytes per row (footers and indexes excluded); largest columns:")
        for c in layout[t][:10]:
            print(f"  {c['column']:<34}{c['bytes_per_row']:8.2f} B/row")


if __name__ == "__main__":
    main()
