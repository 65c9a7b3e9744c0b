use super::*;

#[test]
fn recovery_discards_delivered_and_foreign_entries_and_never_reuses_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("team");
    let outbox = Arc::new(Outbox::open(&receiver_dir.join("outbox"), "team", 10).unwrap());
    let webhook = |key: &str| Payload::Webhook {
        group_key: key.into(),
        firing: vec!["f".into()],
        resolved: vec![],
        body: "{}".into(),
    };
    outbox.push(webhook("delivered")).unwrap(); // seq 1: delivered just before a crash
    outbox.push(webhook("waiting")).unwrap(); // seq 2: undelivered
    outbox
        .push(Payload::Alertmanager { alerts: vec![] })
        .unwrap(); // seq 3: from when it was an alertmanager
    let log = super::super::group::NotifyLog {
        firing: ["f".to_string()].into(),
        resolved: Default::default(),
        at_ms: 1,
        seq: 7,
    };
    let state = StateFile {
        version: STATE_VERSION,
        groups: vec![GroupState {
            key: "delivered".into(),
            labels: Default::default(),
            alerts: vec![],
            notified: Some(log),
        }],
    };
    std::fs::write(
        receiver_dir.join(STATE_FILE),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();

    let config = Arc::new(ReceiverConfig::new(
        "team",
        ReceiverKind::Webhook,
        "http://127.0.0.1:1/",
    ));
    let routes = [(config, outbox.clone(), receiver_dir.clone())];
    let dispatcher =
        Dispatcher::recover(String::new(), &routes, Arc::new(AtomicUsize::new(0))).unwrap();
    assert_eq!(
        outbox.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(
        std::fs::read_dir(receiver_dir.join("outbox"))
            .unwrap()
            .count(),
        1
    );
    let Some(Route::Webhook(route)) = dispatcher.routes.first() else {
        panic!("webhook route expected")
    };
    assert_eq!(
        route
            .groups
            .get("waiting")
            .and_then(|g| g.pending.as_ref())
            .map(|p| p.seq),
        Some(2)
    );
    // Sequence numbers continue above the ones the state remembers.
    assert_eq!(outbox.push(webhook("new")).unwrap().0, 8);
}

#[test]
fn unreadable_state_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    std::fs::write(&path, b"{\"version\":1,\"gro").unwrap();
    assert!(load_state(&path, "team").is_empty());
    assert!(!path.exists());
    assert!(dir.path().join("groups.json.corrupt").exists());
}
