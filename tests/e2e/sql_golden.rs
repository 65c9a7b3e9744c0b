//! SQL behaviour as golden files: `tests/sql/*.slt`, each a list of queries with the output they
//! must give, in the manner of DataFusion's sqllogictest files. A newcomer adds a case by writing a
//! query and its expected output; no Rust.
//!
//! The real binary is loaded with the official OTLP/JSON examples (../shared/otlp-examples, fixed
//! timestamps, so the answers never change), and every file is run twice: against the head, and
//! against Parquet segments after a flush. Both must give the file's output.
//!
//! File format (blank lines separate records; `#` starts a comment line):
//!
//! ```text
//! # what the case shows
//! query
//! SELECT name, kind FROM spans ORDER BY name
//! ----
//! name,kind
//! I'm a server span,2
//!
//! query error read-only
//! DROP TABLE spans
//! ```
//!
//! `query` compares the CSV answer (header included) line by line; `query error <text>` expects a
//! 4xx answer whose message contains `<text>` (case-insensitive). Rerun with
//! `LUMEN_GOLDEN_UPDATE=1 cargo test -p lumen --test e2e sql_golden` to rewrite every expected
//! output from what the server answers (then read the diff before committing it).

use std::path::{Path, PathBuf};

use crate::examples::post_example;
use crate::server::TestServer;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sql");

/// One case of a golden file.
#[derive(Debug)]
struct Case {
    /// Line of the `query` header, for messages.
    line: usize,
    /// Comment and header lines as written (kept when the file is rewritten).
    preamble: Vec<String>,
    sql: String,
    expect: Expect,
}

#[derive(Debug)]
enum Expect {
    Rows(Vec<String>),
    Error(String),
}

fn parse(path: &Path, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let mut preamble = Vec::new();
        while i < lines.len() && (lines[i].trim().is_empty() || lines[i].starts_with('#')) {
            if lines[i].starts_with('#') {
                preamble.push(lines[i].to_string());
            }
            i += 1;
        }
        if i >= lines.len() {
            break;
        }
        let header = lines[i];
        let line = i + 1;
        let error = match header.trim() {
            "query" => None,
            h if h.starts_with("query error") => Some(h["query error".len()..].trim().to_string()),
            other => panic!(
                "{}:{line}: expected `query` or `query error <text>`, found {other:?}",
                path.display()
            ),
        };
        preamble.push(header.to_string());
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && lines[i] != "----" && !lines[i].trim().is_empty() {
            sql.push(lines[i]);
            i += 1;
        }
        let expect = match error {
            Some(text) => Expect::Error(text),
            None => {
                assert!(
                    i < lines.len() && lines[i] == "----",
                    "{}:{line}: a `query` needs `----` and its expected output",
                    path.display()
                );
                i += 1;
                let mut rows = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() {
                    rows.push(lines[i].to_string());
                    i += 1;
                }
                Expect::Rows(rows)
            }
        };
        cases.push(Case {
            line,
            preamble,
            sql: sql.join("\n"),
            expect,
        });
    }
    cases
}

fn render(cases: &[Case]) -> String {
    let mut out = String::new();
    for (n, case) in cases.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for line in &case.preamble {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&case.sql);
        out.push('\n');
        if let Expect::Rows(rows) = &case.expect {
            out.push_str("----\n");
            for row in rows {
                out.push_str(row);
                out.push('\n');
            }
        }
    }
    out
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(GOLDEN)
        .expect("tests/sql")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {GOLDEN}");
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_golden_files() {
    let update = std::env::var_os("LUMEN_GOLDEN_UPDATE").is_some();
    // What the examples themselves store; the metrics derived from their spans are
    // spanmetrics.rs's to check.
    let server = TestServer::start_with(&["--span-metrics", "false"]);
    post_example(&server, "trace.json", "/v1/traces").await;
    post_example(&server, "logs.json", "/v1/logs").await;
    post_example(&server, "events.json", "/v1/logs").await;
    post_example(&server, "metrics.json", "/v1/metrics").await;

    let mut failures = Vec::new();
    let mut checked = 0;
    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        for path in golden_files() {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut cases = parse(&path, &text);
            for case in &mut cases {
                let (status, body) = server.sql_raw(&case.sql, "csv").await;
                let at = format!("{}:{} ({phase})", path.display(), case.line);
                match &mut case.expect {
                    Expect::Error(needle) => {
                        if !(400..500).contains(&status)
                            || !body.to_lowercase().contains(&needle.to_lowercase())
                        {
                            failures.push(format!(
                                "{at}: expected a 4xx error containing {needle:?}, got {status}: {body}"
                            ));
                        }
                    }
                    Expect::Rows(rows) => {
                        let got: Vec<String> = body.lines().map(str::to_string).collect();
                        if status != 200 {
                            failures.push(format!("{at}: status {status}: {body}"));
                        } else if update && phase == "head" {
                            *rows = got;
                        } else if *rows != got {
                            failures.push(format!(
                                "{at}:\n{}\n--- expected\n{}\n--- got\n{}",
                                case.sql,
                                rows.join("\n"),
                                got.join("\n")
                            ));
                        }
                    }
                }
                checked += 1;
            }
            if update && phase == "head" {
                std::fs::write(&path, render(&cases)).unwrap();
            }
        }
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} golden SQL cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
