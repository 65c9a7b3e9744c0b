//! SQL over HTTP and through `lumen sql`: read-only refusals, limits, formats, errors.

use std::process::Command;

use serde_json::{Value, json};

use crate::server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_is_read_only() {
    let server = TestServer::start();
    for statement in [
        "CREATE TABLE t (a INT)",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "DROP TABLE spans",
        "INSERT INTO spans (name) VALUES ('x')",
        "DELETE FROM logs",
        "UPDATE logs SET body = 'x'",
        "COPY (SELECT 1) TO '/tmp/lumen-copy-test.csv'",
        "CREATE VIEW v AS SELECT 1",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let (status, body) = server.sql_raw(statement, "json").await;
        assert_eq!(status, 400, "{statement} → {body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("read-only"),
            "{statement} → {body}"
        );
    }
    assert!(!std::path::Path::new("/tmp/lumen-copy-test.csv").exists());
    // Reading files through table-valued URLs is not possible either.
    let (status, _) = server.sql_raw("SELECT * FROM '/etc/passwd'", "json").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_400_with_the_reason() {
    let server = TestServer::start();
    for (query, needle) in [
        ("SELEC 1", "selec"),
        ("SELECT nope FROM spans", "nope"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("", "empty"),
    ] {
        let (status, body) = server.sql_raw(query, "json").await;
        assert_eq!(status, 400, "{query} → {body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(needle),
            "{query} → {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_queries_end_cleanly() {
    let server = TestServer::start_with(&["--query-memory-limit", "4MiB", "--query-timeout", "1s"]);
    let (status, body) =
        server.sql_raw("SELECT value, repeat(CAST(value AS VARCHAR), 8) AS s FROM generate_series(1, 5000000) ORDER BY s DESC", "json").await;
    assert!(
        status == 422 || status == 503,
        "memory-hungry sort: {status} {body}"
    );
    let (status, body) = server
        .sql_raw(
            "SELECT sum(value % 7) FROM generate_series(1, 100000000000)",
            "json",
        )
        .await;
    assert_eq!(status, 503, "a query scanning 10^11 rows: {body}");
    assert!(
        body.contains("timeout") || body.contains("timed out"),
        "{body}"
    );
    // Ingest is never blocked by queries, and the query runtime recovers once the cancelled query
    // reaches its next yield point.
    let resp = reqwest::get(format!("{}/health", server.http))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = server.sql_raw("SELECT 1 + 1 AS two", "json").await;
        if status == 200 {
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["rows"],
                json!([[2]])
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "queries never recovered: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_json_csv_ndjson_and_the_cli() {
    let server = TestServer::start();
    let q = "SELECT 1 AS n, 'a,b' AS s, CAST('2024-01-02T03:04:05.123456789Z' AS TIMESTAMP) AS t, CAST('NaN' AS DOUBLE) AS f";
    let v = server.sql(q).await;
    assert_eq!(v["columns"][0]["name"], json!("n"));
    assert_eq!(
        v["rows"],
        json!([[1, "a,b", "2024-01-02T03:04:05.123456789Z", "NaN"]])
    );
    let (status, csv) = server.sql_raw(q, "csv").await;
    assert_eq!(status, 200);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        vec!["n,s,t,f", "1,\"a,b\",2024-01-02T03:04:05.123456789Z,NaN"]
    );
    let (status, nd) = server.sql_raw(q, "ndjson").await;
    assert_eq!(status, 200);
    let row: Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(row["s"], json!("a,b"));

    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args([
            "sql",
            "--server",
            &server.http,
            "SELECT 42 AS answer, 'bookstore' AS shop",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("answer") && text.contains("42") && text.contains("bookstore"),
        "{text}"
    );
    assert!(text.contains("(1 row)"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args([
            "sql",
            "--server",
            &server.http,
            "--format",
            "csv",
            "SELECT 42 AS answer",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "answer\n42");

    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["sql", "--server", &server.http, "SELEC oops"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["sql", "--server", "http://127.0.0.1:1", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lumen serve"),
        "should say what to do: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let server = TestServer::start();
    assert_eq!(
        reqwest::get(format!("{}/health", server.http))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/ready", server.http))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/otlp-examples/trace.json"
    ))
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    server.sql("SELECT count(*) FROM spans").await;
    server.flush().await;
    let text = reqwest::get(format!("{}/metrics", server.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "lumen_ingest_items_total{",
        "lumen_ingest_bytes_total{",
        "lumen_wal_fsync_seconds_bucket",
        "lumen_head_bytes",
        "lumen_flushes_total",
        "lumen_flush_duration_seconds",
        "lumen_segments{table=\"spans\"} 1",
        "lumen_segment_bytes",
        "lumen_queries_total",
        "lumen_query_duration_seconds",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_restart_serves_from_segments() {
    let mut server = TestServer::start();
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/otlp-examples/logs.json"
    ))
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(server.terminate(), "clean exit on SIGTERM");
    let segments = std::fs::read_dir(server.data_dir().join("segments/logs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(segments, 1, "shutdown should flush the head to a segment");
    server.restart();
    let v = server.sql("SELECT body FROM logs").await;
    assert_eq!(v["rows"], json!([["Example log record"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_prompt_runs_multi_line_statements_and_meta_commands() {
    use std::io::Write as _;
    let server = TestServer::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["sql", "--server", &server.http])
        .env("HOME", server.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"SELECT 6 * 7\n  AS answer;\n\\dt\nSELEC broken;\n\\q\n")
        .unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("answer") && stdout.contains("42"),
        "{stdout}"
    );
    for table in ["spans", "logs", "metrics"] {
        assert!(stdout.contains(table), "\\dt should list {table}: {stdout}");
    }
    assert!(
        stderr.contains("error"),
        "the bad statement reports an error and the prompt goes on: {stderr}"
    );
}
