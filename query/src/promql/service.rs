//! The PromQL runner: one [`PromqlService`] per server, called by the Prometheus HTTP API
//! ([`super::api`]) and by the alert evaluator alike, so every query gets the same limits.
//!
//! Evaluation is blocking work: it runs on the thread that asked (small queries right there,
//! others after handing that worker's other tasks to another thread; see [`PromqlService::run`]),
//! at most [`MAX_CONCURRENT_QUERIES`] at a time, and fails with a `timeout` error once it has taken
//! longer than the configured query timeout (or the request's smaller one). The evaluator and the
//! series reads check that deadline and stop, so a timed-out query gives back its thread and its
//! concurrency slot. A panic in evaluation (a bug) becomes an `internal` error of that query alone.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promql_parser::label::Matchers;
use promql_parser::parser::Expr;
use tokio::sync::Semaphore;

use super::accumulator::Exemplar;
use super::config::EngineConfig;
use super::engine::{Engine, QueryResult};
use super::error::PromqlError;
use super::eval::selector_matchers;
use super::reader::{FamilyMetadata, MetricsTableSource, QuerySource};
use super::series_source::SeriesSource;
use super::value::Labels;
use crate::snapshot::SnapshotSource;

/// Evaluations running at once; further queries wait (their wait counts toward the timeout).
pub const MAX_CONCURRENT_QUERIES: usize = 8;

/// How long a query may run on the calling worker itself before it is moved off it (see
/// [`PromqlService::run`]).
const INLINE_BUDGET: Duration = Duration::from_micros(500);
/// Heavy query shapes remembered; the set is cleared when it would hold more.
const HEAVY_SHAPES: usize = 4096;

/// Settings of the PromQL service.
#[derive(Clone, Debug)]
pub struct PromqlConfig {
    /// Longest a query may run before it fails with a `timeout` error (HTTP 503).
    pub timeout: Duration,
    /// Engine limits and defaults (lookback delta, sample limit, points per series).
    pub engine: EngineConfig,
}

impl Default for PromqlConfig {
    fn default() -> Self {
        PromqlConfig {
            timeout: Duration::from_secs(30),
            engine: EngineConfig::default(),
        }
    }
}

/// What one request may change of the service's defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryOptions {
    /// A shorter timeout than the configured one (a longer one is ignored).
    pub timeout: Option<Duration>,
    /// The lookback delta of this query (ms), instead of the engine's.
    pub lookback_delta_ms: Option<i64>,
}

/// The metadata of each metric family, by family name.
pub type FamilyMetadataMap = BTreeMap<String, BTreeSet<FamilyMetadata>>;

/// Runs PromQL queries and series look-ups over the `metrics` table, within the service's
/// concurrency slots and deadlines (see the module docs).
pub struct PromqlService {
    source: MetricsTableSource,
    config: PromqlConfig,
    slots: Arc<Semaphore>,
    /// Query shapes (see [`PromqlService::run`]) that lately ran past [`INLINE_BUDGET`].
    heavy: Mutex<HashSet<u64>>,
}

impl PromqlService {
    /// A service over the `metrics` table of `snapshots`.
    pub fn new(snapshots: Arc<dyn SnapshotSource>, config: PromqlConfig) -> Self {
        Self::with_slots(snapshots, config, MAX_CONCURRENT_QUERIES)
    }

    /// A service running at most `slots` evaluations at once.
    fn with_slots(snapshots: Arc<dyn SnapshotSource>, config: PromqlConfig, slots: usize) -> Self {
        PromqlService {
            source: MetricsTableSource::new(snapshots),
            config,
            slots: Arc::new(Semaphore::new(slots)),
            heavy: Default::default(),
        }
    }

    /// The service's settings.
    pub fn config(&self) -> &PromqlConfig {
        &self.config
    }

    /// Evaluates `query` at `time_ms`.
    pub async fn instant(
        self: &Arc<Self>,
        query: &str,
        time_ms: i64,
        options: QueryOptions,
    ) -> Result<QueryResult, PromqlError> {
        let engine = self.engine(options);
        let query = query.to_string();
        let shape = query_shape(&[query.as_bytes()]);
        self.run(options.timeout, Some(shape), move |source| {
            engine.instant(&query, time_ms, source)
        })
        .await
    }

    /// Evaluates `query` from `start_ms` to `end_ms` every `step_ms`.
    pub async fn range(
        self: &Arc<Self>,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        options: QueryOptions,
    ) -> Result<QueryResult, PromqlError> {
        let engine = self.engine(options);
        let query = query.to_string();
        let shape = query_shape(&[
            query.as_bytes(),
            &(end_ms - start_ms).to_le_bytes(),
            &step_ms.to_le_bytes(),
        ]);
        self.run(options.timeout, Some(shape), move |source| {
            engine.range(&query, start_ms, end_ms, step_ms, source)
        })
        .await
    }

    /// Label sets of the series matching any of `matchers` (every series when empty) in the
    /// `start_ms`/`end_ms` window, sorted and deduplicated.
    pub async fn label_sets(
        self: &Arc<Self>,
        matchers: Vec<Matchers>,
        start_ms: i64,
        end_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<Vec<Labels>, PromqlError> {
        self.run(timeout, None, move |source| {
            select_label_sets(source, &matchers, start_ms, end_ms)
        })
        .await
    }

    /// The metadata of every metric family with rows in the window.
    pub async fn metadata(
        self: &Arc<Self>,
        start_ms: i64,
        end_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<FamilyMetadataMap, PromqlError> {
        self.run(timeout, None, move |source| {
            source.metadata(start_ms, end_ms)
        })
        .await
    }

    /// The exemplars of the series that the selectors of `expr` match in the window, by series.
    pub async fn exemplars(
        self: &Arc<Self>,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<BTreeMap<Labels, Vec<Exemplar>>, PromqlError> {
        let selectors = selectors_of(expr);
        self.run(timeout, None, move |source| {
            let mut all = BTreeMap::new();
            for matchers in &selectors {
                for series in source.select_exemplars(matchers, start_ms, end_ms)? {
                    all.entry(series.labels).or_insert(series.exemplars);
                }
            }
            Ok(all)
        })
        .await
    }

    /// Runs `work` within the query timeout (capped by `requested`), with at most
    /// [`MAX_CONCURRENT_QUERIES`] running at once. `work` reads through a [`QuerySource`] that
    /// stops at its deadline, and the evaluator stops there too.
    ///
    /// Where the work runs, on the multi-threaded runtime (Lumen's):
    /// - A query with a `shape` (a hash of its text and range) not seen to be heavy first runs on
    ///   the calling worker itself with [`INLINE_BUDGET`] as its deadline. Most dashboard and rule
    ///   queries are small: they are answered without waking any other thread, as Prometheus does.
    /// - If that budget runs out, the shape is remembered as heavy and the query starts again
    ///   under [`tokio::task::block_in_place`], which hands the worker's other tasks to another
    ///   thread first, so ingest and other requests are not held up by it. Heavy shapes and
    ///   requests without a shape (series, labels, metadata) go there at once. So does a query
    ///   that would read a series index from disk ([`MetricsTableSource::within_budget`]).
    ///
    /// Whatever runs past the deadline fails with a `timeout` error, late by at most one
    /// uninterruptible step (one decoded batch, one series). On a current-thread runtime (tests,
    /// embedding) the work goes to the blocking pool and the answer comes at the deadline even
    /// when the work is stuck.
    async fn run<T, F>(
        self: &Arc<Self>,
        requested: Option<Duration>,
        shape: Option<u64>,
        work: F,
    ) -> Result<T, PromqlError>
    where
        T: Send + 'static,
        F: Fn(&QuerySource<'_>) -> Result<T, PromqlError> + Send + 'static,
    {
        let timeout = self.timeout(requested);
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || {
            PromqlError::Timeout(format!(
                "query timed out in query execution (timeout {}s)",
                timeout.as_secs_f64()
            ))
        };
        let permit = tokio::time::timeout_at(deadline, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| PromqlError::Source("the query limiter is closed".into()))?;
        let std_deadline = deadline.into_std();
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let mut inline = None;
            if let Some(shape) = shape.filter(|s| !self.is_heavy(*s)) {
                let budget = std::time::Instant::now() + INLINE_BUDGET;
                if budget < std_deadline {
                    match contain_panic(|| work(&self.source.within_budget(budget))) {
                        Err(PromqlError::Timeout(_))
                            if std::time::Instant::now() < std_deadline =>
                        {
                            // Heavy only if it ran out of time, not if it just met something to load.
                            if std::time::Instant::now() >= budget {
                                self.mark_heavy(shape);
                            }
                        }
                        done => inline = Some(done),
                    }
                }
            }
            let result = match inline {
                Some(done) => done,
                None => tokio::task::block_in_place(|| {
                    contain_panic(|| work(&self.source.until(Some(std_deadline))))
                }),
            };
            drop(permit);
            if tokio::time::Instant::now() > deadline {
                return Err(timed_out());
            }
            result
        } else {
            let service = Arc::clone(self);
            let job = move || {
                let _permit = permit;
                work(&service.source.until(Some(std_deadline)))
            };
            match tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(job)).await {
                Err(_) => Err(timed_out()),
                Ok(Err(err)) => Err(PromqlError::Source(format!(
                    "query evaluation failed: {err}"
                ))),
                Ok(Ok(result)) => result,
            }
        }
    }

    fn is_heavy(&self, shape: u64) -> bool {
        self.heavy
            .lock()
            .map(|h| h.contains(&shape))
            .unwrap_or(true)
    }

    fn mark_heavy(&self, shape: u64) {
        if let Ok(mut heavy) = self.heavy.lock() {
            if heavy.len() >= HEAVY_SHAPES {
                heavy.clear();
            }
            heavy.insert(shape);
        }
    }

    /// The query timeout: the configured one, capped by the request's.
    fn timeout(&self, requested: Option<Duration>) -> Duration {
        match requested {
            Some(requested) if !requested.is_zero() => self.config.timeout.min(requested),
            _ => self.config.timeout,
        }
    }

    /// The engine for one query (its deadline comes with the source [`PromqlService::run`]
    /// gives it).
    fn engine(&self, options: QueryOptions) -> Engine {
        let mut config = self.config.engine.clone();
        if let Some(ms) = options.lookback_delta_ms.filter(|ms| *ms > 0) {
            config.lookback_delta_ms = ms;
        }
        Engine::new(config)
    }
}

/// Runs `work`, turning a panic (a bug) into an `internal` error for this query alone, as the
/// blocking pool's join handle does.
fn contain_panic<T>(work: impl FnOnce() -> Result<T, PromqlError>) -> Result<T, PromqlError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(PromqlError::Source(format!(
            "query evaluation failed: {what}"
        )))
    })
}

/// What [`PromqlService::run`] remembers a query by: its text and, for range queries, its range
/// and step.
fn query_shape(parts: &[&[u8]]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest()
}

/// Label sets of the series matching any of `matchers` (every series when empty) in the
/// `start`/`end` window, sorted and deduplicated.
fn select_label_sets(
    source: &dyn SeriesSource,
    matchers: &[Matchers],
    start: i64,
    end: i64,
) -> Result<Vec<Labels>, PromqlError> {
    let all;
    let matchers = if matchers.is_empty() {
        all = match Engine::parse("{__name__=~\".+\"}") {
            Ok(Expr::VectorSelector(vs)) => vec![selector_matchers(&vs)],
            _ => {
                return Err(PromqlError::Source(
                    "cannot build the all-series selector".into(),
                ));
            }
        };
        &all[..]
    } else {
        matchers
    };
    let mut sets = BTreeSet::new();
    for m in matchers {
        for s in source.select(m, start, end)? {
            sets.insert(s.labels);
        }
    }
    Ok(sets.into_iter().collect())
}

/// The matchers of every vector and matrix selector in `expr` (Prometheus's `ExtractSelectors`).
fn selectors_of(expr: &Expr) -> Vec<Matchers> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::VectorSelector(vs) => out.push(selector_matchers(vs)),
            Expr::MatrixSelector(ms) => out.push(selector_matchers(&ms.vs)),
            Expr::Aggregate(a) => {
                stack.push(&a.expr);
                if let Some(p) = &a.param {
                    stack.push(p);
                }
            }
            Expr::Unary(u) => stack.push(&u.expr),
            Expr::Binary(b) => {
                stack.push(&b.lhs);
                stack.push(&b.rhs);
            }
            Expr::Paren(p) => stack.push(&p.expr),
            Expr::Subquery(sq) => stack.push(&sq.expr),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| a.as_ref())),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
