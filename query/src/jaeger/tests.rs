use opentelemetry_proto::tonic::common::v1::{self as common, AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use serde_json::json;

use super::{jaeger_trace, tag, trace_id_text};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

#[test]
fn trace_ids_are_written_as_jaeger_writes_them() {
    let mut id = [0u8; 16];
    id[15] = 0xab;
    assert_eq!(trace_id_text(&id), "00000000000000ab");
    id[0] = 1;
    assert_eq!(trace_id_text(&id), "010000000000000000000000000000ab");
}

#[test]
fn tags_keep_their_types() {
    use any_value::Value::*;
    let cases = [
        (
            StringValue("x".into()),
            json!({"key": "k", "type": "string", "value": "x"}),
        ),
        (
            BoolValue(true),
            json!({"key": "k", "type": "bool", "value": true}),
        ),
        (
            IntValue(-3),
            json!({"key": "k", "type": "int64", "value": -3}),
        ),
        (
            DoubleValue(0.5),
            json!({"key": "k", "type": "float64", "value": 0.5}),
        ),
        (
            DoubleValue(f64::NAN),
            json!({"key": "k", "type": "string", "value": "NaN"}),
        ),
        (
            BytesValue(vec![1, 2]),
            json!({"key": "k", "type": "binary", "value": "AQI="}),
        ),
        (
            ArrayValue(common::ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(IntValue(1)),
                    },
                    AnyValue {
                        value: Some(StringValue("a".into())),
                    },
                ],
            }),
            json!({"key": "k", "type": "string", "value": "[1,\"a\"]"}),
        ),
        (
            KvlistValue(common::KeyValueList {
                values: vec![kv("z", BoolValue(false)), kv("a", IntValue(2))],
            }),
            json!({"key": "k", "type": "string", "value": "{\"a\":2,\"z\":false}"}),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(tag(&kv("k", value)), want);
    }
}

#[test]
fn equal_resources_share_one_process() {
    let resource = |service: &str| opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![kv(
            "service.name",
            any_value::Value::StringValue(service.into()),
        )],
        ..Default::default()
    };
    let group = |service: &str, span: u8| ResourceSpans {
        resource: Some(resource(service)),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                span_id: vec![span; 8],
                start_time_unix_nano: 2_000,
                end_time_unix_nano: 5_000,
                ..Default::default()
            }],
            ..Default::default()
        }],
        schema_url: String::new(),
    };
    let trace = TracesData {
        resource_spans: vec![
            group("gateway", 1),
            group("payment", 2),
            group("gateway", 3),
        ],
    };
    let json = jaeger_trace(&[7; 16], &trace);
    assert_eq!(json["processes"]["p1"]["serviceName"], json!("gateway"));
    assert_eq!(json["processes"]["p2"]["serviceName"], json!("payment"));
    assert!(json["processes"].get("p3").is_none(), "{json}");
    let processes: Vec<&str> = json["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["processID"].as_str().unwrap())
        .collect();
    assert_eq!(processes, ["p1", "p2", "p1"]);
    // Microseconds; no references, tags or logs for a bare span.
    assert_eq!(json["spans"][0]["startTime"], json!(2));
    assert_eq!(json["spans"][0]["duration"], json!(3));
    assert_eq!(json["spans"][0]["references"], json!([]));
}
