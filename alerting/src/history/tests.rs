use super::*;

fn entry(i: i64) -> HistoryEntry {
    HistoryEntry {
        time_ms: i,
        group: "g".into(),
        rule: "R".into(),
        state: "firing".into(),
        labels: [("alertname".to_string(), "R".to_string())].into(),
        annotations: LabelSet::new(),
        value: i as f64,
        active_at_ms: 0,
    }
}

#[test]
fn survives_reopen_and_skips_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    history.append(vec![entry(1), entry(2)]).unwrap();
    drop(history);
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join("history.jsonl"))
        .unwrap();
    file.write_all(b"{\"time_ms\": 3, \"gro").unwrap();
    drop(file);
    let history = History::open(dir.path()).unwrap();
    assert_eq!(history.entries(), vec![entry(1), entry(2)]);
    history.append(vec![entry(4)]).unwrap();
    let batch = history.to_batch().unwrap();
    assert_eq!(batch.num_rows(), 3);
    drop(history);
    assert_eq!(History::open(dir.path()).unwrap().entries().len(), 3);
}
