//! Engine-level tests of behaviour the conformance scripts do not pin down (limits, error
//! types, robustness). Prometheus semantics are covered by `tests/promql_conformance.rs`.

use super::*;

fn series(name: &str, extra: &[(&str, &str)], samples: Vec<(i64, f64)>) -> Series {
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Series {
        labels: Labels::new(pairs),
        samples,
    }
}

fn source() -> MemorySource {
    let mut s = MemorySource::default();
    s.add(series(
        "http_requests_total",
        &[("job", "api")],
        (0..=10).map(|i| (i * 60_000, (i * 10) as f64)).collect(),
    ));
    s.add(series(
        "http_requests_total",
        &[("job", "web")],
        (0..=10).map(|i| (i * 60_000, (i * 20) as f64)).collect(),
    ));
    s.add(series(
        "gauge",
        &[("job", "api")],
        vec![(0, 1.0), (60_000, stale_nan())],
    ));
    s
}

fn vector(r: QueryResult) -> Vec<Sample> {
    match r.value {
        Value::Vector(v) => v,
        other => panic!("expected vector, got {other:?}"),
    }
}

#[test]
fn rate_of_a_steady_counter() {
    let r = Engine::default()
        .instant(
            "rate(http_requests_total{job=\"api\"}[5m])",
            600_000,
            &source(),
        )
        .unwrap();
    let v = vector(r);
    assert_eq!(v.len(), 1);
    assert!((v[0].value - 10.0 / 60.0).abs() < 1e-9);
    assert_eq!(v[0].labels.metric_name(), None);
}

#[test]
fn staleness_marker_ends_a_series() {
    let engine = Engine::default();
    assert_eq!(
        vector(engine.instant("gauge", 30_000, &source()).unwrap()).len(),
        1
    );
    assert!(vector(engine.instant("gauge", 90_000, &source()).unwrap()).is_empty());
}

#[test]
fn many_to_many_matching_is_an_execution_error() {
    let err = Engine::default()
        .instant(
            "http_requests_total + on() http_requests_total",
            0,
            &source(),
        )
        .unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(
        err.to_string()
            .contains("many-to-many matching not allowed"),
        "{err}"
    );
}

#[test]
fn parse_errors_are_bad_data() {
    let err = Engine::default().instant("sum(", 0, &source()).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}

#[test]
fn range_queries_are_limited_to_11000_points() {
    let engine = Engine::default();
    let err = engine
        .range("1", 0, 11_000_000, 1_000, &source())
        .unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let ok = engine.range("1", 0, 10_999_000, 1_000, &source()).unwrap();
    assert!(matches!(ok.value, Value::Matrix(m) if m[0].samples.len() == 11_000));
}

#[test]
fn sample_limit_is_enforced() {
    let engine = Engine::new(EngineConfig {
        max_samples: 5,
        ..EngineConfig::default()
    });
    let err = engine
        .instant(
            "count_over_time(http_requests_total[10m])",
            600_000,
            &source(),
        )
        .unwrap_err();
    assert_eq!(err.error_type(), "execution");
}

#[test]
fn absurd_inputs_do_not_panic() {
    let engine = Engine::default();
    let src = source();
    for q in [
        "http_requests_total @ 9223372036854775",
        "http_requests_total offset 292y",
        "rate(http_requests_total[1s:1ms])",
        "topk(1e300, http_requests_total)",
        "topk(-1, http_requests_total)",
        "quantile(NaN, http_requests_total)",
        "histogram_quantile(0.5, http_requests_total)",
        "label_replace(http_requests_total, \"a\", \"$1\", \"job\", \"(\")",
        "round(http_requests_total, 0)",
        "day_of_month(vector(1e300))",
        "predict_linear(http_requests_total[10m], 1e308)",
        "count_values(\"\", http_requests_total)",
        "-(-(-(http_requests_total)))",
        "http_requests_total[5m] @ -1e10",
    ] {
        let _ = engine.instant(q, 600_000, &src);
        let _ = engine.range(q, -600_000, 600_000, 60_000, &src);
    }
    let _ = engine.range("1", i64::MIN, i64::MAX, 1, &src);
    let _ = engine.range("1", i64::MAX - 1, i64::MAX, i64::MAX, &src);
}

#[test]
fn deeply_nested_queries_are_rejected_not_overflowed() {
    let engine = Engine::default();
    for depth in [40usize, 49, 98, 101, 2_000, 200_000] {
        for (open, close) in [("(", ")"), ("-(", ")"), ("abs(", ")"), ("sum(", ")")] {
            let q = format!("{}vector(1){}", open.repeat(depth), close.repeat(depth));
            let r = engine.instant(&q, 0, &source());
            match r {
                Ok(_) => assert!(depth < MAX_NESTING),
                Err(e) => assert!(depth > 40 && e.error_type() == "bad_data", "{e}"),
            }
        }
    }
    // Long operator chains nest without brackets.
    let q = vec!["1"; 5_000].join(" + ");
    assert_eq!(
        engine.instant(&q, 0, &source()).unwrap_err().error_type(),
        "bad_data"
    );
}

#[test]
fn clamp_propagates_nan_as_prometheus_does() {
    // Prometheus clamps with Go's math.Max/Min, which return NaN for a NaN operand (except
    // against an infinity of the matching sign); Rust's f64::max/min return the other operand.
    let engine = Engine::default();
    for (q, want) in [
        ("clamp(vector(NaN), 0, 1)", f64::NAN),
        ("clamp_min(vector(NaN), 0)", f64::NAN),
        ("clamp_max(vector(NaN), 1)", f64::NAN),
        ("clamp(vector(0.5), NaN, 1)", f64::NAN),
        ("clamp_min(vector(Inf), NaN)", f64::INFINITY),
        ("clamp_max(vector(-Inf), NaN)", f64::NEG_INFINITY),
        ("clamp(vector(5), 0, 1)", 1.0),
    ] {
        let v = vector(engine.instant(q, 0, &source()).unwrap());
        let got = v[0].value;
        assert!(got == want || (got.is_nan() && want.is_nan()), "{q}: {got}");
    }
}

#[test]
fn an_evaluation_past_its_deadline_stops_with_a_timeout() {
    let mut source = MemorySource::default();
    source.add(Series {
        labels: Labels::new(vec![("__name__".into(), "x".into())]),
        samples: (0..1000).map(|i| (i * 15_000, i as f64)).collect(),
    });
    let config = EngineConfig {
        deadline: Some(std::time::Instant::now()),
        ..Default::default()
    };
    std::thread::sleep(std::time::Duration::from_millis(2));
    let err = Engine::new(config)
        .range("rate(x[5m])", 0, 15_000_000, 15_000, &source)
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout");
    let ok =
        Engine::new(EngineConfig::default()).range("rate(x[5m])", 0, 15_000_000, 15_000, &source);
    assert!(ok.is_ok());
}
