//! Engine tests against an in-memory [`SnapshotSource`] and Parquet segments in a temp dir.

use std::path::Path;

use arrow::array::{Array, AsArray};
use lumen_storage::TimeRange;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::*;
use crate::sql::format::batch_rows;
use crate::testing::snapshots::{
    FakeSource, SpanRow, populated_source, span_row, trace, write_spans_segment_with,
};

fn engine_with(source: &Arc<FakeSource>, config: QueryConfig) -> QueryEngine {
    QueryEngine::with_source(Arc::clone(source) as Arc<dyn SnapshotSource>, config).unwrap()
}

fn engine(source: &Arc<FakeSource>) -> QueryEngine {
    engine_with(source, QueryConfig::default())
}

fn strings(output: &QueryOutput, column: usize) -> Vec<Option<String>> {
    output
        .batches
        .iter()
        .flat_map(|batch| {
            let array = batch.column(column).as_string::<i32>().clone();
            (0..array.len()).map(move |i| array.is_valid(i).then(|| array.value(i).to_string()))
        })
        .collect()
}

fn single_i64(output: &QueryOutput) -> i64 {
    let rows: Vec<Vec<serde_json::Value>> = output.batches.iter().flat_map(batch_rows).collect();
    rows[0][0].as_i64().unwrap()
}

#[tokio::test]
async fn refuses_everything_that_is_not_a_query() {
    let source = Arc::new(FakeSource::default());
    let engine = engine(&source);
    let refused = [
        (
            "CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE EXTERNAL TABLE",
        ),
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
        ("CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("CREATE SCHEMA s", "CREATE SCHEMA"),
        ("DROP TABLE spans", "DROP TABLE"),
        ("INSERT INTO spans (name) VALUES ('x')", "INSERT"),
        ("UPDATE spans SET name = 'x'", "UPDATE"),
        ("DELETE FROM spans", "DELETE"),
        ("TRUNCATE TABLE spans", "TRUNCATE"),
        ("COPY (SELECT 1) TO '/tmp/lumen-copy.csv'", "COPY"),
        (
            "COPY spans TO '/tmp/lumen-copy.parquet' STORED AS PARQUET",
            "COPY",
        ),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        ("RESET datafusion.execution.batch_size", "RESET"),
        ("PREPARE p AS SELECT 1", "PREPARE"),
        (
            "EXPLAIN ANALYZE INSERT INTO spans (name) VALUES ('x')",
            "INSERT",
        ),
        ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
        ("START TRANSACTION", "transaction"),
        ("SELECT 1 AS a INTO t2", "DDL"),
    ];
    for (sql, kind) in refused {
        let err = engine.sql(sql).await.unwrap_err();
        assert_eq!(err.error_type(), "read_only", "{sql}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with("Lumen's SQL is read-only: "),
            "{sql}: {message}"
        );
        assert!(message.contains(kind), "{sql}: {message}");
    }
    assert!(!Path::new("/tmp/lumen-copy.csv").exists());
}

#[tokio::test]
async fn no_query_reads_server_files() {
    let source = Arc::new(FakeSource::default());
    let engine = engine(&source);
    for sql in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'file:///etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/etc/passwd')",
    ] {
        let err = engine.sql(sql).await.unwrap_err();
        assert_eq!(err.error_type(), "bad_query", "{sql}: {err}");
    }
}

#[tokio::test]
async fn bad_input_is_a_400_never_a_500() {
    let source = Arc::new(FakeSource::default());
    let engine = engine(&source);
    for sql in [
        "",
        "   \n ",
        "SELEC 1",
        "SELECT nope FROM spans",
        "SELECT * FROM nope",
        "SELECT 1; SELECT 2",
        "SELECT CAST('abc' AS INT)",
        "SELECT 1/0",
        "SELECT no_such_function(1)",
        "SELECT regexp_like('a', '(')",
        "SELECT (((((((((((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))))))))))))",
    ] {
        match engine.sql(sql).await {
            Ok(_) => {}
            Err(err) => assert_eq!(
                err.status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{sql}: {err:?}"
            ),
        }
    }
    assert_eq!(engine.sql("").await.unwrap_err().error_type(), "bad_query");
}

#[tokio::test]
async fn read_only_introspection_is_allowed() {
    let source = Arc::new(FakeSource::default());
    let engine = engine(&source);
    for sql in [
        "SHOW TABLES",
        "SHOW COLUMNS FROM spans",
        "DESCRIBE spans",
        "EXPLAIN SELECT count(*) FROM spans WHERE time > now() - INTERVAL '1 hour'",
        "SELECT table_name FROM information_schema.tables",
        "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
        "SELECT * FROM generate_series(1, 3)",
    ] {
        engine
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let described = engine.sql("DESCRIBE spans").await.unwrap();
    let rows: Vec<Vec<serde_json::Value>> = described.batches.iter().flat_map(batch_rows).collect();
    let trace_id = rows.iter().find(|r| r[0] == "trace_id").unwrap();
    assert_eq!(trace_id[1], "Utf8");
}

#[tokio::test]
async fn ids_are_hex_in_results_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let engine = engine(&source);

    let out = engine
        .sql("SELECT trace_id, span_id, parent_span_id, name FROM spans WHERE name LIKE 'head%' ORDER BY name")
        .await
        .unwrap();
    assert_eq!(
        strings(&out, 0),
        vec![Some(hex::encode(trace(9))), Some(hex::encode(trace(1)))]
    );
    assert_eq!(
        strings(&out, 1),
        vec![
            Some("0101010101010101".into()),
            Some("0202020202020202".into())
        ]
    );
    assert_eq!(
        strings(&out, 2),
        vec![None, Some("0101010101010101".into())]
    );

    // Trace 1 has spans in the head and both segments.
    let wanted = hex::encode(trace(1));
    let out = engine
        .sql(&format!(
            "SELECT name FROM spans WHERE trace_id = '{wanted}' ORDER BY time"
        ))
        .await
        .unwrap();
    let names: Vec<Option<String>> = strings(&out, 0);
    assert_eq!(
        names,
        vec![
            Some("s1".into()),
            Some("s1".into()),
            Some("s1-late".into()),
            Some("head-b".into())
        ]
    );

    let out = engine
        .sql(&format!(
            "SELECT count(*) FROM spans WHERE trace_id IN ('{}', '{}')",
            hex::encode(trace(2)),
            hex::encode(trace(6))
        ))
        .await
        .unwrap();
    assert_eq!(single_i64(&out), 2);

    // Upper case does not match (ids are lowercase hex), and does not error.
    let out = engine
        .sql(&format!(
            "SELECT count(*) FROM spans WHERE trace_id = '{}'",
            wanted.to_uppercase()
        ))
        .await
        .unwrap();
    assert_eq!(single_i64(&out), 0);
}

#[tokio::test]
async fn scans_read_head_and_segments_with_projection_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let engine = engine(&source);

    assert_eq!(
        single_i64(&engine.sql("SELECT count(*) FROM spans").await.unwrap()),
        10
    );
    assert_eq!(
        engine.sql("SELECT * FROM spans").await.unwrap().num_rows(),
        10
    );
    assert_eq!(
        engine
            .sql("SELECT name FROM spans LIMIT 3")
            .await
            .unwrap()
            .num_rows(),
        3
    );
    let out = engine
        .sql("SELECT service_name, time, name FROM spans ORDER BY time LIMIT 1")
        .await
        .unwrap();
    let rows = batch_rows(&out.batches[0]);
    assert_eq!(rows[0][0], "checkout");
    assert_eq!(rows[0][1], "1970-01-01T00:00:00.000001000Z");
    assert_eq!(rows[0][2], "s1");
    let out = engine
        .sql("SELECT attributes['http.method'] FROM spans LIMIT 1")
        .await
        .unwrap();
    assert_eq!(batch_rows(&out.batches[0])[0][0], "GET");
    // Empty tables scan fine.
    assert_eq!(
        single_i64(&engine.sql("SELECT count(*) FROM logs").await.unwrap()),
        0
    );
}

#[tokio::test]
async fn time_filters_choose_the_snapshot_range() {
    let source = Arc::new(FakeSource::default());
    let engine = engine(&source);
    let day = 1_704_067_200_000_000_000i64; // 2024-01-01T00:00:00Z
    let cases = [
        (
            "SELECT name FROM spans WHERE time >= '2024-01-01T00:00:00Z' AND time < TIMESTAMP '2024-01-02 00:00:00'",
            TimeRange {
                start: Some(day),
                end: Some(day + 86_400_000_000_000 - 1),
            },
        ),
        (
            "SELECT name FROM spans WHERE time BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-01T00:00:01Z'",
            TimeRange {
                start: Some(day),
                end: Some(day + 1_000_000_000),
            },
        ),
        (
            "SELECT name FROM spans WHERE time > '2024-01-01T00:00:00Z'",
            TimeRange {
                start: Some(day + 1),
                end: None,
            },
        ),
        (
            "SELECT name FROM spans WHERE time <= DATE '2024-01-01'",
            TimeRange {
                start: None,
                end: Some(day),
            },
        ),
        (
            "SELECT name FROM spans WHERE name = 'x'",
            TimeRange::default(),
        ),
    ];
    for (sql, expected) in cases {
        source.ranges.lock().unwrap().clear();
        engine.sql(sql).await.unwrap();
        let ranges = source.ranges.lock().unwrap().clone();
        assert_eq!(ranges, vec![(Table::Spans, expected)], "{sql}");
    }

    source.ranges.lock().unwrap().clear();
    engine
        .sql("SELECT count(*) FROM logs WHERE time > now() - INTERVAL '1 hour'")
        .await
        .unwrap();
    let ranges = source.ranges.lock().unwrap().clone();
    assert!(
        matches!(
            ranges.as_slice(),
            [(
                Table::Logs,
                TimeRange {
                    start: Some(_),
                    end: None
                }
            )]
        ),
        "{ranges:?}"
    );

    // A contradiction needs no snapshot at all.
    source.ranges.lock().unwrap().clear();
    engine.sql("SELECT count(*) FROM spans WHERE time > '2024-01-02T00:00:00Z' AND time < '2024-01-01T00:00:00Z'").await.unwrap();
    assert!(source.ranges.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_vanished_segment_is_a_retryable_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let engine = engine(&source);
    let gone = source.segments.lock().unwrap()[1].path.clone();
    std::fs::remove_file(&gone).unwrap();
    let err = engine.sql("SELECT * FROM spans").await.unwrap_err();
    assert_eq!(err.error_type(), "unavailable", "{err}");
    assert!(
        err.to_string().contains(&gone.display().to_string()),
        "{err}"
    );

    std::fs::write(&gone, b"not parquet").unwrap();
    let err = engine.sql("SELECT * FROM spans").await.unwrap_err();
    assert_eq!(err.error_type(), "internal", "{err}");
    assert!(err.to_string().contains("cannot read segment"), "{err}");
}

#[tokio::test]
async fn memory_limit_is_enforced() {
    let source = Arc::new(FakeSource::default());
    let engine = engine_with(
        &source,
        QueryConfig {
            memory_limit: 256 * 1024,
            ..QueryConfig::default()
        },
    );
    let err = engine
        .sql("SELECT v FROM generate_series(1, 2000000) AS t(v) ORDER BY v DESC")
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "resources_exhausted", "{err}");
    // Small queries still run under the same limit.
    engine
        .sql("SELECT v FROM generate_series(1, 10) AS t(v) ORDER BY v DESC")
        .await
        .unwrap();
}

#[tokio::test]
async fn big_results_count_against_the_memory_limit() {
    let source = Arc::new(FakeSource::default());
    let engine = engine_with(
        &source,
        QueryConfig {
            memory_limit: 1024 * 1024,
            ..QueryConfig::default()
        },
    );
    let err = engine
        .sql("SELECT v FROM generate_series(1, 1000000) AS t(v)")
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "resources_exhausted", "{err}");
    assert!(err.to_string().contains("format=ndjson"), "{err}");
}

#[tokio::test]
async fn timeout_cancels_the_query() {
    let source = Arc::new(FakeSource::default());
    let engine = engine_with(
        &source,
        QueryConfig {
            timeout: Duration::from_millis(200),
            ..QueryConfig::default()
        },
    );
    let started = Instant::now();
    let err = engine
        .sql("SELECT sum(v) FROM generate_series(1, 100000000000) AS t(v)")
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut stream = engine
        .sql_stream("SELECT v FROM generate_series(1, 100000000000) AS t(v)")
        .await
        .unwrap();
    let mut last = None;
    while let Some(item) = stream.next().await {
        if let Err(err) = item {
            last = Some(err);
            break;
        }
    }
    assert_eq!(last.map(|e| e.error_type()), Some("timeout"));
}

#[tokio::test]
async fn streaming_returns_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let engine = engine(&source);
    let mut stream = engine.sql_stream("SELECT name FROM spans").await.unwrap();
    assert_eq!(stream.schema().field(0).name(), "name");
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.unwrap().num_rows();
    }
    assert_eq!(rows, 10);
    let err = engine
        .sql_stream("INSERT INTO spans (name) VALUES ('x')")
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "read_only");
}

#[tokio::test]
async fn trace_lookups_prune_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let engine = engine(&source);
    let sql = format!(
        "EXPLAIN ANALYZE SELECT name FROM spans WHERE trace_id = '{}'",
        hex::encode(trace(5))
    );
    let out = engine.sql(&sql).await.unwrap();
    let text: String = out
        .batches
        .iter()
        .flat_map(batch_rows)
        .map(|row| format!("{row:?}\n"))
        .collect();
    // Segment 1 (traces 1-3) is skipped by its trace_id statistics; segment 2 is read.
    assert!(text.contains("trace_ids=1"), "{text}");
    assert!(text.contains("row_groups_pruned_statistics=1"), "{text}");
    assert!(text.contains("row_groups_read=1,"), "{text}");
    let out = engine
        .sql(&format!(
            "SELECT name FROM spans WHERE trace_id = '{}'",
            hex::encode(trace(5))
        ))
        .await
        .unwrap();
    assert_eq!(strings(&out, 0), vec![Some("s5".to_string())]);
}

#[tokio::test]
async fn page_index_narrows_a_trace_lookup_to_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FakeSource::default());
    let rows: Vec<SpanRow> = (0..200u16)
        .map(|i| {
            let name = if i / 10 == 7 { "wanted" } else { "other" };
            span_row(i64::from(i), (i / 10) as u8, (i % 250) as u8, name)
        })
        .collect();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .set_data_page_row_count_limit(10)
        .set_write_batch_size(10)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
        .build();
    let segment = write_spans_segment_with(dir.path(), 1, rows, props);
    source.segments.lock().unwrap().push(segment);
    let engine = engine(&source);

    let wanted = hex::encode(trace(7));
    let out = engine
        .sql(&format!("SELECT * FROM spans WHERE trace_id = '{wanted}'"))
        .await
        .unwrap();
    assert_eq!(out.num_rows(), 10);
    let rows: Vec<Vec<serde_json::Value>> = out.batches.iter().flat_map(batch_rows).collect();
    let name = out.schema.index_of("name").unwrap();
    let attributes = out.schema.index_of("attributes").unwrap();
    assert!(rows.iter().all(|r| r[name] == "wanted"));
    assert!(
        rows.iter()
            .all(|r| r[attributes] == serde_json::json!({"http.method": "GET"}))
    );

    let sql = format!("EXPLAIN ANALYZE SELECT * FROM spans WHERE trace_id = '{wanted}'");
    let explained = engine.sql(&sql).await.unwrap();
    let text: String = explained
        .batches
        .iter()
        .flat_map(batch_rows)
        .map(|r| format!("{r:?}"))
        .collect();
    assert!(text.contains("row_groups_pruned_statistics=1"), "{text}");
    assert!(text.contains("rows_skipped_page_index=90"), "{text}");

    // Time pruning on the same file (spans sorted by trace id, then time).
    let sql = "SELECT count(*) FROM spans \
               WHERE time BETWEEN to_timestamp_nanos(150) AND to_timestamp_nanos(154)";
    assert_eq!(single_i64(&engine.sql(sql).await.unwrap()), 5);
}
