//! The per-receiver delivery task: sends outbox entries in order over HTTP, retrying what may
//! succeed later and dropping what never will.
//!
//! Retried: timeouts, connection errors, 5xx and 429, with exponential backoff (doubling from
//! `initial_backoff` to `max_backoff`, "equal jitter": half fixed, half random; a longer
//! `Retry-After` in seconds is honoured). Anything else that is not 2xx (4xx, and 3xx since
//! redirects are not followed) is a permanent failure: logged, counted, removed. A webhook
//! entry is removed only after the dispatcher recorded it as delivered in its state file.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use sha2::Sha256;

use super::clock::now_ms;
use super::config::ReceiverConfig;
use super::dispatch::Command;
use super::error::NotifyError;
use super::options::NotifierOptions;
use super::outbox::{Entry, Outbox, Payload};
use super::{files, message};

/// Header carrying the body's HMAC-SHA256 when the receiver has an `hmac_secret`.
pub const SIGNATURE_HEADER: &str = "X-Lumen-Signature";

/// Delivery counters and the latest outcome of one receiver, for status output.
#[derive(Clone, Debug, Default)]
pub(super) struct DeliveryStats {
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
}

/// How one attempt ended.
enum Attempt {
    Success,
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Failed(String),
}

/// Sends one receiver's outbox entries.
pub(super) struct DeliveryTask {
    index: usize,
    config: Arc<ReceiverConfig>,
    url: Url,
    headers: HeaderMap,
    client: reqwest::Client,
    outbox: Arc<Outbox>,
    stats: Arc<Mutex<DeliveryStats>>,
    commands: mpsc::Sender<Command>,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl DeliveryTask {
    pub fn new(
        index: usize,
        config: Arc<ReceiverConfig>,
        outbox: Arc<Outbox>,
        stats: Arc<Mutex<DeliveryStats>>,
        commands: mpsc::Sender<Command>,
        options: &NotifierOptions,
    ) -> Result<Self, NotifyError> {
        let invalid = |message: String| NotifyError::InvalidConfig {
            receiver: config.name.clone(),
            message,
        };
        let url = config.target_url()?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(format!("header {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| invalid(format!("header {name:?}: {e}")))?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Lumen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(DeliveryTask {
            index,
            config,
            url,
            headers,
            client,
            outbox,
            stats,
            commands,
            initial_backoff: options.initial_backoff,
            max_backoff: options.max_backoff.max(options.initial_backoff),
        })
    }

    /// Delivers entries until the task is aborted (shutdown). Aborting at any await point is
    /// safe: an entry leaves the outbox only after it was delivered and recorded.
    pub async fn run(self) {
        loop {
            let entry = self.outbox.next().await;
            if !self.deliver(&entry).await {
                // Without the dispatcher a delivered webhook entry cannot be recorded; sending it
                // again and again would flood the receiver. It stays for the next start.
                tracing::error!(receiver = %self.config.name, "notification dispatcher stopped; delivery paused until restart");
                return;
            }
        }
    }

    /// Delivers one entry, retrying as long as it takes. Returns false when the dispatcher is gone.
    async fn deliver(&self, entry: &Entry) -> bool {
        let body = match &entry.payload {
            Payload::Webhook { body, .. } => body.clone(),
            Payload::Alertmanager { alerts } => match message::alertmanager_body(alerts) {
                Ok(body) => body,
                Err(err) => {
                    self.failed(format!("cannot serialize the alerts: {err}"));
                    return self.finish(entry).await;
                }
            },
        };
        let receiver = self.config.name.clone();
        let mut backoff = self.initial_backoff;
        loop {
            let started = Instant::now();
            let attempt = self.attempt(&body).await;
            metrics::histogram!("lumen_notification_latency_seconds", "receiver" => receiver.clone())
                .record(started.elapsed().as_secs_f64());
            match attempt {
                Attempt::Success => {
                    metrics::counter!("lumen_notification_attempts_total", "receiver" => receiver.clone(), "outcome" => "success").increment(1);
                    metrics::counter!("lumen_notifications_sent_total", "receiver" => receiver.clone()).increment(1);
                    {
                        let mut stats = self.stats.lock();
                        stats.delivered += 1;
                        stats.last_success_ms = Some(now_ms());
                    }
                    tracing::debug!(receiver, seq = entry.seq, "notification delivered");
                    return self.finish(entry).await;
                }
                Attempt::Failed(error) => {
                    self.failed(error);
                    return self.finish(entry).await;
                }
                Attempt::Retry { error, retry_after } => {
                    metrics::counter!("lumen_notification_attempts_total", "receiver" => receiver.clone(), "outcome" => "retry").increment(1);
                    let delay = jittered(backoff)
                        .max(retry_after.unwrap_or_default())
                        .min(self.max_backoff);
                    tracing::warn!(receiver, seq = entry.seq, error, retry_in = ?delay, "notification not delivered; will retry");
                    self.record_error(error);
                    tokio::time::sleep(delay).await;
                    backoff = backoff.saturating_mul(2).min(self.max_backoff);
                }
            }
        }
    }

    async fn attempt(&self, body: &str) -> Attempt {
        let mut headers = self.headers.clone();
        if let Some(secret) = &self.config.hmac_secret {
            match signature(secret, body.as_bytes()).and_then(|s| HeaderValue::from_str(&s).ok()) {
                Some(value) => {
                    headers.insert(SIGNATURE_HEADER, value);
                }
                None => return Attempt::Failed("cannot compute the HMAC signature".into()),
            }
        }
        let request = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body.to_owned());
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_builder() => {
                return Attempt::Failed(format!("invalid request: {err}"));
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Attempt::Retry {
                    error: format!("{kind}: {}", error_chain(&err)),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Success;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let error = format!("HTTP {status}{}", response_excerpt(response).await);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Failed(error)
        }
    }

    fn failed(&self, error: String) {
        metrics::counter!("lumen_notification_attempts_total", "receiver" => self.config.name.clone(), "outcome" => "failed").increment(1);
        tracing::error!(receiver = %self.config.name, error, "notification refused by the receiver; dropped (not retried)");
        self.stats.lock().failed += 1;
        self.record_error(error);
    }

    fn record_error(&self, error: String) {
        let mut stats = self.stats.lock();
        stats.last_error = Some(error);
        stats.last_error_ms = Some(now_ms());
    }

    /// Takes a delivered or refused entry out of the outbox. For a webhook entry the dispatcher
    /// first records it as the group's last notification (and persists that); if the dispatcher
    /// is gone (shutting down) the entry stays for the next start and this returns false.
    async fn finish(&self, entry: &Entry) -> bool {
        if let Payload::Webhook { group_key, .. } = &entry.payload {
            let (done, recorded) = tokio::sync::oneshot::channel();
            let command = Command::Delivered {
                receiver: self.index,
                seq: entry.seq,
                group_key: group_key.clone(),
                done,
            };
            if self.commands.send(command).is_err() || recorded.await.is_err() {
                self.outbox.release(entry.seq);
                return false;
            }
        }
        let path = self.outbox.complete(entry.seq);
        let removal = tokio::task::spawn_blocking(move || files::remove_durable(&path)).await;
        if let Ok(Err(err)) | Err(err) = removal.map_err(std::io::Error::other) {
            tracing::error!(receiver = %self.config.name, seq = entry.seq, error = %err, "cannot remove a delivered outbox entry; it may be sent again after a restart");
        }
        true
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub(super) fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Half the backoff fixed, half random, so receivers coming back are not hit in lockstep.
fn jittered(backoff: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    Duration::try_from_secs_f64(backoff.as_secs_f64() * (0.5 + 0.5 * fraction)).unwrap_or(backoff)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The start of an error response body, for the status and the log.
async fn response_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 512 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(512);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
