//! The expression evaluator: walks the AST at one evaluation timestamp.
//!
//! Every expression is evaluated step by step: a range query evaluates the whole expression at
//! each step, and a subquery evaluates its inner expression at each of its own (absolutely
//! aligned) steps. Selectors read from series fetched once per query and cached, so the per-step
//! cost is a binary search per series.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use super::config::EngineConfig;
use super::error::{PromqlError, bad_data, exec_err};
use super::series_source::SeriesSource;
use super::value::{
    Annotations, Labels, LabelsMap, METRIC_NAME, Sample, Series, Value, is_stale_nan,
};

/// The samples of a range vector at one step, plus the window they were cut from
/// (needed by `rate`/`increase`/`delta` extrapolation).
pub(crate) struct RangeInput {
    /// One entry per series with at least one sample in the window.
    pub series: Vec<RangeSeries>,
    /// Exclusive lower bound of the window, in ms.
    pub range_start: i64,
    /// Inclusive upper bound of the window, in ms.
    pub range_end: i64,
}

/// One series of a range vector at one step: a window onto samples shared across steps (a range
/// query cuts every step's window from the same fetched samples without copying them).
pub(crate) struct RangeSeries {
    pub labels: Labels,
    /// The labels without `__name__`, when known in advance (selectors: made once per query).
    without_name: Option<Labels>,
    data: Rc<[(i64, f64)]>,
    lo: usize,
    hi: usize,
}

impl RangeSeries {
    /// The window's samples in time order (no staleness markers).
    pub fn samples(&self) -> &[(i64, f64)] {
        &self.data[self.lo..self.hi]
    }

    /// The labels without the metric name (what most functions return).
    pub fn labels_without_name(&self) -> Labels {
        match &self.without_name {
            Some(l) => l.clone(),
            None => self.labels.without_metric_name(),
        }
    }

    fn into_series(self) -> Series {
        Series {
            samples: self.samples().to_vec(),
            labels: self.labels,
        }
    }
}

/// A selector's series as fetched once per query, prepared for every step.
pub(crate) struct Fetched {
    labels: Labels,
    without_name: Labels,
    /// Every sample, staleness markers included (instant selectors).
    all: Rc<[(i64, f64)]>,
    /// The samples without staleness markers (range selectors); shares `all` when there are none.
    ranged: Rc<[(i64, f64)]>,
}

impl Fetched {
    fn new(s: Series) -> Self {
        let all: Rc<[(i64, f64)]> = Rc::from(s.samples);
        let ranged = if all.iter().any(|(_, v)| is_stale_nan(*v)) {
            all.iter()
                .copied()
                .filter(|(_, v)| !is_stale_nan(*v))
                .collect()
        } else {
            Rc::clone(&all)
        };
        Fetched {
            without_name: s.labels.without_metric_name(),
            labels: s.labels,
            all,
            ranged,
        }
    }
}

/// A node's vectors for every step of a range query, computed series by series (one pass over
/// each series' samples with cursors that only move forward, instead of a search per step).
pub(crate) struct Batch {
    /// Per step: the vector (taken when served) and the samples it loaded (for the limit).
    steps: Vec<(Option<Vec<Sample>>, usize)>,
    /// Whether a step's vector may hold one label set twice (checked when served).
    check_unique: bool,
}

/// A range function's value for one series at one step: `(window samples, window start, window
/// end, step time)`, `None` for no output.
pub(crate) type WindowValue<'a> = dyn FnMut(&[(i64, f64)], i64, i64, i64) -> Option<f64> + 'a;

/// Most samples a batch may hold (beyond, the node is evaluated step by step).
const MAX_BATCH_SAMPLES: usize = 8_000_000;

/// What a batch was computed for (a selector and the call around it have different nodes, but
/// keep them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BatchKind {
    /// The samples of a selector.
    Selector,
    /// The values of a range function call over a selector.
    RangeCall,
}

/// A subquery's inner expression (by address) and one of its step times.
type SubqueryStepKey = (usize, i64);

/// State shared by the evaluation of one query.
pub(crate) struct Evaluator<'a> {
    pub cfg: &'a EngineConfig,
    source: &'a dyn SeriesSource,
    /// Start of the query (`@ start()`), ms.
    pub query_start: i64,
    /// End of the query (`@ end()`), ms.
    pub query_end: i64,
    /// Whether this is a range query (some annotations depend on it).
    pub is_range_query: bool,
    /// Step of a range query (0 for instant queries), ms: the value of `step()`.
    pub query_step: i64,
    fetch_start: i64,
    fetch_end: i64,
    /// Fetched series by selector text (equal selectors share one fetch).
    cache: RefCell<HashMap<String, Rc<Vec<Fetched>>>>,
    /// The same, by selector AST node address.
    by_node: RefCell<HashMap<usize, Rc<Vec<Fetched>>>>,
    /// Grouping keys of aggregations by (aggregation node address, input labels): the same
    /// series meet the same aggregation at every step.
    pub group_keys: RefCell<HashMap<usize, LabelsMap<Labels>>>,
    /// Vectors of selectors and range-function calls computed for every step of a range query
    /// at once, by (kind, node address); `None` when the node is not batched.
    batches: RefCell<HashMap<(BatchKind, usize), Option<Batch>>>,
    /// Inner results of subqueries by (inner expression, step time): consecutive steps of a
    /// range query share most subquery steps, which are evaluated once.
    subquery_steps: RefCell<HashMap<SubqueryStepKey, Rc<Vec<Sample>>>>,
    pub annotations: RefCell<Annotations>,
    samples_loaded: Cell<usize>,
    /// The earlier of the configuration's and the source's deadlines.
    deadline: Option<std::time::Instant>,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        cfg: &'a EngineConfig,
        source: &'a dyn SeriesSource,
        expr: &Expr,
        query_start: i64,
        query_end: i64,
        is_range_query: bool,
    ) -> Self {
        let (fetch_start, fetch_end) = fetch_window(expr, cfg, query_start, query_end);
        Evaluator {
            cfg,
            source,
            query_start,
            query_end,
            is_range_query,
            query_step: 0,
            fetch_start,
            fetch_end,
            cache: RefCell::new(HashMap::new()),
            by_node: RefCell::new(HashMap::new()),
            subquery_steps: RefCell::new(HashMap::new()),
            group_keys: RefCell::new(HashMap::new()),
            batches: RefCell::new(HashMap::new()),
            annotations: RefCell::new(Annotations::default()),
            samples_loaded: Cell::new(0),
            deadline: match (cfg.deadline, source.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Evaluates `expr` at timestamp `t` (ms).
    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Value, PromqlError> {
        self.check_deadline()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => {
                    let out: Vec<Sample> = v
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_metric_name(),
                            value: -s.value,
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => bad_data(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                )),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.vector_selector(vs, t)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Ok(Value::Matrix(
                self.range_input(expr, t)?
                    .series
                    .into_iter()
                    .map(RangeSeries::into_series)
                    .collect(),
            )),
            Expr::Aggregate(a) => self.eval_aggregate(a, t),
            Expr::Binary(b) => self.eval_binary(b, t),
            Expr::Call(c) => self.eval_call(c, t),
            Expr::Extension(_) => exec_err("extension expressions are not supported"),
        }
    }

    /// Evaluates `expr` and requires an instant vector.
    pub fn eval_vector(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, PromqlError> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => bad_data(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    /// Evaluates `expr` and requires a scalar.
    pub fn eval_scalar(&self, expr: &Expr, t: i64) -> Result<f64, PromqlError> {
        match self.eval(expr, t)? {
            Value::Scalar(v) => Ok(v),
            other => bad_data(format!("expected scalar, got {}", other.type_name())),
        }
    }

    /// Evaluates `expr` and requires a string.
    pub fn eval_string(&self, expr: &Expr, t: i64) -> Result<String, PromqlError> {
        match self.eval(expr, t)? {
            Value::String(s) => Ok(s),
            other => bad_data(format!("expected string, got {}", other.type_name())),
        }
    }

    /// The reference time of a selector or subquery evaluated at `t`: `@` replaces `t`, then
    /// the offset is subtracted.
    pub fn reference_time(
        &self,
        at: Option<&AtModifier>,
        offset: Option<&Offset>,
        t: i64,
    ) -> Result<i64, PromqlError> {
        let base = match at {
            None => t,
            Some(at) => at_ms(at, self.query_start, self.query_end)?,
        };
        let off = offset.map(offset_ms).transpose()?.unwrap_or(0);
        base.checked_sub(off).ok_or_else(|| {
            PromqlError::BadData("offset moves the evaluation time out of range".into())
        })
    }

    /// Fetches (once per query) the series matching a selector.
    fn series_for(&self, vs: &VectorSelector) -> Result<Rc<Vec<Fetched>>, PromqlError> {
        // Per step, the AST node's address finds the series without formatting matchers.
        let node = std::ptr::from_ref(vs) as usize;
        if let Some(hit) = self.by_node.borrow().get(&node) {
            return Ok(Rc::clone(hit));
        }
        let matchers = selector_matchers(vs);
        let key = matchers.to_string();
        let cached = self.cache.borrow().get(&key).map(Rc::clone);
        let series = match cached {
            Some(hit) => hit,
            None => {
                let series = Rc::new(
                    self.source
                        .select(&matchers, self.fetch_start, self.fetch_end)?
                        .into_iter()
                        .map(Fetched::new)
                        .collect(),
                );
                self.cache.borrow_mut().insert(key, Rc::clone(&series));
                series
            }
        };
        self.by_node.borrow_mut().insert(node, Rc::clone(&series));
        Ok(series)
    }

    /// The index of `t` among the range query's steps, if it is one.
    pub fn step_index(&self, t: i64) -> Option<usize> {
        if !self.is_range_query
            || self.query_step <= 0
            || t < self.query_start
            || t > self.query_end
        {
            return None;
        }
        let d = t - self.query_start;
        (d % self.query_step == 0).then_some((d / self.query_step) as usize)
    }

    /// The times of the range query's steps.
    pub fn step_times(&self) -> impl Iterator<Item = i64> + '_ {
        let n = if self.is_range_query && self.query_step > 0 && self.query_end >= self.query_start
        {
            (self.query_end - self.query_start) / self.query_step + 1
        } else {
            0
        };
        (0..n).map(|k| self.query_start + k * self.query_step)
    }

    /// The node's vector at step `t` from its batch, computing the batch (`compute`) on first
    /// use. `None` when `t` is not a step of the range query or the node is not batched: the
    /// caller evaluates it at `t` on its own.
    pub fn batched(
        &self,
        key: (BatchKind, usize),
        t: i64,
        compute: impl FnOnce() -> Result<Option<Batch>, PromqlError>,
    ) -> Result<Option<Vec<Sample>>, PromqlError> {
        let Some(k) = self.step_index(t) else {
            return Ok(None);
        };
        if !self.batches.borrow().contains_key(&key) {
            let batch = compute()?;
            self.batches.borrow_mut().insert(key, batch);
        }
        let served = {
            let mut batches = self.batches.borrow_mut();
            match batches.get_mut(&key) {
                Some(Some(batch)) => {
                    let check = batch.check_unique;
                    batch
                        .steps
                        .get_mut(k)
                        .and_then(|(v, loaded)| v.take().map(|v| (v, *loaded, check)))
                }
                _ => None,
            }
        };
        let Some((vector, loaded, check)) = served else {
            return Ok(None);
        };
        self.count_samples(loaded)?;
        if check {
            check_unique(&vector)?;
        }
        Ok(Some(vector))
    }

    /// Checks the deadline (long batch computations check it per series).
    pub fn check_deadline(&self) -> Result<(), PromqlError> {
        if let Some(deadline) = self.deadline
            && std::time::Instant::now() > deadline
        {
            return Err(PromqlError::Timeout(
                "query timed out in query execution".into(),
            ));
        }
        Ok(())
    }

    /// A range function over a matrix selector at every step, `value(labels, window, start,
    /// end)` per series and step (`None`: no output). `keep_name` keeps `__name__` on the output.
    /// `on_series` sees each series that has samples in some window, once.
    pub fn batch_range_call(
        &self,
        ms: &MatrixSelector,
        keep_name: bool,
        on_series: &mut dyn FnMut(&Labels),
        value: &mut WindowValue<'_>,
    ) -> Result<Option<Batch>, PromqlError> {
        let vs = &ms.vs;
        let range = duration_ms(&ms.range)?;
        let series = self.series_for(vs)?;
        let times: Vec<i64> = self.step_times().collect();
        if times.len().saturating_mul(series.len()) > MAX_BATCH_SAMPLES {
            return Ok(None);
        }
        let mut steps: Vec<(Option<Vec<Sample>>, usize)> =
            times.iter().map(|_| (Some(Vec::new()), 0)).collect();
        let mut ends = Vec::with_capacity(times.len());
        for &t in &times {
            let end = self.reference_time(vs.at.as_ref(), vs.offset.as_ref(), t)?;
            let start = end.checked_sub(range).ok_or_else(|| {
                PromqlError::BadData("range moves the evaluation time out of range".into())
            })?;
            ends.push((start, end));
        }
        let monotonic = ends.windows(2).all(|w| w[0].1 <= w[1].1);
        for s in series.iter() {
            self.check_deadline()?;
            let samples = &s.ranged[..];
            let labels = if keep_name {
                &s.labels
            } else {
                &s.without_name
            };
            let (mut lo, mut hi) = (0usize, 0usize);
            let mut seen = false;
            for (k, &(start, end)) in ends.iter().enumerate() {
                if monotonic {
                    while lo < samples.len() && samples[lo].0 <= start {
                        lo += 1;
                    }
                    hi = hi.max(lo);
                    while hi < samples.len() && samples[hi].0 <= end {
                        hi += 1;
                    }
                } else {
                    lo = samples.partition_point(|(ts, _)| *ts <= start);
                    hi = lo + samples[lo..].partition_point(|(ts, _)| *ts <= end);
                }
                if lo == hi {
                    continue;
                }
                if !seen {
                    seen = true;
                    on_series(&s.labels);
                }
                let (vector, loaded) = &mut steps[k];
                *loaded += hi - lo;
                if let Some(v) = value(&samples[lo..hi], start, end, times[k])
                    && let Some(vector) = vector
                {
                    vector.push(Sample {
                        labels: labels.clone(),
                        value: v,
                    });
                }
            }
        }
        Ok(Some(Batch {
            steps,
            check_unique: !distinct(series.iter().map(|s| {
                if keep_name {
                    &s.labels
                } else {
                    &s.without_name
                }
            })),
        }))
    }

    /// A range query of a plain selector: every series' points at every step, series by series
    /// (the same points the step-by-step evaluation collects, without the per-step vectors).
    pub fn selector_matrix(&self, vs: &VectorSelector) -> Result<Vec<Series>, PromqlError> {
        let series = self.series_for(vs)?;
        let times: Vec<i64> = self.step_times().collect();
        let refs = self.selector_refs(vs, &times)?;
        let mut out = Vec::new();
        let mut points = 0usize;
        for s in series.iter() {
            self.check_deadline()?;
            let mut values: Vec<(i64, f64)> = Vec::new();
            self.walk_selector(s, &refs, |k, v| {
                if values.capacity() == 0 {
                    values.reserve_exact(times.len());
                }
                values.push((times[k], v));
            });
            if values.is_empty() {
                continue;
            }
            points += values.len();
            // The result is what the query holds at the end (the limit of the step-by-step path).
            self.count_total(points)?;
            out.push(Series {
                labels: s.labels.clone(),
                samples: values,
            });
        }
        Ok(out)
    }

    /// A selector's reference time at each of `times` (`@` and `offset` applied), and whether
    /// they never decrease.
    fn selector_refs(
        &self,
        vs: &VectorSelector,
        times: &[i64],
    ) -> Result<(Vec<i64>, bool), PromqlError> {
        let refs: Vec<i64> = times
            .iter()
            .map(|&t| self.reference_time(vs.at.as_ref(), vs.offset.as_ref(), t))
            .collect::<Result<_, _>>()?;
        let monotonic = refs.windows(2).all(|w| w[0] <= w[1]);
        Ok((refs, monotonic))
    }

    /// Calls `each(k, value)` for every reference time `refs.0[k]` at which the instant selector
    /// has a sample for `s` (the newest within the lookback, not a staleness marker), walking the
    /// samples forward once when the times never decrease.
    fn walk_selector(
        &self,
        s: &Fetched,
        refs: &(Vec<i64>, bool),
        mut each: impl FnMut(usize, f64),
    ) {
        let (refs, monotonic) = (&refs.0, refs.1);
        let samples = &s.all[..];
        let mut idx = 0usize;
        for (k, &ref_t) in refs.iter().enumerate() {
            if monotonic {
                while idx < samples.len() && samples[idx].0 <= ref_t {
                    idx += 1;
                }
            } else {
                idx = samples.partition_point(|(ts, _)| *ts <= ref_t);
            }
            if idx == 0 {
                continue;
            }
            let (ts, v) = samples[idx - 1];
            if ts <= ref_t.saturating_sub(self.cfg.lookback_delta_ms) || is_stale_nan(v) {
                continue;
            }
            each(k, v);
        }
    }

    /// Fails when `total` samples would exceed the limit.
    fn count_total(&self, total: usize) -> Result<(), PromqlError> {
        if total > self.cfg.max_samples {
            return exec_err(
                "query processing would load too many samples into memory in query execution",
            );
        }
        Ok(())
    }

    /// An instant vector selector at every step.
    fn batch_selector(&self, vs: &VectorSelector) -> Result<Option<Batch>, PromqlError> {
        let series = self.series_for(vs)?;
        let times: Vec<i64> = self.step_times().collect();
        if times.len().saturating_mul(series.len()) > MAX_BATCH_SAMPLES {
            return Ok(None);
        }
        let refs = self.selector_refs(vs, &times)?;
        let mut steps: Vec<(Option<Vec<Sample>>, usize)> = times
            .iter()
            .map(|_| (Some(Vec::with_capacity(series.len())), 0))
            .collect();
        for s in series.iter() {
            self.check_deadline()?;
            self.walk_selector(s, &refs, |k, v| {
                let (vector, loaded) = &mut steps[k];
                *loaded += 1;
                if let Some(vector) = vector {
                    vector.push(Sample {
                        labels: s.labels.clone(),
                        value: v,
                    });
                }
            });
        }
        Ok(Some(Batch {
            steps,
            check_unique: false,
        }))
    }

    /// Restarts the sample count of a new top-level step at `base` (the result so far).
    pub fn reset_samples(&self, base: usize) {
        self.samples_loaded.set(base);
    }

    fn count_samples(&self, n: usize) -> Result<(), PromqlError> {
        let total = self.samples_loaded.get().saturating_add(n);
        self.samples_loaded.set(total);
        if total > self.cfg.max_samples {
            return exec_err(
                "query processing would load too many samples into memory in query execution",
            );
        }
        Ok(())
    }

    /// An instant vector selector at `t`: per series, the newest sample within the lookback
    /// window, unless that sample is a staleness marker.
    pub fn vector_selector(&self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>, PromqlError> {
        let key = (BatchKind::Selector, std::ptr::from_ref(vs) as usize);
        if let Some(v) = self.batched(key, t, || self.batch_selector(vs))? {
            return Ok(v);
        }
        Ok(self
            .vector_selector_with_times(vs, t)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// Like [`Self::vector_selector`], with each sample's own timestamp.
    pub fn vector_selector_with_times(
        &self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<(Sample, i64)>, PromqlError> {
        let ref_t = self.reference_time(vs.at.as_ref(), vs.offset.as_ref(), t)?;
        let series = self.series_for(vs)?;
        let lookback_start = ref_t.saturating_sub(self.cfg.lookback_delta_ms);
        let mut out = Vec::new();
        for s in series.iter() {
            let idx = s.all.partition_point(|(ts, _)| *ts <= ref_t);
            if idx == 0 {
                continue;
            }
            let (ts, v) = s.all[idx - 1];
            if ts <= lookback_start || is_stale_nan(v) {
                continue;
            }
            out.push((
                Sample {
                    labels: s.labels.clone(),
                    value: v,
                },
                ts,
            ));
        }
        self.count_samples(out.len())?;
        Ok(out)
    }

    /// The range vector of a matrix selector or subquery at `t`.
    pub fn range_input(&self, expr: &Expr, t: i64) -> Result<RangeInput, PromqlError> {
        match expr {
            Expr::MatrixSelector(ms) => self.matrix_selector(ms, t),
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Paren(p) => self.range_input(&p.expr, t),
            other => bad_data(format!(
                "expected range vector, got {}",
                expr_type_name(other)
            )),
        }
    }

    fn matrix_selector(&self, ms: &MatrixSelector, t: i64) -> Result<RangeInput, PromqlError> {
        let vs = &ms.vs;
        let range_end = self.reference_time(vs.at.as_ref(), vs.offset.as_ref(), t)?;
        let range_start = range_end
            .checked_sub(duration_ms(&ms.range)?)
            .ok_or_else(|| {
                PromqlError::BadData("range moves the evaluation time out of range".into())
            })?;
        let all = self.series_for(vs)?;
        let mut series = Vec::new();
        let mut total = 0usize;
        for s in all.iter() {
            let lo = s.ranged.partition_point(|(ts, _)| *ts <= range_start);
            let hi = lo + s.ranged[lo..].partition_point(|(ts, _)| *ts <= range_end);
            if lo == hi {
                continue;
            }
            total += hi - lo;
            series.push(RangeSeries {
                labels: s.labels.clone(),
                without_name: Some(s.without_name.clone()),
                data: Rc::clone(&s.ranged),
                lo,
                hi,
            });
        }
        self.count_samples(total)?;
        Ok(RangeInput {
            series,
            range_start,
            range_end,
        })
    }

    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<RangeInput, PromqlError> {
        let range_end = self.reference_time(sq.at.as_ref(), sq.offset.as_ref(), t)?;
        let range = duration_ms(&sq.range)?;
        let step = match &sq.step {
            Some(d) => duration_ms(d)?,
            None => self.cfg.default_subquery_step_ms,
        };
        if step <= 0 {
            return bad_data("subquery step must be positive");
        }
        let range_start = range_end
            .checked_sub(range)
            .ok_or_else(|| PromqlError::BadData("subquery range out of bounds".into()))?;
        // Steps are aligned to absolute multiples of the step (Go's truncating division).
        let mut first = step.saturating_mul(range_start / step);
        if first <= range_start {
            first = first.saturating_add(step);
        }
        let points = if first > range_end {
            0
        } else {
            (range_end - first) / step + 1
        };
        if points > self.cfg.max_samples as i64 {
            return exec_err(
                "query processing would load too many samples into memory in query execution",
            );
        }
        let mut by_labels: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<Series> = Vec::new();
        let mut ts = first;
        while ts <= range_end {
            let values = self.subquery_step(&sq.expr, ts)?;
            for s in values.iter() {
                let idx = *by_labels.entry(s.labels.clone()).or_insert_with(|| {
                    series.push(Series {
                        labels: s.labels.clone(),
                        samples: Vec::new(),
                    });
                    series.len() - 1
                });
                let target = &mut series[idx].samples;
                if target.last().is_some_and(|(last, _)| *last == ts) {
                    return exec_err("vector cannot contain metrics with the same labelset");
                }
                target.push((ts, s.value));
            }
            self.count_samples(values.len())?;
            ts = match ts.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(RangeInput {
            series: series
                .into_iter()
                .map(|s| {
                    let hi = s.samples.len();
                    RangeSeries {
                        labels: s.labels,
                        without_name: None,
                        data: Rc::from(s.samples),
                        lo: 0,
                        hi,
                    }
                })
                .collect(),
            range_start,
            range_end,
        })
    }
}

impl Evaluator<'_> {
    /// The inner expression of a subquery at one of its steps, memoized per query.
    fn subquery_step(&self, inner: &Expr, ts: i64) -> Result<Rc<Vec<Sample>>, PromqlError> {
        let key = (std::ptr::from_ref(inner) as usize, ts);
        if let Some(hit) = self.subquery_steps.borrow().get(&key) {
            return Ok(Rc::clone(hit));
        }
        let values = match self.eval(inner, ts)? {
            Value::Scalar(v) => vec![Sample {
                labels: Labels::empty(),
                value: v,
            }],
            Value::Vector(v) => v,
            other => {
                return bad_data(format!(
                    "subquery is only allowed on instant vector, got {}",
                    other.type_name()
                ));
            }
        };
        let values = Rc::new(values);
        self.subquery_steps
            .borrow_mut()
            .insert(key, Rc::clone(&values));
        Ok(values)
    }
}

/// Whether the label sets are pairwise different.
fn distinct<'l>(labels: impl Iterator<Item = &'l Labels>) -> bool {
    let mut seen: std::collections::HashSet<
        &Labels,
        std::hash::BuildHasherDefault<super::value::LabelsHasher>,
    > = Default::default();
    labels.into_iter().all(|l| seen.insert(l))
}

/// Errors if two samples of a vector share a label set.
pub(crate) fn check_unique(v: &[Sample]) -> Result<(), PromqlError> {
    let mut seen: HashSet<&Labels> = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return exec_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

/// A selector's matchers with its metric name (if given outside the braces) as a matcher.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Matchers {
    let mut m = vs.matchers.clone();
    if let Some(name) = &vs.name {
        let nm = Matcher::new(MatchOp::Equal, METRIC_NAME, name);
        let lacks_name = |g: &[Matcher]| !g.iter().any(|x| x.name == METRIC_NAME);
        if m.or_matchers.is_empty() {
            if lacks_name(&m.matchers) {
                m.matchers.push(nm);
            }
        } else {
            // Every alternative of `name{a="1" or b="2"}` selects within `name`.
            for g in &mut m.or_matchers {
                if lacks_name(g) {
                    g.push(nm.clone());
                }
            }
        }
    }
    m
}

/// A duration in whole milliseconds.
pub(crate) fn duration_ms(d: &Duration) -> Result<i64, PromqlError> {
    i64::try_from(d.as_millis()).or_else(|_| bad_data("duration out of range"))
}

/// An offset in milliseconds (negative offsets look into the future).
pub(crate) fn offset_ms(o: &Offset) -> Result<i64, PromqlError> {
    match o {
        Offset::Pos(d) => duration_ms(d),
        Offset::Neg(d) => duration_ms(d).map(|v| -v),
    }
}

/// The timestamp of an `@` modifier, in ms.
pub(crate) fn at_ms(at: &AtModifier, start: i64, end: i64) -> Result<i64, PromqlError> {
    match at {
        AtModifier::Start => Ok(start),
        AtModifier::End => Ok(end),
        AtModifier::At(st) => system_time_ms(st),
    }
}

fn system_time_ms(st: &SystemTime) -> Result<i64, PromqlError> {
    match st.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => duration_ms(&e.duration()).map(|v| -v),
    }
}

/// The time range every selector of `expr` can read, so each selector is fetched once.
fn fetch_window(expr: &Expr, cfg: &EngineConfig, start: i64, end: i64) -> (i64, i64) {
    let mut lo = start;
    let mut hi = end;
    let mut back = 0i64;
    let mut fwd = 0i64;
    let mut ats = Vec::new();
    walk(expr, start, end, &mut ats, 0, 0, &mut back, &mut fwd);
    for a in ats {
        lo = lo.min(a);
        hi = hi.max(a);
    }
    (
        lo.saturating_sub(back)
            .saturating_sub(cfg.lookback_delta_ms),
        hi.saturating_add(fwd),
    )
}

#[allow(clippy::too_many_arguments)]
fn walk(
    expr: &Expr,
    start: i64,
    end: i64,
    ats: &mut Vec<i64>,
    path_back: i64,
    path_fwd: i64,
    back: &mut i64,
    fwd: &mut i64,
) {
    let mut note = |at: Option<&AtModifier>,
                    off: Option<&Offset>,
                    range: i64,
                    back: &mut i64,
                    fwd: &mut i64| {
        if let Some(t) = at.and_then(|a| at_ms(a, start, end).ok()) {
            ats.push(t);
        }
        let o = off.and_then(|o| offset_ms(o).ok()).unwrap_or(0);
        let b = path_back.saturating_add(range).saturating_add(o.max(0));
        let f = path_fwd.saturating_add((-o).max(0));
        *back = (*back).max(b);
        *fwd = (*fwd).max(f);
        (b, f)
    };
    match expr {
        Expr::VectorSelector(vs) => {
            note(vs.at.as_ref(), vs.offset.as_ref(), 0, back, fwd);
        }
        Expr::MatrixSelector(ms) => {
            let r = duration_ms(&ms.range).unwrap_or(0);
            note(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), r, back, fwd);
        }
        Expr::Subquery(sq) => {
            let r = duration_ms(&sq.range).unwrap_or(0);
            let (b, f) = note(sq.at.as_ref(), sq.offset.as_ref(), r, back, fwd);
            walk(&sq.expr, start, end, ats, b, f, back, fwd);
        }
        Expr::Paren(p) => walk(&p.expr, start, end, ats, path_back, path_fwd, back, fwd),
        Expr::Unary(u) => walk(&u.expr, start, end, ats, path_back, path_fwd, back, fwd),
        Expr::Binary(b) => {
            walk(&b.lhs, start, end, ats, path_back, path_fwd, back, fwd);
            walk(&b.rhs, start, end, ats, path_back, path_fwd, back, fwd);
        }
        Expr::Aggregate(a) => {
            walk(&a.expr, start, end, ats, path_back, path_fwd, back, fwd);
            if let Some(p) = &a.param {
                walk(p, start, end, ats, path_back, path_fwd, back, fwd);
            }
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, start, end, ats, path_back, path_fwd, back, fwd);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The static PromQL type of an expression, as named in error messages.
pub(crate) fn expr_type_name(expr: &Expr) -> &'static str {
    use promql_parser::parser::value::ValueType;
    match expr.value_type() {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}
