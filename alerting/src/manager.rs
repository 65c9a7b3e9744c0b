//! The rule manager: loads rule files, runs one task per group on its interval, reloads without
//! losing alert state, persists state and history, and hands due alerts to the notifier.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::group::{EvalSettings, GroupRuntime};
use crate::history::History;
use crate::notify::Notifier;
use crate::querier::Querier;
use crate::rules::{self, RuleError, RuleGroup};
use crate::state::{self, GroupState};

/// Why alerting could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Rule files with errors (every error, with its file and line).
    #[error("{}", format_rule_errors(.0))]
    Rules(Vec<RuleError>),
    /// The alerting directory (alert state, history) cannot be created or read.
    #[error("cannot use the alerting directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The notifier could not start (e.g. an invalid receiver).
    #[error("{0}")]
    Notify(String),
}

/// All rule errors, one per line.
pub fn format_rule_errors(errors: &[RuleError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("invalid rules:\n  {}", lines.join("\n  "))
}

/// What the manager shares with its group tasks.
struct Shared {
    querier: Arc<dyn Querier>,
    notifier: Arc<Notifier>,
    history: Arc<History>,
    settings: EvalSettings,
    state_dir: PathBuf,
}

struct RunningGroup {
    key: (String, String),
    stop: watch::Sender<bool>,
    task: JoinHandle<GroupRuntime>,
}

/// Alerting as a whole. Share it in an `Arc`.
pub struct Manager {
    shared: Arc<Shared>,
    rule_paths: Vec<PathBuf>,
    running: Mutex<Vec<RunningGroup>>,
    views: RwLock<Vec<Arc<RwLock<Arc<GroupRuntime>>>>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("rule_paths", &self.rule_paths)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Loads the rules, restores state from `dir`, and starts evaluating. Call inside a Tokio runtime.
    pub async fn start(
        dir: &Path,
        rule_paths: Vec<PathBuf>,
        settings: EvalSettings,
        notifier: Arc<Notifier>,
        querier: Arc<dyn Querier>,
    ) -> Result<Arc<Manager>, StartError> {
        let state_dir = dir.join("state");
        std::fs::create_dir_all(&state_dir).map_err(|source| StartError::Io {
            path: state_dir.clone(),
            source,
        })?;
        let history = Arc::new(History::open(dir).map_err(|source| StartError::Io {
            path: dir.to_path_buf(),
            source,
        })?);
        let groups = load_rules(&rule_paths).await.map_err(StartError::Rules)?;
        let manager = Arc::new(Manager {
            shared: Arc::new(Shared {
                querier,
                notifier,
                history,
                settings,
                state_dir,
            }),
            rule_paths,
            running: Mutex::new(Vec::new()),
            views: RwLock::new(Vec::new()),
        });
        manager.install(groups, HashMap::new()).await;
        Ok(manager)
    }

    /// The history of state changes (the `alerts` SQL table reads it).
    pub fn history(&self) -> Arc<History> {
        Arc::clone(&self.shared.history)
    }

    /// The notifier.
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.shared.notifier
    }

    /// The settings.
    pub fn settings(&self) -> &EvalSettings {
        &self.shared.settings
    }

    /// Re-reads the rule files. On error the running rules stay as they were. Alert state carries
    /// over to rules with the same group, name and labels.
    pub async fn reload(&self) -> Result<usize, Vec<RuleError>> {
        let groups = match load_rules(&self.rule_paths).await {
            Ok(groups) => groups,
            Err(errors) => {
                metrics::counter!("lumen_rule_reloads_total", "outcome" => "failure").increment(1);
                tracing::error!(
                    "rule reload failed, keeping the previous rules:\n{}",
                    format_rule_errors(&errors)
                );
                return Err(errors);
            }
        };
        let rules = groups.iter().map(|g| g.rules.len()).sum();
        let mut running = self.running.lock().await;
        let mut carried = HashMap::new();
        for group in running.drain(..) {
            let _ = group.stop.send(true);
            match group.task.await {
                Ok(runtime) => {
                    carried.insert(group.key, runtime.state);
                }
                Err(err) => tracing::error!(group = %group.key.1, %err, "rule group task failed"),
            }
        }
        drop(running);
        self.install(groups, carried).await;
        metrics::counter!("lumen_rule_reloads_total", "outcome" => "success").increment(1);
        tracing::info!(rules, "rules reloaded");
        Ok(rules)
    }

    /// Stops evaluating (state is already persisted after each evaluation) and stops delivery.
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        for group in running.drain(..) {
            let _ = group.stop.send(true);
            let _ = group.task.await;
        }
        self.shared.notifier.shutdown().await;
    }

    /// A consistent view of every group as of its last evaluation.
    pub fn groups(&self) -> Vec<Arc<GroupRuntime>> {
        self.views
            .read()
            .iter()
            .map(|view| Arc::clone(&view.read()))
            .collect()
    }

    async fn install(
        &self,
        groups: Vec<RuleGroup>,
        mut carried: HashMap<(String, String), GroupState>,
    ) {
        let mut running = self.running.lock().await;
        let mut views = Vec::with_capacity(groups.len());
        for group in groups {
            let key = (group.file.display().to_string(), group.name.clone());
            let state = match carried.remove(&key) {
                Some(state) => state,
                None => state::load(&state::state_path(&self.shared.state_dir, &key.0, &key.1)),
            };
            let runtime = GroupRuntime::new(group, state, &self.shared.settings);
            let view = Arc::new(RwLock::new(Arc::new(runtime.clone())));
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(run_group(
                runtime,
                Arc::clone(&self.shared),
                Arc::clone(&view),
                stop_rx,
            ));
            views.push(view);
            running.push(RunningGroup { key, stop, task });
        }
        *self.views.write() = views;
        metrics::gauge!("lumen_rule_groups").set(running.len() as f64);
    }
}

async fn load_rules(paths: &[PathBuf]) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let paths = paths.to_vec();
    match tokio::task::spawn_blocking(move || rules::load(&paths)).await {
        Ok(result) => result,
        Err(err) => Err(vec![RuleError {
            file: PathBuf::new(),
            line: 0,
            column: 0,
            message: format!("rule loading task failed: {err}"),
        }]),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The first evaluation time at or after `now_ms` on the group's grid (`offset` + k × `interval`).
fn next_tick(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let base = now_ms - offset_ms;
    let k = base.div_euclid(interval_ms) + i64::from(base.rem_euclid(interval_ms) != 0);
    k * interval_ms + offset_ms
}

/// A stable offset within the interval, so groups do not all evaluate at the same instant.
fn group_offset(file: &str, name: &str, interval_ms: i64) -> i64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(file.as_bytes());
    hasher.update(&[0]);
    hasher.update(name.as_bytes());
    (hasher.digest() % interval_ms.max(1) as u64) as i64
}

async fn run_group(
    mut runtime: GroupRuntime,
    shared: Arc<Shared>,
    view: Arc<RwLock<Arc<GroupRuntime>>>,
    mut stop: watch::Receiver<bool>,
) -> GroupRuntime {
    let interval_ms = (runtime.interval.as_millis() as i64).max(1);
    let file = runtime.group.file.display().to_string();
    let name = runtime.group.name.clone();
    let offset = group_offset(&file, &name, interval_ms);
    let state_path = state::state_path(&shared.state_dir, &file, &name);
    let mut last_tick = i64::MIN;
    loop {
        let now = now_ms();
        let mut tick = next_tick(now, interval_ms, offset);
        if tick <= last_tick {
            tick = last_tick + interval_ms;
        }
        if last_tick != i64::MIN && tick > last_tick + interval_ms {
            let missed = (tick - last_tick) / interval_ms - 1;
            metrics::counter!("lumen_rule_group_iterations_missed_total", "group" => name.clone())
                .increment(missed as u64);
        }
        let wait = Duration::from_millis((tick - now).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stop| *stop) => return runtime,
        }
        last_tick = tick;
        let outcome = runtime
            .evaluate(&shared.querier, &shared.settings, tick)
            .await;
        if !outcome.to_send.is_empty() {
            shared.notifier.send(outcome.to_send);
        }
        if outcome.state_changed || !outcome.history.is_empty() {
            let snapshot = runtime.state.clone();
            let history = Arc::clone(&shared.history);
            let path = state_path.clone();
            let entries = outcome.history;
            let saved = tokio::task::spawn_blocking(move || {
                state::save(&path, &snapshot)?;
                history.append(entries)
            })
            .await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(group = %name, %err, "cannot persist alert state"),
                Err(err) => tracing::error!(group = %name, %err, "alert state task failed"),
            }
        }
        *view.write() = Arc::new(runtime.clone());
        if *stop.borrow() {
            return runtime;
        }
    }
}

#[cfg(test)]
mod tests;
