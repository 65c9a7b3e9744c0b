use lumen_storage::schema::ValueType;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::otlp::{span_kind, status_code, typed_value};
use super::{parse_go_duration, parse_trace_id};

#[test]
fn trace_ids_take_hex_of_any_case_and_pad_short_ones() {
    let full = parse_trace_id("5B8EFFF798038103D269B633813FC60C").unwrap();
    assert_eq!(hex::encode(full), "5b8efff798038103d269b633813fc60c");
    let short = parse_trace_id("d269b633813fc60c").unwrap();
    assert_eq!(hex::encode(short), "0000000000000000d269b633813fc60c");
    for bad in [
        "",
        "xyz",
        "5b8efff798038103d269b633813fc60c00",
        "0000",
        "12 34",
    ] {
        assert_eq!(parse_trace_id(bad), None, "{bad:?}");
    }
}

#[test]
fn stored_texts_come_back_with_their_types() {
    assert_eq!(typed_value("200", ValueType::Int), Value::IntValue(200));
    assert_eq!(
        typed_value("200", ValueType::String),
        Value::StringValue("200".into())
    );
    assert_eq!(
        typed_value("1.5", ValueType::Double),
        Value::DoubleValue(1.5)
    );
    assert_eq!(typed_value("true", ValueType::Bool), Value::BoolValue(true));
    assert_eq!(
        typed_value("AQI=", ValueType::Bytes),
        Value::BytesValue(vec![1, 2])
    );
    // Text that is not of its type (never written by Lumen) stays text.
    assert_eq!(
        typed_value("x", ValueType::Int),
        Value::StringValue("x".into())
    );
}

#[test]
fn json_arrays_and_maps_keep_order_and_number_kinds() {
    let Value::KvlistValue(list) =
        typed_value(r#"{"z":1,"a":[1.0,"s",true,null]}"#, ValueType::Kvlist)
    else {
        panic!("not a kvlist");
    };
    let keys: Vec<&str> = list.values.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["z", "a"]);
    assert_eq!(
        list.values[0].value.as_ref().unwrap().value,
        Some(Value::IntValue(1))
    );
    let Some(Value::ArrayValue(array)) = &list.values[1].value.as_ref().unwrap().value else {
        panic!("not an array");
    };
    let items: Vec<Option<Value>> = array.values.iter().map(|v| v.value.clone()).collect();
    assert_eq!(
        items,
        [
            Some(Value::DoubleValue(1.0)),
            Some(Value::StringValue("s".into())),
            Some(Value::BoolValue(true)),
            None
        ]
    );
}

#[test]
fn kinds_and_status_codes_map_back_to_otlp_numbers() {
    let kinds = [
        "unspecified",
        "internal",
        "server",
        "client",
        "producer",
        "consumer",
        "7",
    ];
    let numbers: Vec<i32> = kinds.iter().map(|k| span_kind(k)).collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 7]);
    assert_eq!(
        [
            status_code("unset"),
            status_code("ok"),
            status_code("error")
        ],
        [0, 1, 2]
    );
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
    assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
    assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
    assert_eq!(parse_go_duration("250us"), Ok(250_000));
    assert_eq!(parse_go_duration("250\u{b5}s"), Ok(250_000));
    for bad in ["", "soon", "5", "1x", "1.2.3s", "1d"] {
        assert!(parse_go_duration(bad).is_err(), "{bad}");
    }
}
