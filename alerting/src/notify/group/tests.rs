use std::time::Duration;

use super::*;
use crate::notify::config::ReceiverKind;

fn config(group_by: &[&str], send_resolved: bool) -> Arc<ReceiverConfig> {
    let mut config = ReceiverConfig::new("r", ReceiverKind::Webhook, "http://127.0.0.1:1/");
    config.group_by = group_by.iter().map(|s| s.to_string()).collect();
    config.group_wait = Duration::from_millis(100);
    config.group_interval = Duration::from_millis(1000);
    config.repeat_interval = Duration::from_millis(10_000);
    config.send_resolved = send_resolved;
    Arc::new(config)
}

fn alert(name: &str, instance: &str, starts_at_ms: i64, ends_at_ms: i64) -> Alert {
    Alert {
        labels: [("alertname", name), ("instance", instance)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: LabelSet::new(),
        starts_at_ms,
        ends_at_ms,
        generator_url: String::new(),
    }
}

/// Flushes `key` at `now` and, if a notification results, delivers it at once.
fn flush_deliver(
    groups: &mut WebhookGroups,
    key: &str,
    now: i64,
    seq: u64,
) -> Option<Notification> {
    let note = groups.flush(key, now, "http://lumen").unwrap()?;
    groups.set_pending(
        key,
        Pending {
            seq,
            firing: note.firing.clone(),
            resolved: note.resolved.clone(),
        },
        now,
    );
    assert!(groups.delivered(key, seq, now));
    Some(note)
}

#[test]
fn groups_by_labels_all_and_none() {
    let by_name = WebhookGroups::new(config(&["alertname"], true));
    let labels = alert("A", "x", 0, 1).labels;
    assert_eq!(by_name.group_of(&labels).0, r#"{}:{alertname="A"}"#);
    let all = WebhookGroups::new(config(&["..."], true));
    assert_eq!(
        all.group_of(&labels).0,
        r#"{}:{alertname="A", instance="x"}"#
    );
    let none = WebhookGroups::new(config(&[], true));
    assert_eq!(none.group_of(&labels).0, "{}:{}");
}

#[test]
fn dedups_like_alertmanager() {
    let mut groups = WebhookGroups::new(config(&["alertname"], true));
    let key = r#"{}:{alertname="A"}"#;
    let far = 1_000_000;
    groups.insert(alert("A", "1", 0, far), 0);
    assert!(groups.due(50).is_empty(), "group_wait not over");
    assert_eq!(groups.due(100), vec![key.to_string()]);
    let first = flush_deliver(&mut groups, key, 100, 1).unwrap();
    assert_eq!(first.firing.len(), 1);
    // Unchanged: nothing until repeat_interval (10 s after delivery).
    assert!(flush_deliver(&mut groups, key, 1100, 2).is_none());
    // A new firing alert: notified at the next flush, with both alerts.
    groups.insert(alert("A", "2", 1500, far), 1500);
    let second = flush_deliver(&mut groups, key, 2100, 3).unwrap();
    assert_eq!(second.firing.len(), 2);
    // One resolves: notified (send_resolved), then it leaves the group.
    groups.insert(alert("A", "2", 1500, 2500), 2500);
    let third = flush_deliver(&mut groups, key, 3100, 4).unwrap();
    assert_eq!((third.firing.len(), third.resolved.len()), (1, 1));
    assert_eq!(groups.get(key).unwrap().alerts.len(), 1);
    // Repeat interval.
    assert!(flush_deliver(&mut groups, key, 12_000, 5).is_none());
    assert!(flush_deliver(&mut groups, key, 13_100, 6).is_some());
    // All resolved: one resolved notification, then the group is gone.
    groups.insert(alert("A", "1", 0, 13_500), 13_500);
    let last = flush_deliver(&mut groups, key, 14_100, 7).unwrap();
    assert!(last.firing.is_empty());
    assert!(last.body.contains(r#""status":"resolved""#));
    assert!(groups.flush(key, 15_100, "").unwrap().is_none());
    assert_eq!(groups.len(), 0);
}

#[test]
fn pending_notification_blocks_new_ones_until_delivered() {
    let mut groups = WebhookGroups::new(config(&[], true));
    let key = "{}:{}";
    groups.insert(alert("A", "1", 0, 1_000_000), 0);
    let note = groups.flush(key, 100, "").unwrap().unwrap();
    groups.set_pending(
        key,
        Pending {
            seq: 1,
            firing: note.firing,
            resolved: note.resolved,
        },
        100,
    );
    groups.insert(alert("B", "1", 150, 1_000_000), 150);
    assert!(
        groups.flush(key, 1100, "").unwrap().is_none(),
        "still pending"
    );
    assert!(groups.delivered(key, 1, 1500));
    let next = groups.flush(key, 2100, "").unwrap().unwrap();
    assert_eq!(
        next.firing.len(),
        2,
        "the change made during the outage follows once"
    );
}

#[test]
fn resolved_without_send_resolved_is_logged_not_sent() {
    let mut groups = WebhookGroups::new(config(&[], false));
    let key = "{}:{}";
    groups.insert(alert("A", "1", 0, 1_000_000), 0);
    groups.insert(alert("A", "2", 0, 1_000_000), 0);
    flush_deliver(&mut groups, key, 100, 1).unwrap();
    groups.insert(alert("A", "2", 0, 500), 500);
    assert!(
        flush_deliver(&mut groups, key, 1100, 2).is_none(),
        "a resolution alone is not sent"
    );
    groups.insert(alert("A", "1", 0, 1500), 1500);
    assert!(
        groups.flush(key, 2100, "").unwrap().is_none(),
        "nothing to send, only logged"
    );
    assert_eq!(groups.len(), 0);
}

#[test]
fn resolutions_re_sent_after_notification_are_ignored() {
    let mut groups = WebhookGroups::new(config(&[], true));
    let key = "{}:{}";
    groups.insert(alert("A", "1", 0, 1_000_000), 0);
    groups.insert(alert("B", "1", 0, 1_000_000), 0);
    flush_deliver(&mut groups, key, 100, 1).unwrap();
    assert!(groups.insert(alert("A", "1", 0, 500), 500));
    let resolved = flush_deliver(&mut groups, key, 1100, 2).unwrap();
    assert_eq!(resolved.resolved.len(), 1);
    // Repeat notification (only B left), then the evaluator re-sends A's resolution.
    flush_deliver(&mut groups, key, 11_200, 3).unwrap();
    assert!(
        !groups.insert(alert("A", "1", 0, 500), 11_300),
        "already reported resolved"
    );
    assert!(groups.flush(key, 12_200, "").unwrap().is_none());
    // Never seen firing: a resolution alone creates no group.
    let mut other = WebhookGroups::new(config(&["alertname"], true));
    assert!(!other.insert(alert("C", "1", 0, 500), 600));
    assert_eq!(other.len(), 0);
}

#[test]
fn old_alerts_skip_group_wait_and_fleeting_ones_are_not_sent() {
    let mut groups = WebhookGroups::new(config(&[], true));
    groups.insert(alert("A", "1", 0, 1_000_000), 5000);
    assert_eq!(groups.due(5000).len(), 1, "started long ago: no group_wait");
    let mut fleeting = WebhookGroups::new(config(&[], true));
    fleeting.insert(alert("A", "1", 5000, 5050), 5000);
    assert!(fleeting.flush("{}:{}", 5100, "").unwrap().is_none());
    assert_eq!(fleeting.len(), 0);
}
