//! Differential test of Lumen's PromQL engine against a real Prometheus (the Debian `prometheus`
//! binary, 2.42): the same seeded samples are remote-written to both, a few hundred generated
//! queries run against both (instant at several times, ranges with several steps), and the answers
//! are compared series by series and point by point.
//!
//! Lumen follows Prometheus 3, the reference is 2.42: query shapes where the two versions differ
//! by design are not generated (see [`queries::EXCLUDED`] and docs/promql.md, "Differential
//! test"). The one difference every query could hit, closed (2.x) versus left-open (3.x) range
//! and lookback windows, is kept out of reach by the data: no sample sits on a whole or half
//! second, every query time is on a half second and every subquery step on a whole one, so no
//! sample is ever exactly on a window edge.
//!
//! Layout: `data` generates the samples, `queries` the queries (and lists the exclusions),
//! `answers` normalises and compares the two answers; this file runs the servers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::remote_write::{TimeSeries, WriteRequest, series, snappy};
use crate::server::TestServer;

mod answers;
mod data;
mod queries;

use answers::{Agreement, Answer, compare, parse_answer};
use data::{METRICS, generate};
use queries::{EXCLUDED, Query, queries};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
/// Fewest query evaluations the test must compare.
const MIN_COMPARED: usize = 200;
/// Evaluations in flight at once (each one asks Lumen and Prometheus concurrently).
const PARALLEL: usize = 4;

// ---------------------------------------------------------------------------------------------
// The two servers.

/// The Prometheus binary, with the remote-write receiver on and no scrape jobs; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start() -> Prometheus {
        let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let binary = binary.expect(
            "the prometheus binary is needed: apt-get install prometheus (.ci/run installs it)",
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // No scrape jobs: Prometheus's own series would otherwise land in its TSDB.
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = client.get(format!("{}/-/ready", self.url)).send().await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 30 s; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn remote_write(client: &reqwest::Client, base: &str, timeseries: Vec<TimeSeries>) {
    let resp = client
        .post(format!("{base}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(snappy(&WriteRequest { timeseries }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        status,
        204,
        "remote write to {base}: {}",
        resp.text().await.unwrap_or_default()
    );
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                write!(out, "%{b:02X}").unwrap();
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One evaluation of a query: instant at a time, or a range.
#[derive(Clone, Copy, Debug)]
enum Eval {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Unix ms as the API's float seconds, exactly.
fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

async fn ask(client: &reqwest::Client, base: &str, query: &str, eval: Eval) -> String {
    let (path, body) = match eval {
        Eval::Instant(t) => (
            "query",
            form_encode(&[("query", query), ("time", &secs(t))]),
        ),
        Eval::Range { start, end, step } => (
            "query_range",
            form_encode(&[
                ("query", query),
                ("start", &secs(start)),
                ("end", &secs(end)),
                ("step", &(step / 1000).to_string()),
            ]),
        ),
    };
    match client
        .post(format!("{base}/api/v1/{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
    {
        Ok(resp) => resp
            .text()
            .await
            .unwrap_or_else(|e| format!("reading the body: {e}")),
        Err(e) => format!("request failed: {e}"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

/// Where an evaluation happened, in absolute and data-relative time.
fn describe(eval: Eval, start: i64) -> String {
    let rel = |ms: i64| {
        let d = (ms - start).abs();
        let sign = if ms < start { "-" } else { "+" };
        format!(
            "start{sign}{}m{}.{:03}s",
            d / MINUTE,
            d % MINUTE / 1000,
            d % 1000
        )
    };
    match eval {
        Eval::Instant(t) => format!("instant at {} ({})", secs(t), rel(t)),
        Eval::Range {
            start: s,
            end,
            step,
        } => format!(
            "range {}..{} step {}s ({}..{})",
            secs(s),
            secs(end),
            step / 1000,
            rel(s),
            rel(end)
        ),
    }
}

/// Writes the data set to both servers and checks that each holds every sample; returns the
/// number of series and samples.
async fn load(
    client: &reqwest::Client,
    lumen: &str,
    prometheus: &str,
    start: i64,
    end: i64,
) -> (usize, usize) {
    let generated = generate(start, end);
    let stale = |v: f64| v.to_bits() == 0x7ff0_0000_0000_0002;
    let expected: usize = generated
        .iter()
        .map(|s| s.samples.iter().filter(|(v, _)| !stale(*v)).count())
        .sum();
    // The samples of [from, to) of every series.
    let part = |from: i64, to: i64| -> Vec<TimeSeries> {
        generated
            .iter()
            .map(|g| {
                let l: Vec<(&str, &str)> = g
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let samples: Vec<(f64, i64)> = g
                    .samples
                    .iter()
                    .copied()
                    .filter(|(_, t)| (from..to).contains(t))
                    .collect();
                series(&l, &samples)
            })
            .collect()
    };
    remote_write(client, prometheus, part(i64::MIN, i64::MAX)).await;
    // Lumen gets the data in three flushes (three segments per hour the data touches), which are
    // then merged: the answers come from a compacted segment, the state most data is kept in.
    let third = (end - start) / 3;
    for (from, to) in [
        (i64::MIN, start + third),
        (start + third, start + 2 * third),
        (start + 2 * third, i64::MAX),
    ] {
        remote_write(client, lumen, part(from, to)).await;
        let flushed = client
            .post(format!("{lumen}/api/v1/admin/flush"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            flushed.status().as_u16(),
            200,
            "flush: {}",
            flushed.text().await.unwrap_or_default()
        );
    }
    let compacted = client
        .post(format!("{lumen}/api/v1/admin/compact"))
        .send()
        .await
        .unwrap();
    assert_eq!(compacted.status().as_u16(), 200);
    let compacted: serde_json::Value = compacted.json().await.unwrap();
    // The background compactor may have merged some already; together every segment is merged.
    let segments = lumen_segments(client, lumen).await;
    assert!(
        segments <= 2.0,
        "after compaction at most one metrics segment per hour, found {segments} ({compacted})"
    );
    println!(
        "promql_diff: Lumen's data flushed three times, then compacted: {compacted}; metrics segments now {segments}"
    );
    // Counted per metric name: without their names, `_sum` and `_count` series would collide.
    for (who, base) in [("Lumen", lumen), ("Prometheus", prometheus)] {
        let mut count = 0usize;
        for name in METRICS {
            let total = format!("sum(count_over_time({name}[1h]))");
            count += match parse_answer(&ask(client, base, &total, Eval::Instant(end + 500)).await)
            {
                Answer::Vector(v) if v.len() == 1 => v[0].2 as usize,
                other => panic!("{who}: sample count of {name}: {other:?}"),
            };
        }
        assert_eq!(
            count, expected,
            "{who} holds {count} samples, {expected} were written"
        );
    }
    (generated.len(), expected)
}

/// `lumen_segments{table="metrics"}` from Lumen's /metrics.
async fn lumen_segments(client: &reqwest::Client, lumen: &str) -> f64 {
    let text = client
        .get(format!("{lumen}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("lumen_segments{table=\"metrics\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lumen_segments{{table=\"metrics\"}} in /metrics"))
}

/// Asks both servers every (query, evaluation) pair, [`PARALLEL`] pairs at a time; the answers
/// come back in `jobs` order as (Lumen's body, Prometheus's body).
async fn ask_both(
    client: &reqwest::Client,
    lumen: &str,
    prometheus: &str,
    queries: &[Query],
    jobs: &[(usize, Eval)],
) -> Vec<(String, String)> {
    let mut set = tokio::task::JoinSet::new();
    let mut answers = Vec::with_capacity(jobs.len());
    for (n, (i, e)) in jobs.iter().copied().enumerate() {
        if set.len() >= PARALLEL {
            answers.push(set.join_next().await.unwrap().unwrap());
        }
        let (client, l_url, p_url) = (client.clone(), lumen.to_string(), prometheus.to_string());
        let (lq, pq) = (queries[i].lumen.clone(), queries[i].prometheus.clone());
        set.spawn(async move {
            let (l, p) = tokio::join!(ask(&client, &l_url, &lq, e), ask(&client, &p_url, &pq, e));
            (n, l, p)
        });
    }
    while let Some(done) = set.join_next().await {
        answers.push(done.unwrap());
    }
    answers.sort_by_key(|(n, _, _)| *n);
    answers.into_iter().map(|(_, l, p)| (l, p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_agrees_with_prometheus() {
    let began = Instant::now();
    let client = reqwest::Client::new();
    let prometheus = Prometheus::start();
    let lumen = TestServer::start();
    prometheus.wait_ready(&client).await;

    // 50 minutes of data (Prometheus's head takes samples within an hour of its newest one),
    // ending on a multiple of PHASE before now: every run then puts the data in the same place
    // relative to the subquery step grids (multiples of 7, 10, 17, 20, 30, 45 s, 1, 1.5, 2 m of
    // absolute time), so an answer depends on the data and the engine, never on when the test
    // runs. Whole seconds, so the query times below land on half seconds.
    const PHASE: i64 = 42_840 * SECOND; // lcm of the subquery steps
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // LUMEN_PROMQL_DIFF_SHIFT=<seconds> moves the data off that phase (to explore alignments).
    let shift = std::env::var("LUMEN_PROMQL_DIFF_SHIFT")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let end = (now - MINUTE).div_euclid(PHASE) * PHASE - shift * SECOND;
    let start = end - 50 * MINUTE;
    let (series_written, samples_written) =
        load(&client, &lumen.http, &prometheus.url, start, end).await;

    // Instant: early (windows reaching before the data), in the gaps and after the early ends,
    // inside the NaN readings, after the data (lookback). Ranges: one step per minute over all
    // of it, an irregular step, and a coarse step starting before the data.
    let half = 500;
    let evals = [
        Eval::Instant(start + 4 * MINUTE + half),
        Eval::Instant(start + 23 * MINUTE + half),
        Eval::Instant(start + 40 * MINUTE + 30 * SECOND + half),
        Eval::Instant(end + 2 * MINUTE + half),
        Eval::Range {
            start: start + half,
            end: end + 3 * MINUTE + half,
            step: MINUTE,
        },
        Eval::Range {
            start: start + 10 * MINUTE + half,
            end: start + 40 * MINUTE + half,
            step: 43 * SECOND,
        },
        Eval::Range {
            start: start - 5 * MINUTE + half,
            end: end + 6 * MINUTE + half,
            step: 250 * SECOND,
        },
    ];
    let queries = queries(&secs(start + 30 * MINUTE + half));
    let jobs: Vec<(usize, Eval)> = queries
        .iter()
        .enumerate()
        .flat_map(|(i, q)| {
            evals
                .iter()
                .filter(move |e| !(q.instant_only && matches!(e, Eval::Range { .. })))
                .map(move |e| (i, *e))
        })
        .collect();
    let setup = began.elapsed();
    let mut answers = ask_both(&client, &lumen.http, &prometheus.url, &queries, &jobs).await;
    // A disagreement is asked again once, alone: a deterministic difference (an engine bug)
    // repeats, a transient one (a request starved on a loaded machine) does not.
    let mut retried = 0usize;
    for (n, (i, e)) in jobs.iter().enumerate() {
        let q = &queries[*i];
        let (l, p) = &answers[n];
        if compare(&parse_answer(l), &parse_answer(p), q.ordered).is_err() {
            retried += 1;
            let (l, p) = tokio::join!(
                ask(&client, &lumen.http, &q.lumen, *e),
                ask(&client, &prometheus.url, &q.prometheus, *e)
            );
            answers[n] = (l, p);
        }
    }
    if retried > 0 {
        println!(
            "promql_diff: {retried} evaluations disagreed on the first try and were asked again"
        );
    }

    let (mut compared, mut points, mut empty) = (0usize, 0usize, 0usize);
    let mut rejected: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut report = String::new();
    let mut failures = 0usize;
    for ((i, e), (l, p)) in jobs.iter().zip(&answers) {
        let q = &queries[*i];
        match compare(&parse_answer(l), &parse_answer(p), q.ordered) {
            Ok(Agreement::Points(n)) => {
                compared += 1;
                empty += usize::from(n == 0);
                points += n;
            }
            Ok(Agreement::BothRejected) => {
                let entry = rejected
                    .entry(&q.lumen)
                    .or_insert_with(|| (0, truncate(l, 300)));
                entry.0 += 1;
            }
            Err(why) => {
                failures += 1;
                if failures <= 40 {
                    let prom_q = if q.prometheus != q.lumen {
                        format!(" (Prometheus: {})", q.prometheus)
                    } else {
                        String::new()
                    };
                    writeln!(
                        report,
                        "\nquery: {}{prom_q}\n  {}\n  difference: {why}\n  Lumen:      {}\n  Prometheus: {}",
                        q.lumen,
                        describe(*e, start),
                        truncate(l, 1500),
                        truncate(p, 1500)
                    )
                    .unwrap();
                }
            }
        }
    }
    let both_rejected: usize = rejected.values().map(|(n, _)| n).sum();
    println!(
        "promql_diff: {series_written} series, {samples_written} samples; {} queries, {compared} \
         evaluations compared ({points} points, {empty} empty on both sides), {both_rejected} \
         rejected by both, {failures} disagreements, {} shapes excluded, {:.1} s ({:.1} s setup)",
        queries.len(),
        EXCLUDED.len(),
        began.elapsed().as_secs_f64(),
        setup.as_secs_f64()
    );
    for (query, (n, body)) in &rejected {
        println!("  rejected by both ({n}x): {query} — Lumen: {body}");
    }
    for (shape, why) in EXCLUDED {
        println!("  excluded: {shape} — {why}");
    }
    assert!(
        failures == 0,
        "{failures} of {} evaluations disagree with Prometheus 2.42:{report}",
        answers.len()
    );
    assert!(
        compared >= MIN_COMPARED,
        "only {compared} evaluations compared (need {MIN_COMPARED})"
    );
    assert!(
        queries.len() >= MIN_COMPARED,
        "only {} distinct queries (need {MIN_COMPARED})",
        queries.len()
    );
}
