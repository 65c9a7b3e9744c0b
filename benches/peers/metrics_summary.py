#!/usr/bin/env python3
"""Tables of the remote write benchmark (benches/peers/metrics_peers.sh) from its JSON reports.

    python3 benches/peers/metrics_summary.py /tmp/lumen-bench/results/metrics

Prints Markdown: ingest (median of the runs), bytes on disk per sample, query latency (median of the
timed runs of the first run's instance) and the large-series-count figures, each with Lumen's ratio to
the peers.
"""

import glob
import json
import os
import statistics
import sys

SYSTEMS = ["lumen", "prometheus", "victoriametrics"]
NAMES = {"lumen": "Lumen", "prometheus": "Prometheus 2.42", "victoriametrics": "VictoriaMetrics 1.79"}


def load(path):
    with open(path) as f:
        return json.load(f)


def runs_of(out, system):
    writes, disks = [], []
    for path in sorted(glob.glob(os.path.join(out, f"write-{system}-*.json"))):
        run = path.rsplit("-", 1)[1].split(".")[0]
        writes.append(load(path))
        disk = os.path.join(out, f"disk-{system}-{run}.json")
        disks.append(load(disk) if os.path.exists(disk) else None)
    return writes, disks


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lumen-bench/results/metrics"
    present = [s for s in SYSTEMS if glob.glob(os.path.join(out, f"write-{s}-*.json"))]
    if not present:
        # A big-series-only run (RW_RUNS=0): just its table.
        if not big_table(out):
            sys.exit(f"no write-*.json reports in {out}")
        return
    first = load(sorted(glob.glob(os.path.join(out, f"write-{present[0]}-*.json")))[0])
    print(f"Data: {first['series']:,} series ({first['targets']} targets × 100) scraped every {first['interval_secs']:g} s, "
          f"{first['scrapes_per_series']} samples per series = {first['pool_samples']:,} samples; "
          f"{first['connections']} connections, {first['samples_per_request']} samples per request, "
          f"{first['wire_bytes_per_sample']:.2f} B/sample snappy on the wire ({first['protobuf_bytes_per_sample']:.1f} B/sample protobuf).\n")

    rates = {}
    print("| system | samples/s, median (min–max) | runs | ack p50 | ack p99 | receiver CPU | peak RSS (VmHWM) | retried / failed |")
    print("|---|---|---|---|---|---|---|---|")
    for s in present:
        writes, disks = runs_of(out, s)
        r = [w["samples_per_sec"] for w in writes]
        rates[s] = med(r)
        hwm = [w["receiver"].get("rss_hwm_mib") for w in writes] + [d["rss_hwm_kib"] / 1024 for d in disks if d and d.get("rss_hwm_kib")]
        hwm = [h for h in hwm if h is not None]
        print(f"| {NAMES[s]} | **{fmt(med(r))}** ({fmt(min(r))}–{fmt(max(r))}) | {len(r)} | "
              f"{fmt(med([w['latency']['p50_ms'] for w in writes]), 1)} ms | {fmt(med([w['latency']['p99_ms'] for w in writes]), 1)} ms | "
              f"{fmt(med([w['receiver'].get('cpu_cores') for w in writes]), 2)} cores | {fmt(max(hwm) if hwm else None)} MiB | "
              f"{sum(w['retries'] for w in writes)} / {sum(w['failures'] for w in writes)} |")
    peers = [s for s in present if s != "lumen"]
    if "lumen" in rates and peers:
        best = max(peers, key=lambda s: rates[s] or 0)
        print(f"\nLumen ÷ best peer ({NAMES[best]}): {rates['lumen'] / rates[best]:.2f}; target 1,000,000 samples/s: "
              f"{rates['lumen'] / 1e6:.2f} of it.")

    print("\n| system | bytes/sample on disk, median | what is counted | other bytes/sample |")
    print("|---|---|---|---|")
    per_sample = {}
    for s in present:
        writes, disks = runs_of(out, s)
        b = [d["bytes"] / w["accepted_samples"] for w, d in zip(writes, disks) if d and w["accepted_samples"]]
        e = [d["extra_bytes"] / w["accepted_samples"] for w, d in zip(writes, disks) if d and w["accepted_samples"]]
        per_sample[s] = med(b)
        note = disks[0]["note"] if disks and disks[0] else ""
        print(f"| {NAMES[s]} | **{fmt(med(b), 2)}** ({fmt(min(b), 2)}–{fmt(max(b), 2)}) | {note} | {fmt(med(e), 2)} |")
    if "lumen" in per_sample and peers:
        best = min(peers, key=lambda s: per_sample[s] or 1e9)
        print(f"\nLumen ÷ best peer ({NAMES[best]}): {per_sample['lumen'] / per_sample[best]:.2f}; target ≤ 1.5 B/sample.")

    queries = {s: load(os.path.join(out, f"query-{s}.json")) for s in present if os.path.exists(os.path.join(out, f"query-{s}.json"))}
    if queries:
        some = next(iter(queries.values()))
        print(f"\nQueries: query_range over {(some['end_ms'] - some['start_ms']) / 3.6e6:g} h at {some['step_secs']:g} s steps, "
              f"one warm-up then {some['runs']} timed runs, median ms (min–max); series returned in brackets; "
              f"the warm-up (first) run's ms after \"first\".\n")
        cols = [s for s in present if s in queries]
        print("| query | " + " | ".join(NAMES[s] for s in cols) + " | Lumen ÷ Prometheus | Lumen ÷ VictoriaMetrics |")
        print("|---|" + "---|" * (len(cols) + 2))
        for i, q in enumerate(some["queries"]):
            cells, by = [], {}
            for s in cols:
                qq = queries[s]["queries"][i]
                by[s] = qq["median_ms"] if not qq.get("error") else None
                first = f"; first {fmt(qq['first_ms'], 1)}" if qq.get("first_ms") is not None else ""
                cells.append(f"{fmt(qq['median_ms'], 1)} ({fmt(qq['min_ms'], 1)}–{fmt(qq['max_ms'], 1)}) [{qq['series']}]{first}" if not qq.get("error") else f"error: {qq['error'][:80]}")
            ratio = lambda peer: f"{by['lumen'] / by[peer]:.2f}" if by.get("lumen") and by.get(peer) else "–"
            print(f"| {q['name']} `{q['promql']}` | " + " | ".join(cells) + f" | {ratio('prometheus')} | {ratio('victoriametrics')} |")

    big_table(out)


def big_table(out):
    """The large-series table (and the side-by-side ratio); False when there is no big-series report."""
    big = [s for s in SYSTEMS if os.path.exists(os.path.join(out, f"write-big-{s}.json"))]
    if not big:
        return False
    w0 = load(os.path.join(out, f"write-big-{big[0]}.json"))
    print(f"\nLarge series count: {w0['series']:,} series × {w0['scrapes_per_series']} samples = {w0['pool_samples']:,} samples, one load per system.\n")
    print("| system | samples/s | peak RSS | bytes/sample on disk | selective query ms, median (min–max) [series] |")
    print("|---|---|---|---|---|")
    answers = {}
    for s in big:
        w = load(os.path.join(out, f"write-big-{s}.json"))
        d = load(os.path.join(out, f"disk-big-{s}.json")) if os.path.exists(os.path.join(out, f"disk-big-{s}.json")) else None
        qpath = os.path.join(out, f"query-big-{s}.json")
        q = load(qpath)["queries"][0] if os.path.exists(qpath) else None
        answers[s] = q if q and not q.get("error") else None
        hwm = max(x for x in [w["receiver"].get("rss_hwm_mib"), (d or {}).get("rss_hwm_kib", 0) / 1024] if x is not None)
        first = f"; first {fmt(q['first_ms'], 1)}" if q and q.get("first_ms") is not None else ""
        qcell = "–" if not q else (f"error: {q['error'][:80]}" if q.get("error") else f"{fmt(q['median_ms'], 3)} ({fmt(q['min_ms'], 3)}–{fmt(q['max_ms'], 3)}) [{q['series']}]{first}")
        bps = d["bytes"] / w["accepted_samples"] if d and w["accepted_samples"] else None
        print(f"| {NAMES[s]} | {fmt(w['samples_per_sec'])} | {fmt(hwm)} MiB | {fmt(bps, 2)} | {qcell} |")
    lumen, prom = answers.get("lumen"), answers.get("prometheus")
    if lumen and prom:
        line = f"\nSelective query, Lumen ÷ Prometheus: {lumen['median_ms'] / prom['median_ms']:.2f}"
        rounds = list(zip(lumen.get("round_medians_ms", []), prom.get("round_medians_ms", [])))
        if rounds:
            line += f"; rounds (alternating) in which Lumen was faster: {sum(l < p for l, p in rounds)} of {len(rounds)}"
        print(line + ".")
    return True

if __name__ == "__main__":
    main()
