use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int64Array,
    ListBuilder, MapBuilder, StringArray, StringBuilder, StructArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{Field, Fields, TimeUnit};
use serde_json::json;

use super::*;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn timestamps_are_rfc3339_utc_with_nine_digits() {
    let ns: ArrayRef = Arc::new(
        TimestampNanosecondArray::from(vec![
            Some(1_544_712_660_000_000_000),
            Some(1_544_712_660_123_456_789),
            None,
            Some(-1),
        ])
        .with_timezone("UTC"),
    );
    assert_eq!(
        json_value(ns.as_ref(), 0),
        json!("2018-12-13T14:51:00.000000000Z")
    );
    assert_eq!(
        json_value(ns.as_ref(), 1),
        json!("2018-12-13T14:51:00.123456789Z")
    );
    assert_eq!(json_value(ns.as_ref(), 2), Value::Null);
    assert_eq!(
        json_value(ns.as_ref(), 3),
        json!("1969-12-31T23:59:59.999999999Z")
    );

    // Other units and zones are shown in UTC too.
    let ms: ArrayRef =
        Arc::new(TimestampMillisecondArray::from(vec![1_544_712_660_250]).with_timezone("+02:00"));
    assert_eq!(
        json_value(ms.as_ref(), 0),
        json!("2018-12-13T14:51:00.250000000Z")
    );
    assert_eq!(
        format_timestamp(0, TimeUnit::Second).as_deref(),
        Some("1970-01-01T00:00:00.000000000Z")
    );
}

#[test]
fn floats_ints_and_non_finite_values() {
    let floats: ArrayRef = Arc::new(Float64Array::from(vec![
        1.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
    ]));
    let values: Vec<Value> = (0..5).map(|i| json_value(floats.as_ref(), i)).collect();
    assert_eq!(
        values,
        vec![
            json!(1.5),
            json!("NaN"),
            json!("+Inf"),
            json!("-Inf"),
            json!(0.1)
        ]
    );

    let f32s: ArrayRef = Arc::new(Float32Array::from(vec![0.1f32, f32::NAN]));
    assert_eq!(json_value(f32s.as_ref(), 0).to_string(), "0.1");
    assert_eq!(json_value(f32s.as_ref(), 1), json!("NaN"));

    let big: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, i64::MIN]));
    assert_eq!(
        json_value(big.as_ref(), 0).to_string(),
        "9223372036854775807"
    );
    assert_eq!(
        json_value(big.as_ref(), 1).to_string(),
        "-9223372036854775808"
    );
    let unsigned: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
    assert_eq!(
        json_value(unsigned.as_ref(), 0).to_string(),
        "18446744073709551615"
    );
}

#[test]
fn maps_lists_structs_binary_dates() {
    let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    map.keys().append_value("http.method");
    map.values().append_value("GET");
    map.keys().append_value("retry");
    map.values().append_null();
    map.append(true).unwrap();
    map.append(false).unwrap();
    map.append(true).unwrap();
    let map: ArrayRef = Arc::new(map.finish());
    assert_eq!(
        json_value(map.as_ref(), 0),
        json!({"http.method": "GET", "retry": null})
    );
    assert_eq!(json_value(map.as_ref(), 1), Value::Null);
    assert_eq!(json_value(map.as_ref(), 2), json!({}));
    assert_eq!(type_name(map.data_type()), "map<utf8,utf8>");

    let mut list = ListBuilder::new(arrow::array::UInt64Builder::new());
    list.values().append_value(1);
    list.values().append_value(2);
    list.append(true);
    list.append(false);
    let list: ArrayRef = Arc::new(list.finish());
    assert_eq!(json_value(list.as_ref(), 0), json!([1, 2]));
    assert_eq!(json_value(list.as_ref(), 1), Value::Null);
    assert_eq!(type_name(list.data_type()), "list<uint64>");

    let structs: ArrayRef = Arc::new(StructArray::from(vec![
        (
            Arc::new(Field::new("quantile", DataType::Float64, false)),
            Arc::new(Float64Array::from(vec![0.5])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("ok", DataType::Boolean, false)),
            Arc::new(BooleanArray::from(vec![true])) as ArrayRef,
        ),
    ]));
    assert_eq!(
        json_value(structs.as_ref(), 0),
        json!({"quantile": 0.5, "ok": true})
    );
    assert_eq!(
        type_name(structs.data_type()),
        "struct<quantile:float64,ok:boolean>"
    );

    let binary: ArrayRef = Arc::new(BinaryArray::from(vec![&[0xde, 0xad, 0xbe, 0xef][..]]));
    assert_eq!(json_value(binary.as_ref(), 0), json!("deadbeef"));

    let dates: ArrayRef = Arc::new(Date32Array::from(vec![19_723]));
    assert_eq!(json_value(dates.as_ref(), 0), json!("2024-01-01"));
    assert_eq!(type_name(dates.data_type()), "date");
}

#[test]
fn friendly_type_names() {
    assert_eq!(
        type_name(&DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some("UTC".into())
        )),
        "timestamp"
    );
    assert_eq!(type_name(&DataType::Utf8View), "utf8");
    assert_eq!(type_name(&DataType::Int64), "int64");
    assert_eq!(type_name(&DataType::Float64), "float64");
    assert_eq!(type_name(&DataType::Decimal128(10, 2)), "decimal(10,2)");
    assert_eq!(
        type_name(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8)
        )),
        "utf8"
    );
    let links = lumen_storage::Table::Spans.schema();
    let links = links.field_with_name("links").unwrap();
    assert!(type_name(links.data_type()).starts_with("list<struct<trace_id:utf8,span_id:utf8,"));
}

#[test]
fn json_response_shape() {
    let b = batch(vec![
        (
            "name",
            Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
        ),
        ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
    ]);
    let text = encode_json(&b.schema(), &[b.clone(), b.slice(0, 0), b.slice(1, 1)]);
    let parsed: JsonResult = serde_json::from_str(&text).unwrap();
    assert_eq!(
        parsed.columns,
        vec![Column::new("name", "utf8"), Column::new("n", "int64")]
    );
    assert_eq!(
        parsed.rows,
        vec![
            vec![json!("a"), json!(1)],
            vec![Value::Null, json!(2)],
            vec![Value::Null, json!(2)]
        ]
    );
    assert_eq!(
        encode_json(&b.schema(), &[]),
        r#"{"columns":[{"name":"name","type":"utf8"},{"name":"n","type":"int64"}],"rows":[]}"#
    );
}

#[test]
fn csv_quotes_per_rfc4180_and_keeps_null_apart_from_empty() {
    let mut list = ListBuilder::new(StringBuilder::new());
    for _ in 0..5 {
        list.values().append_value("x");
        list.append(true);
    }
    let b = batch(vec![
        (
            "text, quoted",
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("a,b"),
                Some("say \"hi\""),
                Some("two\nlines"),
                Some(""),
            ])) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                None,
                Some(f64::NAN),
                Some(2.5),
                Some(-0.0),
            ])) as ArrayRef,
        ),
        ("l", Arc::new(list.finish()) as ArrayRef),
    ]);
    let mut out = csv_header(&b.schema());
    csv_rows(&b, &mut out);
    assert_eq!(
        out,
        "\"text, quoted\",n,l\n\
         plain,1.0,\"[\"\"x\"\"]\"\n\
         \"a,b\",,\"[\"\"x\"\"]\"\n\
         \"say \"\"hi\"\"\",NaN,\"[\"\"x\"\"]\"\n\
         \"two\nlines\",2.5,\"[\"\"x\"\"]\"\n\
         \"\",-0.0,\"[\"\"x\"\"]\"\n"
    );
}

#[test]
fn ndjson_objects_keep_column_order() {
    let b = batch(vec![
        ("z", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "a",
            Arc::new(StringArray::from(vec![Some("x"), None])) as ArrayRef,
        ),
    ]);
    let mut out = String::new();
    ndjson_rows(&b, &mut out);
    assert_eq!(out, "{\"z\":1,\"a\":\"x\"}\n{\"z\":2,\"a\":null}\n");
}

#[test]
fn output_formats_parse() {
    assert_eq!(OutputFormat::parse("CSV").unwrap(), OutputFormat::Csv);
    assert_eq!(OutputFormat::parse("ndjson").unwrap(), OutputFormat::Ndjson);
    assert_eq!(OutputFormat::parse("json").unwrap(), OutputFormat::Json);
    let err = OutputFormat::parse("xml").unwrap_err();
    assert_eq!(err.error_type(), "bad_request");
}

#[test]
fn table_rendering_aligns_and_escapes() {
    let columns = vec![
        Column::new("service_name", "utf8"),
        Column::new("spans", "int64"),
        Column::new("attrs", "map<utf8,utf8>"),
    ];
    let rows = vec![
        vec![json!("checkout"), json!(1200), json!({"k": "v"})],
        vec![Value::Null, json!(7), json!("line\nbreak")],
    ];
    let text = render_table(&columns, &rows);
    assert_eq!(
        text,
        "+--------------+-------+-------------+\n\
         | service_name | spans | attrs       |\n\
         +--------------+-------+-------------+\n\
         | checkout     |  1200 | {\"k\":\"v\"}   |\n\
         | NULL         |     7 | line\\nbreak |\n\
         +--------------+-------+-------------+\n"
    );
    let cut = render_table_with(
        &columns[..1],
        &[vec![json!("abcdefghij")]],
        &TableOptions {
            max_cell_width: Some(5),
        },
    );
    assert!(cut.contains("| abcd…        |"), "{cut}");
    assert_eq!(render_table(&[], &[]), "");
    let no_rows = render_table(&columns[..1], &[]);
    assert_eq!(no_rows.lines().count(), 3);
}

#[test]
fn struct_fields_in_spans_schema_survive() {
    // Spans' event structs have non-nullable fields; make sure nested conversion handles them.
    let fields = lumen_storage::schema::quantile_fields();
    let structs = StructArray::new(
        Fields::from(fields.iter().cloned().collect::<Vec<_>>()),
        vec![
            Arc::new(Float64Array::from(vec![0.99])),
            Arc::new(Float64Array::from(vec![12.0])),
        ],
        None,
    );
    assert_eq!(
        json_value(&structs, 0),
        json!({"quantile": 0.99, "value": 12.0})
    );
}
