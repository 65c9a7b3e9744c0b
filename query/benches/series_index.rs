//! PromQL selection with and without the segments' series indexes.
//!
//! Loads `--series` series (default 200,000; try 1,000,000) of every metric kind, `--points`
//! points each within one hour, into a `Storage` in a temporary directory through its write API,
//! flushes them into one segment, then times `MetricsTableSource::select` for selective and
//! broad selectors: with the index (first run: sidecar read and bitmaps built; then cached) and
//! with a full scan of the segment. Prints one line per case: median, min and max of `--runs`.
//!
//! ```sh
//! cargo bench -p lumen-query --bench series_index                       # 200k series
//! cargo bench -p lumen-query --bench series_index -- --series 1000000   # 1M series
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lumen_query::SnapshotSource;
use lumen_query::promql::SeriesSource;
use lumen_query::promql::reader::MetricsTableSource;
use lumen_query::testing::metrics_gen;
use lumen_storage::{Storage, StorageConfig, Table, TimeRange};
use metrics_gen::{SECOND, T0};
use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr};

struct Args {
    series: usize,
    points: usize,
    runs: usize,
}

fn args() -> Args {
    let mut out = Args {
        series: 200_000,
        points: 4,
        runs: 5,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<usize>().ok());
        match a.as_str() {
            "--series" => out.series = value().unwrap_or(out.series),
            "--points" => out.points = value().unwrap_or(out.points).max(1),
            "--runs" => out.runs = value().unwrap_or(out.runs).max(1),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    out
}

/// The matchers of a vector selector, the metric name included.
fn m(selector: &str) -> Matchers {
    match parser::parse(selector).unwrap() {
        Expr::VectorSelector(vs) => {
            let mut m = vs.matchers.clone();
            if let Some(name) = vs.name {
                m.matchers
                    .push(Matcher::new(MatchOp::Equal, "__name__", &name));
            }
            m
        }
        other => panic!("not a selector: {other:?}"),
    }
}

fn time(runs: usize, mut f: impl FnMut() -> usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let started = Instant::now();
        n = f();
        times.push(started.elapsed());
    }
    times.sort();
    (times, n)
}

fn report(case: &str, mode: &str, times: &[Duration], series: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{case:<44} {mode:<12} median {:>10.2} ms  min {:>10.2}  max {:>10.2}  ({series} series)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let storage = runtime.block_on(async {
        let mut config = StorageConfig::new(dir.path());
        config.flush_interval = Duration::from_secs(3600);
        config.flush_bytes = usize::MAX;
        config.max_head_bytes = usize::MAX;
        let storage = Storage::open(config).unwrap();
        let started = Instant::now();
        for point in 0..args.points {
            let t = T0 + point as i64 * (3000 / args.points as i64) * SECOND;
            for chunk in (0..args.series).step_by(50_000) {
                let end = (chunk + 50_000).min(args.series);
                storage
                    .write(Table::Metrics, metrics_gen::batch(chunk..end, t, point))
                    .await
                    .unwrap();
            }
        }
        let loaded = started.elapsed();
        let flush_started = Instant::now();
        storage.flush().await.unwrap();
        println!(
            "loaded {} series × {} points in {:.1}s, flushed (segment + series index) in {:.1}s",
            args.series,
            args.points,
            loaded.as_secs_f64(),
            flush_started.elapsed().as_secs_f64()
        );
        storage
    });
    let snapshot = storage.snapshot(Table::Metrics, TimeRange::default());
    for s in &snapshot.segments {
        let sidecar = lumen_storage::index::sidecar_path(&s.path);
        let sidecar_bytes = std::fs::metadata(&sidecar).map(|m| m.len()).unwrap_or(0);
        println!(
            "segment {}: {} rows, {} bytes; sidecar {} bytes",
            s.id, s.rows, s.bytes, sidecar_bytes
        );
    }

    let snapshots: Arc<dyn SnapshotSource> = storage.clone();
    let indexed = MetricsTableSource::new(snapshots.clone());
    let full = MetricsTableSource::new(snapshots).without_series_index();
    let (start, end) = (T0 / 1_000_000, T0 / 1_000_000 + 3_600_000);
    let host = format!("h{}", args.series / 2 / 42 * 42); // a `mem_0_bytes` series
    let cases: Vec<(&str, Matchers)> = vec![
        (
            "one series: mem_0_bytes{host=…}",
            m(&format!(r#"mem_0_bytes{{host="{host}"}}"#)),
        ),
        (
            "one host, any metric: {host=…}",
            m(&format!(r#"{{host="{host}"}}"#)),
        ),
        (
            "1/84 of series: requests_1_total{job=~…}",
            m(r#"requests_1_total{job=~"svc[0-4]"}"#),
        ),
        ("1/42 of series: mem_3_bytes", m("mem_3_bytes")),
    ];
    for (case, matchers) in &cases {
        for segment in &snapshot.segments {
            lumen_storage::index::forget(&segment.path);
        }
        let (cold, n) = time(1, || indexed.select(matchers, start, end).unwrap().len());
        report(case, "index, cold", &cold, n);
        let (warm, n) = time(args.runs, || {
            indexed.select(matchers, start, end).unwrap().len()
        });
        report(case, "index", &warm, n);
        let (scan, n2) = time(args.runs.min(3), || {
            full.select(matchers, start, end).unwrap().len()
        });
        report(case, "full scan", &scan, n2);
        assert_eq!(n, n2, "{case}: the index changed the answer");
    }
    runtime.block_on(storage.shutdown()).unwrap();
}
