use super::*;

#[test]
fn labels_are_sorted_and_unique() {
    let l = Labels::new(vec![
        ("b".into(), "1".into()),
        ("a".into(), "2".into()),
        ("b".into(), "3".into()),
        ("c".into(), String::new()),
    ]);
    assert_eq!(l.to_string(), r#"{a="2", b="3"}"#);
    assert_eq!(l.get("b"), Some("3"));
}

#[test]
fn written_floats_match_the_formatted_ones() {
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        0.3,
        1.5,
        1e-7,
        1.5e-300,
        123_456_789.125,
        1e15,
        1e16,
        1e21,
        1.7976931348623157e308,
        5e-324,
        -2.5e-5,
        999_999_999_999_999.0,
        0.001,
        100.0,
        1234.5678,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        9_007_199_254_740_993.0,
    ];
    // And pseudo-random bit patterns (xorshift), finite ones only.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits(x);
        if v.is_finite() {
            values.push(v);
        }
        values.push((x % 1_000_000) as f64 / 1000.0);
    }
    for v in values {
        let mut out = Vec::new();
        write_go_float(&mut out, v);
        let written = String::from_utf8(out).unwrap();
        let display = if v.is_nan() || v.is_infinite() {
            format_go_float(v)
        } else {
            format!("{v}")
        };
        if written != display {
            // Only an exact tie in the last digit may differ (ryu, like Python's `repr`,
            // rounds it to even; Rust's `Display` need not): same length, reads back as `v`.
            assert_eq!(
                written.len(),
                display.len(),
                "{v:e}: {written} vs {display}"
            );
            assert_eq!(
                written.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{v:e}: {written}"
            );
        }
    }
    // An exact tie (the value is …562.25) rounds to the even digit.
    let tie = 1_658_206_780_088_562.2; // stored exactly as …562.25
    assert_eq!(tie, 1_658_206_780_088_562.0 + 0.25);
    assert_eq!(format_go_float(tie), "1658206780088562.2");
}

#[test]
fn stale_marker_is_recognised() {
    assert!(is_stale_nan(stale_nan()));
    assert!(!is_stale_nan(f64::NAN));
}
