//! Spans: validation, events and links, attribute limits and text forms.

use super::*;

fn good_span(name: &str) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.to_owned(),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        ..Default::default()
    }
}

fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("shop"),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn invalid_spans_are_rejected_and_named_the_rest_kept() {
    let far_future = (NOW + 2 * 3_600_000_000_000) as u64;
    let bad = vec![
        Span {
            trace_id: vec![1; 15],
            ..good_span("short trace id")
        },
        Span {
            trace_id: vec![0; 16],
            ..good_span("zero trace id")
        },
        Span {
            span_id: vec![],
            ..good_span("no span id")
        },
        Span {
            span_id: vec![0; 8],
            ..good_span("zero span id")
        },
        Span {
            parent_span_id: vec![9; 3],
            ..good_span("short parent")
        },
        Span {
            start_time_unix_nano: 0,
            ..good_span("no start")
        },
        Span {
            end_time_unix_nano: 1,
            ..good_span("ends before start")
        },
    ];
    let mut all = vec![good_span("ok 0")];
    all.extend(bad);
    all.push(Span {
        end_time_unix_nano: u64::MAX,
        ..good_span("end past 2262")
    });
    all.push(Span {
        start_time_unix_nano: far_future,
        end_time_unix_nano: far_future,
        ..good_span("future")
    });
    let mut with_bad_event = good_span("event in 2300");
    with_bad_event.events.push(span::Event {
        time_unix_nano: u64::MAX,
        ..Default::default()
    });
    all.push(with_bad_event);
    all.push(Span {
        parent_span_id: vec![0; 8],
        ..good_span("ok root with zero parent")
    });

    let converted = spans(&trace_request(all), &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Spans);
    assert_eq!((converted.accepted, converted.rejected), (2, 10));
    let b = batch(&converted);
    assert_eq!(string(b, "name", 0).as_deref(), Some("ok 0"));
    assert_eq!(string(b, "kind", 0).as_deref(), Some("client"));
    assert_eq!(
        string(b, "name", 1).as_deref(),
        Some("ok root with zero parent")
    );
    assert_eq!(id(b, "parent_span_id", 1), None);
    assert_eq!(string(b, "service_name", 1).as_deref(), Some("shop"));

    let message = converted.message();
    assert!(
        message.contains(r#"resourceSpans[0].scopeSpans[0].spans[1] "short trace id": trace_id must be 16 bytes, got 15"#),
        "{message}"
    );
    assert!(message.contains("trace_id is all zeros"), "{message}");
    assert!(
        message.contains("span_id must be 8 bytes, got 0"),
        "{message}"
    );
    assert!(
        message.contains("parent_span_id must be empty or 8 bytes"),
        "{message}"
    );
    assert!(message.contains("start_time_unix_nano is 0"), "{message}");
    assert!(
        message.contains("is before start_time_unix_nano"),
        "{message}"
    );
    // Only the first few reasons are listed; the rest are summarised.
    assert_eq!(converted.messages.len(), 9, "{message}");
    assert!(message.ends_with("and 2 more"), "{message}");
}

#[test]
fn absurd_timestamps_are_rejected_with_their_reason() {
    let far_future = (NOW + 2 * 3_600_000_000_000) as u64;
    let request = trace_request(vec![
        Span {
            end_time_unix_nano: u64::MAX,
            ..good_span("end past 2262")
        },
        Span {
            start_time_unix_nano: far_future,
            end_time_unix_nano: far_future,
            ..good_span("future")
        },
    ]);
    let converted = spans(&request, &limits(), NOW).expect("converts");
    assert!(converted.batch.is_none());
    assert_eq!(converted.rejected, 2);
    let message = converted.message();
    assert!(message.contains("past the year 2262"), "{message}");
    assert!(message.contains("7200s in the future"), "{message}");
}

#[test]
fn span_status_events_links_and_unknown_enums() {
    let mut s = good_span("full");
    s.kind = 42;
    s.trace_state = "vendor=x".to_owned();
    s.flags = 0x301;
    s.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: status::StatusCode::Error as i32,
        message: "boom".to_owned(),
    });
    s.events = vec![span::Event {
        time_unix_nano: 1_700_000_000_100_000_000,
        name: "exception".to_owned(),
        attributes: vec![string_kv("exception.type", "IOError")],
        dropped_attributes_count: 1,
    }];
    s.links = vec![span::Link {
        trace_id: vec![0xAB; 16],
        span_id: vec![0xCD; 8],
        trace_state: "k=v".to_owned(),
        attributes: vec![kv("n", Value::IntValue(-3))],
        dropped_attributes_count: 0,
        flags: 1,
    }];
    s.dropped_events_count = 4;
    s.dropped_links_count = 5;
    let converted = spans(&trace_request(vec![s]), &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Spans);
    let b = batch(&converted);
    assert_eq!(string(b, "kind", 0).as_deref(), Some("42"));
    assert_eq!(string(b, "status_code", 0).as_deref(), Some("error"));
    assert_eq!(string(b, "status_message", 0).as_deref(), Some("boom"));
    assert_eq!(string(b, "trace_state", 0).as_deref(), Some("vendor=x"));
    assert_eq!(u32_at(b, "flags", 0), 0x301);
    assert_eq!(u32_at(b, "dropped_events_count", 0), 4);
    assert_eq!(u32_at(b, "dropped_links_count", 0), 5);

    let events = b
        .column_by_name("events")
        .expect("events")
        .as_list::<i32>()
        .value(0);
    let events = events.as_struct();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events
            .column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>()
            .value(0),
        1_700_000_000_100_000_000
    );
    assert_eq!(
        events
            .column_by_name("name")
            .expect("name")
            .as_string::<i32>()
            .value(0),
        "exception"
    );
    assert_eq!(
        map_entries(
            events.column_by_name("attributes").expect("attrs").as_ref(),
            0
        ),
        pairs(&[("exception.type", "IOError")])
    );
    assert_eq!(
        events
            .column_by_name("dropped_attributes_count")
            .expect("d")
            .as_primitive::<UInt32Type>()
            .value(0),
        1
    );

    let links = b
        .column_by_name("links")
        .expect("links")
        .as_list::<i32>()
        .value(0);
    let links = links.as_struct();
    let text = |c: &str| {
        links
            .column_by_name(c)
            .expect(c)
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    assert_eq!(text("trace_id"), "ab".repeat(16));
    assert_eq!(text("span_id"), "cd".repeat(8));
    assert_eq!(text("trace_state"), "k=v");
    assert_eq!(
        links
            .column_by_name("flags")
            .expect("flags")
            .as_primitive::<UInt32Type>()
            .value(0),
        1
    );
    assert_eq!(
        map_entries(
            links.column_by_name("attributes").expect("attrs").as_ref(),
            0
        ),
        pairs(&[("n", "-3")])
    );
}

#[test]
fn too_many_attributes_are_trimmed_counted_and_reported_not_rejected() {
    let mut s = good_span("chatty");
    s.attributes = (0..5).map(|i| string_kv(&format!("k{i}"), "v")).collect();
    s.dropped_attributes_count = 1;
    let limits = Limits {
        max_attributes_per_item: 3,
        ..limits()
    };
    let mut request = trace_request(vec![s]);
    if let Some(resource) = request.resource_spans[0].resource.as_mut() {
        resource
            .attributes
            .extend((0..4).map(|i| string_kv(&format!("r{i}"), "v")));
    }
    let converted = spans(&request, &limits, NOW).expect("converts");
    assert_eq!((converted.accepted, converted.rejected), (1, 0));
    let b = batch(&converted);
    assert_eq!(
        map_at(b, "attributes", 0),
        pairs(&[("k0", "v"), ("k1", "v"), ("k2", "v")])
    );
    assert_eq!(u32_at(b, "dropped_attributes_count", 0), 3);
    // service.name is taken before trimming, and kept as the first attribute.
    assert_eq!(string(b, "service_name", 0).as_deref(), Some("shop"));
    assert_eq!(map_at(b, "resource_attributes", 0).len(), 3);
    assert_eq!(u32_at(b, "resource_dropped_attributes_count", 0), 2);
    let message = converted.message();
    assert!(
        message.contains(r#"spans[0] "chatty": 5 attributes, kept the first 3"#),
        "{message}"
    );
    assert!(
        message.contains("resourceSpans[0].resource: 5 attributes"),
        "{message}"
    );
}

#[test]
fn empty_request_gives_no_batch() {
    let converted = spans(&ExportTraceServiceRequest::default(), &limits(), NOW).expect("converts");
    assert!(converted.batch.is_none());
    assert_eq!((converted.accepted, converted.rejected), (0, 0));
}

#[test]
fn attribute_values_have_their_documented_text_forms() {
    let nested = Value::ArrayValue(ArrayValue {
        values: vec![
            AnyValue {
                value: Some(Value::IntValue(1)),
            },
            AnyValue {
                value: Some(Value::DoubleValue(2.5)),
            },
            AnyValue {
                value: Some(Value::BoolValue(false)),
            },
            AnyValue {
                value: Some(Value::BytesValue(vec![0xff, 0x00])),
            },
            AnyValue { value: None },
            AnyValue {
                value: Some(Value::DoubleValue(f64::NAN)),
            },
            AnyValue {
                value: Some(Value::StringValue("quote \" and \n".to_owned())),
            },
            AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("inner", Value::IntValue(-7))],
                })),
            },
        ],
    });
    let mut s = good_span("values");
    s.attributes = vec![
        kv("double.whole", Value::DoubleValue(5.0)),
        kv("double.small", Value::DoubleValue(1e-7)),
        kv("double.nan", Value::DoubleValue(f64::NAN)),
        kv("double.inf", Value::DoubleValue(f64::NEG_INFINITY)),
        kv("bytes", Value::BytesValue(b"hello".to_vec())),
        kv("int.min", Value::IntValue(i64::MIN)),
        kv("nested", nested),
        KeyValue {
            key: "empty".to_owned(),
            value: Some(AnyValue { value: None }),
            ..Default::default()
        },
        KeyValue {
            key: "absent".to_owned(),
            value: None,
            ..Default::default()
        },
    ];
    let converted = spans(&trace_request(vec![s]), &limits(), NOW).expect("converts");
    let b = batch(&converted);
    let expected: Vec<(String, Option<String>)> = [
        ("double.whole", Some("5")),
        ("double.small", Some("0.0000001")),
        ("double.nan", Some("NaN")),
        ("double.inf", Some("-inf")),
        ("bytes", Some("aGVsbG8=")),
        ("int.min", Some("-9223372036854775808")),
        (
            "nested",
            Some(r#"[1,2.5,false,"/wA=",null,"NaN","quote \" and \n",{"inner":-7}]"#),
        ),
        ("empty", None),
        ("absent", None),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
    .collect();
    assert_eq!(map_at(b, "attributes", 0), expected);
    // The JSON form parses back.
    let nested = map_at(b, "attributes", 0)[6].1.clone().expect("nested");
    let parsed: serde_json::Value = serde_json::from_str(&nested).expect("valid JSON");
    assert_eq!(parsed[7]["inner"], -7);
}

#[test]
fn resource_entity_refs_are_kept_as_json() {
    let mut request = trace_request(vec![good_span("with-entity")]);
    let resource = request.resource_spans[0].resource.as_mut().unwrap();
    resource.entity_refs = vec![opentelemetry_proto::tonic::common::v1::EntityRef {
        schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
        r#type: "service".into(),
        id_keys: vec!["service.name".into()],
        description_keys: vec!["service.version".into()],
    }];
    let converted = spans(&request, &limits(), NOW).unwrap();
    assert_schema(&converted, Table::Spans);
    let json = string(batch(&converted), "resource_entity_refs", 0).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!([{"type": "service", "id_keys": ["service.name"],
            "description_keys": ["service.version"], "schema_url": "https://opentelemetry.io/schemas/1.30.0"}])
    );
    let plain = spans(&trace_request(vec![good_span("plain")]), &limits(), NOW).unwrap();
    assert_eq!(string(batch(&plain), "resource_entity_refs", 0), None);
}
