use std::time::Duration;

use super::*;

#[test]
fn prometheus_durations_parse() {
    for (text, ms) in [
        ("0", 0),
        ("30s", 30_000),
        ("1h30m", 5_400_000),
        ("500ms", 500),
        ("1m500ms", 60_500),
        ("2d", 172_800_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        (
            "1y2w3d4h5m6s7ms",
            31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6_000 + 7,
        ),
        (" 10m ", 600_000),
    ] {
        assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        assert_eq!(
            parse_or_seconds(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
}

#[test]
fn what_is_not_a_duration_is_refused_with_the_reason() {
    for (text, reason) in [
        ("", "empty"),
        ("5", "unit"),
        ("1.5h", "unit"),
        ("5 minutes", "unit"),
        ("30m1h", "largest to smallest"),
        ("1m1m", "largest to smallest"),
        ("-5m", "not a duration"),
        ("m", "not a duration"),
        ("99999999999999999999s", "too large"),
        ("9999999999y", "too long"),
    ] {
        let err = parse(text).expect_err(text);
        assert!(err.contains(reason), "{text}: {err}");
    }
}

#[test]
fn bare_numbers_are_seconds_where_allowed() {
    assert_eq!(parse_or_seconds("5"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_or_seconds("1.5"), Ok(Duration::from_millis(1_500)));
    assert_eq!(parse_or_seconds("0.25"), Ok(Duration::from_millis(250)));
    assert!(parse_or_seconds("-1").is_err());
    assert!(parse_or_seconds("5 fortnights").is_err());
    assert!(parse_or_seconds("1e400").is_err());
}

#[test]
fn formatting_matches_prometheus() {
    for (ms, text) in [
        (0, "0s"),
        (30_000, "30s"),
        (5_400_000, "1h30m"),
        (60_500, "1m500ms"),
        (604_800_000, "1w"),
        (691_200_000, "8d"),
        (31_536_000_000, "1y"),
    ] {
        assert_eq!(format(Duration::from_millis(ms)), text);
        assert_eq!(parse(text), Ok(Duration::from_millis(ms)));
    }
}
