//! `lumen`: the command line, and the one place where the crates are wired together.
//!
//! - `lumen serve` opens the store (recovering it), then serves OTLP/gRPC on `--grpc-addr` and every
//!   HTTP API (OTLP/HTTP, SQL, the Prometheus API, health, metrics) on `--http-addr` until SIGINT/SIGTERM, then flushes.
//! - `lumen sql` sends SQL to a running server and prints the answer, or opens an interactive prompt.
//! - `lumen promql` sends PromQL to a running server's Prometheus API and prints the series.
//! - `lumen rules check` validates rule files; `lumen alerts` lists a running server's alerts.
//! - `lumen demo` runs the server with a simulated bookstore fleet (`lumen-fleet`) feeding it.

mod alerting;
mod alerts_cli;
mod cli_text;
mod demo;
mod promql_cli;
mod rules_cli;
mod serve;
mod sql_cli;
mod traces_cli;
mod units;

use clap::{Parser, Subcommand};

/// Where `lumen serve` keeps its data unless `--data-dir` says otherwise.
const DEFAULT_DATA_DIR: &str = "./lumen-data";
/// `lumen serve`'s default OTLP/gRPC address (loopback).
const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:4317";
/// The default HTTP address, written once for `serve --http-addr` and the clients' `--server`.
macro_rules! default_http_addr {
    () => {
        "127.0.0.1:4318"
    };
}
/// `lumen serve`'s default HTTP address (loopback).
const DEFAULT_HTTP_ADDR: &str = default_http_addr!();
/// The server the client commands (`sql`, `promql`, `alerts`) talk to by default.
const DEFAULT_SERVER: &str = concat!("http://", default_http_addr!());

/// mimalloc instead of glibc's allocator: Lumen frees large, short-lived buffers from several
/// threads (flushes, query results), which glibc keeps as fragmented heap, so resident memory
/// stayed near 3 GiB after the head emptied (docs/benchmarks.md); mimalloc returns it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lumen: an observability backend in one binary. OTLP in, Parquet on disk, SQL out.
#[derive(Parser)]
#[command(name = "lumen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: receive OTLP, store it durably, answer queries.
    Serve(serve::ServeArgs),
    /// Run SQL against a running server (interactive prompt when no query is given).
    Sql(sql_cli::SqlArgs),
    /// Run a PromQL query against a running server (instant by default; range with --start --end --step).
    Promql(promql_cli::PromqlArgs),
    /// Search traces with TraceQL on a running server and list them, newest first.
    Traces(traces_cli::TracesArgs),
    /// Print one trace as a waterfall: the span tree with offsets, durations and status.
    Trace(traces_cli::TraceArgs),
    /// Run Lumen with a simulated bookstore fleet feeding it.
    Demo(demo::DemoArgs),
    /// Work with rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Show the active alerts of a running server (pending and firing).
    Alerts(alerts_cli::AlertsArgs),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check rule files the way `promtool check rules` does; exits 1 on any error.
    Check {
        /// Rule files or directories.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Rules(RulesCommand::Check { files }) = &cli.command {
        return rules_cli::check(files);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Sql(args) => runtime.block_on(sql_cli::run(args)),
        Command::Promql(args) => runtime.block_on(promql_cli::run(args)),
        Command::Traces(args) => runtime.block_on(traces_cli::run_traces(args)),
        Command::Trace(args) => runtime.block_on(traces_cli::run_trace(args)),
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Alerts(args) => runtime.block_on(alerts_cli::run(args)),
        Command::Rules(RulesCommand::Check { .. }) => Ok(std::process::ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
