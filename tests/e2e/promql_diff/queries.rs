//! The generated queries, and the query shapes left out of the comparison.

/// Query shapes not compared, with the reason (Prometheus 2.42 versus Lumen's Prometheus 3
/// semantics, or features 2.42 lacks). Printed in the summary; the table in docs/promql.md.
pub(super) const EXCLUDED: &[(&str, &str)] = &[
    (
        "samples exactly on a window edge (range selectors, subqueries, lookback)",
        "3.0 made windows left-open (t - range, t]; 2.42 includes t - range. The data keeps every sample off the edges",
    ),
    (
        "nested subqueries whose inner range is whole seconds",
        "the same edge: inner subquery steps land on the inner window's start; inner ranges here are `3m500ms`",
    ),
    (
        "rate/increase of a counter first seen inside the window at a value near zero",
        "3.x clamps the extrapolation to the counter's zero point after the 1.1 x interval threshold, 2.42 before it; \
         the data's counters start high (running before the data starts) and reset to a few hundred, so the clamp only \
         applies where both agree",
    ),
    (
        "atan2 with an operand that keeps its metric name",
        "2.42 keeps __name__ on atan2 results, 3.x drops it as for other arithmetic; compared with names already dropped",
    ),
    (
        "double_exponential_smoothing",
        "3.0 renamed 2.42's holt_winters (and put it behind a feature flag): compared as a renamed pair instead",
    ),
    (
        "first_over_time, mad_over_time, ts_of_*_over_time, sort_by_label(_desc), limitk, limit_ratio, info",
        "not in 2.42 (added in 2.5x / 3.x, mostly experimental)",
    ),
    (
        "start(), end(), range(), step(), min_of, max_of",
        "Lumen-only experimental functions",
    ),
    (
        "histogram_fraction",
        "2.42 evaluates it on native histograms only (empty for classic buckets); Lumen supports classic `le` buckets",
    ),
    (
        "regex `.` against label values holding a newline",
        "3.0 makes `.` match `\\n`; no generated label value has one",
    ),
    (
        "date functions (year, hour, …) of NaN, ±Inf or values beyond ±2^63 s",
        "Prometheus converts with Go's float-to-int64 conversion, which is platform-dependent for those (amd64: year 292277026596, \
         arm64: 1970); Lumen returns no sample. The NaN readings are kept out of year()",
    ),
    ("native histograms", "not stored by Lumen"),
    (
        "annotations (warnings, infos)",
        "2.42 raises fewer; only values are compared",
    ),
];

/// One query: the text sent to Lumen and the text sent to Prometheus (they differ only for renamed
/// functions), whether the answer's order matters, and whether it can only run as an instant
/// query (a range vector result).
pub(super) struct Query {
    pub(super) lumen: String,
    pub(super) prometheus: String,
    pub(super) ordered: bool,
    pub(super) instant_only: bool,
}

fn same(q: impl Into<String>) -> Query {
    let q = q.into();
    Query {
        lumen: q.clone(),
        prometheus: q,
        ordered: false,
        instant_only: false,
    }
}

fn matrix(q: impl Into<String>) -> Query {
    Query {
        instant_only: true,
        ..same(q)
    }
}

fn ordered(q: impl Into<String>) -> Query {
    Query {
        ordered: true,
        ..same(q)
    }
}

/// The generated queries; `at` is an `@` time (a half second, inside the data).
pub(super) fn queries(at: &str) -> Vec<Query> {
    let c = "http_requests_total";
    let g = "temperature_celsius";
    let qd = "queue_depth";
    let hb = "request_duration_seconds_bucket";
    let mut q: Vec<Query> = Vec::new();

    // Selectors: every matcher type, offset (both signs), @.
    for s in [
        c.to_string(),
        format!(r#"{c}{{method="GET"}}"#),
        format!(r#"{c}{{status!="200"}}"#),
        format!(r#"{c}{{instance=~"10\\.0\\.0\\.1:.*"}}"#),
        format!(r#"{c}{{job!~"web|batch", method=~"GET|PUT"}}"#),
        r#"{__name__=~"queue_depth|up", job="api"}"#.to_string(),
        r#"{__name__=~"http_.+", status="500"}"#.to_string(),
        r#"{__name__!="up", job="sensors"}"#.to_string(),
        format!(r#"{g}{{room=""}}"#),
        format!(r#"{g}{{room!=""}}"#),
        format!(r#"{g}{{room=~"lab|"}}"#),
        format!("{qd} offset 5m"),
        format!("{qd} offset -3m"),
        format!("{qd} @ {at}"),
        format!("{qd} @ {at} offset 2m"),
        format!("{g} @ start()"),
        format!("{g} @ end()"),
        "batch_processed_total".to_string(),
        format!(r#"{hb}{{le="+Inf"}}"#),
        format!(r#"{hb}{{le=~"0\\.1|1"}}"#),
        "up".to_string(),
        "build_info".to_string(),
    ] {
        q.push(same(s));
    }
    q.push(matrix(format!(r#"{c}{{method="GET", status="500"}}[2m]"#)));
    q.push(matrix(format!("{g}[5m] offset 10m")));
    q.push(matrix(format!("{qd}[3m:1m]")));
    q.push(matrix(format!("batch_processed_total[1m] @ {at}")));

    // Range functions.
    for f in ["rate", "irate", "increase", "resets", "changes"] {
        for r in ["30s", "1m", "5m"] {
            q.push(same(format!("{f}({c}[{r}])")));
        }
        if f != "changes" && f != "resets" {
            q.push(same(format!("{f}(batch_processed_total[5m])")));
        }
    }
    for f in ["delta", "idelta", "deriv", "changes", "resets"] {
        for r in ["1m", "5m", "10m"] {
            q.push(same(format!("{f}({g}[{r}])")));
        }
    }
    for s in [
        format!("delta({qd}[5m])"),
        format!("idelta({qd}[2m])"),
        format!("deriv({qd}[10m])"),
        format!("predict_linear({g}[10m], 600)"),
        format!("predict_linear({qd}[5m], -300)"),
        format!("predict_linear({c}[15m], 3600)"),
        format!("predict_linear({g}[5m] offset 5m, 120)"),
        "rate(request_duration_seconds_count[5m])".to_string(),
        format!("rate({c}[5m] offset 10m)"),
        format!("increase({c}[10m] @ {at})"),
        format!("rate({c}[5m] @ start())"),
        format!("irate({qd}[5m] offset -1m)"),
    ] {
        q.push(same(s));
    }

    // *_over_time.
    for f in [
        "avg", "sum", "count", "min", "max", "stddev", "stdvar", "last", "present",
    ] {
        for sel in [
            format!("{g}[5m]"),
            format!("{qd}[10m]"),
            format!(r#"{c}{{status="500"}}[1m]"#),
        ] {
            q.push(same(format!("{f}_over_time({sel})")));
        }
    }
    for p in ["0", "0.25", "0.5", "0.9", "1"] {
        q.push(same(format!("quantile_over_time({p}, {g}[10m])")));
    }
    q.push(same(format!("quantile_over_time(0.5, {qd}[15m])")));
    q.push(same(format!("quantile_over_time(1.5, {qd}[5m])")));
    q.push(same(format!("quantile_over_time(-1, {qd}[5m])")));
    q.push(same(
        r#"absent_over_time(batch_processed_total{instance="b1"}[5m])"#,
    ));
    q.push(same(r#"absent_over_time(nonexistent_metric{job="x"}[5m])"#));
    q.push(same(format!(r#"absent_over_time({qd}{{job="web"}}[2m])"#)));
    q.push(same(format!(
        r#"absent_over_time({g}{{room="office", instance="s2"}}[3m])"#
    )));
    q.push(same(r#"count_over_time({__name__=~"http_requests_total|queue_depth|batch_processed_total"}[1h])"#));

    // Aggregations.
    for s in [
        format!("sum({c})"),
        format!("sum by (job) (rate({c}[5m]))"),
        format!("sum without (instance, method) (rate({c}[5m]))"),
        format!("avg by (room) ({g})"),
        format!("avg({qd})"),
        format!("avg without (room) ({g})"),
        format!("min by (job) ({qd})"),
        format!("min({c}) by (method)"),
        format!("max without (instance) ({g})"),
        format!("max(max_over_time({g}[10m]))"),
        format!("count by (status) ({c})"),
        format!("count({g})"),
        format!("count(count by (job, instance) ({c}))"),
        format!("group by (job) ({c})"),
        "group(up)".to_string(),
        "sum(up) by (job)".to_string(),
        format!("stddev by (job) ({g})"),
        format!("stdvar({g})"),
        format!("stddev without (method, status) (rate({c}[5m]))"),
        format!("stdvar by (job) ({qd})"),
        format!("topk(3, {g})"),
        format!("topk by (job) (2, rate({c}[5m]))"),
        format!("topk(100, {qd})"),
        "topk(1, batch_processed_total)".to_string(),
        format!("bottomk(2, {g})"),
        format!("bottomk by (status) (1, rate({c}[5m]))"),
        format!("quantile(0.5, {g})"),
        format!("quantile by (job) (0.9, rate({c}[5m]))"),
        format!("quantile(0, {qd})"),
        format!("quantile(1.5, {qd})"),
        format!(r#"count_values("value", {qd})"#),
        r#"count_values by (job) ("v", up)"#.to_string(),
        format!(r#"count_values("t", round({g}))"#),
        format!("sum by (le) (rate({hb}[5m]))"),
        "sum(rate(request_duration_seconds_sum[5m])) / sum(rate(request_duration_seconds_count[5m]))".to_string(),
    ] {
        q.push(same(s));
    }

    // Binary operators: arithmetic, comparison (filter and bool), vector matching.
    for s in [
        format!("rate({c}[5m]) * 60"),
        format!("2 * {g} + 1"),
        format!("{g} / 0"),
        format!("0 / {qd}"),
        format!("{g} % 3.5"),
        format!("{g} ^ 2"),
        format!("2 ^ {qd} / 1e6"),
        format!("-{g}"),
        format!("({g} * 1) atan2 2"),
        format!("abs({qd}) atan2 on(job, instance) abs(up)"),
        format!("{g} > 10"),
        format!("{g} <= 0"),
        format!("{g} > bool 10"),
        format!("{qd} != 0"),
        format!("{qd} >= bool 5"),
        format!("{qd} == {qd} offset 1m"),
        format!("{g} - {g} offset 5m"),
        format!("{c} * on(job, instance) group_left(version) build_info"),
        format!("build_info * on(job, instance) group_right(version) {c}"),
        format!(
            "sum by (job, status) (rate({c}[5m])) / on(job) group_left sum by (job) (rate({c}[5m]))"
        ),
        format!(
            "sum by (job) (rate({c}[5m])) / on(job) group_right sum by (job, status) (rate({c}[5m]))"
        ),
        format!("rate({c}[5m]) / ignoring(status) group_left sum without (status) (rate({c}[5m]))"),
        format!(r#"{c} - ignoring(method) group_left {c}{{method="GET"}}"#),
        format!("{qd} + on(job, instance) up"),
        format!("{qd} > on(job, instance) up"),
        format!("{qd} * {c}"),
        format!("{c} + on(job) up"),
        "up + up".to_string(),
        "up == bool 1".to_string(),
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])"
            .to_string(),
        format!("{g} > bool on(job) group_left avg by (job) ({g})"),
        format!("{qd} / on(job) group_left max by (job) ({qd})"),
        format!("scalar(sum(up)) * {qd}"),
        "1 < bool 2".to_string(),
        "time() > bool 0".to_string(),
    ] {
        q.push(same(s));
    }

    // Set operators.
    for s in [
        format!(r#"{c}{{status="500"}} and on(job, instance) (up == 1)"#),
        format!("{qd} or on(job, instance) up"),
        format!("{qd} or up"),
        format!(r#"{g} unless {g}{{room="lab"}}"#),
        format!(r#"rate({c}[5m]) unless on(status) rate({c}{{status="500"}}[5m])"#),
        format!("({qd} > 20) or ({qd} < 5)"),
        format!("up unless on(job, instance) {qd}"),
        "vector(1) and on() (sum(up) > 3)".to_string(),
        "absent(nonexistent_metric) or vector(0)".to_string(),
    ] {
        q.push(same(s));
    }

    // histogram_quantile over classic buckets.
    for s in [
        format!("histogram_quantile(0.5, rate({hb}[5m]))"),
        format!("histogram_quantile(0.9, sum by (le) (rate({hb}[5m])))"),
        format!("histogram_quantile(0.99, sum by (job, le) (rate({hb}[10m])))"),
        format!("histogram_quantile(0, rate({hb}[5m]))"),
        format!("histogram_quantile(1, rate({hb}[5m]))"),
        format!("histogram_quantile(-0.5, rate({hb}[5m]))"),
        format!("histogram_quantile(1.5, rate({hb}[5m]))"),
        format!("histogram_quantile(0.5, {hb})"),
        format!("histogram_quantile(0.75, sum without (method) (increase({hb}[15m])))"),
        format!(r#"histogram_quantile(0.9, rate({hb}{{le!="0.25"}}[5m]))"#),
        format!(r#"histogram_quantile(0.9, rate({hb}{{le!="+Inf"}}[5m]))"#),
        format!("histogram_quantile(0.3, rate({hb}[1m]))"),
        format!("histogram_quantile(0.5, rate({hb}[5m] offset 20m))"),
    ] {
        q.push(same(s));
    }

    // Math, trigonometry, time, labels.
    for f in [
        "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "round",
    ] {
        q.push(same(format!("{f}({g})")));
    }
    for s in [
        format!("round({g}, 0.5)"),
        format!("round({g}, 3)"),
        format!("clamp({g}, -1, 10)"),
        format!("clamp_min({g}, 0)"),
        format!("clamp_max({g}, 5)"),
        format!("clamp({g}, 5, -1)"),
        format!("exp({qd})"),
        "pi()".to_string(),
    ] {
        q.push(same(s));
    }
    for f in [
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
        "atanh", "deg", "rad",
    ] {
        q.push(same(format!("{f}({g} / 30)")));
    }
    for s in [
        "time()".to_string(),
        format!("timestamp({g})"),
        format!("timestamp({qd} offset 2m)"),
        format!("timestamp({qd} @ {at})"),
        "day_of_month()".to_string(),
        "day_of_week()".to_string(),
        "day_of_year()".to_string(),
        "days_in_month()".to_string(),
        "hour()".to_string(),
        "minute()".to_string(),
        "month()".to_string(),
        "year()".to_string(),
        format!("hour(timestamp({qd}))"),
        "minute(timestamp(up))".to_string(),
        format!(r#"year({g}{{instance!="s3"}})"#),
        format!(r#"label_replace({g}, "room_copy", "$1", "room", "(.*)")"#),
        format!(r#"label_replace({c}, "host", "$1", "instance", "(.*):\\d+")"#),
        format!(r#"label_replace({qd}, "foo", "$1", "nonexistent", "(.*)")"#),
        r#"label_replace(up, "job", "x-$1", "job", "a(.*)")"#.to_string(),
        format!(r#"label_replace({qd}, "instance", "", "instance", ".*")"#),
        format!(r#"label_join({g}, "id", "/", "job", "instance", "room")"#),
        format!(r#"label_join({c}, "combo", "-", "method", "status")"#),
        r#"label_join(up, "job", "", "instance")"#.to_string(),
    ] {
        q.push(same(s));
    }

    // Sorting (order compared), absent, scalar, vector.
    q.push(ordered(format!("sort({g})")));
    q.push(ordered(format!("sort_desc(rate({c}[5m]))")));
    q.push(ordered(format!("sort({qd})")));
    q.push(ordered("sort_desc(sum by (job) (up))"));
    for s in [
        format!("absent({g})"),
        r#"absent(nonexistent_metric{job="x", env=~"prod"})"#.to_string(),
        r#"absent(batch_processed_total{instance="b1"})"#.to_string(),
        "absent(sum(nonexistent_metric))".to_string(),
        "scalar(sum(up))".to_string(),
        format!("scalar({g})"),
        "vector(1)".to_string(),
        "vector(time())".to_string(),
        format!("vector(scalar(count({qd})))"),
        "sum(vector(2))".to_string(),
        "scalar(vector(3)) + 1".to_string(),
    ] {
        q.push(same(s));
    }

    // Subqueries.
    for s in [
        format!("max_over_time(rate({c}[1m])[10m:1m])"),
        format!("avg_over_time({g}[10m:])"),
        format!("rate({c}[5m:30s])"),
        format!("max_over_time(deriv({g}[5m])[15m:2m] offset 3m)"),
        format!("min_over_time(max_over_time({g}[3m500ms:20s])[10m:1m])"),
        format!("sum_over_time({qd}[10m:1m] @ {at})"),
        "count_over_time(up[20m:45s])".to_string(),
        "quantile_over_time(0.9, rate(request_duration_seconds_count[5m])[20m:1m])".to_string(),
        format!("last_over_time(rate({c}[5m])[5m:17s])"),
        format!("changes({qd}[20m:1m])"),
        format!("resets({c}[20m:2m])"),
        format!("avg_over_time(sum by (job) (rate({c}[2m]))[15m:90s])"),
        format!("max_over_time(histogram_quantile(0.9, sum by (le) (rate({hb}[5m])))[10m:1m])"),
        format!("stddev_over_time({g}[10m:30s])"),
        format!("rate({c}[5m] @ {at})"),
        format!("sum({g} @ end())"),
        format!("{g} @ start() - {g}"),
        format!("increase({c}[10m] @ start())"),
    ] {
        q.push(same(s));
    }

    // Large values, odd label values, value formatting in labels.
    for s in [
        r#"filesystem_free_bytes{mountpoint=~"/home.*"}"#.to_string(),
        r#"filesystem_free_bytes{mountpoint="C:\\data \"main\""}"#.to_string(),
        r#"label_replace(filesystem_free_bytes, "drive", "$1", "mountpoint", "([A-Z]):.*")"#
            .to_string(),
        "sum(filesystem_free_bytes) / 1e9".to_string(),
        "deriv(filesystem_free_bytes[15m])".to_string(),
        "predict_linear(filesystem_free_bytes[30m], 86400) < 0".to_string(),
        r#"count_values("v", filesystem_free_bytes)"#.to_string(),
        format!(r#"count_values("value", {g})"#),
        format!(r#"count_values("tiny", {g} / 1e7)"#),
        format!(r#"count_values("huge", {g} * 1e21)"#),
    ] {
        q.push(same(s));
    }

    // NaN readings (temperature_celsius{instance="s3"} from 39m30s to 41m30s).
    for s in [
        format!(r#"{g}{{instance="s3"}} > 0"#),
        format!("min({g})"),
        format!("max by (job) ({g})"),
        format!("topk(2, {g})"),
        format!("bottomk(2, {g})"),
        format!("quantile(0.5, {g})"),
        format!("stddev({g})"),
        format!(r#"max_over_time({g}{{instance="s3"}}[3m])"#),
        format!(r#"min_over_time({g}{{instance="s3"}}[3m])"#),
        format!(r#"quantile_over_time(0.5, {g}{{instance="s3"}}[3m])"#),
        format!("clamp({g}, 0, 20)"),
        format!("clamp_min({g}, 10)"),
        format!("clamp_max({g}, 10)"),
        format!(r#"changes({g}{{instance="s3"}}[5m])"#),
        format!(r#"{g} == bool {g}"#),
    ] {
        q.push(same(s));
    }
    q.push(ordered(format!("sort_desc({g})")));

    // Literals, precedence, scalar-vector forms, parameters that vary per step.
    q.push(matrix(r#""hello""#));
    for s in [
        "1".to_string(),
        "-2.5".to_string(),
        "1 / 0".to_string(),
        "0 / 0".to_string(),
        "-2 ^ 2".to_string(),
        "2 ^ 3 ^ 2".to_string(),
        "1 + 2 * 3 ^ 2 ^ 0.5 % 5".to_string(),
        "vector(1) > bool 0".to_string(),
        format!("10 < {g}"),
        format!("10 < bool {g}"),
        format!("-1 * {g}"),
        format!("time() - timestamp({qd})"),
        format!("timestamp(sum({g}))"),
        format!("quantile(scalar(vector(0.3)), {g})"),
        format!("topk(scalar(count(up)) - 2, {g})"),
        "stddev_over_time(build_info[10m])".to_string(),
        r#"{__name__!~"up|build_info|.*_bucket", job="api"}"#.to_string(),
        r#"absent_over_time(nonexistent_metric{job=~"x", env="prod"}[5m])"#.to_string(),
        format!("sum by (job) (rate({c}[5m])) > on(job) group_left sum by (job) (rate({c}[1m]))"),
    ] {
        q.push(same(s));
    }

    // Edge parameters and odd shapes.
    for s in [
        format!("quantile(NaN, {g})"),
        format!("topk(0, {g})"),
        format!("bottomk(-1, {g})"),
        format!("topk(2.7, {g})"),
        format!("round({g}, 0)"),
        format!("round({g}, -2)"),
        format!("ln(0 * {g})"),
        format!("sqrt(-1 * abs({g}))"),
        "exp(vector(1000))".to_string(),
        "deriv(build_info[10m])".to_string(),
        r#"up{job="api", job!="web"}"#.to_string(),
        format!("{g} offset 1h"),
        format!("count_over_time({g}[1m:10s])"),
        format!("rate({c}[1m:7s])"),
        "vector(1) unless vector(1)".to_string(),
        "vector(1) or vector(2)".to_string(),
        format!("sum without () ({g})"),
        format!("count by (nonexistent) ({g})"),
        format!("avg by (job) ({g}) * on(job) group_right count by (job, instance) ({g})"),
        format!("max_over_time(timestamp({g})[5m:1m])"),
        format!("timestamp(rate({c}[5m]))"),
        format!(r#"histogram_quantile(0.5, sum by (le) (rate({hb}{{job="none"}}[5m])))"#),
        format!(r#"label_join({g}, "dst", ",")"#),
        format!("{qd} % -7"),
        format!("{g} ^ 0.5"),
    ] {
        q.push(same(s));
    }

    // Renamed in 3.0: 2.42's holt_winters is Lumen's double_exponential_smoothing.
    for (sel, sf, tf) in [
        (format!("{g}[10m]"), "0.5", "0.5"),
        (format!("{g}[15m]"), "0.1", "0.9"),
        (format!("{qd}[15m]"), "0.3", "0.3"),
    ] {
        q.push(Query {
            lumen: format!("double_exponential_smoothing({sel}, {sf}, {tf})"),
            prometheus: format!("holt_winters({sel}, {sf}, {tf})"),
            ordered: false,
            instant_only: false,
        });
    }
    q
}
