//! Alerting wired into the server: the [`Querier`] over Lumen's PromQL engine, SQL engine and
//! metrics write path, the `lumen.toml` file, and reloads on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use lumen_alerting::notify::{Notifier, NotifyConfig};
use lumen_alerting::{
    AlertingConfig, BoxFuture, EvalSettings, InstantResult, Manager, Querier, WriteSample,
};
use lumen_ingest::{PromSample, SampleWriter};
use lumen_query::QueryEngine;
use lumen_query::promql::{PromqlService, QueryOptions, Value};
use lumen_storage::Storage;
use serde::Deserialize;

/// `lumen.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub alerting: AlertingConfig,
}

/// Reads the configuration file; no path means defaults.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// Rule queries over the running server's engines.
struct LumenQuerier {
    sql: Arc<QueryEngine>,
    /// The same runner as the Prometheus API's (slots, deadlines, panic containment).
    promql: Arc<PromqlService>,
    writer: SampleWriter,
}

impl Querier for LumenQuerier {
    fn promql(&self, expr: &str, time_ms: i64) -> BoxFuture<'_, Result<InstantResult, String>> {
        let expr = expr.to_owned();
        Box::pin(async move {
            let result = self
                .promql
                .instant(&expr, time_ms, QueryOptions::default())
                .await
                .map_err(|err| err.to_string())?;
            match result.value {
                Value::Vector(samples) => Ok(InstantResult::Vector(
                    samples.into_iter().map(|s| (s.labels, s.value)).collect(),
                )),
                Value::Scalar(value) => Ok(InstantResult::Scalar(value)),
                other => Err(format!(
                    "a rule's query must return an instant vector or a scalar, not a {}",
                    other.type_name()
                )),
            }
        })
    }

    fn sql(&self, query: &str) -> BoxFuture<'_, Result<Vec<RecordBatch>, String>> {
        let query = query.to_owned();
        Box::pin(async move {
            self.sql
                .sql(&query)
                .await
                .map(|output| output.batches)
                .map_err(|err| err.to_string())
        })
    }

    fn write(&self, samples: Vec<WriteSample>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let samples = samples
                .into_iter()
                // The alerting crate's label set becomes ingest's pairs (sorted, moved) here.
                .map(|s| PromSample {
                    labels: s.labels.into_iter().collect(),
                    time_ms: s.time_ms,
                    value: s.value,
                })
                .collect();
            self.writer
                .write(samples)
                .await
                .map_err(|err| err.to_string())
        })
    }
}

/// Starts the notifier and the rule manager and registers the `alerts` SQL table. `config.rules`
/// holds every rule file to load (`lumen.toml`'s and the `--rules` flags').
pub async fn start(
    data_dir: &Path,
    config: AlertingConfig,
    http_addr: SocketAddr,
    storage: Arc<Storage>,
    sql: Arc<QueryEngine>,
    promql: Arc<PromqlService>,
    ingest: lumen_ingest::IngestConfig,
) -> anyhow::Result<Arc<Manager>> {
    let dir = data_dir.join("alerting");
    let external_url = config
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let notifier = Notifier::start(
        &dir.join("notify"),
        NotifyConfig {
            receivers: config.receivers.clone(),
            external_url: external_url.clone(),
        },
    )
    .map_err(|err| anyhow::anyhow!("alerting receivers: {err}"))?;
    let querier = Arc::new(LumenQuerier {
        sql: Arc::clone(&sql),
        promql,
        writer: SampleWriter::new(storage, ingest),
    });
    let rules = config.rules.clone();
    let settings = EvalSettings {
        default_interval: config.evaluation_interval,
        evaluation_delay: config.evaluation_delay,
        resend_delay: config.resend_delay,
        external_labels: config.external_labels.clone(),
        external_url,
    };
    let manager = match Manager::start(&dir, rules, settings, Arc::clone(&notifier), querier).await
    {
        Ok(manager) => manager,
        Err(err) => {
            notifier.shutdown().await;
            return Err(anyhow::anyhow!(
                "{err}\nfix the rule files (check them with `lumen rules check FILE...`) and start again"
            ));
        }
    };
    sql.register_table(
        "alerts",
        Arc::new(lumen_alerting::AlertsTable::new(manager.history())),
    )
    .context("cannot register the alerts table")?;
    Ok(manager)
}

/// Reloads the rules on every SIGHUP until the process ends.
pub fn reload_on_sighup(manager: Arc<Manager>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload rules with POST /-/reload");
            return;
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading rules");
            let _ = manager.reload().await;
        }
    });
}
