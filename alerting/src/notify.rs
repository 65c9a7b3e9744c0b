//! Durable notification delivery: the evaluator's alerts to webhooks and Alertmanagers.
//!
//! ```text
//! Notifier::send(alerts) ──► dispatcher thread ──┬─ alertmanager receiver: push, coalesced ─┐
//!                            (routing, webhook   └─ webhook receiver: groups ─► flush ──────┤
//!                             groups, timers)                                               ▼
//!                                   per receiver: outbox (fsync'd files) ─► delivery task ─► HTTP
//! ```
//!
//! - [`Notifier::send`] only hands the batch to the dispatcher, which runs on its own OS thread
//!   because nearly everything it does ends in an fsync'd write.
//! - Each alert goes to every receiver whose `matchers` all match (no matchers: every alert).
//!   `matchers` is a map of exact label values or a list of Prometheus matcher strings
//!   (`'severity=~"page|critical"'`).
//! - **alertmanager** receivers get the alerts as `POST <url>/api/v2/alerts`; Alertmanager
//!   groups and deduplicates. Undelivered pushes coalesce (latest state per fingerprint), so an
//!   outage keeps at most two entries per Alertmanager.
//! - **webhook** receivers get Alertmanager's webhook JSON (version 4), grouped by Lumen as
//!   Alertmanager would: by `group_by`, first notification after `group_wait`, changes at most
//!   every `group_interval`, unchanged firing groups again after `repeat_interval`, resolved
//!   notifications when `send_resolved`. `group.rs` has the exact rules.
//!
//! # Durability
//!
//! A notification counts as accepted once its outbox file is written and fsync'd. The delivery
//! task sends entries in order and removes them when the receiver answered 2xx, or refused them
//! for good (another 4xx, or a 3xx: redirects are not followed); a refused webhook notification
//! counts as notified, so it is not re-created until its group changes or `repeat_interval`.
//! Timeouts, connection errors, 5xx and 429 are retried with exponential backoff (1 s doubling
//! to 5 min, jittered, `Retry-After` honoured) for as long as it takes; the outbox keeps at most
//! 10,000 entries per receiver, dropping (and counting) the oldest.
//!
//! While a webhook group's notification is undelivered, the group creates no other; once
//! delivered, it becomes the group's notification log entry and the next flush compares
//! against it. So an outage yields each notification once. The groups (alerts and notification
//! logs) are persisted per receiver: the log synchronously before a delivered entry is removed,
//! alert updates at most once a second. A restart (even `kill -9`) with the same alerts firing
//! therefore sends nothing new before `repeat_interval`, and alerts that expired while Lumen was
//! down are notified as resolved.
//!
//! What remains at-least-once: a request the receiver processed but Lumen did not see answered
//! — a crash or shutdown in the window between the receiver's 2xx and Lumen's fsync of that
//! fact, or a timeout after the receiver acted — is sent once more. Alertmanager takes a
//! repeated push as a refresh.
//!
//! # On disk
//!
//! ```text
//! <dir>/receivers/<name>/outbox/<seq, 20 digits>.json  one accepted notification each
//! <dir>/receivers/<name>/groups.json                    webhook receivers: groups, what each was last notified of
//! ```
//!
//! Unreadable files are renamed `*.corrupt` and start-up continues. Directories of receivers
//! no longer configured are left alone (and logged at start). One `Notifier` per directory.
//!
//! # Limits
//!
//! `http://` only: Lumen is built without TLS for now (use a local TLS-terminating proxy).

mod clock;
mod config;
mod delivery;
mod dispatch;
mod error;
mod files;
mod group;
mod matcher;
mod message;
mod options;
mod outbox;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, mpsc};

use parking_lot::Mutex;
use serde::Serialize;

pub use config::{NotifyConfig, ReceiverConfig, ReceiverKind};
pub use delivery::SIGNATURE_HEADER;
pub use error::NotifyError;
pub use matcher::{MatchOp, Matcher};
pub use options::NotifierOptions;

use crate::alert::Alert;
use delivery::{DeliveryStats, DeliveryTask};
use dispatch::{Command, Dispatcher};
use outbox::Outbox;

/// A receiver's delivery status, for the API and CLI.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiverStatus {
    /// Receiver name.
    pub name: String,
    /// `webhook` or `alertmanager`.
    pub kind: ReceiverKind,
    /// Target URL (password, if any, masked).
    pub url: String,
    /// Notifications waiting in the outbox, including one being sent.
    pub queued: usize,
    /// Notifications delivered since start.
    pub delivered: u64,
    /// Notifications refused by the receiver (non-retryable status) since start.
    pub failed: u64,
    /// Notifications dropped undelivered (outbox full, unreadable entry) since start.
    pub dropped: u64,
    /// The latest error (a retry or a refusal).
    pub last_error: Option<String>,
    /// When the latest error happened, Unix ms.
    pub last_error_ms: Option<i64>,
    /// When the latest delivery succeeded, Unix ms.
    pub last_success_ms: Option<i64>,
}

struct ReceiverHandle {
    config: Arc<ReceiverConfig>,
    outbox: Arc<Outbox>,
    stats: Arc<Mutex<DeliveryStats>>,
}

/// Delivers alerts to the configured receivers; see the module docs.
pub struct Notifier {
    commands: mpsc::Sender<Command>,
    receivers: Vec<ReceiverHandle>,
    queued_batches: Arc<AtomicUsize>,
    max_queued_batches: usize,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .receivers
            .iter()
            .map(|r| r.config.name.as_str())
            .collect();
        f.debug_struct("Notifier")
            .field("receivers", &names)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Validates the configuration, recovers outboxes and group state under `dir`, and starts
    /// the dispatcher thread and one delivery task per receiver. Must be called inside a tokio
    /// runtime. Recovery reads files synchronously: call it at start-up.
    pub fn start(dir: &Path, config: NotifyConfig) -> Result<Arc<Notifier>, NotifyError> {
        Self::start_with_options(dir, config, NotifierOptions::default())
    }

    /// [`Notifier::start`] with non-default tuning.
    pub fn start_with_options(
        dir: &Path,
        config: NotifyConfig,
        options: NotifierOptions,
    ) -> Result<Arc<Notifier>, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        config.validate()?;
        describe_metrics();
        let receivers_dir = dir.join("receivers");
        std::fs::create_dir_all(&receivers_dir).map_err(|source| NotifyError::Io {
            path: receivers_dir.clone(),
            source,
        })?;
        warn_about_unconfigured(&receivers_dir, &config);

        let mut handles = Vec::with_capacity(config.receivers.len());
        let mut routes = Vec::with_capacity(config.receivers.len());
        for receiver in config.receivers {
            let receiver = Arc::new(receiver);
            let receiver_dir = receivers_dir.join(&receiver.name);
            let outbox_dir = receiver_dir.join("outbox");
            let outbox = Outbox::open(&outbox_dir, &receiver.name, options.outbox_capacity)
                .map_err(|source| NotifyError::Io {
                    path: outbox_dir.clone(),
                    source,
                })?;
            let outbox = Arc::new(outbox);
            handles.push(ReceiverHandle {
                config: receiver.clone(),
                outbox: outbox.clone(),
                stats: Default::default(),
            });
            routes.push((receiver, outbox, receiver_dir));
        }
        let queued_batches = Arc::new(AtomicUsize::new(0));
        let dispatcher = Dispatcher::recover(config.external_url, &routes, queued_batches.clone())?;

        let (commands, inbox) = mpsc::channel();
        let mut tasks = Vec::with_capacity(handles.len());
        for (index, handle) in handles.iter().enumerate() {
            let task = DeliveryTask::new(
                index,
                handle.config.clone(),
                handle.outbox.clone(),
                handle.stats.clone(),
                commands.clone(),
                &options,
            )?;
            tasks.push(runtime.spawn(task.run()));
        }
        let thread = std::thread::Builder::new()
            .name("lumen-notify".into())
            .spawn(move || dispatcher.run(inbox))
            .map_err(|source| NotifyError::Io {
                path: dir.to_path_buf(),
                source,
            });
        let thread = match thread {
            Ok(thread) => thread,
            Err(err) => {
                tasks.iter().for_each(|t| t.abort());
                return Err(err);
            }
        };
        for handle in &handles {
            tracing::info!(receiver = %handle.config.name, kind = handle.config.kind.as_str(), url = %handle.config.display_url(),
                queued = handle.outbox.len(), "alert receiver ready");
        }
        Ok(Arc::new(Notifier {
            commands,
            receivers: handles,
            queued_batches,
            max_queued_batches: options.max_queued_batches,
            tasks: Mutex::new(tasks),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Hands alerts to the dispatcher; never blocks. Alerts go to every receiver whose matchers
    /// match them.
    pub fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() || self.receivers.is_empty() {
            return;
        }
        if self.queued_batches.fetch_add(1, Ordering::Relaxed) >= self.max_queued_batches {
            self.queued_batches.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!("lumen_notification_batches_dropped_total").increment(1);
            tracing::warn!(
                alerts = alerts.len(),
                "notification dispatcher is behind; alert batch dropped"
            );
            return;
        }
        if self.commands.send(Command::Alerts(alerts)).is_err() {
            self.queued_batches.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("notifier is shut down; alerts not delivered");
        }
    }

    /// Stops delivery and the dispatcher, saving group state. Undelivered entries stay in the
    /// outbox for the next start; a request cut off mid-way may be sent again then.
    pub async fn shutdown(&self) {
        self.stop(Command::Stop).await;
    }

    /// Stops like a crash would: nothing is saved beyond what already is.
    #[cfg(test)]
    async fn crash(&self) {
        self.stop(Command::Crash).await;
    }

    async fn stop(&self, command: Command) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // A cancelled task reports JoinError::Cancelled; nothing else to learn from it.
            let _ = task.await;
        }
        let _ = self.commands.send(command);
        let thread = self.thread.lock().take();
        if let Some(thread) = thread
            && !matches!(
                tokio::task::spawn_blocking(move || thread.join()).await,
                Ok(Ok(()))
            )
        {
            tracing::error!("notification dispatcher thread did not stop cleanly");
        }
    }

    /// Delivery status of every receiver, in configuration order.
    pub fn receivers(&self) -> Vec<ReceiverStatus> {
        self.receivers
            .iter()
            .map(|handle| {
                let stats = handle.stats.lock().clone();
                ReceiverStatus {
                    name: handle.config.name.clone(),
                    kind: handle.config.kind,
                    url: handle.config.display_url(),
                    queued: handle.outbox.len(),
                    delivered: stats.delivered,
                    failed: stats.failed,
                    dropped: handle.outbox.dropped(),
                    last_error: stats.last_error,
                    last_error_ms: stats.last_error_ms,
                    last_success_ms: stats.last_success_ms,
                }
            })
            .collect()
    }
}

impl Drop for Notifier {
    /// Without [`Notifier::shutdown`]: stop the tasks and tell the dispatcher to save and exit,
    /// without waiting for it.
    fn drop(&mut self) {
        for task in self.tasks.lock().iter() {
            task.abort();
        }
        let _ = self.commands.send(Command::Stop);
    }
}

fn warn_about_unconfigured(receivers_dir: &Path, config: &NotifyConfig) {
    let Ok(entries) = std::fs::read_dir(receivers_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !config.receivers.iter().any(|r| r.name == name) {
            tracing::warn!(receiver = name, path = %entry.path().display(),
                "state of a receiver that is no longer configured; left in place (delete it, or configure the receiver again to deliver what it holds)");
        }
    }
}

fn describe_metrics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!("lumen_notifications_sent_total", "Notifications delivered, by receiver.");
        metrics::describe_counter!(
            "lumen_notification_attempts_total",
            "Notification attempts by receiver and outcome: success, retry, failed (refused, not retried), dropped (outbox full or unreadable)."
        );
        metrics::describe_gauge!("lumen_notification_outbox_entries", "Notifications waiting in a receiver's outbox.");
        metrics::describe_histogram!(
            "lumen_notification_latency_seconds",
            metrics::Unit::Seconds,
            "Duration of each notification request, by receiver."
        );
        metrics::describe_counter!(
            "lumen_notification_batches_dropped_total",
            "Alert batches dropped because the notification dispatcher fell behind."
        );
    });
}

#[cfg(test)]
mod tests;
