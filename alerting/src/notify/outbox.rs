//! The per-receiver outbox: notifications accepted for delivery, one fsync'd file each, delivered
//! in order and removed once the receiver took them.
//!
//! ```text
//! <receiver dir>/outbox/00000000000000000042.json   {"seq":42,"created_ms":..,"payload":{..}}
//! ```
//!
//! The dispatcher thread is the only writer of new entries; the receiver's delivery task takes
//! the oldest entry (marking it in flight) and removes it when done. A file per entry keeps
//! removal and recovery trivial; at the volumes notifications come in (one per group change, or
//! one coalesced push), the fsync per entry is cheap.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::files;
use crate::alert::Alert;

/// What one outbox entry delivers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Payload {
    /// One notification of one webhook group. `body` is exactly what is sent (and signed);
    /// `firing`/`resolved` are the fingerprints it reports, recorded as "notified" once delivered.
    Webhook {
        group_key: String,
        firing: Vec<String>,
        resolved: Vec<String>,
        body: String,
    },
    /// Alerts to push to an Alertmanager, latest state per fingerprint.
    Alertmanager { alerts: Vec<Alert> },
}

/// One accepted notification.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Entry {
    /// Position in the receiver's queue; never reused.
    pub seq: u64,
    /// When the entry was accepted, Unix ms.
    pub created_ms: i64,
    /// What to deliver.
    pub payload: Payload,
}

struct Queue {
    entries: VecDeque<Arc<Entry>>,
    next_seq: u64,
    in_flight: Option<u64>,
}

/// A receiver's durable queue of notifications.
pub(super) struct Outbox {
    receiver: String,
    dir: PathBuf,
    capacity: usize,
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    dropped: AtomicU64,
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` and recovers its entries: leftover temporary
    /// files are removed, unreadable entries renamed to `*.corrupt` and counted as dropped, and
    /// entries beyond `capacity` dropped oldest first.
    pub fn open(dir: &Path, receiver: &str, capacity: usize) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        let mut entries = BTreeMap::new();
        let mut dropped = 0u64;
        for dir_entry in fs::read_dir(dir)? {
            let path = dir_entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.ends_with(".tmp") {
                // A write that never completed: it was never accepted.
                fs::remove_file(&path)?;
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match fs::read(&path).map(|bytes| serde_json::from_slice::<Entry>(&bytes)) {
                Ok(Ok(entry)) => {
                    entries.insert(entry.seq, Arc::new(entry));
                }
                Ok(Err(err)) => {
                    tracing::error!(receiver, path = %path.display(), error = %err, "unreadable outbox entry; renamed to *.corrupt and dropped");
                    fs::rename(&path, path.with_extension("corrupt"))?;
                    dropped += 1;
                }
                Err(err) => return Err(err),
            }
        }
        let next_seq = entries.keys().next_back().map_or(1, |seq| seq + 1);
        let mut entries: VecDeque<Arc<Entry>> = entries.into_values().collect();
        while entries.len() > capacity.max(1) {
            if let Some(oldest) = entries.pop_front() {
                files::remove_durable(&entry_path(dir, oldest.seq))?;
                dropped += 1;
            }
        }
        files::sync_dir(dir)?;
        let outbox = Outbox {
            receiver: receiver.to_string(),
            dir: dir.to_path_buf(),
            capacity: capacity.max(1),
            queue: Mutex::new(Queue {
                entries,
                next_seq,
                in_flight: None,
            }),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
        };
        if dropped > 0 {
            outbox.count_dropped(dropped);
        }
        outbox.update_gauge();
        Ok(outbox)
    }

    /// Entries recovered or queued, oldest first (a snapshot).
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.queue.lock().entries.iter().cloned().collect()
    }

    /// Number of queued entries, including one being delivered.
    pub fn len(&self) -> usize {
        self.queue.lock().entries.len()
    }

    /// Whether the next push drops the oldest entry.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Entries dropped since start (capacity, corruption).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Makes sure new entries get sequence numbers above `seq` (sequence numbers recorded in the
    /// dispatcher state must never be reused after the outbox emptied).
    pub fn reserve_seq_above(&self, seq: u64) {
        let mut queue = self.queue.lock();
        queue.next_seq = queue.next_seq.max(seq.saturating_add(1));
    }

    /// Writes `payload` durably and queues it. Returns the entry's sequence number and the entries
    /// dropped to stay within capacity (oldest first, never the one in flight). Blocking: call
    /// from the dispatcher thread.
    pub fn push(&self, payload: Payload) -> io::Result<(u64, Vec<Arc<Entry>>)> {
        let seq = {
            let mut queue = self.queue.lock();
            let seq = queue.next_seq;
            queue.next_seq += 1;
            seq
        };
        let entry = Arc::new(Entry {
            seq,
            created_ms: super::clock::now_ms(),
            payload,
        });
        let bytes = serde_json::to_vec(&*entry).map_err(io::Error::other)?;
        files::write_atomic(&entry_path(&self.dir, seq), &bytes)?;
        let dropped = {
            let mut queue = self.queue.lock();
            queue.entries.push_back(entry);
            let mut dropped = Vec::new();
            while queue.entries.len() > self.capacity {
                let in_flight = queue.in_flight;
                let Some(index) = queue.entries.iter().position(|e| Some(e.seq) != in_flight)
                else {
                    break;
                };
                if let Some(oldest) = queue.entries.remove(index) {
                    dropped.push(oldest);
                }
            }
            dropped
        };
        for entry in &dropped {
            tracing::warn!(receiver = %self.receiver, seq = entry.seq, capacity = self.capacity, "outbox full; oldest undelivered notification dropped");
            files::remove_durable(&entry_path(&self.dir, entry.seq))?;
        }
        if !dropped.is_empty() {
            self.count_dropped(dropped.len() as u64);
        }
        self.update_gauge();
        self.wake.notify_one();
        Ok((seq, dropped))
    }

    /// Queues alerts for an Alertmanager, coalescing with the newest undelivered push that is not
    /// in flight (latest state per fingerprint wins), so an outage keeps at most two entries per
    /// Alertmanager rather than one per evaluation. Blocking: call from the dispatcher thread.
    pub fn push_alertmanager(&self, alerts: Vec<Alert>) -> io::Result<()> {
        let mergeable = {
            let queue = self.queue.lock();
            queue
                .entries
                .back()
                .filter(|e| Some(e.seq) != queue.in_flight)
                .and_then(|e| match &e.payload {
                    Payload::Alertmanager { alerts } => Some((e.seq, alerts.clone())),
                    Payload::Webhook { .. } => None,
                })
        };
        let Some((old_seq, old_alerts)) = mergeable else {
            self.push(Payload::Alertmanager { alerts })?;
            return Ok(());
        };
        let mut merged: BTreeMap<String, Alert> = old_alerts
            .into_iter()
            .map(|a| (a.fingerprint(), a))
            .collect();
        for alert in alerts {
            merged.insert(alert.fingerprint(), alert);
        }
        // Write the merged push as a new entry, then retire the old one unless delivery picked it
        // up meanwhile (then both go out; Alertmanager takes a repeated push as a refresh).
        self.push(Payload::Alertmanager {
            alerts: merged.into_values().collect(),
        })?;
        let retired = {
            let mut queue = self.queue.lock();
            let in_flight = queue.in_flight;
            match queue.entries.iter().position(|e| e.seq == old_seq) {
                Some(index) if in_flight != Some(old_seq) => queue.entries.remove(index).is_some(),
                _ => false,
            }
        };
        if retired {
            files::remove_durable(&entry_path(&self.dir, old_seq))?;
            self.update_gauge();
        }
        Ok(())
    }

    /// Waits for the oldest entry and marks it in flight. Only the receiver's delivery task calls
    /// this, so an entry is never delivered twice concurrently.
    pub async fn next(&self) -> Arc<Entry> {
        loop {
            {
                let mut queue = self.queue.lock();
                if let Some(front) = queue.entries.front().cloned() {
                    queue.in_flight = Some(front.seq);
                    return front;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a push between the check and this
            // await is not missed.
            self.wake.notified().await;
        }
    }

    /// Removes a delivered (or permanently refused) entry from the queue and returns the file to
    /// remove (the caller removes it off the async workers).
    pub fn complete(&self, seq: u64) -> PathBuf {
        {
            let mut queue = self.queue.lock();
            if queue.in_flight == Some(seq) {
                queue.in_flight = None;
            }
            if let Some(index) = queue.entries.iter().position(|e| e.seq == seq) {
                queue.entries.remove(index);
            }
        }
        self.update_gauge();
        entry_path(&self.dir, seq)
    }

    /// Removes an entry found to be delivered already (recovery after a crash between the
    /// receiver's success and the removal). Blocking.
    pub fn discard(&self, seq: u64) -> io::Result<()> {
        let path = self.complete(seq);
        files::remove_durable(&path)
    }

    /// Marks the in-flight entry as not in flight (delivery stopped before finishing).
    pub fn release(&self, seq: u64) {
        let mut queue = self.queue.lock();
        if queue.in_flight == Some(seq) {
            queue.in_flight = None;
        }
    }

    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("lumen_notification_attempts_total", "receiver" => self.receiver.clone(), "outcome" => "dropped")
            .increment(n);
    }

    fn update_gauge(&self) {
        let len = self.len();
        metrics::gauge!("lumen_notification_outbox_entries", "receiver" => self.receiver.clone())
            .set(len as f64);
    }
}

fn entry_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.json"))
}

#[cfg(test)]
mod tests;
