use super::*;
use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use std::sync::Arc;

fn batch(v: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![v, v + 1]))]).unwrap()
}

fn write_records(dir: &Path, first: u64, n: i64) -> PathBuf {
    let mut wal = WalFile::create(dir, first).unwrap();
    for i in 0..n {
        wal.append(Table::Logs, &encode_batch(&batch(i)).unwrap())
            .unwrap();
    }
    wal.sync().unwrap();
    dir.join(file_name(first))
}

fn collect(dir: &Path, flushed: u64) -> (Vec<u64>, ReplayReport) {
    let mut seqs = Vec::new();
    let report = replay(dir, flushed, |r| {
        seqs.push(r.seq);
        Ok(())
    })
    .unwrap();
    (seqs, report)
}

#[test]
fn records_round_trip_and_flushed_ones_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), 1, 5);
    let (seqs, report) = collect(dir.path(), 2);
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(report.skipped, 2);
    assert_eq!(report.next_seq, 6);
}

#[test]
fn torn_tail_is_truncated_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), 1, 3);
    let full = file_len(&path).unwrap();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(full - 5).unwrap();
    let (seqs, report) = collect(dir.path(), 0);
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(report.truncated_files, 1);
    assert!(file_len(&path).unwrap() < full - 5);
    // A second replay finds a clean file.
    let (seqs, report) = collect(dir.path(), 0);
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(report.truncated_files, 0);
}

#[test]
fn flipped_byte_stops_replay_at_the_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), 1, 3);
    let mut data = fs::read(&path).unwrap();
    let last = data.len() - 3;
    data[last] ^= 0xff;
    fs::write(&path, &data).unwrap();
    let (seqs, _) = collect(dir.path(), 0);
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn trim_keeps_files_with_unflushed_records_and_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), 1, 3); // 1..=3
    write_records(dir.path(), 4, 3); // 4..=6
    write_records(dir.path(), 7, 1); // 7
    assert_eq!(trim(dir.path(), 5).unwrap(), 1);
    let left: Vec<u64> = list_files(dir.path())
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![4, 7]);
    assert_eq!(trim(dir.path(), 7).unwrap(), 1);
    assert_eq!(list_files(dir.path()).unwrap().len(), 1);
}
