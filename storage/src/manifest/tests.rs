use super::*;

#[test]
fn persists_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Manifest::load(dir.path()).unwrap();
    assert!(m.segments.is_empty());
    m.flushed_wal_seq = 42;
    m.next_segment_id = 8;
    m.segments.push(SegmentMeta {
        id: 7,
        table: Table::Spans,
        path: dir.path().join("segments/spans/x/7.parquet"),
        min_time: 1,
        max_time: 2,
        rows: 3,
        bytes: 4,
    });
    m.persist().unwrap();
    let loaded = Manifest::load(dir.path()).unwrap();
    assert_eq!(loaded.flushed_wal_seq, 42);
    assert_eq!(loaded.next_segment_id, 8);
    assert_eq!(loaded.segments, m.segments);
}

#[test]
fn corrupt_manifest_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
    assert!(matches!(
        Manifest::load(dir.path()),
        Err(StorageError::Manifest { .. })
    ));
}
