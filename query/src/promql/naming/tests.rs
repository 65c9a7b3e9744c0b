//! Tests of the OpenTelemetry → Prometheus names and labels.

use super::*;

#[test]
fn otlp_names_get_unit_and_type_suffixes() {
    assert_eq!(
        metric_name("http.server.request.duration", "s", false),
        "http_server_request_duration_seconds"
    );
    assert_eq!(
        metric_name("system.memory.usage", "By", true),
        "system_memory_usage_bytes"
    );
    assert_eq!(
        metric_name("cpu.utilization", "1", true),
        "cpu_utilization_ratio"
    );
    assert_eq!(
        metric_name("packets", "{packet}/s", false),
        "packets_per_second"
    );
    assert_eq!(metric_name("latency_seconds", "s", true), "latency_seconds");
}

#[test]
fn otlp_labels_take_job_and_instance_from_the_resource() {
    let l = otlp_labels(
        vec![("http.request.method".into(), "GET".into())],
        vec![
            ("service.namespace".into(), "shop".into()),
            ("service.name".into(), "cart".into()),
            ("service.instance.id".into(), "i-1".into()),
        ],
    );
    assert_eq!(
        l.to_string(),
        r#"{http_request_method="GET", instance="i-1", job="shop/cart"}"#
    );
}
