//! The path every export request takes once its bytes are in hand, whatever the protocol:
//! decode, convert, write to storage, count.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use lumen_storage::{Storage, StorageError, Table};

use crate::IngestConfig;
use crate::convert::{self, Converted};
use crate::error::IngestError;
use crate::signal::OtlpSignal;
use crate::spanmetrics::SpanMetrics;
use crate::telemetry::{self, Protocol};

/// Requests up to this size (decoded, estimated) are decoded and converted on the async worker
/// (tens of µs; no thread hand-off); larger ones on the blocking pool. The HTTP workers also answer
/// queries: a conversion of milliseconds there would stall the queries queued behind it, and its
/// thousands of small allocations would leave the worker's allocator free lists running through
/// memory that is cold by the time a query allocates from them (measured: a PromQL query right
/// after a remote-write load took 0.26 ms instead of 0.15).
const INLINE_CONVERSION_BYTES: usize = 16 * 1024;

/// What an accepted export request reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Items rejected by validation.
    pub rejected: u64,
    /// The partial-success message (empty when there is nothing to say).
    pub message: String,
}

/// The future of a [`BatchSink::write`].
pub(crate) type WriteFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>>;

/// What the receivers need from storage: a durable write. [`Storage`] is the real one; tests use a
/// fake, so the whole receive path is tested without an engine.
pub(crate) trait BatchSink: Send + Sync + 'static {
    /// Writes `batch` (in `table`'s schema); resolves once it is durable and queryable.
    fn write(&self, table: Table, batch: RecordBatch) -> WriteFuture<'_>;
}

impl BatchSink for Storage {
    fn write(&self, table: Table, batch: RecordBatch) -> WriteFuture<'_> {
        Box::pin(Storage::write(self, table, batch))
    }
}

/// Writes converted export requests to storage. Shared by the HTTP and gRPC receivers.
pub(crate) struct Exporter {
    sink: Arc<dyn BatchSink>,
    config: IngestConfig,
    /// Conversions on the blocking pool at once: one per core. Requests beyond wait here, holding
    /// only their body, rather than each taking a thread and its decoded copies.
    conversions: Arc<tokio::sync::Semaphore>,
    /// The span-metrics state, when span metrics are derived (`IngestConfig::span_metrics`).
    span_metrics: Option<Arc<SpanMetrics>>,
}

impl Exporter {
    pub(crate) fn new(sink: Arc<dyn BatchSink>, config: IngestConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Exporter {
            sink,
            span_metrics: config.span_metrics.then(|| Arc::new(SpanMetrics::new())),
            config,
            conversions: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    pub(crate) fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Decodes (with `decode`), converts and durably writes one request of signal `S`.
    ///
    /// `size_hint` is the expected decoded size in bytes, used to choose where conversion runs.
    /// Returns once the accepted items are durable and queryable.
    pub(crate) async fn export<S: OtlpSignal>(
        &self,
        protocol: Protocol,
        size_hint: usize,
        decode: impl FnOnce() -> Result<S::Request, IngestError> + Send + 'static,
    ) -> Result<Outcome, IngestError> {
        let limits = self.config.limits();
        let now_ns = now_ns();
        let span_metrics = self.span_metrics.clone();
        let work = move || -> Result<(Converted, Option<Converted>), IngestError> {
            let request = decode()?;
            let converted = S::convert(&request, &limits, now_ns).map_err(|e| {
                IngestError::Internal(format!("building the {} batch: {e}", S::TABLE))
            })?;
            let derived = span_metrics
                .as_deref()
                .and_then(|m| S::derive(&request, m, &limits, now_ns))
                .map(|derived| convert::metrics(&derived, &limits, now_ns))
                .transpose()
                .map_err(|e| IngestError::Internal(format!("building the span metrics: {e}")))?;
            Ok((converted, derived))
        };
        let (converted, derived) = if size_hint <= INLINE_CONVERSION_BYTES {
            work()?
        } else {
            let permit = self
                .conversions
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| IngestError::Internal(format!("conversion slots closed: {e}")))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|e| IngestError::Internal(format!("conversion task failed: {e}")))??
        };
        let message = converted.message();
        let Converted {
            batch,
            accepted,
            rejected,
            ..
        } = converted;
        // The derived metrics are written beside the request's rows, in the same WAL commit
        // when the two arrive together. Should the rows fail while the metrics succeed, the
        // client retries and those spans are counted twice in the derived counters: an
        // over-count in derived data, never a loss of acknowledged data.
        let derived = derived.and_then(|d| d.batch);
        let (written, derived_written) = tokio::join!(
            async {
                match batch {
                    Some(batch) => self.sink.write(S::TABLE, batch).await,
                    None => Ok(()),
                }
            },
            async {
                match derived {
                    Some(batch) => self.sink.write(Table::Metrics, batch).await,
                    None => Ok(()),
                }
            }
        );
        if let Err(error) = derived_written {
            telemetry::record_spanmetrics_failure();
            tracing::warn!(%error, "span metrics not written (the spans themselves were)");
        }
        if let Err(error) = written {
            // Nothing of this request was stored.
            telemetry::record_items(S::NAME, protocol, 0, accepted.saturating_add(rejected));
            return Err(error.into());
        }
        telemetry::record_items(S::NAME, protocol, accepted, rejected);
        if rejected > 0 {
            tracing::debug!(signal = S::NAME, rejected, %message, "OTLP export: items rejected");
        }
        Ok(Outcome { rejected, message })
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testing {
    //! A fake [`BatchSink`] for tests of the receivers.

    use std::sync::{Arc, Mutex};

    use arrow::record_batch::RecordBatch;
    use lumen_storage::{StorageError, Table};

    use super::{BatchSink, Exporter, WriteFuture};
    use crate::IngestConfig;

    /// Keeps every batch written, or fails every write with the error `fail` makes.
    pub(crate) struct FakeSink {
        written: Mutex<Vec<(Table, RecordBatch)>>,
        fail: Option<fn() -> StorageError>,
    }

    impl FakeSink {
        pub(crate) fn accepting() -> Arc<Self> {
            Arc::new(FakeSink {
                written: Mutex::new(Vec::new()),
                fail: None,
            })
        }

        pub(crate) fn failing(fail: fn() -> StorageError) -> Arc<Self> {
            Arc::new(FakeSink {
                written: Mutex::new(Vec::new()),
                fail: Some(fail),
            })
        }

        /// Rows written to `table` so far.
        pub(crate) fn rows(&self, table: Table) -> usize {
            let written = self.written.lock().expect("lock");
            written
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, b)| b.num_rows())
                .sum()
        }
    }

    impl BatchSink for FakeSink {
        fn write(&self, table: Table, batch: RecordBatch) -> WriteFuture<'_> {
            Box::pin(async move {
                if let Some(fail) = self.fail {
                    return Err(fail());
                }
                assert_eq!(batch.schema(), table.schema());
                self.written.lock().expect("lock").push((table, batch));
                Ok(())
            })
        }
    }

    pub(crate) fn exporter(sink: &Arc<FakeSink>, config: IngestConfig) -> Arc<Exporter> {
        Arc::new(Exporter::new(sink.clone(), config))
    }
}
