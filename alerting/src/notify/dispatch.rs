//! The dispatcher: routes alerts to receivers, runs the webhook groups' timers, queues
//! notifications in the outboxes and keeps each webhook receiver's state file.
//!
//! It runs on its own OS thread ("lumen-notify") because nearly everything it does ends in an
//! fsync'd write (an outbox entry, the state file); keeping those off the async workers is
//! simpler and cheaper than a `spawn_blocking` per write. It talks to the rest through one
//! channel: alert batches from [`super::Notifier::send`], delivery reports from the delivery
//! tasks, and stop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::clock::now_ms;
use super::config::{ReceiverConfig, ReceiverKind};
use super::error::NotifyError;
use super::files;
use super::group::{GroupState, Pending, WebhookGroups};
use super::outbox::{Entry, Outbox, Payload};
use crate::alert::Alert;

/// The state file of a webhook receiver, next to its outbox.
pub(super) const STATE_FILE: &str = "groups.json";
const STATE_VERSION: u32 = 1;
/// Alert-store changes (mostly refreshed `ends_at`) are persisted at most this often; what a
/// group was notified of is persisted at once.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Messages to the dispatcher thread.
pub(super) enum Command {
    /// Alerts due for delivery, from the evaluator.
    Alerts(Vec<Alert>),
    /// A webhook entry was delivered (or permanently refused); `done` is answered once that is
    /// recorded durably, and only then may the entry be removed from the outbox.
    Delivered {
        receiver: usize,
        seq: u64,
        group_key: String,
        done: tokio::sync::oneshot::Sender<()>,
    },
    /// Save and exit.
    Stop,
    /// Exit without saving anything more (tests: what a crash leaves behind).
    #[cfg(test)]
    Crash,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    groups: Vec<GroupState>,
}

struct WebhookRoute {
    config: Arc<ReceiverConfig>,
    outbox: Arc<Outbox>,
    groups: WebhookGroups,
    state_path: PathBuf,
    dirty: bool,
    last_save: Option<Instant>,
}

enum Route {
    Alertmanager {
        config: Arc<ReceiverConfig>,
        outbox: Arc<Outbox>,
    },
    Webhook(Box<WebhookRoute>),
}

/// Owns all grouping state; see the module docs.
pub(super) struct Dispatcher {
    external_url: String,
    routes: Vec<Route>,
    queued_batches: Arc<AtomicUsize>,
}

impl Dispatcher {
    /// Builds the routes and recovers each webhook receiver's groups: the state file (alerts and
    /// what was last notified) and the undelivered notifications in its outbox. Blocking.
    pub fn recover(
        external_url: String,
        receivers: &[(Arc<ReceiverConfig>, Arc<Outbox>, PathBuf)],
        queued_batches: Arc<AtomicUsize>,
    ) -> Result<Self, NotifyError> {
        let now = now_ms();
        let mut routes = Vec::with_capacity(receivers.len());
        for (config, outbox, dir) in receivers {
            discard_other_kind(config, outbox).map_err(|source| NotifyError::Io {
                path: dir.clone(),
                source,
            })?;
            let route = match config.kind {
                ReceiverKind::Alertmanager => Route::Alertmanager {
                    config: config.clone(),
                    outbox: outbox.clone(),
                },
                ReceiverKind::Webhook => {
                    let state_path = dir.join(STATE_FILE);
                    let mut groups = WebhookGroups::new(config.clone());
                    groups.restore(load_state(&state_path, &config.name), now);
                    attach_outbox(&mut groups, outbox, now).map_err(|source| NotifyError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                    outbox.reserve_seq_above(groups.max_seq());
                    Route::Webhook(Box::new(WebhookRoute {
                        config: config.clone(),
                        outbox: outbox.clone(),
                        groups,
                        state_path,
                        dirty: false,
                        last_save: None,
                    }))
                }
            };
            routes.push(route);
        }
        Ok(Dispatcher {
            external_url,
            routes,
            queued_batches,
        })
    }

    /// The thread's loop: flush due groups, save dirty state, wait for the next command or timer.
    pub fn run(mut self, commands: Receiver<Command>) {
        loop {
            let now = now_ms();
            self.flush_due(now);
            self.save_dirty(false);
            let timeout = self.next_wakeup(now);
            match commands.recv_timeout(timeout) {
                Ok(Command::Alerts(alerts)) => {
                    self.queued_batches.fetch_sub(1, Ordering::Relaxed);
                    self.route(alerts);
                }
                Ok(Command::Delivered {
                    receiver,
                    seq,
                    group_key,
                    done,
                }) => {
                    self.delivered(receiver, seq, &group_key);
                    // The delivery task may have been stopped meanwhile; nothing to tell then.
                    let _ = done.send(());
                }
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                #[cfg(test)]
                Ok(Command::Crash) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        self.save_dirty(true);
    }

    fn route(&mut self, alerts: Vec<Alert>) {
        let now = now_ms();
        for route in &mut self.routes {
            match route {
                Route::Alertmanager { config, outbox } => {
                    let accepted: Vec<Alert> = alerts
                        .iter()
                        .filter(|a| config.accepts(&a.labels))
                        .cloned()
                        .collect();
                    if accepted.is_empty() {
                        continue;
                    }
                    if let Err(err) = outbox.push_alertmanager(accepted) {
                        // Not accepted; the evaluator sends these alerts again at its next resend.
                        tracing::error!(receiver = %config.name, error = %err, "cannot write to the outbox; alerts not queued");
                        metrics::counter!("lumen_notification_attempts_total", "receiver" => config.name.clone(), "outcome" => "dropped").increment(1);
                    }
                }
                Route::Webhook(webhook) => {
                    for alert in alerts.iter().filter(|a| webhook.config.accepts(&a.labels)) {
                        webhook.dirty |= webhook.groups.insert(alert.clone(), now);
                    }
                }
            }
        }
    }

    fn flush_due(&mut self, now: i64) {
        for route in &mut self.routes {
            if let Route::Webhook(webhook) = route {
                for key in webhook.groups.due(now) {
                    webhook.flush(&key, now, &self.external_url);
                }
            }
        }
    }

    fn delivered(&mut self, receiver: usize, seq: u64, group_key: &str) {
        let Some(Route::Webhook(webhook)) = self.routes.get_mut(receiver) else {
            return;
        };
        if webhook.groups.delivered(group_key, seq, now_ms()) {
            webhook.dirty = true;
            webhook.save();
        }
    }

    fn next_wakeup(&self, now: i64) -> Duration {
        let mut wakeup = Duration::from_secs(3600);
        for route in &self.routes {
            if let Route::Webhook(webhook) = route {
                if let Some(at) = webhook.groups.next_flush_ms() {
                    wakeup = wakeup.min(Duration::from_millis(
                        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
                    ));
                }
                if webhook.dirty {
                    let since = webhook.last_save.map_or(SAVE_EVERY, |t| t.elapsed());
                    wakeup = wakeup.min(SAVE_EVERY.saturating_sub(since));
                }
            }
        }
        wakeup
    }

    fn save_dirty(&mut self, force: bool) {
        for route in &mut self.routes {
            if let Route::Webhook(webhook) = route {
                let due = webhook.last_save.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
                if webhook.dirty && (force || due) {
                    webhook.save();
                }
            }
        }
    }
}

impl WebhookRoute {
    fn flush(&mut self, key: &str, now: i64, external_url: &str) {
        if self.groups.is_backlogged(key) && self.outbox.is_full() {
            self.groups.postpone(key, now);
            return;
        }
        let notification = match self.groups.flush(key, now, external_url) {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                self.dirty = true;
                return;
            }
            Err(err) => {
                tracing::error!(receiver = %self.config.name, group = key, error = %err, "cannot build the notification");
                return;
            }
        };
        self.dirty = true;
        let pending_sets = (notification.firing.clone(), notification.resolved.clone());
        let payload = Payload::Webhook {
            group_key: notification.group_key,
            firing: notification.firing.into_iter().collect(),
            resolved: notification.resolved.into_iter().collect(),
            body: notification.body,
        };
        match self.outbox.push(payload) {
            Ok((seq, dropped)) => {
                let (firing, resolved) = pending_sets;
                self.groups.set_pending(
                    key,
                    Pending {
                        seq,
                        firing,
                        resolved,
                    },
                    now,
                );
                for entry in dropped {
                    if let Payload::Webhook { group_key, .. } = &entry.payload {
                        self.groups.dropped(group_key, entry.seq);
                    }
                }
            }
            Err(err) => {
                // Not accepted: the group tries again at its next flush.
                tracing::error!(receiver = %self.config.name, group = key, error = %err, "cannot write the notification to the outbox");
            }
        }
    }

    /// Persists the groups (tmp + fsync + rename). On failure the state stays dirty and is
    /// retried; a delivered entry is then still removed, so a crash before the next successful
    /// save may repeat that notification once.
    fn save(&mut self) {
        let state = StateFile {
            version: STATE_VERSION,
            groups: self.groups.snapshot(),
        };
        let result = serde_json::to_vec(&state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| files::write_atomic(&self.state_path, &bytes));
        self.last_save = Some(Instant::now());
        match result {
            Ok(()) => self.dirty = false,
            Err(err) => {
                tracing::error!(receiver = %self.config.name, path = %self.state_path.display(), error = %err, "cannot save notification state");
            }
        }
    }
}

/// Reads a state file; a missing one is an empty state, an unreadable one is set aside as
/// `groups.json.corrupt` (start-up never fails on it; at worst some notifications repeat).
fn load_state(path: &Path, receiver: &str) -> Vec<GroupState> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            tracing::error!(receiver, path = %path.display(), error = %err, "cannot read notification state; starting without it");
            return Vec::new();
        }
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(state) if state.version == STATE_VERSION => state.groups,
        Ok(state) => {
            tracing::error!(
                receiver,
                version = state.version,
                "notification state has an unknown version; starting without it"
            );
            Vec::new()
        }
        Err(err) => {
            let aside = path.with_extension("json.corrupt");
            tracing::error!(receiver, path = %path.display(), error = %err, aside = %aside.display(), "unreadable notification state set aside; starting without it");
            if let Err(err) = std::fs::rename(path, &aside) {
                tracing::error!(receiver, error = %err, "cannot set the unreadable state aside");
            }
            Vec::new()
        }
    }
}

/// Marks each group with an undelivered outbox entry as pending, and discards entries the state
/// shows as delivered already (a crash between recording the delivery and removing the entry).
fn attach_outbox(groups: &mut WebhookGroups, outbox: &Outbox, now: i64) -> std::io::Result<()> {
    let mut latest: BTreeMap<String, Arc<Entry>> = BTreeMap::new();
    for entry in outbox.entries() {
        let Payload::Webhook { group_key, .. } = &entry.payload else {
            continue;
        };
        if entry.seq <= groups.delivered_seq(group_key) {
            outbox.discard(entry.seq)?;
            continue;
        }
        latest.insert(group_key.clone(), entry.clone());
    }
    for (key, entry) in latest {
        if let Payload::Webhook {
            firing, resolved, ..
        } = &entry.payload
        {
            let pending = Pending {
                seq: entry.seq,
                firing: firing.iter().cloned().collect::<BTreeSet<_>>(),
                resolved: resolved.iter().cloned().collect::<BTreeSet<_>>(),
            };
            groups.restore_pending(&key, pending, now);
        }
    }
    Ok(())
}

/// Entries written while the receiver had the other `type` would make no sense to it now.
fn discard_other_kind(config: &ReceiverConfig, outbox: &Outbox) -> std::io::Result<()> {
    for entry in outbox.entries() {
        let kind = match entry.payload {
            Payload::Webhook { .. } => ReceiverKind::Webhook,
            Payload::Alertmanager { .. } => ReceiverKind::Alertmanager,
        };
        if kind != config.kind {
            tracing::warn!(receiver = %config.name, seq = entry.seq, "outbox entry written for a {} receiver; this one is now {}: dropped", kind.as_str(), config.kind.as_str());
            outbox.discard(entry.seq)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
