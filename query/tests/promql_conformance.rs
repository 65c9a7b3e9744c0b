//! Runs Prometheus's own PromQL test scripts (`shared/promql-tests/*.test`) against Lumen's
//! PromQL engine and reports `passed / total` eval statements per file.
//!
//! Core files (Prometheus's stable float semantics) count towards the conformance figure; eval
//! statements that use native histograms (`{{...}}` in their data or expected result) or an
//! experimental Prometheus feature are counted separately, and so are the experimental files.
//! The test fails if the core pass rate drops below [`CORE_PASS_RATE_THRESHOLD`].
//!
//! `LUMEN_PROMQL_VERBOSE=1` prints every failing core statement with expected vs got (`=all`
//! also the native-histogram and experimental ones);
//! `LUMEN_PROMQL_FILE=<name>` restricts the run to one file.
//!
//! Like Prometheus's promqltest, an instant query returning a scalar or vector is also run as a
//! range query around its time (the middle step must give the same result), and again with
//! `@ <t>` on every selector at other evaluation times.
//!
//! Annotation positions: Lumen's parser does not report expression positions, so the
//! `(line:col)` suffix of expected warning/info messages is not compared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod promql_conformance {
    pub mod script;
    /// The series index: indexed selection against a full scan (not a conformance script).
    mod series_index;
}

use std::collections::HashSet;
use std::fmt::Write as _;

use lumen_query::promql::{
    Engine, EngineConfig, Labels, MemorySource, PromqlError, QueryResult, Series, Value,
};
use std::time::{Duration, UNIX_EPOCH};

use promql_conformance::script::{Command, Eval, EvalKind, MsgMatch, Point, parse_script};
use promql_parser::parser::{AtModifier, Expr};

/// The lowest acceptable core pass rate, in percent (the figure reached, rounded down).
const CORE_PASS_RATE_THRESHOLD: f64 = 99.8;

const CORE_FILES: &[&str] = &[
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
];

const EXPERIMENTAL_FILES: &[&str] = &[
    "duration_expression",
    "extended_vectors",
    "fill-modifier",
    "info",
    "limit",
    "name_label_dropping",
    "native_histograms",
    "start_timestamps",
    "type_and_unit",
];

/// Experimental Prometheus functions/keywords the parser does not flag itself.
const EXPERIMENTAL_WORDS: &[&str] = &[
    "first_over_time",
    "limitk",
    "limit_ratio",
    "anchored",
    "smoothed",
    "fill(",
    "fill_left",
    "fill_right",
    "step()",
    "range()",
    "start()",
    "end()",
    "histogram_quantiles",
    "mad_over_time",
    "ts_of_",
    "sort_by_label",
    "double_exponential_smoothing",
    "info(",
];

const EPSILON: f64 = 1e-6;

#[derive(Default, Clone, Copy)]
struct Counts {
    passed: usize,
    total: usize,
    native_passed: usize,
    native_total: usize,
    experimental_passed: usize,
    experimental_total: usize,
}

#[test]
fn promql_conformance() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/promql-tests");
    if std::fs::metadata(dir).is_err() {
        eprintln!("skipping: {dir} not found");
        return;
    }
    let verbose_var = std::env::var("LUMEN_PROMQL_VERBOSE").unwrap_or_default();
    let verbose_all = verbose_var == "all";
    let verbose = verbose_var == "1" || verbose_all;
    let only = std::env::var("LUMEN_PROMQL_FILE").ok();
    let mut report = String::new();
    let mut core = Counts::default();
    let mut experimental = Counts::default();
    writeln!(
        report,
        "{:<22} {:>16} {:>14} {:>14}",
        "file", "passed/total", "native", "experimental"
    )
    .unwrap();
    for (set, files) in [("core", CORE_FILES), ("experimental", EXPERIMENTAL_FILES)] {
        for file in files.iter() {
            if only.as_deref().is_some_and(|o| o != *file) {
                continue;
            }
            let path = format!("{dir}/{file}.test");
            let text = std::fs::read_to_string(&path).unwrap();
            let c = run_file(
                file,
                &text,
                verbose && (set == "core" || verbose_all),
                verbose_all,
            );
            let pct = if c.total > 0 {
                100.0 * c.passed as f64 / c.total as f64
            } else {
                100.0
            };
            writeln!(
                report,
                "{:<22} {:>9}/{:<4} {:>5.1}% {:>6}/{:<6} {:>6}/{:<6}",
                if set == "core" {
                    file.to_string()
                } else {
                    format!("({file})")
                },
                c.passed,
                c.total,
                pct,
                c.native_passed,
                c.native_total,
                c.experimental_passed,
                c.experimental_total
            )
            .unwrap();
            let agg = if set == "core" {
                &mut core
            } else {
                &mut experimental
            };
            agg.passed += c.passed;
            agg.total += c.total;
            agg.native_passed += c.native_passed;
            agg.native_total += c.native_total;
            agg.experimental_passed += c.experimental_passed;
            agg.experimental_total += c.experimental_total;
        }
    }
    let rate = if core.total > 0 {
        100.0 * core.passed as f64 / core.total as f64
    } else {
        100.0
    };
    writeln!(
        report,
        "core total: {}/{} ({rate:.2}%); native-histogram statements {}/{}; experimental statements in core files {}/{}; experimental files {}/{}",
        core.passed, core.total, core.native_passed, core.native_total,
        core.experimental_passed, core.experimental_total,
        experimental.passed + experimental.native_passed + experimental.experimental_passed,
        experimental.total + experimental.native_total + experimental.experimental_total,
    )
    .unwrap();
    println!("{report}");
    if only.is_none() {
        assert!(
            rate >= CORE_PASS_RATE_THRESHOLD,
            "core PromQL conformance {rate:.2}% fell below the threshold {CORE_PASS_RATE_THRESHOLD}%"
        );
    }
}

fn run_file(file: &str, text: &str, verbose: bool, verbose_all: bool) -> Counts {
    let mut counts = Counts::default();
    let cmds = match parse_script(text) {
        Ok(c) => c,
        Err(e) => {
            println!("{file}: cannot parse script ({e}); every eval counts as failed");
            counts.total = text.lines().filter(|l| l.starts_with("eval")).count();
            return counts;
        }
    };
    let engine = Engine::new(EngineConfig::default());
    let mut source = MemorySource::default();
    // Series loaded with native-histogram points (the engine does not store those yet).
    let mut native_series: Vec<Labels> = Vec::new();
    let mut native_names: HashSet<String> = HashSet::new();
    for cmd in cmds {
        match cmd {
            Command::Clear => {
                source.clear();
                native_series.clear();
                native_names.clear();
            }
            Command::Load {
                interval,
                series,
                with_nhcb,
            } => {
                for s in series {
                    let name = s.labels.metric_name().unwrap_or("").to_string();
                    if s.points.contains(&Point::Histogram) {
                        native_series.push(s.labels.clone());
                    }
                    if with_nhcb && let Some(base) = name.strip_suffix("_bucket") {
                        native_names.insert(base.to_string());
                    }
                    let samples = s
                        .points
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| match p {
                            Point::Float(v) => Some((i as i64 * interval, *v)),
                            _ => None,
                        })
                        .collect();
                    source.add(Series {
                        labels: s.labels,
                        samples,
                    });
                }
            }
            Command::Eval(ev) => {
                let experimental = is_experimental(&ev.query);
                let outcome = run_eval(&engine, &source, &ev);
                let native = ev.native
                    || mentions_any(&ev.query, &native_names)
                    || Engine::parse(&ev.query).is_ok_and(|e| selects_native(&e, &native_series));
                let ok = outcome.is_ok();
                if let Err(why) = &outcome
                    && verbose
                    && (verbose_all || !(native || experimental))
                {
                    let tag = if native {
                        "native "
                    } else if experimental {
                        "experimental "
                    } else {
                        ""
                    };
                    println!(
                        "FAIL {tag}{file}.test:{} {}\n    {}",
                        ev.line,
                        ev.query,
                        why.replace('\n', "\n    ")
                    );
                }
                if native {
                    counts.native_total += 1;
                    counts.native_passed += usize::from(ok);
                } else if experimental {
                    counts.experimental_total += 1;
                    counts.experimental_passed += usize::from(ok);
                } else {
                    counts.total += 1;
                    counts.passed += usize::from(ok);
                }
            }
        }
    }
    counts
}

fn mentions_any(query: &str, names: &HashSet<String>) -> bool {
    query
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .any(|w| names.contains(w))
}

fn is_experimental(query: &str) -> bool {
    if EXPERIMENTAL_WORDS.iter().any(|w| query.contains(w)) {
        return true;
    }
    if Engine::parse(query).is_ok_and(|e| uses_experimental_function(&e)) {
        return true;
    }
    // Arithmetic inside brackets or after offset is a duration expression.
    let bytes = query.as_bytes();
    let mut depth = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b'+' | b'*' | b'/' | b'(' if depth > 0 => return true,
            b'-' if depth > 0 && i > 0 && bytes[i - 1] != b'[' => return true,
            _ => {}
        }
    }
    false
}

/// Whether any function call in the expression satisfies `pred`.
fn any_call(e: &Expr, pred: &dyn Fn(&promql_parser::parser::Call) -> bool) -> bool {
    match e {
        Expr::Call(c) => pred(c) || c.args.args.iter().any(|a| any_call(a, pred)),
        Expr::Aggregate(a) => {
            any_call(&a.expr, pred) || a.param.as_ref().is_some_and(|p| any_call(p, pred))
        }
        Expr::Binary(b) => any_call(&b.lhs, pred) || any_call(&b.rhs, pred),
        Expr::Paren(p) => any_call(&p.expr, pred),
        Expr::Unary(u) => any_call(&u.expr, pred),
        Expr::Subquery(s) => any_call(&s.expr, pred),
        _ => false,
    }
}

/// Whether the expression calls a function the parser marks experimental.
fn uses_experimental_function(e: &Expr) -> bool {
    any_call(e, &|c| c.func.experimental)
}

/// Whether the expression calls one of `names`.
fn calls_any(e: &Expr, names: &[&str]) -> bool {
    any_call(e, &|c| names.contains(&c.func.name))
}

/// Whether any selector of `e` matches a series loaded with native histograms (decided from the
/// query alone, so the classification does not depend on how far evaluation gets).
fn selects_native(e: &Expr, native: &[Labels]) -> bool {
    let vs_hits = |vs: &promql_parser::parser::VectorSelector| {
        native.iter().any(|l| {
            vs.name
                .as_deref()
                .is_none_or(|n| l.metric_name() == Some(n))
                && l.matches(&vs.matchers)
        })
    };
    match e {
        Expr::VectorSelector(vs) => vs_hits(vs),
        Expr::MatrixSelector(ms) => vs_hits(&ms.vs),
        Expr::Call(c) => c.args.args.iter().any(|a| selects_native(a, native)),
        Expr::Aggregate(a) => {
            selects_native(&a.expr, native)
                || a.param.as_ref().is_some_and(|p| selects_native(p, native))
        }
        Expr::Binary(b) => selects_native(&b.lhs, native) || selects_native(&b.rhs, native),
        Expr::Paren(p) => selects_native(&p.expr, native),
        Expr::Unary(u) => selects_native(&u.expr, native),
        Expr::Subquery(s) => selects_native(&s.expr, native),
        _ => false,
    }
}

fn run_eval(engine: &Engine, source: &MemorySource, ev: &Eval) -> Result<(), String> {
    let (start, end, step) = match ev.kind {
        Some(EvalKind::Instant { at }) => (at, at, None),
        Some(EvalKind::Range { start, end, step }) => (start, end, Some(step)),
        None => return Err("no eval kind".into()),
    };
    let expr = match Engine::parse(&ev.query) {
        Ok(e) => e,
        Err(e) => return check_outcome(engine, source, ev, None, start, Err(e)),
    };
    let Some(step) = step else {
        let result = engine.instant_expr(&expr, start, source);
        check_outcome(engine, source, ev, Some(&expr), start, result)?;
        // Like promqltest: the query with `@ <t>` on every selector must give the same result
        // at other evaluation times.
        if let Some(at_expr) = with_at_modifiers(&expr, start) {
            let times = if start == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * start, 0, start / 5, start, 10 * start]
            };
            for t in times {
                let result = engine.instant_expr(&at_expr, t, source);
                check_outcome(engine, source, ev, Some(&at_expr), t, result)
                    .map_err(|e| format!("with @ {start}ms evaluated at {t}ms: {e}"))?;
            }
        }
        return Ok(());
    };
    let result = engine.range_expr(&expr, start, end, step, source);
    check_outcome(engine, source, ev, None, start, result)
}

/// Checks one result against the statement's expectations; `instant` is the expression of an
/// instant query (for the range-mode re-run).
fn check_outcome(
    engine: &Engine,
    source: &MemorySource,
    ev: &Eval,
    instant: Option<&Expr>,
    at: i64,
    result: Result<QueryResult, PromqlError>,
) -> Result<(), String> {
    match (&ev.fail, result) {
        (Some(m), Err(e)) => check_error(m, &e),
        (Some(_), Ok(r)) => Err(format!("expected failure, got {}", describe(&r.value))),
        (None, Err(e)) => Err(format!("unexpected error ({}): {e}", e.error_type())),
        (None, Ok(r)) => {
            check_annotations("warn", &ev.warns, ev.no_warn, &r.annotations.warnings)?;
            check_annotations("info", &ev.infos, ev.no_info, &r.annotations.infos)?;
            check_value(ev, &r)?;
            match instant {
                Some(expr) if !ev.ordered => {
                    check_range_mode(engine, source, ev, expr, at, &r.value)
                }
                _ => Ok(()),
            }
        }
    }
}

/// `expr` with `@ <at_ms>` on every selector and subquery not already under an `@`, or `None`
/// when the expression uses a function whose result depends on the evaluation time itself.
fn with_at_modifiers(expr: &Expr, at_ms: i64) -> Option<Expr> {
    const UNSAFE: &[&str] = &[
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "hour",
        "minute",
        "month",
        "year",
        "predict_linear",
        "time",
        "timestamp",
        "start",
        "end",
        "range",
        "step",
    ];
    if calls_any(expr, UNSAFE) {
        return None;
    }
    let at_time = if at_ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(at_ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(at_ms.unsigned_abs())
    };
    let mut e = expr.clone();
    set_at(&mut e, &AtModifier::At(at_time));
    Some(e)
}

fn set_at(e: &mut Expr, at: &AtModifier) {
    match e {
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert_with(|| at.clone());
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.at.get_or_insert_with(|| at.clone());
        }
        // Selectors inside a subquery with `@` keep their own times.
        Expr::Subquery(sq) => {
            sq.at.get_or_insert_with(|| at.clone());
        }
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| set_at(a, at)),
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, at);
            if let Some(p) = a.param.as_mut() {
                set_at(p, at);
            }
        }
        Expr::Binary(b) => {
            set_at(&mut b.lhs, at);
            set_at(&mut b.rhs, at);
        }
        Expr::Paren(p) => set_at(&mut p.expr, at),
        Expr::Unary(u) => set_at(&mut u.expr, at),
        _ => {}
    }
}

/// Like promqltest: an instant query returning a scalar or vector must give the same result as
/// the middle step of a range query from `at - 1m` to `at + 1m`.
fn check_range_mode(
    engine: &Engine,
    source: &MemorySource,
    ev: &Eval,
    expr: &Expr,
    at: i64,
    instant: &Value,
) -> Result<(), String> {
    // start(), end(), range() and step() describe the query itself, so they differ by design.
    let query_bound = calls_any(expr, &["start", "end", "range", "step"]);
    if query_bound || !matches!(instant, Value::Scalar(_) | Value::Vector(_)) {
        return Ok(());
    }
    let r = engine
        .range_expr(expr, at - 60_000, at + 60_000, 60_000, source)
        .map_err(|e| format!("error in range mode: {e}"))?;
    let Value::Matrix(m) = r.value else {
        return Err("range mode did not return a matrix".into());
    };
    let samples: Vec<lumen_query::promql::Sample> = m
        .iter()
        .filter_map(|s| {
            s.samples
                .iter()
                .find(|(t, _)| *t == at)
                .map(|(_, v)| lumen_query::promql::Sample {
                    labels: s.labels.clone(),
                    value: *v,
                })
        })
        .collect();
    let value = match instant {
        Value::Scalar(_) => match samples.first() {
            Some(s) => Value::Scalar(s.value),
            None => return Err("range mode returned no scalar".into()),
        },
        _ => Value::Vector(samples),
    };
    let as_result = QueryResult {
        value,
        annotations: Default::default(),
    };
    check_value(ev, &as_result).map_err(|e| format!("in range mode: {e}"))
}

fn check_error(m: &MsgMatch, e: &PromqlError) -> Result<(), String> {
    let msg = e.to_string();
    let ok = match m {
        MsgMatch::Any => true,
        MsgMatch::Exact(s) => msg == *s,
        MsgMatch::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(&msg)),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected error {m:?}, got {msg:?}"))
    }
}

/// Removes a trailing ` (line:col)` position from an expected message or regex.
fn strip_position(s: &str) -> String {
    let s = s.trim_end();
    if let Some(i) = s.rfind(" (")
        && s.ends_with(')')
        && s[i + 2..s.len() - 1]
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':')
    {
        return s[..i].to_string();
    }
    if let Some(i) = s.rfind(" \\(")
        && s.ends_with("\\)")
    {
        return s[..i].to_string();
    }
    s.to_string()
}

fn check_annotations(
    kind: &str,
    expected: &[MsgMatch],
    none: bool,
    got: &[String],
) -> Result<(), String> {
    if none && !got.is_empty() {
        return Err(format!("expected no {kind} annotations, got {got:?}"));
    }
    if expected.is_empty() {
        return Ok(());
    }
    let matches = |m: &MsgMatch, g: &str| match m {
        MsgMatch::Any => true,
        MsgMatch::Exact(s) => strip_position(s) == g,
        MsgMatch::Regex(r) => regex::Regex::new(&strip_position(r)).is_ok_and(|re| re.is_match(g)),
    };
    for m in expected {
        if !got.iter().any(|g| matches(m, g)) {
            return Err(format!("expected {kind} annotation {m:?}, got {got:?}"));
        }
    }
    for g in got {
        if !expected.iter().any(|m| matches(m, g)) {
            return Err(format!("unexpected {kind} annotation {g:?}"));
        }
    }
    Ok(())
}

fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn describe(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format!("scalar {s}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Vector(v) => {
            let mut out = format!("vector ({} samples)", v.len());
            for s in v {
                write!(out, "\n  {} {}", s.labels, s.value).unwrap();
            }
            out
        }
        Value::Matrix(m) => {
            let mut out = format!("matrix ({} series)", m.len());
            for s in m {
                write!(out, "\n  {} {:?}", s.labels, s.samples).unwrap();
            }
            out
        }
    }
}

fn describe_expected(ev: &Eval) -> String {
    let mut out = String::new();
    if let Some(s) = ev.scalar {
        write!(out, "scalar {s}").unwrap();
    }
    for s in &ev.series {
        write!(out, "\n  {} {:?}", s.labels, s.points).unwrap();
    }
    out
}

fn check_value(ev: &Eval, r: &QueryResult) -> Result<(), String> {
    let mismatch = || {
        format!(
            "expected: {}\ngot: {}",
            describe_expected(ev),
            describe(&r.value)
        )
    };
    match (&r.value, &ev.kind) {
        (Value::String(s), _) => match &ev.string {
            Some(e) if e == s => Ok(()),
            _ => Err(mismatch()),
        },
        (Value::Scalar(v), _) => match ev.scalar {
            Some(e) if ev.series.is_empty() && almost_equal(e, *v) => Ok(()),
            _ => Err(mismatch()),
        },
        (Value::Vector(v), Some(EvalKind::Instant { .. })) => {
            if ev.scalar.is_some() || ev.series.len() != v.len() {
                return Err(mismatch());
            }
            for (i, exp) in ev.series.iter().enumerate() {
                let want = match exp.points.as_slice() {
                    [Point::Float(f)] => *f,
                    _ => return Err(mismatch()),
                };
                let found = if ev.ordered {
                    Some(&v[i]).filter(|s| s.labels == exp.labels)
                } else {
                    v.iter().find(|s| s.labels == exp.labels)
                };
                match found {
                    Some(s) if almost_equal(want, s.value) => {}
                    _ => return Err(mismatch()),
                }
            }
            Ok(())
        }
        (Value::Matrix(m), kind) => {
            let (start, step) = match (kind, ev.range_vector) {
                (Some(EvalKind::Range { start, step, .. }), _) => (*start, *step),
                (_, Some((start, _, step))) => (start, step),
                _ => return Err(mismatch()),
            };
            let expected: Vec<(&Labels, Vec<(i64, f64)>)> = ev
                .series
                .iter()
                .map(|s| {
                    let pts = s
                        .points
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| match p {
                            Point::Float(v) => Some((start + i as i64 * step, *v)),
                            _ => None,
                        })
                        .collect();
                    (&s.labels, pts)
                })
                .collect();
            if ev.scalar.is_some() || expected.len() != m.len() {
                return Err(mismatch());
            }
            for (labels, pts) in expected {
                let Some(got) = m.iter().find(|s| &s.labels == labels) else {
                    return Err(mismatch());
                };
                if got.samples.len() != pts.len()
                    || got
                        .samples
                        .iter()
                        .zip(&pts)
                        .any(|(g, e)| g.0 != e.0 || !almost_equal(e.1, g.1))
                {
                    return Err(mismatch());
                }
            }
            Ok(())
        }
        _ => Err(mismatch()),
    }
}
