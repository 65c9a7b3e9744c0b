//! What the evaluator needs from the rest of Lumen; the root binary implements it over the
//! query engine and the storage engine.

use std::future::Future;
use std::pin::Pin;

use arrow::record_batch::RecordBatch;
use lumen_query::promql::Labels;

use crate::alert::LabelSet;

/// A boxed future, so the trait can be used as `dyn Querier`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a PromQL rule query at one evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub enum InstantResult {
    /// An instant vector: one element per alert instance / recorded series.
    Vector(Vec<(Labels, f64)>),
    /// A scalar (e.g. `vector(1) > 0` is a vector, but `1 > 0` is not allowed for alerts).
    Scalar(f64),
}

/// A sample to write back (recording rules, `ALERTS`, `ALERTS_FOR_STATE`).
#[derive(Clone, Debug, PartialEq)]
pub struct WriteSample {
    /// Full label set including `__name__`, never an empty value.
    pub labels: LabelSet,
    /// Unix ms.
    pub time_ms: i64,
    /// The sample value.
    pub value: f64,
}

/// Lumen's query and write paths, as the evaluator sees them.
pub trait Querier: Send + Sync {
    /// Evaluates PromQL `expr` as an instant query at `time_ms`.
    fn promql(&self, expr: &str, time_ms: i64) -> BoxFuture<'_, Result<InstantResult, String>>;

    /// Runs a read-only SQL query and returns its rows.
    fn sql(&self, query: &str) -> BoxFuture<'_, Result<Vec<RecordBatch>, String>>;

    /// Writes samples into the metrics table (durably, like any ingest).
    fn write(&self, samples: Vec<WriteSample>) -> BoxFuture<'_, Result<(), String>>;
}
