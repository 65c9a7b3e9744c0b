//! The PromQL engine's entry points: [`Engine::parse`] (with a cache of recent texts and a nesting
//! bound), [`Engine::instant`] and [`Engine::range`] over a [`SeriesSource`].

use std::sync::{Arc, LazyLock};

use lumen_storage::cache::{Eviction, SizedCache};

use promql_parser::parser::{self, Expr};

use super::config::EngineConfig;
use super::error::{self, PromqlError};
use super::eval::{Evaluator, check_unique, expr_type_name};
use super::series_source::SeriesSource;
use super::value::{self, Annotations, Labels, Sample, Series, Value};

/// Query texts parsed lately: dashboards and rules ask the same texts again and again, and
/// parsing one costs tens of microseconds, as much as answering a selective query. An entry is
/// counted as [`PARSE_ENTRY_BYTES`] plus four bytes per character of its text (the tree grows with
/// the text), so the cache holds about 512 dashboard-sized queries.
static PARSE_CACHE: LazyLock<SizedCache<String, Arc<Expr>>> =
    LazyLock::new(|| SizedCache::new(PARSE_CACHE_BYTES, Eviction::ToThreeQuarters));

/// Bytes of parsed queries kept.
const PARSE_CACHE_BYTES: usize = 2 << 20;
/// What an entry is counted as besides its text.
const PARSE_ENTRY_BYTES: usize = 2048;
/// Longer texts are parsed every time.
const PARSE_CACHE_MAX_TEXT: usize = 4096;

/// [`Engine::parse`] through [`PARSE_CACHE`] (errors are not cached).
fn parse_cached(query: &str) -> Result<Arc<Expr>, PromqlError> {
    if query.len() > PARSE_CACHE_MAX_TEXT {
        return Engine::parse(query).map(Arc::new);
    }
    if let Some(expr) = PARSE_CACHE.get(query) {
        return Ok(expr);
    }
    let expr = Arc::new(Engine::parse(query)?);
    let bytes = PARSE_ENTRY_BYTES + 4 * query.len();
    PARSE_CACHE.insert(query.to_string(), expr.clone(), bytes);
    Ok(expr)
}

/// A query's value and the annotations raised while computing it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// Scalar, string, vector (instant queries) or matrix (range queries, range selectors).
    pub value: Value,
    /// Warnings and infos.
    pub annotations: Annotations,
}

/// The PromQL engine.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    config: EngineConfig,
}

impl Engine {
    /// An engine with the given limits.
    pub fn new(config: EngineConfig) -> Self {
        Engine { config }
    }

    /// Parses a query; syntax and type errors are `bad_data`, and so are queries nested deeper
    /// than [`MAX_NESTING`] (evaluation is recursive, so depth is bounded up front).
    pub fn parse(query: &str) -> Result<Expr, PromqlError> {
        if text_nesting(query) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        let expr = parser::parse(query).map_err(PromqlError::BadData)?;
        if ast_depth(&expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        Ok(expr)
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant(
        &self,
        query: &str,
        time_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        let expr = parse_cached(query)?;
        self.instant_expr(&expr, time_ms, source)
    }

    /// Evaluates a parsed expression at `time_ms`.
    pub fn instant_expr(
        &self,
        expr: &Expr,
        time_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        if ast_depth(expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        let ev = Evaluator::new(&self.config, source, expr, time_ms, time_ms, false);
        let value = ev.eval(expr, time_ms)?;
        if let Value::Vector(v) = &value {
            check_unique(v)?;
        }
        Ok(QueryResult {
            value,
            annotations: ev.annotations.into_inner(),
        })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`; the result is a matrix.
    pub fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        let expr = parse_cached(query)?;
        self.range_expr(&expr, start_ms, end_ms, step_ms, source)
    }

    /// Evaluates a parsed expression as a range query.
    pub fn range_expr(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        if ast_depth(expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        if end_ms < start_ms {
            return error::bad_data("end timestamp must not be before start time");
        }
        if step_ms <= 0 {
            return error::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            );
        }
        let points = end_ms
            .checked_sub(start_ms)
            .map_or(i64::MAX, |span| span / step_ms + 1);
        if points > self.config.max_points_per_series {
            return error::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            );
        }
        match expr_type_name(expr) {
            "scalar" | "instant vector" => {}
            other => {
                return error::bad_data(format!(
                    "invalid expression type \"{other}\" for range query, must be Scalar or instant Vector"
                ));
            }
        }
        let mut ev = Evaluator::new(&self.config, source, expr, start_ms, end_ms, true);
        ev.query_step = step_ms;
        // A plain selector (the most common panel query) is answered series by series.
        let mut plain = expr;
        while let Expr::Paren(p) = plain {
            plain = &p.expr;
        }
        if let Expr::VectorSelector(vs) = plain {
            let mut out = ev.selector_matrix(vs)?;
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(QueryResult {
                value: Value::Matrix(out),
                annotations: ev.annotations.into_inner(),
            });
        }
        let mut index: value::LabelsMap<usize> = value::LabelsMap::default();
        let mut out: Vec<Series> = Vec::new();
        let mut t = start_ms;
        let mut output_points = 0usize;
        let mut last_slots: Vec<usize> = Vec::new();
        while t <= end_ms {
            // The sample limit applies to what one step loads plus the result built so far.
            ev.reset_samples(output_points);
            let samples: Vec<Sample> = match ev.eval(expr, t)? {
                Value::Scalar(v) => vec![Sample {
                    labels: Labels::empty(),
                    value: v,
                }],
                Value::Vector(v) => v,
                other => {
                    return error::bad_data(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        other.type_name()
                    ));
                }
            };
            // Steps mostly return the same series in the same order: try where the sample at
            // this position went at the previous step before looking its labels up.
            let steps_left = ((end_ms - t) / step_ms + 1) as usize;
            for (pos, s) in samples.into_iter().enumerate() {
                let guess = last_slots
                    .get(pos)
                    .copied()
                    .filter(|&g| out[g].labels.same_set(&s.labels));
                let i = match guess {
                    Some(g) => g,
                    None => *index.entry(s.labels.clone()).or_insert_with(|| {
                        out.push(Series {
                            labels: s.labels.clone(),
                            samples: Vec::with_capacity(steps_left.min(1024)),
                        });
                        out.len() - 1
                    }),
                };
                if pos < last_slots.len() {
                    last_slots[pos] = i;
                } else {
                    last_slots.push(i);
                }
                if out[i].samples.last().is_some_and(|(last, _)| *last == t) {
                    return error::exec_err("vector cannot contain metrics with the same labelset");
                }
                out[i].samples.push((t, s.value));
                output_points += 1;
            }
            t = match t.checked_add(step_ms) {
                Some(n) => n,
                None => break,
            };
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryResult {
            value: Value::Matrix(out),
            annotations: ev.annotations.into_inner(),
        })
    }
}

/// Deepest expression nesting accepted (parentheses, operands, arguments).
pub const MAX_NESTING: usize = 100;

/// Deepest nesting of brackets in the query text, ignoring quoted strings (checked before parsing
/// so absurd inputs never reach the parser).
fn text_nesting(query: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None::<char>);
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Depth of the expression tree, computed without recursion (stops counting past the limit).
fn ast_depth(expr: &Expr) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_NESTING {
            break;
        }
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Paren(p) => stack.push((&p.expr, d + 1)),
            Expr::Subquery(s) => stack.push((&s.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            _ => {}
        }
    }
    max
}
