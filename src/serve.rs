//! `lumen serve`: opens the store, composes the ingest and query crates on one HTTP and one gRPC port,
//! and shuts down gracefully (stop accepting, finish in-flight requests, flush the head).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use lumen_storage::{Storage, StorageConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower::Service as _;

use lumen_storage::duration::parse_seconds_or_duration;

use crate::units::parse_bytes;

/// Flag defaults written as flags are, computed from the owning crate's `Default` (or `new`) so
/// each default is stated once.
mod defaults {
    use std::sync::LazyLock;

    use lumen_storage::duration;

    use crate::units::format_bytes;

    fn storage() -> lumen_storage::StorageConfig {
        lumen_storage::StorageConfig::new(crate::DEFAULT_DATA_DIR)
    }

    pub static MAX_BODY_SIZE: LazyLock<String> =
        LazyLock::new(|| format_bytes(lumen_ingest::IngestConfig::default().max_body_bytes));
    pub static MAX_HEAD_SIZE: LazyLock<String> =
        LazyLock::new(|| format_bytes(storage().max_head_bytes));
    pub static FLUSH_SIZE: LazyLock<String> = LazyLock::new(|| format_bytes(storage().flush_bytes));
    pub static FLUSH_INTERVAL: LazyLock<String> =
        LazyLock::new(|| duration::format(storage().flush_interval));
    pub static QUERY_TIMEOUT: LazyLock<String> =
        LazyLock::new(|| duration::format(lumen_query::QueryConfig::default().timeout));
    pub static QUERY_MEMORY_LIMIT: LazyLock<String> =
        LazyLock::new(|| format_bytes(lumen_query::QueryConfig::default().memory_limit));
    pub static SAMPLE_CACHE_SIZE: LazyLock<String> =
        LazyLock::new(|| format_bytes(lumen_query::promql::sample_cache::DEFAULT_CAPACITY));
    pub fn max_attributes() -> usize {
        lumen_ingest::IngestConfig::default().max_attributes_per_item
    }

    pub fn span_metrics() -> bool {
        lumen_ingest::IngestConfig::default().span_metrics
    }
}

/// Flags of `lumen serve`; each also reads a `LUMEN_*` environment variable.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Directory for the WAL, segments and manifest.
    #[arg(long, env = "LUMEN_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address for OTLP/gRPC.
    #[arg(long, env = "LUMEN_GRPC_ADDR", default_value = crate::DEFAULT_GRPC_ADDR)]
    pub grpc_addr: SocketAddr,
    /// Address for HTTP: OTLP/HTTP (/v1/traces, /v1/metrics, /v1/logs), SQL (/api/v1/sql), the Prometheus API (/api/v1/query...), /health, /ready, /metrics.
    #[arg(long, env = "LUMEN_HTTP_ADDR", default_value = crate::DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Largest accepted request body, compressed or decompressed (e.g. 16MiB).
    #[arg(long, env = "LUMEN_MAX_BODY_SIZE", default_value = defaults::MAX_BODY_SIZE.as_str(), value_parser = parse_bytes)]
    pub max_body_size: usize,
    /// Attributes kept per span, log record, data point or resource; the rest are counted as dropped.
    #[arg(long, env = "LUMEN_MAX_ATTRIBUTES", default_value_t = defaults::max_attributes())]
    pub max_attributes: usize,
    /// Derive RED metrics (traces_spanmetrics_*) and the service graph (traces_service_graph_*) from spans at ingest, as Tempo's metrics generator names them (`--span-metrics false` turns it off).
    #[arg(long, env = "LUMEN_SPAN_METRICS", default_value_t = defaults::span_metrics(), action = clap::ArgAction::Set)]
    pub span_metrics: bool,
    /// Memory the in-memory head may use before writes are refused with a retryable error.
    #[arg(long, env = "LUMEN_MAX_HEAD_SIZE", default_value = defaults::MAX_HEAD_SIZE.as_str(), value_parser = parse_bytes)]
    pub max_head_size: usize,
    /// Flush the head to Parquet segments when it reaches this size...
    #[arg(long, env = "LUMEN_FLUSH_SIZE", default_value = defaults::FLUSH_SIZE.as_str(), value_parser = parse_bytes)]
    pub flush_size: usize,
    /// ...or when its oldest data is this old.
    #[arg(long, env = "LUMEN_FLUSH_INTERVAL", default_value = defaults::FLUSH_INTERVAL.as_str(), value_parser = parse_seconds_or_duration)]
    pub flush_interval: Duration,
    /// A SQL or PromQL query running longer than this is cancelled.
    #[arg(long, env = "LUMEN_QUERY_TIMEOUT", default_value = defaults::QUERY_TIMEOUT.as_str(), value_parser = parse_seconds_or_duration)]
    pub query_timeout: Duration,
    /// Memory one SQL query may use for sorts, joins and aggregations.
    #[arg(long, env = "LUMEN_QUERY_MEMORY_LIMIT", default_value = defaults::QUERY_MEMORY_LIMIT.as_str(), value_parser = parse_bytes)]
    pub query_memory_limit: usize,
    /// Memory for decoded PromQL series indexes (one per metrics segment; least recently used evicted).
    /// Default: an eighth of the machine's memory, at least 256MiB. An index that does not fit is
    /// re-read per query, so a store with millions of series needs it large.
    #[arg(long, env = "LUMEN_SERIES_INDEX_CACHE_SIZE", value_parser = parse_bytes)]
    pub series_index_cache_size: Option<usize>,
    /// Memory for decoded samples of recently queried series (PromQL), so dashboards and rules that
    /// ask for the same series again read them from memory. 0 turns it off.
    #[arg(long, env = "LUMEN_SAMPLE_CACHE_SIZE", default_value = defaults::SAMPLE_CACHE_SIZE.as_str(), value_parser = parse_sample_cache_size)]
    pub sample_cache_size: usize,
    /// Configuration file (lumen.toml): alerting receivers and settings.
    #[arg(long, env = "LUMEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Rule file or directory (Prometheus format, plus `sql:` rules); repeat for more. Added to the config file's `rules`.
    #[arg(long = "rules", env = "LUMEN_RULES", value_delimiter = ',')]
    pub rules: Vec<PathBuf>,
}

#[derive(Clone)]
struct Ops {
    storage: Arc<Storage>,
    metrics: PrometheusHandle,
    serving: Arc<AtomicBool>,
}

/// A started server: where it listens, and what stopping it needs.
pub struct RunningServer {
    /// The bound HTTP address (the real port when `--http-addr` asked for port 0).
    pub http_addr: SocketAddr,
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    storage: Arc<Storage>,
    serving: Arc<AtomicBool>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    alerting: Arc<lumen_alerting::Manager>,
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let server = start(args).await?;
    shutdown_signal().await;
    server.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the store and starts serving; prints the `lumen listening http=… grpc=…` line on stdout.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningServer> {
    init_logging();
    // Read the configuration before anything else, so a typo fails at once.
    let file_config = crate::alerting::load_config(args.config.as_deref())?;
    let metrics = install_metrics_recorder()?;

    // Bind first so a taken port fails fast, before a possibly long recovery.
    let http_listener = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} for HTTP; is another Lumen running? choose another with --http-addr", args.http_addr))?;
    let grpc_listener = TcpListener::bind(args.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {} for gRPC; is another Lumen running? choose another with --grpc-addr", args.grpc_addr))?;
    let http_addr = http_listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;

    // Serve HTTP at once: during recovery /health answers, /ready and everything else say
    // "recovering" with 503 + Retry-After; afterwards every request goes to the full router.
    let app_slot: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
    let boot = Router::new()
        .route("/health", get(health))
        .fallback(dispatch)
        .with_state(app_slot.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        // No Nagle delay on answers written in more than one piece (Go's servers do the same).
        let http_listener = http_listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(http_listener, boot)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    let index_cache = args
        .series_index_cache_size
        .unwrap_or_else(default_series_index_cache_size);
    tracing::info!(bytes = index_cache, "series index cache");
    lumen_storage::index::set_cache_capacity(index_cache);
    lumen_query::promql::sample_cache::set_capacity(args.sample_cache_size);
    let storage_config = StorageConfig {
        data_dir: args.data_dir.clone(),
        max_head_bytes: args.max_head_size,
        flush_bytes: args.flush_size,
        flush_interval: args.flush_interval,
        compaction: lumen_storage::CompactionConfig {
            // Merged segments stay on disk while a query that listed them may still read them.
            retire_grace: args
                .query_timeout
                .saturating_mul(2)
                .max(Duration::from_secs(300)),
            ..Default::default()
        },
    };
    tracing::info!(data_dir = %args.data_dir.display(), "opening the store");
    let storage = tokio::task::spawn_blocking(move || Storage::open(storage_config))
        .await
        .context("recovery task failed")?
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;

    let ingest_config = lumen_ingest::IngestConfig {
        max_body_bytes: args.max_body_size,
        max_attributes_per_item: args.max_attributes,
        span_metrics: args.span_metrics,
        ..Default::default()
    };
    // One export path for both receivers: one span-metrics state pairs spans across protocols.
    let receivers = lumen_ingest::Receivers::new(storage.clone(), ingest_config.clone());
    let query_config = lumen_query::QueryConfig {
        timeout: args.query_timeout,
        memory_limit: args.query_memory_limit,
    };
    let engine = Arc::new(
        lumen_query::QueryEngine::new(storage.clone(), query_config)
            .context("cannot start the SQL engine")?,
    );
    // One PromQL runner for the HTTP API and the rule evaluator: both share its concurrency
    // slots, deadlines and panic containment.
    let promql = Arc::new(lumen_query::PromqlService::new(
        storage.clone(),
        lumen_query::PromqlConfig {
            timeout: args.query_timeout,
            ..Default::default()
        },
    ));
    let mut alerting_config = file_config.alerting;
    alerting_config.rules.extend(args.rules.iter().cloned());
    let alerting = crate::alerting::start(
        &args.data_dir,
        alerting_config,
        http_addr,
        storage.clone(),
        engine.clone(),
        promql.clone(),
        ingest_config.clone(),
    )
    .await?;
    crate::alerting::reload_on_sighup(alerting.clone());

    let serving = Arc::new(AtomicBool::new(true));
    let ops = Ops {
        storage: storage.clone(),
        metrics,
        serving: serving.clone(),
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/api/v1/admin/flush", post(flush))
        .route("/api/v1/admin/compact", post(compact))
        .with_state(ops)
        .merge(receivers.http_router())
        .merge(lumen_query::tempo_router(Arc::clone(&engine)))
        .merge(lumen_query::jaeger_router(Arc::clone(&engine)))
        .merge(lumen_query::http_router(engine))
        .merge(lumen_alerting::api::router(alerting.clone()))
        .merge(lumen_query::prometheus_router(promql));

    let _ = app_slot.set(app);
    warm_series_indexes(storage.clone(), serving.clone());

    let mut grpc_stop = stop_rx.clone();
    let grpc_routes = receivers.grpc_routes();
    let grpc = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(grpc_routes)
            .serve_with_incoming_shutdown(tokio_stream_from(grpc_listener), async move {
                let _ = grpc_stop.wait_for(|stop| *stop).await;
            })
            .await
    });

    tracing::info!(%http_addr, %grpc_addr, "Lumen is ready");
    // One machine-readable line on stdout, for scripts and tests that start Lumen on port 0.
    println!("lumen listening http={http_addr} grpc={grpc_addr}");
    Ok(RunningServer {
        http_addr,
        grpc_addr,
        storage,
        serving,
        stop_tx,
        http,
        grpc,
        alerting,
    })
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests (up to 30 s), then flushes the head.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let RunningServer {
            storage,
            serving,
            stop_tx,
            http,
            grpc,
            alerting,
            ..
        } = self;
        tracing::info!("shutting down: finishing in-flight requests, then flushing the head");
        serving.store(false, Ordering::Release);
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            let _ = http.await;
            let _ = grpc.await;
        })
        .await;
        alerting.shutdown().await;
        storage.shutdown().await.context(
            "flush at shutdown failed; the WAL still holds the data and replays at the next start",
        )?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Loads the newest metrics segments' series indexes in the background, so the first PromQL queries
/// after a start do not each wait for sidecars to be read (seconds at a million series). Bounded by
/// `--series-index-cache-size`; stops when the server stops.
fn warm_series_indexes(storage: Arc<Storage>, serving: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("lumen-index-warmup".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let done = storage.warm_series_indexes(&|| serving.load(Ordering::Acquire));
            if done.loaded > 0 {
                tracing::info!(
                    segments = done.loaded,
                    mib = done.bytes >> 20,
                    seconds = started.elapsed().as_secs_f64(),
                    "series indexes loaded into the cache"
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the series index warm-up; indexes load on first use");
    }
}

fn tokio_stream_from(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((next, listener))
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn install_metrics_recorder() -> anyhow::Result<PrometheusHandle> {
    const LATENCY_BUCKETS: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0, 30.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    metrics::describe_counter!(
        "lumen_ingest_items_total",
        "Spans, log records and data points received, by signal, protocol and outcome."
    );
    metrics::describe_counter!(
        "lumen_ingest_bytes_total",
        "Request body bytes received, by signal and protocol."
    );
    metrics::describe_histogram!(
        "lumen_wal_fsync_seconds",
        "Duration of one WAL group-commit fsync."
    );
    metrics::describe_gauge!("lumen_head_bytes", "Memory held by the in-memory head.");
    metrics::describe_counter!(
        "lumen_flushes_total",
        "Head flushes to Parquet segments, by outcome."
    );
    metrics::describe_histogram!(
        "lumen_flush_duration_seconds",
        "Duration of one head flush."
    );
    metrics::describe_gauge!("lumen_segments", "Parquet segments, by table.");
    metrics::describe_gauge!(
        "lumen_segment_bytes",
        "Bytes of Parquet segments on disk, by table."
    );
    metrics::describe_counter!(
        "lumen_compactions_total",
        "Merges of a partition's segments into one, by table and outcome."
    );
    metrics::describe_counter!(
        "lumen_compacted_rows_total",
        "Rows rewritten by compaction, by table."
    );
    metrics::describe_histogram!(
        "lumen_compaction_duration_seconds",
        "Duration of one merge."
    );
    metrics::describe_counter!("lumen_queries_total", "SQL queries, by outcome.");
    metrics::describe_histogram!("lumen_query_duration_seconds", "SQL query latency.");
    Ok(handle)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Routes a request to the full router once recovery is done; answers 503 until then.
async fn dispatch(
    State(slot): State<Arc<OnceLock<Router>>>,
    request: axum::extract::Request,
) -> Response {
    match slot.get() {
        Some(app) => match app.clone().call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            "recovering: Lumen is replaying its write-ahead log; retry shortly\n",
        )
            .into_response(),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(ops): State<Ops>) -> Response {
    if ops.serving.load(Ordering::Acquire) && !ops.storage.is_shutting_down() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn render_metrics(State(ops): State<Ops>) -> Response {
    let (bytes, rows) = ops.storage.head_usage();
    metrics::gauge!("lumen_head_bytes").set(bytes as f64);
    metrics::gauge!("lumen_head_rows").set(rows as f64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.metrics.render(),
    )
        .into_response()
}

async fn flush(State(ops): State<Ops>) -> Response {
    match ops.storage.flush().await {
        Ok(report) => axum::Json(serde_json::json!({
            "segments": report.segments.len(),
            "rows": report.rows,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// Merges every partition's segments now (see `lumen_storage::compaction`); answers when done.
async fn compact(State(ops): State<Ops>) -> Response {
    match ops.storage.compact().await {
        Ok(report) => axum::Json(serde_json::json!({
            "merges": report.merges,
            "input_segments": report.input_segments,
            "rows": report.rows,
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
            "failed": report.failed,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// An eighth of the machine's memory (`MemTotal`), at least 256 MiB (also when it cannot be read).
fn default_series_index_cache_size() -> usize {
    const FLOOR: usize = 256 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
    total.map_or(FLOOR, |bytes| (bytes / 8).max(FLOOR))
}

/// A size, or 0 (off).
fn parse_sample_cache_size(text: &str) -> Result<usize, String> {
    if text.trim() == "0" {
        Ok(0)
    } else {
        parse_bytes(text)
    }
}

#[cfg(test)]
mod tests;
