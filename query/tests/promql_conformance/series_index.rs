//! PromQL over the `metrics` table with and without the segments' series indexes: the same series
//! and samples for every selector, also when sidecars are missing or corrupt.

use std::sync::Arc;
use std::time::Duration;

use lumen_query::SnapshotSource;
use lumen_query::promql::reader::MetricsTableSource;
use lumen_query::promql::{Engine, EngineConfig, Series, SeriesSource, Value};
use lumen_query::testing::metrics_gen;
use lumen_storage::index::sidecar_path;
use lumen_storage::{Storage, StorageConfig, Table, TimeRange};
use metrics_gen::{SECOND, T0};
use promql_parser::parser::{self, Expr};

const SERIES: usize = 1200;

/// A store with `SERIES` series: points every 20 minutes over two hours flushed in two flushes
/// (three segments, two in the first hour), and two more points left in the head.
async fn store(dir: &std::path::Path) -> Arc<Storage> {
    let mut config = StorageConfig::new(dir);
    config.flush_interval = Duration::from_secs(3600);
    config.compaction.enabled = false; // two segments in one hour, on purpose
    let storage = Storage::open(config).unwrap();
    for point in 0..6 {
        let t = T0 + point as i64 * 1200 * SECOND;
        for chunk in (0..SERIES).step_by(500) {
            storage
                .write(
                    Table::Metrics,
                    metrics_gen::batch(chunk..(chunk + 500).min(SERIES), t, point),
                )
                .await
                .unwrap();
        }
        if point == 1 {
            storage.flush().await.unwrap(); // a second flush: two segments in the first hour
        }
    }
    storage.flush().await.unwrap();
    for point in 6..8 {
        let t = T0 + point as i64 * 1200 * SECOND;
        storage
            .write(Table::Metrics, metrics_gen::batch(0..SERIES, t, point))
            .await
            .unwrap();
    }
    let snapshot = storage.snapshot(Table::Metrics, TimeRange::default());
    assert!(snapshot.segments.len() >= 3 && !snapshot.head.is_empty());
    storage
}

const SELECTORS: &[&str] = &[
    r#"{__name__="mem_3_bytes"}"#,
    r#"mem_3_bytes{host="h3"}"#,
    r#"{__name__=~"requests_.*_total"}"#,
    r#"requests_1_total{http_method="POST", code!="100"}"#,
    r#"latency_2_seconds_bucket{le="1"}"#,
    r#"latency_2_seconds_count{host=~"h1.*"}"#,
    r#"{__name__=~"latency_.*", le=""}"#,
    r#"rpc_3{quantile="0.9"}"#,
    r#"{quantile=~"0.5"}"#,
    r#"{host="h14"}"#,
    r#"{host="h15"}"#,
    r#"{http_method="POST", code="200"}"#,
    r#"{job="ns/svc3"}"#,
    r#"{job="svc1", __name__=~".+"}"#,
    r#"{job="rw"}"#,
    r#"{instance=~"inst1.*", code="300"}"#,
    r#"{a_b=~".+"}"#,
    r#"{a_b="x;y"}"#,
    r#"{dup="1;2"}"#,
    r#"{dup=~".+"}"#,
    r#"rw_5{job="rw", instance="inst5"}"#,
    r#"{"http.method"="GET", host="h5"}"#,
    r#"{__name__=~"delta.*"}"#,
    r#"delta_4_total{http_method="GET"}"#,
    r#"exph_3_milliseconds_bucket{le=~"1.*"}"#,
    r#"{__name__=~"exph_.*_count", job=~"svc[0-4]"}"#,
    r#"target_info"#,
    r#"target_info{deployment_environment="env1"}"#,
    r#"{deployment_environment=~"env[12]", instance="inst3"}"#,
    r#"target_info{job="ns/svc3"}"#,
    r#"{__name__=~"target_info|mem_1_bytes", job="svc1"}"#,
    r#"{__name__="nonexistent"}"#,
    r#"{__name__=~".+", host!~"h[0-9]{1,3}"}"#,
    r#"{host="h1" or host="h2"}"#,
    r#"{host="h7" or __name__="rw_0"}"#,
];

fn matchers(selector: &str) -> promql_parser::label::Matchers {
    match parser::parse(selector).unwrap() {
        Expr::VectorSelector(vs) => {
            let mut m = vs.matchers.clone();
            if let Some(name) = vs.name {
                m.matchers.push(promql_parser::label::Matcher::new(
                    promql_parser::label::MatchOp::Equal,
                    "__name__",
                    &name,
                ));
            }
            m
        }
        other => panic!("not a selector: {other:?}"),
    }
}

/// Series with sample values as bits, so stale markers (NaN) compare equal.
fn comparable(series: Vec<Series>) -> Vec<(String, Vec<(i64, u64)>)> {
    series
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples
                    .into_iter()
                    .map(|(t, v)| (t, v.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

fn assert_same_answers(storage: &Arc<Storage>, every: usize) {
    let snapshots: Arc<dyn SnapshotSource> = storage.clone();
    let indexed = MetricsTableSource::new(snapshots.clone());
    let full = MetricsTableSource::new(snapshots).without_series_index();
    let (start, end) = ((T0 / 1_000_000) - 1, (T0 / 1_000_000) + 3 * 3_600_000);
    let mut non_empty = 0;
    for selector in SELECTORS.iter().step_by(every) {
        let m = matchers(selector);
        for (s, e) in [(start, end), (start + 1_500_000, start + 2_500_000)] {
            let a = comparable(indexed.select(&m, s, e).unwrap());
            let b = comparable(full.select(&m, s, e).unwrap());
            assert_eq!(a.len(), b.len(), "{selector} [{s}, {e}]");
            assert_eq!(a, b, "{selector} [{s}, {e}]");
            non_empty += usize::from(!a.is_empty());
        }
    }
    assert!(
        non_empty >= SELECTORS.len() / every,
        "most selectors select something ({non_empty})"
    );
    // Whole queries too.
    let engine = Engine::new(EngineConfig::default());
    let t = T0 / 1_000_000 + 6000 * 1000;
    for q in [
        r#"sum by (job) (rate(requests_2_total[1h]))"#,
        r#"histogram_quantile(0.9, sum by (le) (rate(latency_2_seconds_bucket{http_method="GET"}[1h])))"#,
        r#"count({job=~"ns/.*"})"#,
    ] {
        let a = engine.instant(q, t, &indexed).unwrap();
        let b = engine.instant(q, t, &full).unwrap();
        assert_eq!(format!("{:?}", a.value), format!("{:?}", b.value), "{q}");
        assert!(
            matches!(a.value, Value::Vector(ref v) if !v.is_empty()),
            "{q}: {:?}",
            a.value
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn indexed_selection_matches_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let storage = store(dir.path()).await;
    let s = storage.clone();
    tokio::task::spawn_blocking(move || assert_same_answers(&s, 1))
        .await
        .unwrap();
    storage.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_corrupt_sidecars_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let storage = store(dir.path()).await;
    let segments = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    for (i, segment) in segments.iter().enumerate() {
        let sidecar = sidecar_path(&segment.path);
        if i % 2 == 0 {
            std::fs::remove_file(&sidecar).unwrap();
        } else {
            std::fs::write(&sidecar, b"corrupt").unwrap();
        }
        lumen_storage::index::forget(&segment.path);
    }
    let s = storage.clone();
    tokio::task::spawn_blocking(move || assert_same_answers(&s, 3))
        .await
        .unwrap();
    // The sidecars were rebuilt on first use.
    for segment in &segments {
        let bytes = std::fs::read(sidecar_path(&segment.path)).unwrap();
        assert!(lumen_storage::index::format::decode(&bytes).is_ok());
    }
    storage.shutdown().await.unwrap();
}

/// A query tried inline within a budget never reads a series index from disk (it stops with a
/// timeout, and the API runs it again off the worker); once the indexes are in memory it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_budgeted_read_stops_before_loading_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let storage = store(dir.path()).await;
    let segments = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    for segment in &segments {
        lumen_storage::index::forget(&segment.path);
    }
    let s = storage.clone();
    tokio::task::spawn_blocking(move || {
        let source = MetricsTableSource::new(s as Arc<dyn SnapshotSource>);
        let m = matchers(r#"{__name__="mem_3_bytes"}"#);
        let (start, end) = (T0 / 1_000_000, T0 / 1_000_000 + 3 * 3_600_000);
        let later = std::time::Instant::now() + Duration::from_secs(60);
        let err = source
            .within_budget(later)
            .select(&m, start, end)
            .unwrap_err();
        assert_eq!(err.error_type(), "timeout", "{err}");
        let full = comparable(source.until(Some(later)).select(&m, start, end).unwrap());
        assert!(!full.is_empty());
        assert_eq!(
            comparable(source.within_budget(later).select(&m, start, end).unwrap()),
            full
        );
    })
    .await
    .unwrap();
    storage.shutdown().await.unwrap();
}
