#!/usr/bin/env python3
"""Bytes on disk: ClickHouse (through chdb) against Lumen, for the same spans and log records.

Reads the Parquet segment files of a Lumen store (the manifest's list; `benches/run.sh`'s query phase
leaves one in /tmp/lumen-bench/query), loads each table into a ClickHouse MergeTree table with the same
columns, ZSTD codecs and a sorting key like Lumen's (spans by trace id then time, logs by service then
time), merges it into one part (OPTIMIZE FINAL) and reports bytes per row from `system.parts` beside
Lumen's own bytes per row (segment bytes from the manifest), with the per-column breakdown of both.

    pip install chdb pyarrow
    python3 benches/peers/chdb_bytes.py --data-dir /tmp/lumen-bench/query --json-out chdb.json
    python3 benches/peers/chdb_bytes.py --data-dir … --zstd-level 1 --tables spans

The ClickHouse columns are Lumen's columns with ClickHouse types: ids as FixedString (binary, as Lumen
stores them), timestamps DateTime64(9) with Delta + ZSTD, low-cardinality strings (names, kinds,
status, service, scope, severity) as LowCardinality(String), attribute maps as
Map(LowCardinality(String), String) (resource and scope attributes with LowCardinality values), events and links as arrays of tuples; NULL strings become ''
(ClickHouse's usual non-Nullable style). Spans also get a bloom-filter skip index on trace_id, as
Lumen's Parquet files carry a bloom filter on it.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

LOW_CARDINALITY = {
    "name", "kind", "status_code", "service_name", "scope_name", "scope_version", "scope_schema_url",
    "resource_schema_url", "severity_text", "body_type", "event_name",
}

MAP_EXPR = "mapApply((k, v) -> (k, ifNull(v, '')), {src})"
MAP_TYPE = "Map(LowCardinality(String), String)"
# Resource and scope attributes repeat across a service's rows: their values are dictionary-encoded too.
LOW_CARDINALITY_MAPS = {"resource_attributes", "scope_attributes"}

SPECIAL = {
    "events": (
        "Array(Tuple(time DateTime64(9, 'UTC'), name LowCardinality(String), attributes " + MAP_TYPE + ", dropped_attributes_count UInt32))",
        "arrayMap(e -> tuple(ifNull(tupleElement(e, 'time'), toDateTime64(0, 9, 'UTC')), ifNull(tupleElement(e, 'name'), ''), "
        + MAP_EXPR.format(src="tupleElement(e, 'attributes')") + ", ifNull(tupleElement(e, 'dropped_attributes_count'), 0)), events)",
    ),
    "links": (
        "Array(Tuple(trace_id String, span_id String, trace_state String, flags UInt32, attributes " + MAP_TYPE + ", dropped_attributes_count UInt32))",
        "arrayMap(l -> tuple(ifNull(tupleElement(l, 'trace_id'), ''), ifNull(tupleElement(l, 'span_id'), ''), ifNull(tupleElement(l, 'trace_state'), ''), "
        "ifNull(tupleElement(l, 'flags'), 0), " + MAP_EXPR.format(src="tupleElement(l, 'attributes')") + ", ifNull(tupleElement(l, 'dropped_attributes_count'), 0)), links)",
    ),
}

# Time-series codecs for the metrics table's points (as ClickHouse's own guidance for metrics suggests).
METRIC_CODECS = {"time": "DoubleDelta", "start_time": "DoubleDelta", "value": "Gorilla", "sum": "Gorilla"}

ORDER_BY = {"spans": "(trace_id, time)", "logs": "(service_name, time)", "metrics": "(metric_name, series_id, time)"}


def column_plan(name, source_type, level, plain_maps=False, table=""):
    """(ClickHouse type, codec, SELECT expression) for a Parquet column as chdb describes it."""
    zstd = f"ZSTD({level})"
    if table == "metrics" and name in METRIC_CODECS:
        nullable = source_type.startswith("Nullable(")
        inner = source_type[len("Nullable("):-1] if nullable else source_type
        default = "toDateTime64(0, 9, 'UTC')" if inner.startswith("DateTime64") else "0"
        return inner, f"{METRIC_CODECS[name]}, {zstd}", f"ifNull({name}, {default})" if nullable else name
    if name in SPECIAL:
        ty, expr = SPECIAL[name]
        return ty, zstd, expr
    nullable = source_type.startswith("Nullable(")
    inner = source_type[len("Nullable("):-1] if nullable else source_type
    if inner.startswith("Map("):
        ty = "Map(LowCardinality(String), LowCardinality(String))" if name in LOW_CARDINALITY_MAPS and not plain_maps else MAP_TYPE
        return ty, zstd, MAP_EXPR.format(src=name)
    if inner.startswith("DateTime64"):
        return inner, f"Delta, {zstd}", f"ifNull({name}, toDateTime64(0, 9, 'UTC'))" if nullable else name
    m = re.fullmatch(r"FixedString\((\d+)\)", inner)
    if m:
        return inner, zstd, f"ifNull({name}, toFixedString('', {m.group(1)}))" if nullable else name
    if inner == "String":
        ty = "LowCardinality(String)" if name in LOW_CARDINALITY else "String"
        return ty, zstd, f"ifNull({name}, '')" if nullable else name
    if inner.startswith("Array(") and "Tuple" not in inner:
        return inner, zstd, name
    if nullable:
        return inner, zstd, f"ifNull({name}, 0)"
    return inner, zstd, name


def manifest_segments(data_dir):
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    by_table = {}
    for seg in manifest["segments"]:
        by_table.setdefault(seg["table"], []).append(seg)
    return by_table


def lumen_columns(paths):
    """Compressed bytes per column (top-level name) over Lumen's Parquet files, from their footers."""
    import pyarrow.parquet as pq

    out = {}
    for p in paths:
        md = pq.ParquetFile(p).metadata
        for rg in range(md.num_row_groups):
            g = md.row_group(rg)
            for c in range(g.num_columns):
                col = g.column(c)
                top = col.path_in_schema.split(".")[0]
                out[top] = out.get(top, 0) + col.total_compressed_size
    return out


def load_table(sess, table, segments, data_dir, level, plain_maps):
    paths = [os.path.join(data_dir, s["path"]) for s in segments]
    describe = sess.query(f"DESCRIBE file('{paths[0]}', Parquet)", "JSONCompact")
    cols = [(row[0], row[1]) for row in json.loads(describe.bytes())["data"]]
    plans = [(n, *column_plan(n, t, level, plain_maps, table)) for n, t in cols]
    defs = ",\n  ".join(f"`{n}` {ty} CODEC({codec})" for n, ty, codec, _ in plans)
    index = ",\n  INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 1" if table == "spans" else ""
    sess.query(f"DROP TABLE IF EXISTS bench.{table}")
    sess.query(f"CREATE TABLE bench.{table} (\n  {defs}{index}\n) ENGINE = MergeTree ORDER BY {ORDER_BY[table]}")
    select = ", ".join(expr for _, _, _, expr in plans)
    t0 = time.time()
    for p in paths:
        sess.query(f"INSERT INTO bench.{table} SELECT {select} FROM file('{p}', Parquet)")
    t1 = time.time()
    sess.query(f"OPTIMIZE TABLE bench.{table} FINAL")
    t2 = time.time()
    parts = json.loads(sess.query(
        f"SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS on_disk, sum(data_compressed_bytes) AS compressed, "
        f"sum(data_uncompressed_bytes) AS uncompressed, sum(primary_key_bytes_in_memory) AS pk "
        f"FROM system.parts WHERE database = 'bench' AND table = '{table}' AND active", "JSON").bytes())["data"][0]
    columns = json.loads(sess.query(
        f"SELECT name, data_compressed_bytes AS compressed FROM system.columns WHERE database = 'bench' AND table = '{table}'", "JSON").bytes())["data"]
    rows = int(parts["rows"])
    lumen_rows = sum(s["rows"] for s in segments)
    lumen_bytes = sum(s["bytes"] for s in segments)
    lumen_cols = lumen_columns(paths)
    return {
        "table": table,
        "zstd_level": level,
        "plain_maps": plain_maps,
        "order_by": ORDER_BY[table],
        "segments": len(segments),
        "rows": rows,
        "lumen_rows": lumen_rows,
        "clickhouse_parts": int(parts["parts"]),
        "clickhouse_bytes_on_disk": int(parts["on_disk"]),
        "clickhouse_data_compressed_bytes": int(parts["compressed"]),
        "clickhouse_data_uncompressed_bytes": int(parts["uncompressed"]),
        "clickhouse_bytes_per_row_on_disk": int(parts["on_disk"]) / rows,
        "clickhouse_compressed_bytes_per_row": int(parts["compressed"]) / rows,
        "lumen_bytes": lumen_bytes,
        "lumen_bytes_per_row": lumen_bytes / lumen_rows,
        "ratio_lumen_to_clickhouse_on_disk": (lumen_bytes / lumen_rows) / (int(parts["on_disk"]) / rows),
        "insert_secs": t1 - t0,
        "optimize_secs": t2 - t1,
        "columns": sorted(
            ({"name": c["name"], "clickhouse_bytes_per_row": int(c["compressed"]) / rows, "lumen_bytes_per_row": lumen_cols.get(c["name"], 0) / lumen_rows} for c in columns),
            key=lambda c: -c["clickhouse_bytes_per_row"],
        ),
        "create_table": f"CREATE TABLE {table} ({defs}{index}) ENGINE = MergeTree ORDER BY {ORDER_BY[table]}",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/tmp/lumen-bench/query", help="a Lumen data directory (manifest.json + segments/)")
    ap.add_argument("--tables", default="spans,logs", help="comma-separated: spans, logs, metrics")
    ap.add_argument("--zstd-level", type=int, default=3, help="ZSTD level of every column (Lumen writes zstd 3)")
    ap.add_argument("--plain-maps", action="store_true",
                    help="every map as Map(LowCardinality(String), String), as the OpenTelemetry collector's ClickHouse exporter creates them")
    ap.add_argument("--work-dir", help="where chdb keeps its tables (default: a temporary directory, removed)")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    import chdb
    from chdb import session

    work = args.work_dir or tempfile.mkdtemp(prefix="chdb-bytes-")
    segments = manifest_segments(args.data_dir)
    sess = session.Session(work)
    sess.query("CREATE DATABASE IF NOT EXISTS bench")
    version = sess.query("SELECT version()", "TSV").bytes().decode().strip()
    results = []
    try:
        for table in [t for t in args.tables.split(",") if t]:
            if table not in segments:
                print(f"{table}: no segments in {args.data_dir}", file=sys.stderr)
                continue
            r = load_table(sess, table, segments[table], args.data_dir, args.zstd_level, args.plain_maps)
            results.append(r)
            print(f"\n{table}: {r['rows']:,} rows from {r['segments']} Lumen segment files; ClickHouse {version} (chdb {chdb.__version__}), "
                  f"MergeTree ORDER BY {r['order_by']}, ZSTD({r['zstd_level']}){', plain maps' if r['plain_maps'] else ''}, {r['clickhouse_parts']} part(s) after OPTIMIZE FINAL "
                  f"(insert {r['insert_secs']:.1f} s, optimize {r['optimize_secs']:.1f} s)")
            print(f"  ClickHouse  {r['clickhouse_bytes_per_row_on_disk']:6.2f} B/row on disk (bytes_on_disk), "
                  f"{r['clickhouse_compressed_bytes_per_row']:6.2f} B/row column data (data_compressed_bytes)")
            print(f"  Lumen       {r['lumen_bytes_per_row']:6.2f} B/row (segment files)   Lumen ÷ ClickHouse on disk = {r['ratio_lumen_to_clickhouse_on_disk']:.2f}")
            print("  column                          ClickHouse B/row   Lumen B/row")
            for c in r["columns"]:
                if c["clickhouse_bytes_per_row"] >= 0.05 or c["lumen_bytes_per_row"] >= 0.05:
                    print(f"  {c['name']:<32}{c['clickhouse_bytes_per_row']:>16.2f}{c['lumen_bytes_per_row']:>14.2f}")
    finally:
        sess.close()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"clickhouse_version": version, "chdb_version": chdb.__version__, "data_dir": args.data_dir, "tables": results}, f, indent=2)


if __name__ == "__main__":
    main()
