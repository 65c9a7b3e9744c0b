#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt64Array, new_null_array,
};

use super::*;
use crate::schema::Table;

/// One test row of the `metrics` table: only the identity columns and `time` are filled.
#[derive(Clone)]
pub(crate) struct Row {
    pub series_id: u64,
    pub name: &'static str,
    pub metric_type: &'static str,
    pub unit: Option<&'static str>,
    pub monotonic: Option<bool>,
    pub scope: Option<&'static str>,
    pub attrs: Vec<(&'static str, Option<&'static str>)>,
    pub resource: Vec<(&'static str, Option<&'static str>)>,
}

fn row(series_id: u64, name: &'static str, attrs: &[(&'static str, &'static str)]) -> Row {
    Row {
        series_id,
        name,
        metric_type: "gauge",
        unit: None,
        monotonic: None,
        scope: None,
        attrs: attrs.iter().map(|(k, v)| (*k, Some(*v))).collect(),
        resource: vec![("service.name", Some("svc"))],
    }
}

fn map(
    rows: &[Row],
    pick: impl Fn(&Row) -> &Vec<(&'static str, Option<&'static str>)>,
) -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        for (k, v) in pick(r) {
            b.keys().append_value(k);
            b.values().append_option(*v);
        }
        b.append(true).unwrap();
    }
    Arc::new(b.finish())
}

pub(crate) fn metrics_batch(rows: &[Row]) -> RecordBatch {
    let schema = Table::Metrics.schema();
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                "time" => Arc::new(
                    TimestampNanosecondArray::from((0..n as i64).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                "series_id" => Arc::new(UInt64Array::from(
                    rows.iter().map(|r| r.series_id).collect::<Vec<_>>(),
                )),
                "metric_name" => Arc::new(StringArray::from(
                    rows.iter().map(|r| r.name).collect::<Vec<_>>(),
                )),
                "metric_type" => Arc::new(StringArray::from(
                    rows.iter().map(|r| r.metric_type).collect::<Vec<_>>(),
                )),
                "unit" => Arc::new(StringArray::from(
                    rows.iter().map(|r| r.unit).collect::<Vec<_>>(),
                )),
                "scope_name" => Arc::new(StringArray::from(
                    rows.iter().map(|r| r.scope).collect::<Vec<_>>(),
                )),
                "is_monotonic" => Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.monotonic).collect::<Vec<_>>(),
                )),
                "attributes" => map(rows, |r| &r.attrs),
                "resource_attributes" => map(rows, |r| &r.resource),
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                _ => Arc::new(arrow::array::UInt32Array::from(vec![0u32; n])),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn attrs_of(e: SeriesEntry<'_>) -> Vec<(String, Option<String>)> {
    e.attributes()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

#[test]
fn one_entry_per_series_with_its_row_range_and_bitmaps() {
    let rows = vec![
        row(1, "up", &[("job", "a")]),
        row(1, "up", &[("job", "a")]),
        row(2, "up", &[("job", "b")]),
        row(3, "requests", &[("job", "a"), ("code", "200")]),
        row(3, "requests", &[("job", "a"), ("code", "200")]),
        row(3, "requests", &[("job", "a"), ("code", "200")]),
    ];
    let index = SeriesIndex::from_batches([&metrics_batch(&rows)], 99).unwrap();
    assert_eq!(index.len(), 3);
    assert_eq!(index.segment_rows(), 6);
    let ranges: Vec<(u64, u64, u64)> = (0..3)
        .map(|o| index.series(o).unwrap())
        .map(|e| (e.series_id(), e.first_row(), e.rows()))
        .collect();
    assert_eq!(ranges, vec![(1, 0, 2), (2, 2, 1), (3, 3, 3)]);
    assert_eq!(
        index
            .series_with_metric_name("up")
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(index.series_with_metric_name("nope").is_none());
    let job_a = index
        .series_with_attribute(AttributeColumn::Point, "job", "a")
        .unwrap();
    assert_eq!(job_a.iter().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(
        index.series_with_attribute(AttributeColumn::Point, "job", "b"),
        Some(&Postings::One(1))
    );
    assert_eq!(
        index
            .series_with_attribute(AttributeColumn::Resource, "service.name", "svc")
            .unwrap()
            .len(),
        3
    );
    assert!(
        index
            .series_with_attribute(AttributeColumn::Resource, "job", "a")
            .is_none()
    );
    let mut keys: Vec<&str> = index.attribute_keys(AttributeColumn::Point).collect();
    keys.sort();
    assert_eq!(keys, vec!["code", "job"]);
    let mut values: Vec<(&str, u64)> = index
        .attribute_values(AttributeColumn::Point, "job")
        .map(|(v, b)| (v, b.len()))
        .collect();
    values.sort();
    assert_eq!(values, vec![("a", 2), ("b", 1)]);
    assert_eq!(index.descriptors().count(), 2);
    // Attributes come back sorted by key.
    assert_eq!(
        attrs_of(index.series(2).unwrap()),
        vec![
            ("code".into(), Some("200".into())),
            ("job".into(), Some("a".into()))
        ]
    );
}

#[test]
fn a_derived_value_is_made_once_and_kept_with_the_index() {
    let index = SeriesIndex::from_batches(
        [&metrics_batch(&[
            row(1, "m", &[("k", "v")]),
            row(2, "n", &[]),
        ])],
        1,
    )
    .unwrap();
    let made = std::cell::Cell::new(0);
    let names = |i: &SeriesIndex| {
        made.set(made.get() + 1);
        i.descriptors()
            .filter_map(|(d, _)| d.metric_name.map(str::to_string))
            .collect::<Vec<String>>()
    };
    assert_eq!(index.derived(names).unwrap(), &["m", "n"]);
    assert_eq!(index.derived(names).unwrap(), &["m", "n"]);
    assert_eq!(made.get(), 1);
    // The slot holds one type: another one is not kept.
    assert!(index.derived(|_| 7u32).is_none());
}

#[test]
fn rows_of_one_id_with_another_identity_get_their_own_entry() {
    // series_id hashes the name and attributes only: a unit or scope change keeps the id.
    let mut other_unit = row(1, "m", &[("k", "v")]);
    other_unit.unit = Some("s");
    let rows = vec![
        row(1, "m", &[("k", "v")]),
        other_unit.clone(),
        other_unit,
        row(1, "m", &[("k", "v")]),
    ];
    let index = SeriesIndex::from_batches([&metrics_batch(&rows)], 1).unwrap();
    let runs: Vec<(u64, u64, Option<&str>)> = (0..index.len())
        .map(|o| index.series(o).unwrap())
        .map(|e| (e.first_row(), e.rows(), e.descriptor().unit))
        .collect();
    assert_eq!(runs, vec![(0, 1, None), (1, 2, Some("s")), (3, 1, None)]);
}

#[test]
fn attribute_order_does_not_split_a_series_and_runs_span_batches() {
    let a = row(7, "m", &[("a", "1"), ("b", "2")]);
    let b = row(7, "m", &[("b", "2"), ("a", "1")]);
    let first = metrics_batch(&[a.clone(), b.clone()]);
    let second = metrics_batch(&[a, b, row(8, "m", &[])]);
    let index = SeriesIndex::from_batches([&first, &second], 1).unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index.series(0).unwrap().rows(), 4);
    assert_eq!(index.series(1).unwrap().first_row(), 4);
}

#[test]
fn null_values_are_kept_but_not_indexed() {
    let mut r = row(1, "m", &[]);
    r.attrs = vec![("k", None), ("k2", Some("x"))];
    let index = SeriesIndex::from_batches([&metrics_batch(&[r])], 1).unwrap();
    assert_eq!(
        attrs_of(index.series(0).unwrap()),
        vec![("k".into(), None), ("k2".into(), Some("x".into()))]
    );
    assert_eq!(
        index.attribute_values(AttributeColumn::Point, "k").count(),
        0
    );
    assert_eq!(
        index
            .series_with_attribute_key(AttributeColumn::Point, "k2")
            .len(),
        1
    );
}

#[test]
fn sidecar_round_trips() {
    let mut counter = row(2, "http_requests", &[("code", "500")]);
    counter.metric_type = "sum";
    counter.monotonic = Some(true);
    counter.scope = Some("prometheus.remote_write");
    let rows = vec![row(1, "up", &[("job", "a")]), counter.clone(), counter];
    let index = SeriesIndex::from_batches([&metrics_batch(&rows)], 1234).unwrap();
    let bytes = format::encode(&index).unwrap();
    let back = format::decode(&bytes).unwrap();
    assert_eq!(back.len(), index.len());
    assert_eq!(back.segment_rows(), 3);
    assert_eq!(back.segment_bytes(), 1234);
    for o in 0..index.len() {
        let (a, b) = (index.series(o).unwrap(), back.series(o).unwrap());
        assert_eq!(
            (a.series_id(), a.first_row(), a.rows()),
            (b.series_id(), b.first_row(), b.rows())
        );
        assert_eq!(a.descriptor(), b.descriptor());
        assert_eq!(attrs_of(a), attrs_of(b));
        assert_eq!(
            a.resource_attributes().collect::<Vec<_>>(),
            b.resource_attributes().collect::<Vec<_>>()
        );
    }
    assert_eq!(
        back.series(1).unwrap().descriptor().is_monotonic,
        Some(true)
    );
    assert_eq!(
        back.series_with_attribute(AttributeColumn::Point, "code", "500"),
        index.series_with_attribute(AttributeColumn::Point, "code", "500")
    );
}

#[test]
fn a_damaged_sidecar_is_an_error_never_a_panic() {
    let rows: Vec<Row> = (0..20).map(|i| row(i, "m", &[("k", "v")])).collect();
    let index = SeriesIndex::from_batches([&metrics_batch(&rows)], 1).unwrap();
    let bytes = format::encode(&index).unwrap();
    for len in 0..bytes.len() {
        assert!(format::decode(&bytes[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x5a;
        assert!(format::decode(&damaged).is_err(), "byte {i} flipped");
    }
    // A valid checksum over nonsense (a hostile file) is still refused without panicking.
    for i in 8..bytes.len() - 4 {
        let mut damaged = bytes[..bytes.len() - 4].to_vec();
        damaged[i] = 0xff;
        let crc = crc32fast::hash(&damaged);
        damaged.extend_from_slice(&crc.to_le_bytes());
        let _ = format::decode(&damaged);
    }
}

#[test]
fn series_listing_a_key_twice_are_flagged() {
    let mut twice = row(1, "m", &[("k", "a"), ("k", "b")]);
    twice.resource = vec![("service.name", Some("x")), ("service.name", Some("y"))];
    let index = SeriesIndex::from_batches(
        [&metrics_batch(&[
            twice,
            row(2, "m", &[("k", "a"), ("j", "a")]),
        ])],
        1,
    )
    .unwrap();
    assert_eq!(
        index
            .series_with_repeated_keys(AttributeColumn::Point)
            .iter()
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(
        index
            .series_with_repeated_keys(AttributeColumn::Resource)
            .iter()
            .collect::<Vec<_>>(),
        vec![0]
    );
    // Both values are indexed; the order of a repeated key's values is kept.
    assert_eq!(
        index
            .series_with_attribute(AttributeColumn::Point, "k", "b")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        attrs_of(index.series(0).unwrap()),
        vec![
            ("k".into(), Some("a".into())),
            ("k".into(), Some("b".into()))
        ]
    );
}
