//! `lumen-rwbench write`: encodes the fleet's samples into remote write requests before the timed
//! phase, then sends them over `--connections` HTTP/1.1 connections, one request in flight each.
//!
//! Targets are split between connections (target `t` goes to connection `t % connections`) and each
//! connection sends its requests in time order, so every series' samples arrive in order, as
//! Prometheus's own remote write shards guarantee; receivers that refuse out-of-order samples
//! (Prometheus's TSDB) accept all of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use lumen_benches::procfs;
use lumen_benches::prom::Scrape;
use prost::Message as _;
use serde::Serialize;

use crate::fleet::{Fleet, FleetSpec};
use crate::prompb::{Sample, TimeSeries, WriteRequest};

/// One pre-encoded request.
#[derive(Debug)]
pub struct Request {
    /// Snappy-compressed protobuf `WriteRequest`.
    pub body: Bytes,
    /// Samples in it.
    pub samples: u32,
}

/// The requests of one connection, in the order it sends them.
#[derive(Debug, Default)]
pub struct Shard {
    /// Requests.
    pub requests: Vec<Request>,
}

/// Every request of a run.
#[derive(Debug)]
pub struct Pool {
    /// One shard per connection.
    pub shards: Vec<Shard>,
    /// Samples over all shards.
    pub samples: u64,
    /// Requests over all shards.
    pub requests: u64,
    /// Snappy-compressed bytes (what goes on the wire).
    pub wire_bytes: u64,
    /// Protobuf bytes before compression.
    pub protobuf_bytes: u64,
    /// Seconds spent generating and encoding.
    pub encode_secs: f64,
}

/// How the samples are cut into requests.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Connections (shards).
    pub connections: usize,
    /// Samples per request, at most.
    pub samples_per_request: usize,
    /// Consecutive samples of a series in one request (1: each request holds one scrape of each of
    /// its series, as Prometheus sends).
    pub samples_per_series: usize,
}

struct ShardBuilder {
    shard: Shard,
    pending: Vec<TimeSeries>,
    pending_samples: usize,
}

/// Generates every sample of `spec` and encodes the requests.
pub fn build_pool(spec: &FleetSpec, batching: Batching, progress: &mut dyn FnMut(String)) -> Pool {
    let started = Instant::now();
    let fleet = Fleet::new(spec.clone());
    let metadata = crate::fleet::metadata();
    let connections = batching.connections.max(1);
    let per_series = batching.samples_per_series.max(1);
    let limit = batching.samples_per_request.max(1);
    let mut builders: Vec<ShardBuilder> = (0..connections)
        .map(|_| ShardBuilder {
            shard: Shard::default(),
            pending: Vec::new(),
            pending_samples: 0,
        })
        .collect();
    let (mut wire, mut raw, mut samples, mut requests) = (0u64, 0u64, 0u64, 0u64);
    let encode = |b: &mut ShardBuilder,
                  wire: &mut u64,
                  raw: &mut u64,
                  samples: &mut u64,
                  requests: &mut u64| {
        if b.pending.is_empty() {
            return;
        }
        let request = WriteRequest {
            timeseries: std::mem::take(&mut b.pending),
            metadata: metadata.clone(),
        };
        let protobuf = request.encode_to_vec();
        let body = snap::raw::Encoder::new()
            .compress_vec(&protobuf)
            .unwrap_or_default();
        *raw += protobuf.len() as u64;
        *wire += body.len() as u64;
        *samples += b.pending_samples as u64;
        *requests += 1;
        b.shard.requests.push(Request {
            body: Bytes::from(body),
            samples: b.pending_samples as u32,
        });
        b.pending_samples = 0;
    };
    let mut targets: Vec<_> = (0..spec.targets).map(|t| fleet.target(t)).collect();
    let interval_s = spec.interval_ms as f64 / 1000.0;
    let mut last_report = Instant::now();
    let mut scrape = 0;
    while scrape < spec.scrapes {
        let block = per_series.min(spec.scrapes - scrape);
        for target in &mut targets {
            // `block` scrapes of this target, each series' samples together.
            let mut series: Vec<Vec<Sample>> =
                vec![Vec::with_capacity(block); target.labels().len()];
            for s in scrape..scrape + block {
                target.advance(interval_s);
                let ts = target.timestamp(spec, s);
                for (i, v) in target.values().iter().enumerate() {
                    series[i].push(Sample {
                        value: *v,
                        timestamp: ts,
                    });
                }
            }
            let b = &mut builders[target.index() % connections];
            for (labels, samples_of) in target.labels().iter().zip(series) {
                b.pending_samples += samples_of.len();
                b.pending.push(TimeSeries {
                    labels: labels.clone(),
                    samples: samples_of,
                });
                if b.pending_samples >= limit {
                    encode(b, &mut wire, &mut raw, &mut samples, &mut requests);
                }
            }
        }
        scrape += block;
        if last_report.elapsed() >= Duration::from_secs(2) {
            progress(format!(
                "encoded {scrape}/{} scrapes, {requests} requests, {:.0} MB",
                spec.scrapes,
                wire as f64 / 1e6
            ));
            last_report = Instant::now();
        }
    }
    for b in &mut builders {
        encode(b, &mut wire, &mut raw, &mut samples, &mut requests);
    }
    Pool {
        shards: builders.into_iter().map(|b| b.shard).collect(),
        samples,
        requests,
        wire_bytes: wire,
        protobuf_bytes: raw,
        encode_secs: started.elapsed().as_secs_f64(),
    }
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct SendConfig {
    /// The remote write URL.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Pause before retrying a 429 / 5xx without `Retry-After`.
    pub backoff: Duration,
    /// The receiver's process id (resident memory and CPU).
    pub pid: Option<u32>,
    /// Lumen's HTTP base URL, scraped before and after for flush and WAL figures; empty to skip.
    pub lumen_http: String,
}

/// Acknowledgement latency.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    /// Median (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Slowest (ms).
    pub max_ms: f64,
}

/// The receiver's resources over the run.
#[derive(Debug, Default, Serialize)]
pub struct Receiver {
    /// CPU seconds over wall seconds of the timed phase.
    pub cpu_cores: Option<f64>,
    /// Peak of VmRSS sampled every 250 ms (MiB).
    pub rss_peak_sampled_mib: Option<f64>,
    /// VmRSS at the end (MiB).
    pub rss_end_mib: Option<f64>,
    /// VmHWM at the end: peak resident memory since the receiver started (MiB).
    pub rss_hwm_mib: Option<f64>,
}

/// Lumen's own figures over the run (differences of its `/metrics`).
#[derive(Debug, Default, Serialize)]
pub struct LumenFigures {
    /// WAL group commits.
    pub wal_fsyncs: f64,
    /// Seconds in fsync.
    pub wal_fsync_seconds: f64,
    /// Bytes written to the WAL.
    pub wal_bytes: f64,
    /// Head flushes and their seconds.
    pub flushes: f64,
    /// Seconds spent flushing.
    pub flush_seconds: f64,
    /// Writes refused with a full head.
    pub writes_rejected_head_full: f64,
    /// `lumen_head_bytes` at the end (MiB) and rows.
    pub head_mib_end: f64,
    /// `lumen_head_rows` at the end.
    pub head_rows_end: f64,
}

/// The result of one `write` run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Samples acknowledged (2xx).
    pub accepted_samples: u64,
    /// Samples in requests answered 4xx (not retried).
    pub rejected_samples: u64,
    /// Requests acknowledged.
    pub requests: u64,
    /// 429 / 5xx answers retried.
    pub retries: u64,
    /// Requests that failed for good (4xx, connection errors, timeouts).
    pub failures: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// From the first send to the last acknowledgement.
    pub elapsed_secs: f64,
    /// `accepted_samples / elapsed_secs`.
    pub samples_per_sec: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Compressed MB per second on the wire.
    pub wire_mb_per_sec: f64,
    /// Acknowledgement latency per successful attempt.
    pub latency: Latency,
    /// The receiver's CPU and memory.
    pub receiver: Receiver,
    /// The load generator's own CPU (cores).
    pub loadgen_cpu_cores: Option<f64>,
    /// Lumen's figures, when `lumen_http` was given.
    pub lumen: Option<LumenFigures>,
}

struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    requests: AtomicU64,
    wire_bytes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    done: AtomicU64,
    total: Mutex<Histogram<u64>>,
    interval: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| anyhow::anyhow!("histogram: {e}"))
}

fn fail(counters: &Counters, message: String) {
    counters.failures.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut first) = counters.first_error.lock()
        && first.is_none()
    {
        *first = Some(message);
    }
}

/// Sends one shard's requests in order; returns when its last one was answered.
async fn send_shard(
    client: reqwest::Client,
    config: Arc<SendConfig>,
    pool: Arc<Pool>,
    shard: usize,
    counters: Arc<Counters>,
) -> Instant {
    for request in &pool.shards[shard].requests {
        loop {
            let sent = Instant::now();
            let response = client
                .post(config.url.as_str())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .header(http::header::CONTENT_ENCODING, "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .header(http::header::USER_AGENT, "lumen-rwbench")
                .body(request.body.clone())
                .send()
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    fail(&counters, format!("request failed: {e}"));
                    counters
                        .rejected
                        .fetch_add(u64::from(request.samples), Ordering::Relaxed);
                    break;
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                let micros = sent.elapsed().as_micros().clamp(1, 600_000_000) as u64;
                counters
                    .accepted
                    .fetch_add(u64::from(request.samples), Ordering::Relaxed);
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters
                    .wire_bytes
                    .fetch_add(request.body.len() as u64, Ordering::Relaxed);
                for h in [&counters.total, &counters.interval] {
                    if let Ok(mut h) = h.lock() {
                        let _ = h.record(micros);
                    }
                }
                break;
            }
            if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(retry_after.unwrap_or(config.backoff)).await;
                continue;
            }
            counters
                .rejected
                .fetch_add(u64::from(request.samples), Ordering::Relaxed);
            fail(
                &counters,
                format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
                ),
            );
            break;
        }
    }
    counters.done.fetch_add(1, Ordering::Relaxed);
    Instant::now()
}

async fn scrape_lumen(client: &reqwest::Client, base: &str) -> Option<Scrape> {
    if base.is_empty() {
        return None;
    }
    let text = client
        .get(format!("{}/metrics", base.trim_end_matches('/')))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(Scrape::parse(&text))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Sends the pool; a progress line per second goes to stderr.
pub async fn send(pool: Arc<Pool>, config: SendConfig) -> anyhow::Result<Report> {
    let config = Arc::new(config);
    let counters = Arc::new(Counters {
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        wire_bytes: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        done: AtomicU64::new(0),
        total: Mutex::new(histogram()?),
        interval: Mutex::new(histogram()?),
        first_error: Mutex::new(None),
    });
    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let lumen_before = scrape_lumen(&scraper, &config.lumen_http).await;
    let receiver_cpu_before = config.pid.and_then(|p| procfs::cpu_seconds(Some(p)));
    let self_cpu_before = procfs::cpu_seconds(None);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in 0..pool.shards.len() {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        tasks.push(tokio::spawn(send_shard(
            client,
            config.clone(),
            pool.clone(),
            shard,
            counters.clone(),
        )));
    }
    let shards = pool.shards.len() as u64;
    let mut rss_peak_kib: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_print = Instant::now();
    let mut last_accepted = 0u64;
    while counters.done.load(Ordering::Relaxed) < shards {
        tick.tick().await;
        if let Some(m) = config.pid.and_then(|p| procfs::memory(Some(p))) {
            rss_peak_kib = Some(rss_peak_kib.unwrap_or(0).max(m.vm_rss_kib));
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            let accepted = counters.accepted.load(Ordering::Relaxed);
            let secs = last_print.elapsed().as_secs_f64();
            let p99 = counters.interval.lock().ok().map_or(0.0, |mut h| {
                let p = h.value_at_quantile(0.99) as f64 / 1000.0;
                h.reset();
                p
            });
            eprintln!(
                "lumen-rwbench: {:5.1} s  {:>9.0} samples/s  {:>10}/{} accepted  ack p99 {:.1} ms  retries {}  failed {}{}",
                started.elapsed().as_secs_f64(),
                (accepted - last_accepted) as f64 / secs,
                accepted,
                pool.samples,
                p99,
                counters.retries.load(Ordering::Relaxed),
                counters.failures.load(Ordering::Relaxed),
                config
                    .pid
                    .and_then(|p| procfs::memory(Some(p)))
                    .map(|m| format!("  receiver rss {:.0} MiB", mib(m.vm_rss_kib)))
                    .unwrap_or_default(),
            );
            last_accepted = accepted;
            last_print = Instant::now();
        }
    }
    let mut finished = started;
    for task in tasks {
        finished = finished.max(task.await?);
    }
    // The last acknowledgement, not the end of the 250 ms polling above.
    let elapsed = finished.duration_since(started).as_secs_f64();
    let receiver_cpu_after = config.pid.and_then(|p| procfs::cpu_seconds(Some(p)));
    let self_cpu_after = procfs::cpu_seconds(None);
    let mem = config.pid.and_then(|p| procfs::memory(Some(p)));
    if let Some(m) = mem {
        rss_peak_kib = Some(rss_peak_kib.unwrap_or(0).max(m.vm_rss_kib));
    }
    let lumen_after = scrape_lumen(&scraper, &config.lumen_http).await;
    let total = counters
        .total
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned histogram"))?;
    let ms = |us: u64| us as f64 / 1000.0;
    let accepted = counters.accepted.load(Ordering::Relaxed);
    let requests = counters.requests.load(Ordering::Relaxed);
    let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if elapsed > 0.0 => Some((b - a) / elapsed),
        _ => None,
    };
    let lumen = match (lumen_before, lumen_after) {
        (Some(b), Some(a)) => Some(LumenFigures {
            wal_fsyncs: a.delta(&b, "lumen_wal_fsync_seconds_count"),
            wal_fsync_seconds: a.delta(&b, "lumen_wal_fsync_seconds_sum"),
            wal_bytes: a.delta(&b, "lumen_wal_bytes_total"),
            flushes: a.delta(&b, "lumen_flush_duration_seconds_count"),
            flush_seconds: a.delta(&b, "lumen_flush_duration_seconds_sum"),
            writes_rejected_head_full: a.delta(&b, "lumen_writes_rejected_total"),
            head_mib_end: a.get("lumen_head_bytes") / 1048576.0,
            head_rows_end: a.get("lumen_head_rows"),
        }),
        _ => None,
    };
    Ok(Report {
        accepted_samples: accepted,
        rejected_samples: counters.rejected.load(Ordering::Relaxed),
        requests,
        retries: counters.retries.load(Ordering::Relaxed),
        failures: counters.failures.load(Ordering::Relaxed),
        first_error: counters.first_error.lock().ok().and_then(|e| e.clone()),
        elapsed_secs: elapsed,
        samples_per_sec: accepted as f64 / elapsed.max(1e-9),
        requests_per_sec: requests as f64 / elapsed.max(1e-9),
        wire_mb_per_sec: counters.wire_bytes.load(Ordering::Relaxed) as f64
            / 1e6
            / elapsed.max(1e-9),
        latency: Latency {
            p50_ms: ms(total.value_at_quantile(0.50)),
            p90_ms: ms(total.value_at_quantile(0.90)),
            p99_ms: ms(total.value_at_quantile(0.99)),
            max_ms: ms(total.max()),
        },
        receiver: Receiver {
            cpu_cores: cores(receiver_cpu_before, receiver_cpu_after),
            rss_peak_sampled_mib: rss_peak_kib.map(mib),
            rss_end_mib: mem.map(|m| mib(m.vm_rss_kib)),
            rss_hwm_mib: mem.map(|m| mib(m.vm_hwm_kib)),
        },
        loadgen_cpu_cores: cores(self_cpu_before, self_cpu_after),
        lumen,
    })
}
