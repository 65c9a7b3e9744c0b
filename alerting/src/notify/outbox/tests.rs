use super::*;

fn alert(name: &str, ends_at_ms: i64) -> Alert {
    Alert {
        labels: [("alertname".to_string(), name.to_string())]
            .into_iter()
            .collect(),
        annotations: Default::default(),
        starts_at_ms: 1,
        ends_at_ms,
        generator_url: String::new(),
    }
}

#[test]
fn recovers_in_order_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), "r", 10).unwrap();
    for i in 0..3 {
        outbox
            .push(Payload::Alertmanager {
                alerts: vec![alert(&format!("a{i}"), 5)],
            })
            .unwrap();
    }
    fs::write(dir.path().join("00000000000000000099.json.tmp"), b"half").unwrap();
    fs::write(dir.path().join("00000000000000000050.json"), b"{not json").unwrap();
    drop(outbox);

    let outbox = Outbox::open(dir.path(), "r", 10).unwrap();
    let seqs: Vec<u64> = outbox.entries().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(outbox.dropped(), 1);
    assert!(dir.path().join("00000000000000000050.corrupt").exists());
    assert!(!dir.path().join("00000000000000000099.json.tmp").exists());
    let (seq, _) = outbox
        .push(Payload::Alertmanager { alerts: vec![] })
        .unwrap();
    assert_eq!(seq, 4);
}

#[test]
fn bounded_oldest_dropped_first() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), "r", 2).unwrap();
    let mut dropped = Vec::new();
    for i in 0..5 {
        let body = format!("{i}");
        let payload = Payload::Webhook {
            group_key: body.clone(),
            firing: vec![],
            resolved: vec![],
            body,
        };
        dropped.extend(outbox.push(payload).unwrap().1.into_iter().map(|e| e.seq));
    }
    assert_eq!(dropped, vec![1, 2, 3]);
    assert_eq!(outbox.dropped(), 3);
    assert_eq!(
        outbox.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    // A smaller capacity on restart trims the recovered queue.
    drop(outbox);
    let outbox = Outbox::open(dir.path(), "r", 1).unwrap();
    assert_eq!(
        outbox.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5]
    );
}

#[tokio::test]
async fn alertmanager_pushes_coalesce_behind_the_one_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), "am", 100).unwrap();
    outbox.push_alertmanager(vec![alert("a", 10)]).unwrap();
    let first = outbox.next().await;
    assert_eq!(first.seq, 1);
    outbox
        .push_alertmanager(vec![alert("a", 20), alert("b", 20)])
        .unwrap();
    outbox.push_alertmanager(vec![alert("a", 30)]).unwrap();
    let entries = outbox.entries();
    assert_eq!(entries.len(), 2, "in-flight entry plus one coalesced entry");
    let Payload::Alertmanager { alerts } = &entries[1].payload else {
        panic!("not an alertmanager entry")
    };
    let ends: BTreeMap<String, i64> = alerts
        .iter()
        .map(|a| (a.labels["alertname"].clone(), a.ends_at_ms))
        .collect();
    assert_eq!(
        ends,
        [("a".to_string(), 30), ("b".to_string(), 20)]
            .into_iter()
            .collect()
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}
