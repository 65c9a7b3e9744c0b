use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const DAY: u64 = 86_400_000;

#[test]
fn accepts_the_prometheus_grammar() {
    let cases: &[(&str, Duration)] = &[
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("30s", ms(30_000)),
        ("5m", ms(300_000)),
        ("1h30m", ms(5_400_000)),
        ("500ms", ms(500)),
        ("250ms", ms(250)),
        ("10s", ms(10_000)),
        ("10m", ms(600_000)),
        ("1m500ms", ms(60_500)),
        ("2d", ms(2 * DAY)),
        ("1w", ms(7 * DAY)),
        ("1y", ms(365 * DAY)),
        ("90s", ms(90_000)),
        (
            "1y2w3d4h5m6s7ms",
            ms(365 * DAY + 14 * DAY + 3 * DAY + 4 * 3_600_000 + 5 * 60_000 + 6_007),
        ),
        (" 15s ", ms(15_000)),
        ("007s", ms(7_000)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text), Ok(*expected), "{text:?}");
    }
}

#[test]
fn refuses_everything_else() {
    let cases = [
        "",
        " ",
        "5",
        "1.5s",
        "5 minutes",
        "5 m",
        "30m1h",
        "1m1m",
        "1s1ms1s",
        "-5m",
        "+5m",
        "5x",
        "m",
        "ms5",
        "1h 30m",
        "inf",
        "NaN",
        "1e3s",
        "5M",
        "5S",
        "99999999999999999999s",
        "999999999999999999y",
    ];
    for text in cases {
        assert!(parse(text).is_err(), "{text:?} should be refused");
    }
}

#[test]
fn errors_say_what_is_accepted() {
    let error = parse("5 fortnights").unwrap_err().to_string();
    assert!(error.contains("\"5 fortnights\""), "{error}");
    assert!(error.contains("1h30m"), "{error}");
    let error = parse("30m1h").unwrap_err().to_string();
    assert!(error.contains("largest first"), "{error}");
    let error = parse("5").unwrap_err().to_string();
    assert!(error.contains("missing unit"), "{error}");
    let error = parse_seconds_or_duration("soon").unwrap_err().to_string();
    assert!(error.contains("number of seconds"), "{error}");
}

#[test]
fn seconds_or_duration() {
    let accepted: &[(&str, Duration)] = &[
        ("5", ms(5_000)),
        ("0", Duration::ZERO),
        ("0.25", ms(250)),
        ("90", ms(90_000)),
        ("1h30m", ms(5_400_000)),
        ("250ms", ms(250)),
        (" 10 ", ms(10_000)),
    ];
    for (text, expected) in accepted {
        assert_eq!(parse_seconds_or_duration(text), Ok(*expected), "{text:?}");
    }
    for text in [
        "",
        "-5",
        "1.2.3",
        "inf",
        "1e3",
        "5 fortnights",
        "1.5s",
        "30m1h",
    ] {
        assert!(
            parse_seconds_or_duration(text).is_err(),
            "{text:?} should be refused"
        );
    }
}

#[test]
fn formats_like_prometheus() {
    let cases: &[(Duration, &str)] = &[
        (Duration::ZERO, "0s"),
        (ms(5_400_000), "1h30m"),
        (ms(60_000), "1m"),
        (ms(1_500), "1s500ms"),
        (ms(90 * DAY), "90d"),
        (ms(14 * DAY), "2w"),
        (ms(365 * DAY), "1y"),
        (ms(366 * DAY), "366d"),
        (Duration::from_micros(1_500), "1ms"),
    ];
    for (duration, expected) in cases {
        assert_eq!(format(*duration), *expected, "{duration:?}");
    }
}

#[test]
fn format_and_parse_round_trip() {
    for millis in [
        1,
        999,
        1_000,
        61_001,
        5_400_000,
        7 * DAY,
        9 * DAY + 1,
        365 * DAY + 1,
    ] {
        assert_eq!(parse(&format(ms(millis))), Ok(ms(millis)), "{millis}");
    }
}

// The assertions each old parser had (alerting's rule-file parser, the serve flags', the benches'),
// kept so the one grammar is seen to accept what they accepted.

#[test]
fn what_rule_files_accepted() {
    assert_eq!(parse("0"), Ok(Duration::ZERO));
    assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse("1m500ms"), Ok(Duration::from_millis(60_500)));
    assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
    assert!(parse("5").is_err());
    assert!(parse("5 minutes").is_err());
    assert!(parse("30m1h").is_err());
    assert!(parse("1m1m").is_err());
    assert!(parse("").is_err());
    assert!(parse("-5m").is_err());
    assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format(Duration::from_secs(60)), "1m");
    assert_eq!(format(Duration::ZERO), "0s");
    assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
}

#[test]
fn what_flags_accepted() {
    let flag = parse_seconds_or_duration;
    assert_eq!(flag("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(flag("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(flag("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(flag("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(flag("5"), Ok(Duration::from_secs(5)));
    assert!(flag("5 fortnights").is_err());
    assert!(flag("x").is_err());
    // Refused by the old flag parser, accepted now: the grammar rule files always had.
    assert_eq!(flag("1h30m"), Ok(Duration::from_secs(5400)));
}
