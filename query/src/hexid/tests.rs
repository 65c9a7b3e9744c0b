use arrow::array::StringArray;

use super::*;

#[test]
fn sql_schema_shows_ids_as_utf8_and_keeps_the_rest() {
    let spans = sql_schema(Table::Spans);
    for name in ["trace_id", "span_id", "parent_span_id"] {
        let field = spans.field_with_name(name).expect("id column");
        assert_eq!(field.data_type(), &DataType::Utf8, "{name}");
    }
    assert!(
        !spans
            .field_with_name("trace_id")
            .expect("trace_id")
            .is_nullable()
    );
    assert!(
        spans
            .field_with_name("parent_span_id")
            .expect("parent")
            .is_nullable()
    );
    assert_eq!(spans.fields().len(), Table::Spans.schema().fields().len());
    assert_eq!(
        spans.field_with_name("time").expect("time").data_type(),
        Table::Spans
            .schema()
            .field_with_name("time")
            .expect("time")
            .data_type()
    );
    let metrics = sql_schema(Table::Metrics);
    assert_eq!(metrics.as_ref(), Table::Metrics.schema().as_ref());
}

#[test]
fn hex_conversion_keeps_nulls_and_is_lowercase() {
    let ids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        vec![
            Some(vec![0x5b, 0x8e, 0xff, 0xf7]),
            None,
            Some(vec![0, 1, 0xab, 0xcd]),
        ]
        .into_iter(),
        4,
    )
    .expect("ids");
    let column: ArrayRef = Arc::new(ids);
    let hex = to_sql_column(&column, &DataType::Utf8).expect("hex");
    let hex = hex.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(hex.value(0), "5b8efff7");
    assert!(hex.is_null(1));
    assert_eq!(hex.value(2), "0001abcd");
}

#[test]
fn parse_hex_id_accepts_only_lowercase_of_the_right_length() {
    assert_eq!(
        parse_hex_id::<16>("5b8efff798038103d269b633813fc60c"),
        Some([
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ])
    );
    assert_eq!(parse_hex_id::<16>("5B8EFFF798038103D269B633813FC60C"), None);
    assert_eq!(parse_hex_id::<16>("5b8e"), None);
    assert_eq!(parse_hex_id::<8>("zzzzzzzzzzzzzzzz"), None);
    assert_eq!(parse_hex_id::<8>("é"), None);
}
