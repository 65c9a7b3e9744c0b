//! Webhook aggregation groups: Alertmanager's grouping, timing and deduplication, for one
//! receiver.
//!
//! Alerts are stored per group (by fingerprint; an alert is resolved once its `ends_at` passed).
//! A new group is flushed after `group_wait` (at once if an alert already waited that long since
//! it started), then every `group_interval`. A flush compares the group with what was last
//! *delivered* (the notification log entry) and notifies when a firing alert is new, when every
//! alert resolved, when (with `send_resolved`) an alert newly resolved, or when `repeat_interval`
//! passed. While a group's notification waits in the outbox its flushes do nothing, so an outage
//! produces that notification once. Resolved alerts leave the group once notified.
//!
//! This module is pure bookkeeping (no I/O, time passed in), so the rules are tested alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::ReceiverConfig;
use super::matcher::format_matchers;
use super::message::{self, WebhookInput};
use crate::alert::{Alert, LabelSet};

/// What a group's last delivered notification reported (Alertmanager's notification log entry).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct NotifyLog {
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    /// When it was delivered, Unix ms.
    pub at_ms: i64,
    /// The outbox sequence number of the delivered notification (0 when nothing was sent).
    pub seq: u64,
}

/// A notification of the group waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pending {
    pub seq: u64,
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
}

/// One aggregation group.
#[derive(Debug)]
pub(super) struct Group {
    pub labels: LabelSet,
    pub alerts: BTreeMap<String, Alert>,
    pub notified: Option<NotifyLog>,
    pub pending: Option<Pending>,
    pub next_flush_ms: i64,
    pub has_flushed: bool,
    /// Its last notification was dropped from a full outbox; it notifies again only when the
    /// outbox has room (otherwise groups would keep evicting each other's notifications).
    pub backlogged: bool,
}

/// A notification a flush decided to send.
#[derive(Debug)]
pub(super) struct Notification {
    pub group_key: String,
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    pub body: String,
}

/// The persisted form of a group: its alerts and notification log (pending notifications live
/// in the outbox).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct GroupState {
    pub key: String,
    pub labels: LabelSet,
    pub alerts: Vec<Alert>,
    pub notified: Option<NotifyLog>,
}

/// All groups of one webhook receiver.
pub(super) struct WebhookGroups {
    config: Arc<ReceiverConfig>,
    route_key: String,
    groups: BTreeMap<String, Group>,
}

impl WebhookGroups {
    pub fn new(config: Arc<ReceiverConfig>) -> Self {
        // Alertmanager's group key starts with the route's key: `{}` for the root route,
        // `{}/{matchers}` for a child route with matchers.
        let route_key = if config.matchers.is_empty() {
            "{}".to_string()
        } else {
            format!("{{}}/{}", format_matchers(&config.matchers))
        };
        WebhookGroups {
            config,
            route_key,
            groups: BTreeMap::new(),
        }
    }

    fn ms(duration: std::time::Duration) -> i64 {
        i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
    }

    /// The group an alert with these labels belongs to: its key and group labels.
    pub fn group_of(&self, labels: &LabelSet) -> (String, LabelSet) {
        let group_labels: LabelSet = if self.config.groups_by_all() {
            labels.clone()
        } else {
            self.config
                .group_by
                .iter()
                .filter_map(|name| labels.get_key_value(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        (
            format!(
                "{}:{}",
                self.route_key,
                message::format_label_set(&group_labels)
            ),
            group_labels,
        )
    }

    fn group_entry(&mut self, key: String, labels: LabelSet, now_ms: i64) -> &mut Group {
        let wait = Self::ms(self.config.group_wait);
        self.groups.entry(key).or_insert_with(|| Group {
            labels,
            alerts: BTreeMap::new(),
            notified: None,
            pending: None,
            next_flush_ms: now_ms.saturating_add(wait),
            has_flushed: false,
            backlogged: false,
        })
    }

    /// Stores an alert (the receiver's matchers already accepted it); the latest state of a
    /// fingerprint wins. A resolved alert the group does not hold and never reported firing is
    /// ignored: the evaluator re-sends resolutions for 15 minutes, long after the group told the
    /// receiver and let the alert go. Returns whether anything was stored.
    pub fn insert(&mut self, alert: Alert, now_ms: i64) -> bool {
        let (key, labels) = self.group_of(&alert.labels);
        let fingerprint = alert.fingerprint();
        if alert.is_resolved_at(now_ms) {
            let known = self.groups.get(&key).is_some_and(|g| {
                g.alerts.contains_key(&fingerprint)
                    || g.notified
                        .as_ref()
                        .is_some_and(|n| n.firing.contains(&fingerprint))
                    || g.pending
                        .as_ref()
                        .is_some_and(|p| p.firing.contains(&fingerprint))
            });
            if !known {
                return false;
            }
        }
        let wait = Self::ms(self.config.group_wait);
        let group = self.group_entry(key, labels.clone(), now_ms);
        // A group recreated from an outbox entry alone does not know its labels yet.
        group.labels = labels;
        // As Alertmanager: an alert that has already waited group_wait since it started does not
        // wait again for the group's first notification.
        if !group.has_flushed && alert.starts_at_ms.saturating_add(wait) <= now_ms {
            group.next_flush_ms = group.next_flush_ms.min(now_ms);
        }
        group.alerts.insert(fingerprint, alert);
        true
    }

    /// The earliest time a group is due to flush.
    pub fn next_flush_ms(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }

    /// Keys of groups due at `now_ms`.
    pub fn due(&self, now_ms: i64) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.next_flush_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Flushes one group. Returns the notification to queue, if any; the caller queues it and
    /// reports back with [`WebhookGroups::set_pending`]. Returns `Err` only when the body cannot
    /// be serialized.
    pub fn flush(
        &mut self,
        key: &str,
        now_ms: i64,
        external_url: &str,
    ) -> Result<Option<Notification>, serde_json::Error> {
        let interval = Self::ms(self.config.group_interval);
        let repeat = Self::ms(self.config.repeat_interval);
        let Some(group) = self.groups.get_mut(key) else {
            return Ok(None);
        };
        group.next_flush_ms = now_ms.saturating_add(interval);
        if group.pending.is_some() {
            // Exactly once through an outage: the undelivered notification stands for this group.
            return Ok(None);
        }
        group.has_flushed = true;
        let (firing, resolved): (BTreeSet<String>, BTreeSet<String>) = {
            let (resolved, firing): (Vec<_>, Vec<_>) = group
                .alerts
                .iter()
                .partition(|(_, a)| a.is_resolved_at(now_ms));
            (
                firing.into_iter().map(|(fp, _)| fp.clone()).collect(),
                resolved.into_iter().map(|(fp, _)| fp.clone()).collect(),
            )
        };
        if !needs_update(
            group.notified.as_ref(),
            &firing,
            &resolved,
            self.config.send_resolved,
            repeat,
            now_ms,
        ) {
            remove_resolved(group, &resolved, now_ms);
            if group.alerts.is_empty() {
                self.groups.remove(key);
            }
            return Ok(None);
        }
        let to_send: Vec<&Alert> = group
            .alerts
            .values()
            .filter(|a| self.config.send_resolved || !a.is_resolved_at(now_ms))
            .collect();
        if to_send.is_empty() {
            // Only resolved alerts and send_resolved = false: nothing to send, but remember they
            // were handled (Alertmanager logs them too), so the firing ones are not announced again.
            let seq = group.notified.as_ref().map_or(0, |n| n.seq);
            group.notified = Some(NotifyLog {
                firing,
                resolved: resolved.clone(),
                at_ms: now_ms,
                seq,
            });
            remove_resolved(group, &resolved, now_ms);
            if group.alerts.is_empty() {
                self.groups.remove(key);
            }
            return Ok(None);
        }
        let input = WebhookInput {
            receiver: &self.config.name,
            group_key: key,
            group_labels: &group.labels,
            external_url,
            max_alerts: self.config.max_alerts,
            now_ms,
        };
        let body = message::webhook_body(&input, &to_send)?;
        Ok(Some(Notification {
            group_key: key.to_string(),
            firing,
            resolved,
            body,
        }))
    }

    /// Records that a group's notification is in the outbox under `seq`.
    pub fn set_pending(&mut self, key: &str, pending: Pending, now_ms: i64) {
        let group = self.group_entry(key.to_string(), LabelSet::new(), now_ms);
        group.has_flushed = true;
        group.backlogged = false;
        group.pending = Some(pending);
    }

    /// Whether the group's last notification was dropped undelivered.
    pub fn is_backlogged(&self, key: &str) -> bool {
        self.groups.get(key).is_some_and(|g| g.backlogged)
    }

    /// Skips a due flush (the outbox is full), trying again after `group_interval`.
    pub fn postpone(&mut self, key: &str, now_ms: i64) {
        let interval = Self::ms(self.config.group_interval);
        if let Some(group) = self.groups.get_mut(key) {
            group.next_flush_ms = now_ms.saturating_add(interval);
        }
    }

    /// The receiver took (or permanently refused) notification `seq`: it becomes the group's
    /// notification log entry, and the resolved alerts it reported leave the group.
    pub fn delivered(&mut self, key: &str, seq: u64, now_ms: i64) -> bool {
        let Some(group) = self.groups.get_mut(key) else {
            return false;
        };
        let Some(pending) = group.pending.take_if(|p| p.seq == seq) else {
            return false;
        };
        remove_resolved(group, &pending.resolved, now_ms);
        group.notified = Some(NotifyLog {
            firing: pending.firing,
            resolved: pending.resolved,
            at_ms: now_ms,
            seq,
        });
        true
    }

    /// Notification `seq` was dropped undelivered (outbox full): the group notifies afresh at
    /// its next flush.
    pub fn dropped(&mut self, key: &str, seq: u64) {
        if let Some(group) = self.groups.get_mut(key)
            && group.pending.take_if(|p| p.seq == seq).is_some()
        {
            group.backlogged = true;
        }
    }

    /// The sequence number `key`'s last delivered notification had (to recognise an outbox
    /// entry that was delivered just before a crash).
    pub fn delivered_seq(&self, key: &str) -> u64 {
        self.groups
            .get(key)
            .and_then(|g| g.notified.as_ref())
            .map_or(0, |n| n.seq)
    }

    /// Highest sequence number any notification log entry refers to.
    pub fn max_seq(&self) -> u64 {
        self.groups
            .values()
            .filter_map(|g| g.notified.as_ref())
            .map(|n| n.seq)
            .max()
            .unwrap_or(0)
    }

    /// Number of groups.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// The persisted form of every group.
    pub fn snapshot(&self) -> Vec<GroupState> {
        self.groups
            .iter()
            .map(|(key, g)| GroupState {
                key: key.clone(),
                labels: g.labels.clone(),
                alerts: g.alerts.values().cloned().collect(),
                notified: g.notified.clone(),
            })
            .collect()
    }

    /// Restores persisted groups under the current configuration: alerts are routed again (a
    /// changed `group_by` or matchers moves or drops them) and notification logs kept. Restored groups flush after `group_wait`, giving the evaluator
    /// time to send the alerts that still fire before anything is judged resolved.
    pub fn restore(&mut self, states: Vec<GroupState>, now_ms: i64) {
        for state in states {
            for alert in state.alerts {
                if self.config.accepts(&alert.labels) {
                    let (key, labels) = self.group_of(&alert.labels);
                    let group = self.group_entry(key, labels, now_ms);
                    group.has_flushed = true;
                    group.alerts.insert(alert.fingerprint(), alert);
                }
            }
            // Keep the log even when no alert is left in the group: it tells recovery which
            // outbox entry was delivered already. An empty group is removed at its first flush.
            if let Some(log) = state.notified {
                let group = self.group_entry(state.key, state.labels, now_ms);
                group.has_flushed = true;
                group.notified = Some(log);
            }
        }
    }

    /// Attaches a recovered outbox entry to its group (creating it if needed).
    pub fn restore_pending(&mut self, key: &str, pending: Pending, now_ms: i64) {
        let group = self.group_entry(key.to_string(), LabelSet::new(), now_ms);
        group.has_flushed = true;
        group.pending = Some(pending);
    }

    /// Read access for tests and status.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Group> {
        self.groups.get(key)
    }
}

/// Alertmanager's deduplication rule (`DedupStage.needsUpdate`), against what was delivered.
fn needs_update(
    last: Option<&NotifyLog>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(last) = last else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&last.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver if it was told about firing alerts (even
        // without send_resolved, so the log forgets them). If it was not, it never knew.
        return !last.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&last.resolved) {
        return true;
    }
    last.at_ms.saturating_add(repeat_ms) <= now_ms
}

/// Removes the given resolved alerts unless they fire again by now.
fn remove_resolved(group: &mut Group, fingerprints: &BTreeSet<String>, now_ms: i64) {
    group
        .alerts
        .retain(|fp, alert| !(fingerprints.contains(fp) && alert.is_resolved_at(now_ms)));
}

#[cfg(test)]
mod tests;
