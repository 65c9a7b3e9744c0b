//! Whole-fleet properties: determinism, trace shape, log correlation, metric types, and that each
//! incident shows in the data.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::{Span, status};

use super::*;

const SEC: i64 = 1_000_000_000;

fn config(scenario: Scenario, rps: f64) -> FleetConfig {
    FleetConfig {
        seed: 11,
        scenario,
        requests_per_second: rps,
        incident: IncidentWindow::ALWAYS,
        ..FleetConfig::default()
    }
}

/// Runs `seconds` of simulated time in 1 s steps, then 40 s more without keeping new arrivals'
/// traces apart: returns every batch and the time before which traces are complete.
fn run(config: FleetConfig, seconds: i64) -> (Vec<Telemetry>, i64) {
    let mut fleet = Fleet::new(config);
    let start = fleet.now_ns();
    let batches = (1..=seconds + 40)
        .map(|s| fleet.step(start + s * SEC))
        .collect();
    (batches, start + seconds * SEC)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn attr_int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// Every span with the service that reported it.
fn spans(batches: &[Telemetry]) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for b in batches {
        for rs in &b.traces.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| attr_str(&r.attributes, "service.name"))
                .unwrap_or_default()
                .to_string();
            for ss in &rs.scope_spans {
                out.extend(ss.spans.iter().map(|s| (service.clone(), s.clone())));
            }
        }
    }
    out
}

fn logs(batches: &[Telemetry]) -> Vec<(String, LogRecord)> {
    let mut out = Vec::new();
    for b in batches {
        for rl in &b.logs.resource_logs {
            let service = rl
                .resource
                .as_ref()
                .and_then(|r| attr_str(&r.attributes, "service.name"))
                .unwrap_or_default()
                .to_string();
            for sl in &rl.scope_logs {
                out.extend(sl.log_records.iter().map(|l| (service.clone(), l.clone())));
            }
        }
    }
    out
}

fn metrics(batches: &[Telemetry]) -> Vec<(String, Metric)> {
    let mut out = Vec::new();
    for b in batches {
        for rm in &b.metrics.resource_metrics {
            let service = rm
                .resource
                .as_ref()
                .and_then(|r| attr_str(&r.attributes, "service.name"))
                .unwrap_or_default()
                .to_string();
            for sm in &rm.scope_metrics {
                out.extend(sm.metrics.iter().map(|m| (service.clone(), m.clone())));
            }
        }
    }
    out
}

fn duration(s: &Span) -> i64 {
    (s.end_time_unix_nano - s.start_time_unix_nano) as i64
}

fn percentile(mut values: Vec<i64>, p: f64) -> i64 {
    values.sort_unstable();
    values
        .get(((values.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0)
}

/// The latest cumulative value of a counter, summed over the series matching `filter`.
fn counter_total(batches: &[Telemetry], name: &str, filter: impl Fn(&[KeyValue]) -> bool) -> f64 {
    let mut latest: HashMap<String, f64> = HashMap::new();
    for (_, m) in metrics(batches) {
        if m.name != name {
            continue;
        }
        if let Some(metric::Data::Sum(sum)) = &m.data {
            for p in sum.data_points.iter().filter(|p| filter(&p.attributes)) {
                let v = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    None => 0.0,
                };
                latest.insert(format!("{:?}", p.attributes), v);
            }
        }
    }
    latest.values().sum()
}

#[test]
fn same_seed_same_output_and_different_seed_differs() {
    let cfg = FleetConfig {
        incident: IncidentWindow {
            start_offset_ns: 5 * SEC,
            duration_ns: 20 * SEC,
        },
        ..config(Scenario::PaymentLatencySpike, 20.0)
    };
    let (a, _) = run(cfg.clone(), 30);
    let (b, _) = run(cfg.clone(), 30);
    assert!(a == b, "same seed and steps must give identical output");
    let (c, _) = run(FleetConfig { seed: 12, ..cfg }, 30);
    assert!(a != c);
}

#[test]
fn output_does_not_depend_on_step_size() {
    let cfg = config(Scenario::Steady, 15.0);
    let mut coarse = Fleet::new(cfg.clone());
    let mut fine = Fleet::new(cfg);
    let start = coarse.now_ns();
    let one = coarse.step(start + 60 * SEC);
    let many: Vec<Telemetry> = (1..=600).map(|i| fine.step(start + i * SEC / 10)).collect();
    assert_eq!(
        one.span_count(),
        many.iter().map(Telemetry::span_count).sum::<usize>()
    );
    assert_eq!(
        one.log_record_count(),
        many.iter().map(Telemetry::log_record_count).sum::<usize>()
    );
    assert_eq!(
        one.data_point_count(),
        many.iter().map(Telemetry::data_point_count).sum::<usize>()
    );
    assert_eq!(coarse.pending(), fine.pending());
}

#[test]
fn traces_are_well_formed() {
    for scenario in [
        Scenario::Steady,
        Scenario::PaymentLatencySpike,
        Scenario::CircuitBreakerOpen,
        Scenario::ErrorBurst {
            service: Service::Security,
        },
    ] {
        let (batches, complete_before) = run(config(scenario, 20.0), 120);
        let all = spans(&batches);
        let mut by_trace: HashMap<Vec<u8>, Vec<&Span>> = HashMap::new();
        for (_, s) in &all {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            assert!(s.trace_id.iter().any(|b| *b != 0) && s.span_id.iter().any(|b| *b != 0));
            assert!(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8);
            assert!(s.end_time_unix_nano >= s.start_time_unix_nano && s.start_time_unix_nano > 0);
            by_trace.entry(s.trace_id.clone()).or_default().push(s);
        }
        let ids: HashSet<&[u8]> = all.iter().map(|(_, s)| s.span_id.as_slice()).collect();
        assert_eq!(ids.len(), all.len(), "span ids are unique");
        let mut checked = 0;
        for spans in by_trace.values() {
            let first = spans
                .iter()
                .map(|s| s.start_time_unix_nano)
                .min()
                .unwrap_or(0) as i64;
            if first >= complete_before {
                continue;
            }
            checked += 1;
            assert!(
                (5..=30).contains(&spans.len()),
                "{scenario}: a trace has {} spans",
                spans.len()
            );
            let roots: Vec<_> = spans
                .iter()
                .filter(|s| s.parent_span_id.is_empty())
                .collect();
            assert_eq!(roots.len(), 1, "{scenario}: exactly one root");
            let by_id: HashMap<&[u8], &&Span> =
                spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
            for s in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
                let parent = by_id
                    .get(s.parent_span_id.as_slice())
                    .unwrap_or_else(|| panic!("{scenario}: parent of {} missing", s.name));
                assert!(
                    s.start_time_unix_nano >= parent.start_time_unix_nano,
                    "{scenario}: {} starts before its parent {}",
                    s.name,
                    parent.name
                );
            }
            assert_eq!(
                roots[0].start_time_unix_nano as i64, first,
                "the root starts first"
            );
        }
        assert!(checked > 1000, "{scenario}: only {checked} complete traces");
    }
}

#[test]
fn logs_are_correlated_and_mixed() {
    let (batches, complete_before) = run(config(Scenario::Steady, 20.0), 300);
    let span_ids: HashSet<(Vec<u8>, Vec<u8>)> = spans(&batches)
        .into_iter()
        .map(|(_, s)| (s.trace_id, s.span_id))
        .collect();
    let all = logs(&batches);
    let mut severities: HashMap<String, usize> = HashMap::new();
    let mut with_context = 0;
    for (_, l) in &all {
        *severities.entry(l.severity_text.clone()).or_default() += 1;
        if l.trace_id.is_empty() || l.time_unix_nano as i64 >= complete_before {
            continue;
        }
        with_context += 1;
        assert!(
            span_ids.contains(&(l.trace_id.clone(), l.span_id.clone())),
            "log {:?} points at a missing span",
            l.body
        );
    }
    assert!(with_context > 1000);
    for s in ["DEBUG", "INFO", "WARN", "ERROR"] {
        assert!(
            severities.get(s).copied().unwrap_or(0) > 0,
            "no {s} logs: {severities:?}"
        );
    }
    let info = severities["INFO"] as f64 / all.len() as f64;
    assert!(info > 0.5, "INFO should dominate: {severities:?}");
    assert!(
        all.iter()
            .any(|(_, l)| l.event_name == "bookstore.order.placed")
    );
}

#[test]
fn every_service_has_a_resource_and_spans_of_every_kind() {
    let (batches, _) = run(config(Scenario::Steady, 10.0), 60);
    let all = spans(&batches);
    let services: HashSet<&str> = all.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(services.len(), 5, "{services:?}");
    let kinds: HashSet<i32> = all.iter().map(|(_, s)| s.kind).collect();
    assert_eq!(
        kinds.len(),
        5,
        "internal, server, client, producer and consumer spans: {kinds:?}"
    );
    let rs = &batches
        .iter()
        .find(|b| !b.traces.resource_spans.is_empty())
        .map(|b| b.traces.resource_spans[0].clone())
        .unwrap_or_default();
    let resource = rs.resource.clone().unwrap_or_default();
    for key in [
        "service.name",
        "service.version",
        "service.instance.id",
        "deployment.environment.name",
        "host.name",
        "telemetry.sdk.language",
    ] {
        assert!(
            attr_str(&resource.attributes, key).is_some(),
            "resource lacks {key}"
        );
    }
    let systems: HashSet<&str> = all
        .iter()
        .filter_map(|(_, s)| attr_str(&s.attributes, "db.system.name"))
        .collect();
    assert!(systems.contains("postgresql") && systems.contains("redis"));
    assert!(all.iter().any(
        |(_, s)| attr_str(&s.attributes, "messaging.system") == Some("kafka")
            && !s.links.is_empty()
    ));
    assert!(
        all.iter()
            .any(|(_, s)| attr_str(&s.attributes, "rpc.system") == Some("grpc"))
    );
    assert!(
        all.iter()
            .any(|(_, s)| s.events.iter().any(|e| e.name == "exception")),
        "baseline errors carry exception events"
    );
}

#[test]
fn metrics_are_cumulative_and_of_every_type() {
    let (batches, _) = run(config(Scenario::Steady, 10.0), 60);
    let all = metrics(&batches);
    let mut types: HashSet<&str> = HashSet::new();
    let mut last_count: HashMap<String, u64> = HashMap::new();
    for (service, m) in &all {
        match &m.data {
            Some(metric::Data::Histogram(h)) => {
                types.insert("histogram");
                assert_eq!(h.aggregation_temporality, 2, "cumulative");
                for p in &h.data_points {
                    assert_eq!(
                        p.bucket_counts.len(),
                        p.explicit_bounds.len() + 1,
                        "{}",
                        m.name
                    );
                    assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count, "{}", m.name);
                    assert!(
                        p.start_time_unix_nano > 0 && p.start_time_unix_nano < p.time_unix_nano
                    );
                    let key = format!("{service}{}{:?}", m.name, p.attributes);
                    assert!(
                        p.count >= last_count.get(&key).copied().unwrap_or(0),
                        "{} went backwards",
                        m.name
                    );
                    last_count.insert(key, p.count);
                }
            }
            Some(metric::Data::Sum(s)) => {
                types.insert(if s.is_monotonic {
                    "counter"
                } else {
                    "updowncounter"
                });
                assert!(s.data_points.iter().all(|p| p.start_time_unix_nano > 0));
            }
            Some(metric::Data::Gauge(_)) => {
                types.insert("gauge");
            }
            _ => {}
        }
    }
    assert_eq!(types.len(), 4, "{types:?}");
    let names: HashSet<&str> = all.iter().map(|(_, m)| m.name.as_str()).collect();
    for name in [
        "http.server.request.duration",
        "http.client.request.duration",
        "rpc.server.call.duration",
        "db.client.operation.duration",
        "process.cpu.time",
        "jvm.memory.used",
        "go.goroutine.count",
        "bookstore.orders",
        "bookstore.revenue",
        "bookstore.cart.size",
        "bookstore.inventory.level",
        "circuit_breaker.state",
        "circuit_breaker.calls",
        "circuit_breaker.call.duration",
    ] {
        assert!(names.contains(name), "missing {name}");
    }
    let http = all
        .iter()
        .find(|(s, m)| s == "gateway" && m.name == "http.server.request.duration")
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    assert_eq!(http.unit, "s");
    let Some(metric::Data::Histogram(h)) = http.data else {
        panic!("http.server.request.duration is a histogram")
    };
    assert!(
        h.data_points.iter().any(|p| !p.exemplars.is_empty()),
        "exemplars link to traces"
    );
    assert!(
        counter_total(&batches, "bookstore.orders", |a| attr_str(
            a,
            "order.status"
        ) == Some("placed"))
            > 10.0
    );
}

fn payment_server_durations(batches: &[Telemetry]) -> Vec<i64> {
    spans(batches)
        .into_iter()
        .filter(|(svc, s)| svc == "payment" && s.kind == 2)
        .map(|(_, s)| duration(&s))
        .collect()
}

#[test]
fn payment_latency_spike_shows_in_spans_and_timeouts() {
    let (steady, _) = run(config(Scenario::Steady, 20.0), 180);
    let (spike, _) = run(config(Scenario::PaymentLatencySpike, 20.0), 180);
    let p99_steady = percentile(payment_server_durations(&steady), 0.99);
    let p99_spike = percentile(payment_server_durations(&spike), 0.99);
    assert!(
        p99_spike > 5 * p99_steady,
        "payment p99 {p99_spike} ns vs {p99_steady} ns"
    );
    let deadline_exceeded = |b: &[Telemetry]| {
        spans(b)
            .iter()
            .filter(|(svc, s)| {
                svc == "gateway"
                    && s.kind == 3
                    && attr_int(&s.attributes, "rpc.grpc.status_code") == Some(4)
            })
            .count()
    };
    assert!(
        deadline_exceeded(&spike) > 20 * deadline_exceeded(&steady).max(1),
        "gateway timeouts on charges"
    );
    let checkout_p50 = |b: &[Telemetry]| {
        percentile(
            spans(b)
                .iter()
                .filter(|(_, s)| s.name == "POST /api/orders")
                .map(|(_, s)| duration(s))
                .collect(),
            0.5,
        )
    };
    assert!(
        checkout_p50(&spike) > 1_000_000_000 && checkout_p50(&steady) < 500_000_000,
        "{} {}",
        checkout_p50(&spike),
        checkout_p50(&steady)
    );
    let retries = logs(&spike)
        .iter()
        .filter(|(svc, l)| {
            svc == "gateway"
                && l.severity_text == "WARN"
                && attr_int(&l.attributes, "retry.attempt").is_some()
        })
        .count();
    assert!(retries > 20, "{retries}");
}

#[test]
fn error_burst_fails_the_chosen_service() {
    let error_rate = |batches: &[Telemetry], service: &str| {
        let server: Vec<Span> = spans(batches)
            .into_iter()
            .filter(|(svc, s)| svc == service && s.kind == 2)
            .map(|(_, s)| s)
            .collect();
        let errors = server
            .iter()
            .filter(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|st| st.code == status::StatusCode::Error as i32)
            })
            .count();
        errors as f64 / server.len().max(1) as f64
    };
    let (steady, _) = run(config(Scenario::Steady, 20.0), 120);
    let (burst, _) = run(
        config(
            Scenario::ErrorBurst {
                service: Service::Account,
            },
            20.0,
        ),
        120,
    );
    assert!(error_rate(&steady, "account") < 0.02);
    assert!(
        error_rate(&burst, "account") > 0.15,
        "{}",
        error_rate(&burst, "account")
    );
    assert!(error_rate(&burst, "warehouse") < 0.02);
    let errors = logs(&burst)
        .into_iter()
        .filter(|(svc, l)| {
            svc == "account"
                && l.severity_text == "ERROR"
                && attr_str(&l.attributes, "exception.type").is_some()
        })
        .count();
    assert!(errors > 50, "{errors}");
}

#[test]
fn breaker_open_scenario_opens_breakers() {
    let (batches, _) = run(config(Scenario::CircuitBreakerOpen, 20.0), 180);
    let mut open: HashSet<String> = HashSet::new();
    for (_, m) in metrics(&batches) {
        if m.name != "circuit_breaker.state" {
            continue;
        }
        if let Some(metric::Data::Gauge(g)) = &m.data {
            for p in &g.data_points {
                if attr_str(&p.attributes, "circuit_breaker.state") == Some("open")
                    && p.value == Some(number_data_point::Value::AsInt(1))
                {
                    open.insert(
                        attr_str(&p.attributes, "peer.service")
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
        }
    }
    assert!(open.contains("payment-provider"), "{open:?}");
    let rejected = counter_total(&batches, "circuit_breaker.calls", |a| {
        attr_str(a, "outcome") == Some("rejected")
    });
    assert!(rejected > 10.0, "{rejected}");
    assert!(logs(&batches).iter().any(|(_, l)| matches!(&l.body, Some(AnyValue { value: Some(any_value::Value::StringValue(b)) }) if b.contains("to OPEN"))));
}

#[test]
fn orders_drop_scenario_keeps_traffic_but_loses_orders() {
    let placed = |b: &[Telemetry]| {
        counter_total(b, "bookstore.orders", |a| {
            attr_str(a, "order.status") == Some("placed")
        })
    };
    let (steady, _) = run(config(Scenario::Steady, 20.0), 180);
    let (drop, _) = run(config(Scenario::OrdersDrop, 20.0), 180);
    assert!(
        placed(&drop) < placed(&steady) * 0.1,
        "{} vs {}",
        placed(&drop),
        placed(&steady)
    );
    let roots = |b: &[Telemetry]| {
        spans(b)
            .iter()
            .filter(|(_, s)| s.parent_span_id.is_empty())
            .count() as f64
    };
    assert!(
        roots(&drop) > roots(&steady) * 0.85,
        "overall traffic stays"
    );
}

#[test]
fn incident_window_bounds_the_incident() {
    let cfg = FleetConfig {
        incident: IncidentWindow {
            start_offset_ns: 60 * SEC,
            duration_ns: 60 * SEC,
        },
        ..config(Scenario::PaymentLatencySpike, 20.0)
    };
    let mut fleet = Fleet::new(cfg);
    let start = fleet.now_ns();
    let before = fleet.step(start + 55 * SEC);
    let during = fleet.step(start + 115 * SEC);
    let p99 = |t: &Telemetry| percentile(payment_server_durations(std::slice::from_ref(t)), 0.99);
    assert!(p99(&during) > 5 * p99(&before));
}

#[test]
fn zero_rate_and_odd_configs_are_safe() {
    let mut fleet = Fleet::new(FleetConfig {
        requests_per_second: f64::NAN,
        metric_interval_ns: 0,
        start_time_ns: -5,
        ..FleetConfig::default()
    });
    let t = fleet.now_ns();
    let out = fleet.step(t + 30 * SEC);
    assert_eq!(out.span_count(), 0);
    assert!(
        out.data_point_count() > 0,
        "process metrics flow without traffic"
    );
    assert!(fleet.step(t).is_empty(), "stepping backwards gives nothing");
    let mut daily = Fleet::new(FleetConfig {
        scenario: Scenario::DailyCycle,
        requests_per_second: 50.0,
        ..FleetConfig::default()
    });
    let t = daily.now_ns();
    assert!(daily.step(t + 10 * SEC).span_count() > 0);
}
