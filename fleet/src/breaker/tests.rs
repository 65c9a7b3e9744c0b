use super::*;

#[test]
fn opens_on_failures_then_recovers_through_half_open() {
    let mut b = CircuitBreaker::default();
    for t in 0..9 {
        assert_eq!(
            b.record(t, false),
            None,
            "fewer than MIN_CALLS calls never open it"
        );
    }
    let opened = b.record(9, false).unwrap();
    assert_eq!(
        (opened.from, opened.to),
        (BreakerState::Closed, BreakerState::Open)
    );
    assert_eq!(b.admit(10), (false, None));
    assert_eq!(b.state(9 + OPEN_NS - 1), BreakerState::Open);
    assert_eq!(b.state(9 + OPEN_NS), BreakerState::HalfOpen);
    let t = 9 + OPEN_NS;
    let (allowed, change) = b.admit(t);
    assert!(allowed);
    assert_eq!(change.unwrap().to, BreakerState::HalfOpen);
    assert_eq!(b.admit(t), (true, None));
    assert_eq!(b.record(t, true), None);
    assert_eq!(b.record(t, true), None);
    assert_eq!(b.record(t, true).unwrap().to, BreakerState::Closed);
}

#[test]
fn a_failed_trial_reopens() {
    let mut b = CircuitBreaker::default();
    for t in 0..10 {
        b.record(t, false);
    }
    b.admit(10 + OPEN_NS);
    assert_eq!(
        b.record(10 + OPEN_NS, false).unwrap().to,
        BreakerState::Open
    );
}

#[test]
fn stays_closed_below_threshold() {
    let mut b = CircuitBreaker::default();
    for t in 0..200 {
        assert_eq!(b.record(t, t % 3 != 0), None);
    }
}
