use super::*;

fn candidate(name: &str, value: f64) -> Candidate {
    let labels: LabelSet = [("alertname".to_string(), name.to_string())].into();
    Candidate {
        fingerprint: crate::alert::fingerprint(&labels),
        labels,
        annotations: LabelSet::new(),
        value,
    }
}

#[test]
fn pending_then_firing_then_resolved_then_dropped() {
    let mut rule = RuleAlerts::default();
    let changes = rule.update(vec![candidate("A", 1.0)], 0, 60_000, 0);
    assert_eq!(changes[0].to, "pending");
    assert!(
        rule.due(0, 60_000, 15_000, "").is_empty(),
        "pending alerts are not sent"
    );
    assert!(
        rule.update(vec![candidate("A", 2.0)], 30_000, 60_000, 0)
            .is_empty()
    );
    let changes = rule.update(vec![candidate("A", 3.0)], 60_000, 60_000, 0);
    assert_eq!(changes[0].to, "firing");
    let sent = rule.due(60_000, 60_000, 15_000, "");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at_ms, 60_000);
    assert_eq!(sent[0].ends_at_ms, 60_000 + 240_000);
    assert!(
        rule.due(75_000, 60_000, 15_000, "").is_empty(),
        "not re-sent before the resend delay"
    );
    assert_eq!(rule.due(121_000, 60_000, 15_000, "").len(), 1);
    let changes = rule.update(vec![], 130_000, 60_000, 0);
    assert_eq!(changes[0].to, "resolved");
    let sent = rule.due(130_000, 60_000, 15_000, "");
    assert_eq!(sent[0].ends_at_ms, 130_000, "a resolution is sent at once");
    rule.update(vec![], 130_000 + RESOLVED_RETENTION_MS + 1, 60_000, 0);
    assert!(rule.active.is_empty());
}

#[test]
fn pending_alert_that_disappears_is_dropped_silently() {
    let mut rule = RuleAlerts::default();
    rule.update(vec![candidate("A", 1.0)], 0, 60_000, 0);
    assert!(rule.update(vec![], 15_000, 60_000, 0).is_empty());
    assert!(rule.active.is_empty());
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let mut rule = RuleAlerts::default();
    rule.update(vec![candidate("A", 1.0)], 0, 0, 30_000);
    assert_eq!(
        rule.active.values().next().unwrap().state,
        AlertState::Firing
    );
    assert!(rule.update(vec![], 10_000, 0, 30_000).is_empty());
    assert!(
        rule.update(vec![], 35_000, 0, 30_000).is_empty(),
        "still within keep_firing_for"
    );
    assert_eq!(rule.update(vec![], 40_000, 0, 30_000)[0].to, "resolved");
}

#[test]
fn a_resolved_alert_that_returns_starts_over() {
    let mut rule = RuleAlerts::default();
    rule.update(vec![candidate("A", 1.0)], 0, 0, 0);
    rule.update(vec![], 10_000, 0, 0);
    let changes = rule.update(vec![candidate("A", 1.0)], 20_000, 0, 0);
    assert_eq!(
        changes.iter().map(|c| c.to).collect::<Vec<_>>(),
        vec!["pending", "firing"]
    );
    assert_eq!(rule.active.values().next().unwrap().active_at_ms, 20_000);
}

#[test]
fn state_round_trips_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = GroupState {
        group: "g".into(),
        file: "f".into(),
        ..Default::default()
    };
    let mut rule = RuleAlerts::default();
    rule.update(vec![candidate("A", 1.0)], 5, 0, 0);
    state.rules.insert("A".into(), rule);
    let path = state_path(dir.path(), "f", "g");
    save(&path, &state).unwrap();
    assert_eq!(load(&path).rules, state.rules);
    std::fs::write(&path, b"{not json").unwrap();
    assert!(load(&path).rules.is_empty());
}
