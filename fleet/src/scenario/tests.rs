use super::*;

#[test]
fn flag_values_round_trip() {
    for s in [
        "steady",
        "daily",
        "payment-latency",
        "error-burst:warehouse",
        "error-burst:payment",
        "breaker-open",
        "orders-drop",
    ] {
        let parsed: Scenario = s.parse().unwrap();
        assert_eq!(parsed.to_string(), s);
    }
    assert_eq!(
        "error-burst".parse::<Scenario>().unwrap(),
        Scenario::ErrorBurst {
            service: Service::Warehouse
        }
    );
    assert!("error-burst:nope".parse::<Scenario>().is_err());
    assert!("steady:x".parse::<Scenario>().is_err());
    assert!("chaos".parse::<Scenario>().is_err());
}

#[test]
fn incident_only_inside_its_window() {
    let w = IncidentWindow {
        start_offset_ns: 10,
        duration_ns: 5,
    };
    let s = Scenario::PaymentLatencySpike;
    assert_eq!(s.effects(1_009, 1_000, w).payment_slowdown, 1.0);
    assert_eq!(s.effects(1_010, 1_000, w).payment_slowdown, 10.0);
    assert_eq!(s.effects(1_015, 1_000, w).payment_slowdown, 1.0);
}

#[test]
fn daily_cycle_peaks_in_the_evening() {
    let day = 86_400 * NS_PER_SEC;
    let at = |h: i64| {
        Scenario::DailyCycle
            .effects(20 * day + h * 3600 * NS_PER_SEC, 0, IncidentWindow::ALWAYS)
            .traffic
    };
    assert!(at(20) > 1.6 && at(8) < 0.4, "{} {}", at(20), at(8));
}
