//! `lumen demo`: the "see it work" path. Starts Lumen exactly as `lumen serve` does, then runs the
//! bookstore fleet simulator (`lumen-fleet`) against it at a human rate — once a second it advances
//! the simulation to the wall clock and sends the new spans, logs and metrics through Lumen's real
//! OTLP/gRPC port — and prints where the APIs are and what to try.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lumen_fleet::proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use lumen_fleet::proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use lumen_fleet::proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use lumen_fleet::{Fleet, FleetConfig, IncidentWindow, Scenario, Telemetry};
use tonic::transport::{Channel, Endpoint};

use crate::serve::{self, RunningServer, ServeArgs};
use lumen_storage::duration::parse_seconds_or_duration;

/// The example rules (examples/rules/bookstore.rules.yml), loaded when the demo is given no rules.
const DEMO_RULES: &str = include_str!("../examples/rules/bookstore.rules.yml");

/// Highest `--rate`: above it one second of telemetry nears the 16 MiB request limit; the load
/// generator in benches/ is the tool for more.
const MAX_RATE: f64 = 1000.0;

/// Flags of `lumen demo`: the simulation's, plus every `lumen serve` flag.
#[derive(clap::Args, Debug)]
#[command(mut_arg("data_dir", |arg| arg.default_value("./lumen-demo-data")))]
pub struct DemoArgs {
    /// What the fleet does: steady, daily, payment-latency, error-burst[:<service>], breaker-open, orders-drop.
    #[arg(long, env = "LUMEN_DEMO_SCENARIO", default_value = "steady")]
    pub scenario: Scenario,
    /// Storefront requests per second (each one a trace of 5–30 spans across the services).
    #[arg(long, env = "LUMEN_DEMO_RATE", default_value_t = 5.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Seed of the simulation: the same seed replays the same fleet.
    #[arg(long, env = "LUMEN_DEMO_SEED", default_value_t = 42)]
    pub seed: u64,
    /// For incident scenarios: normal operation before the incident starts.
    #[arg(long, default_value = "1m", value_parser = parse_seconds_or_duration)]
    pub incident_after: Duration,
    /// For incident scenarios: how long the incident lasts before the fleet recovers.
    #[arg(long, default_value = "10m", value_parser = parse_seconds_or_duration)]
    pub incident_duration: Duration,
    /// Start the simulation this far in the past and send that history at once, so graphs, rates
    /// and alert rules have data from the first second (e.g. 10m; at most 1h).
    #[arg(long, default_value = "0s", value_parser = parse_backfill)]
    pub backfill: Duration,
    #[command(flatten)]
    pub serve: ServeArgs,
}

fn parse_backfill(text: &str) -> Result<Duration, String> {
    let backfill = parse_seconds_or_duration(text).map_err(|e| e.to_string())?;
    if backfill > Duration::from_secs(3600) {
        return Err(
            "the backfill can be at most 1h (the head holds it in memory until the first flush)"
                .into(),
        );
    }
    Ok(backfill)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of requests per second"))?;
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!(
            "the rate must be above 0 and at most {MAX_RATE} requests/s (for load, use the generator in benches/)"
        ));
    }
    Ok(rate)
}

/// Runs Lumen with the simulated fleet feeding it until SIGINT or SIGTERM.
pub async fn run(mut args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.serve.data_dir.clone();
    let demo_rules = args.serve.rules.is_empty() && args.serve.config.is_none();
    if demo_rules {
        // No rules of the user's: alert on the fleet with the example rules shipped in the repository.
        let dir = data_dir.join("demo-rules");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("bookstore.rules.yml");
        std::fs::write(&path, DEMO_RULES)?;
        args.serve.rules.push(path);
    }
    let server = serve::start(args.serve).await?;
    let config = FleetConfig {
        seed: args.seed,
        scenario: args.scenario,
        requests_per_second: args.rate,
        start_time_ns: wall_clock_ns() - duration_ns(args.backfill),
        metric_interval_ns: 10_000_000_000,
        incident: IncidentWindow {
            start_offset_ns: duration_ns(args.incident_after),
            duration_ns: duration_ns(args.incident_duration),
        },
        environment: "demo".to_string(),
    };
    print_guide(&server, &config, &data_dir.display().to_string());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let feeder = tokio::spawn(feed(
        Fleet::new(config),
        server.grpc_addr,
        args.backfill,
        stop_rx,
    ));
    serve::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), feeder).await;
    server.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

fn wall_clock_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The OTLP/gRPC clients the simulated services export through.
struct Exporters {
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
}

impl Exporters {
    fn connect(grpc_addr: SocketAddr) -> anyhow::Result<Exporters> {
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))?
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Exporters {
            traces: TraceServiceClient::new(channel.clone()),
            logs: LogsServiceClient::new(channel.clone()),
            metrics: MetricsServiceClient::new(channel),
        })
    }

    /// Sends a step's non-empty requests; returns how many of the three failed.
    async fn send(&mut self, batch: Telemetry) -> usize {
        let mut failed = 0;
        if !batch.traces.resource_spans.is_empty()
            && let Err(status) = self.traces.export(batch.traces).await
        {
            tracing::warn!(%status, "demo: sending spans failed");
            failed += 1;
        }
        if !batch.logs.resource_logs.is_empty()
            && let Err(status) = self.logs.export(batch.logs).await
        {
            tracing::warn!(%status, "demo: sending logs failed");
            failed += 1;
        }
        if !batch.metrics.resource_metrics.is_empty()
            && let Err(status) = self.metrics.export(batch.metrics).await
        {
            tracing::warn!(%status, "demo: sending metrics failed");
            failed += 1;
        }
        failed
    }
}

/// Once a second, advances the fleet to the wall clock and sends what it produced; prints a
/// progress line every 10 s.
async fn feed(
    mut fleet: Fleet,
    grpc_addr: SocketAddr,
    backfill: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut exporters = match Exporters::connect(grpc_addr) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: the demo cannot reach Lumen's gRPC port {grpc_addr}: {e:#}");
            return;
        }
    };
    let (mut spans, mut logs, mut points, mut failures) = (0usize, 0usize, 0usize, 0usize);
    if !backfill.is_zero() {
        // The history, in 10 s steps of simulated time (each a few requests' worth of OTLP).
        let end_ns = fleet.now_ns().saturating_add(duration_ns(backfill));
        let mut next_ns = fleet.now_ns();
        while next_ns < end_ns {
            next_ns = (next_ns + 10_000_000_000).min(end_ns);
            let batch = fleet.step(next_ns);
            spans += batch.span_count();
            logs += batch.log_record_count();
            points += batch.data_point_count();
            failures += exporters.send(batch).await;
            if *stop.borrow() {
                return;
            }
        }
        println!(
            "demo: backfilled {}s of history: {spans} spans, {logs} log records, {points} metric points",
            backfill.as_secs()
        );
    }
    let started = Instant::now();
    let start_ns = fleet.now_ns();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let until = start_ns.saturating_add(duration_ns(started.elapsed()));
        let batch = fleet.step(until);
        spans += batch.span_count();
        logs += batch.log_record_count();
        points += batch.data_point_count();
        failures += exporters.send(batch).await;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let failed = if failures > 0 {
                format!(", {failures} failed requests (see the log)")
            } else {
                String::new()
            };
            println!(
                "demo: {}s, sent {spans} spans, {logs} log records, {points} metric points{failed}{}",
                started.elapsed().as_secs(),
                incident_status(fleet.config(), until - fleet.config().start_time_ns)
            );
        }
    }
}

/// "; incident in progress" and the like, for the progress line.
fn incident_status(config: &FleetConfig, elapsed_ns: i64) -> &'static str {
    if !config.scenario.is_incident() {
        return "";
    }
    let w = config.incident;
    if elapsed_ns < w.start_offset_ns {
        "; incident not started yet"
    } else if elapsed_ns - w.start_offset_ns < w.duration_ns {
        "; incident in progress"
    } else {
        "; incident over, fleet recovering"
    }
}

/// The first thing a demo user reads: what runs, where the APIs are, and queries to paste.
fn print_guide(server: &RunningServer, config: &FleetConfig, data_dir: &str) {
    let http = server.http_addr;
    let grpc = server.grpc_addr;
    // Name the binary as it was started (`target/release/lumen` under cargo), so the lines paste as is.
    let exe = std::env::args_os()
        .next()
        .and_then(|a| a.into_string().ok())
        .filter(|a| !a.is_empty() && !a.contains(' '))
        .unwrap_or_else(|| "lumen".to_string());
    let sql = if http.to_string() == "127.0.0.1:4318" {
        format!("{exe} sql")
    } else {
        format!("{exe} sql --server http://{http}")
    };
    let alerts = if http.to_string() == "127.0.0.1:4318" {
        format!("{exe} alerts")
    } else {
        format!("{exe} alerts --server http://{http}")
    };
    let incident = if config.scenario.is_incident() {
        format!(
            "\n  The incident starts {} s in and lasts {} s: look for {}.",
            config.incident.start_offset_ns / 1_000_000_000,
            config.incident.duration_ns / 1_000_000_000,
            config.scenario.what_to_look_for()
        )
    } else {
        format!("\n  Expect {}.", config.scenario.what_to_look_for())
    };
    let examples = [
        (
            "Error rate by service, last 5 minutes",
            "SELECT service_name, count(*) AS spans, round(avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0 END) * 100, 2) AS error_pct FROM spans WHERE time > now() - INTERVAL '5 minutes' GROUP BY service_name ORDER BY error_pct DESC",
        ),
        (
            "Slowest operations (p99 of server spans)",
            "SELECT service_name, name, count(*) AS calls, round(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) / 1e6, 1) AS p99_ms FROM spans WHERE kind = 'server' GROUP BY service_name, name ORDER BY p99_ms DESC LIMIT 10",
        ),
        (
            "The slowest checkout, span by span",
            "SELECT service_name, name, kind, duration_ns / 1e6 AS ms, status_code FROM spans WHERE trace_id = (SELECT trace_id FROM spans WHERE name = 'POST /api/orders' ORDER BY duration_ns DESC LIMIT 1) ORDER BY time",
        ),
        (
            "Latest errors in the logs, with the operation they happened in",
            "SELECT l.time, l.service_name, s.name AS operation, l.body FROM logs l JOIN spans s ON l.trace_id = s.trace_id AND l.span_id = s.span_id WHERE l.severity_text = 'ERROR' ORDER BY l.time DESC LIMIT 10",
        ),
        (
            "Orders per minute by outcome (deltas of the cumulative bookstore.orders counter; a restart starts a new start_time)",
            "SELECT date_trunc('minute', time) AS minute, attributes['order.status'] AS status, sum(delta) AS orders FROM (SELECT time, attributes, value - coalesce(lag(value) OVER (PARTITION BY series_id, start_time ORDER BY time), 0) AS delta FROM metrics WHERE metric_name = 'bookstore.orders') GROUP BY 1, 2 ORDER BY 1 DESC, 2 LIMIT 20",
        ),
        (
            "Circuit breakers that are not closed right now",
            "SELECT service_name, attributes['peer.service'] AS downstream, attributes['circuit_breaker.state'] AS state FROM metrics WHERE metric_name = 'circuit_breaker.state' AND value = 1 AND attributes['circuit_breaker.state'] <> 'closed' AND time > now() - INTERVAL '15 seconds'",
        ),
    ];
    let mut out = String::new();
    out.push_str(&format!(
        "\nLumen demo: a simulated online bookstore (gateway, account, warehouse, payment, security, with PostgreSQL,\n\
         Redis and a Kafka topic) is sending traces, logs and metrics to this Lumen over OTLP/gRPC:\n\
         about {} requests/s, scenario {} (seed {}).{incident}\n\n\
         \x20 OTLP/gRPC    {grpc}\n\
         \x20 OTLP/HTTP    http://{http}/v1/traces, /v1/logs, /v1/metrics\n\
         \x20 SQL          POST http://{http}/api/v1/sql   (body: the query, or {{\"query\": \"...\"}})\n\
         \x20 Health       http://{http}/health, http://{http}/ready; Lumen's own metrics: http://{http}/metrics\n\
         \x20 Data         {data_dir}\n\n\
         Spans and logs arrive every second, metrics every 10 s. Try (tables: spans, logs, metrics; see docs/schema.md):\n",
        config.requests_per_second, config.scenario, config.seed
    ));
    for (title, query) in examples {
        out.push_str(&format!("\n  # {title}\n  {sql} \"{query}\"\n"));
    }
    out.push_str(&format!(
        "\n  # Or open the interactive prompt\n  {sql}\n\n\
         Alerts: rules from examples/rules/bookstore.rules.yml (unless --rules or --config is given) watch payment\n\
         latency, error rates and orders per minute. See them fire with an incident scenario:\n\
         \x20 {alerts}                       # active alerts; --history for every state change\n\
         \x20 http://{http}/api/v1/rules    http://{http}/api/v1/alerts\n\n\
         Other scenarios: {exe} demo --scenario <{}>. Stop with Ctrl-C: Lumen flushes and exits; the data stays in {data_dir}.\n",
        Scenario::FLAG_VALUES.join("|")
    ));
    println!("{out}");
}
