//! `QueryEngine`: the read-only SQL session over Lumen's tables, with memory and time limits.
//!
//! One DataFusion [`SessionContext`] serves every query. It is built with no table factories
//! (`CREATE EXTERNAL TABLE` cannot resolve a format), no file formats, URL tables off and the
//! local file system unregistered from the object store registry; [`super::readonly`] refuses
//! any statement that is not a query before and after planning.
//!
//! Queries run on the engine's own tokio runtime (`lumen-query-*` threads), never on the caller's:
//! a CPU-heavy query cannot stall OTLP ingest or the HTTP server, and a query past its time
//! limit is answered at once while its task is aborted (DataFusion stops at its next yield
//! point). The memory pool — spilling to disk disabled — is shared by all running queries, so
//! `memory_limit` bounds the query layer as a whole.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::{SendableRecordBatchStream, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{Stream, StreamExt};
use lumen_storage::{Storage, Table};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::readonly;
use crate::error::{QueryError, format_duration};
use crate::snapshot::SnapshotSource;
use crate::table::LumenTable;

/// Limits applied to every query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// A query running longer than this is cancelled (default 30 s).
    pub timeout: Duration,
    /// Bytes of memory all running queries may hold together in DataFusion's pool (sorts,
    /// aggregations, joins, collected results); default 1 GiB.
    pub memory_limit: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: Duration::from_secs(30),
            memory_limit: 1 << 30,
        }
    }
}

/// A complete query result.
#[derive(Debug)]
pub struct QueryOutput {
    /// The result's schema.
    pub schema: SchemaRef,
    /// The result rows.
    pub batches: Vec<RecordBatch>,
    /// Keeps the result's memory counted against the pool until the output is dropped.
    _reservation: Option<MemoryReservation>,
}

impl QueryOutput {
    /// A result not tied to any memory pool (for tests and fakes of consumers).
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        QueryOutput {
            schema,
            batches,
            _reservation: None,
        }
    }

    /// Total rows of the result.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Lumen's SQL engine. Share it in an `Arc`.
pub struct QueryEngine {
    ctx: SessionContext,
    config: QueryConfig,
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) inside another runtime; let it wind down alone.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl QueryEngine {
    /// An engine over the storage engine's tables.
    pub fn new(storage: Arc<Storage>, config: QueryConfig) -> Result<Self, QueryError> {
        Self::with_source(storage, config)
    }

    /// An engine over any [`SnapshotSource`] (the storage engine, or a fake in tests).
    pub fn with_source(
        source: Arc<dyn SnapshotSource>,
        config: QueryConfig,
    ) -> Result<Self, QueryError> {
        describe_metrics();
        let runtime_env = RuntimeEnvBuilder::new()
            .with_memory_limit(config.memory_limit, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        // No object store for the local file system: even a file-reading plan that slipped
        // past the checks would find nothing to read with. (Absent already is fine too.)
        let _ = runtime_env.deregister_object_store(ObjectStoreUrl::local_filesystem().as_ref());

        let session_config = SessionConfig::new().with_information_schema(true);
        let state = SessionStateBuilder::new()
            .with_config(session_config)
            .with_runtime_env(runtime_env)
            .with_default_features()
            .with_table_factories(HashMap::new())
            .with_file_formats(Vec::new())
            .build();
        let ctx = SessionContext::new_with_state(state);
        for table in Table::ALL {
            ctx.register_table(
                table.name(),
                Arc::new(LumenTable::new(table, Arc::clone(&source))),
            )?;
        }

        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lumen-query")
            .enable_all()
            .build()
            .map_err(|err| {
                QueryError::Internal(format!("cannot start the query runtime: {err}"))
            })?;
        Ok(QueryEngine {
            ctx,
            config,
            runtime: Some(runtime),
        })
    }

    /// Adds a read-only table provided by another part of Lumen (alerting's `alerts`).
    pub fn register_table(
        &self,
        name: &str,
        table: Arc<dyn datafusion::datasource::TableProvider>,
    ) -> Result<(), QueryError> {
        self.ctx.register_table(name, table)?;
        Ok(())
    }

    /// The engine's limits.
    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    /// Runs a query and collects its whole result (counted against the memory limit).
    pub async fn sql(&self, query: &str) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started) + self.config.timeout;
        let ctx = self.ctx.clone();
        let query = query.to_owned();
        let memory_limit = self.config.memory_limit;
        let result = match self.spawn(async move { collect(&ctx, &query, memory_limit).await }) {
            Ok(task) => self
                .join_before(deadline, task)
                .await
                .and_then(|result| result),
            Err(err) => Err(err),
        };
        record_outcome(outcome_label(result.as_ref().err()), started);
        result
    }

    /// Runs a query and returns its result as a stream of batches, for results too large to
    /// hold. The time limit covers planning and the whole stream.
    pub async fn sql_stream(&self, query: &str) -> Result<QueryStream, QueryError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started) + self.config.timeout;
        let ctx = self.ctx.clone();
        let query = query.to_owned();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (batch_tx, batch_rx) = mpsc::channel(2);
        let driver = async move {
            let mut stream = match start(&ctx, &query).await {
                Ok(stream) => stream,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            if ready_tx.send(Ok(stream.schema())).is_err() {
                return;
            }
            while let Some(item) = stream.next().await {
                let item = item.map_err(QueryError::from);
                let failed = item.is_err();
                if batch_tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        };
        let planned = match self.spawn(driver) {
            Ok(task) => match tokio::time::timeout_at(deadline, ready_rx).await {
                Ok(Ok(Ok(schema))) => Ok((schema, task)),
                Ok(Ok(Err(err))) => Err(err),
                // The driver ended without a word: it panicked.
                Ok(Err(_)) => Err(match task.await {
                    Err(err) => QueryError::Internal(format!("query task failed: {err}")),
                    Ok(()) => QueryError::Internal("query task ended unexpectedly".into()),
                }),
                Err(_) => {
                    task.abort();
                    Err(QueryError::Timeout(self.config.timeout))
                }
            },
            Err(err) => Err(err),
        };
        match planned {
            Ok((schema, task)) => Ok(QueryStream {
                schema,
                batches: batch_rx,
                task,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                timeout: self.config.timeout,
                started,
                finished: false,
            }),
            Err(err) => {
                record_outcome(outcome_label(Some(&err)), started);
                Err(err)
            }
        }
    }

    fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, QueryError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => Ok(runtime.spawn(future)),
            None => Err(QueryError::Internal("the query engine is shut down".into())),
        }
    }

    /// Waits for a query task until `deadline`, aborting it when the deadline passes first.
    async fn join_before<T>(
        &self,
        deadline: tokio::time::Instant,
        mut task: JoinHandle<T>,
    ) -> Result<T, QueryError> {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(QueryError::Internal(format!("query task failed: {err}"))),
            Err(_) => {
                task.abort();
                Err(QueryError::Timeout(self.config.timeout))
            }
        }
    }
}

/// Runs a query to completion, holding its result's memory in the pool.
async fn collect(
    ctx: &SessionContext,
    query: &str,
    memory_limit: usize,
) -> Result<QueryOutput, QueryError> {
    let mut stream = start(ctx, query).await?;
    let schema = stream.schema();
    let reservation = MemoryConsumer::new("query result").register(&ctx.runtime_env().memory_pool);
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        reservation.try_grow(batch.get_array_memory_size()).map_err(|err| {
            QueryError::ResourcesExhausted(format!(
                "the query result does not fit in the memory limit of {memory_limit} bytes; add \
                 a LIMIT or request format=ndjson or format=csv to stream it ({})",
                err.strip_backtrace()
            ))
        })?;
        batches.push(batch);
    }
    Ok(QueryOutput {
        schema,
        batches,
        _reservation: Some(reservation),
    })
}

/// Parses, checks, plans and starts one query.
async fn start(ctx: &SessionContext, query: &str) -> Result<SendableRecordBatchStream, QueryError> {
    if query.trim().is_empty() {
        return Err(QueryError::BadQuery(
            "empty query: send one SQL statement".into(),
        ));
    }
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(query, &dialect)?;
    readonly::check_statement(&statement)?;
    let plan = state.statement_to_plan(statement).await?;
    readonly::check_plan(&plan)?;
    let dataframe = ctx.execute_logical_plan(plan).await?;
    let task_ctx = Arc::new(dataframe.task_ctx());
    let physical = dataframe.create_physical_plan().await?;
    Ok(execute_stream(physical, task_ctx)?)
}

/// A running query's result stream. Ends with [`QueryError::Timeout`] when the time limit
/// passes; dropping it cancels the query.
pub struct QueryStream {
    schema: SchemaRef,
    batches: mpsc::Receiver<Result<RecordBatch, QueryError>>,
    /// Drives the query on the engine's runtime and feeds `batches`.
    task: JoinHandle<()>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    started: Instant,
    finished: bool,
}

impl QueryStream {
    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn finish(&mut self, outcome: &'static str) {
        if !self.finished {
            self.finished = true;
            self.task.abort();
            record_outcome(outcome, self.started);
        }
    }
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, QueryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.finish("timeout");
            return Poll::Ready(Some(Err(QueryError::Timeout(self.timeout))));
        }
        match self.batches.poll_recv(cx) {
            Poll::Ready(Some(Ok(batch))) => Poll::Ready(Some(Ok(batch))),
            Poll::Ready(Some(Err(err))) => {
                self.finish(outcome_label(Some(&err)));
                Poll::Ready(Some(Err(err)))
            }
            // The driver is done: either every batch was sent, or it died.
            Poll::Ready(None) => match Pin::new(&mut self.task).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.finish("ok");
                    Poll::Ready(None)
                }
                Poll::Ready(Err(err)) => {
                    let err = QueryError::Internal(format!("query task failed: {err}"));
                    self.finish(outcome_label(Some(&err)));
                    Poll::Ready(Some(Err(err)))
                }
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        // Dropped before the end: the client went away or stopped reading.
        self.finish("cancelled");
    }
}

fn outcome_label(err: Option<&QueryError>) -> &'static str {
    err.map_or("ok", QueryError::error_type)
}

fn describe_metrics() {
    metrics::describe_counter!(
        "lumen_queries_total",
        "SQL queries by outcome: ok, bad_query, read_only, resources_exhausted, timeout, \
         unavailable, internal, cancelled"
    );
    metrics::describe_histogram!(
        "lumen_query_duration_seconds",
        metrics::Unit::Seconds,
        "Wall-clock time of SQL queries, from receipt to the last row"
    );
}

fn record_outcome(outcome: &'static str, started: Instant) {
    metrics::counter!("lumen_queries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("lumen_query_duration_seconds").record(started.elapsed().as_secs_f64());
    tracing::debug!(outcome, elapsed = %format_duration(started.elapsed()), "query finished");
}

#[cfg(test)]
pub(crate) mod tests;
