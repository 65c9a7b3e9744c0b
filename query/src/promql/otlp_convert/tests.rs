use super::*;

#[test]
fn exponential_buckets_become_cumulative_classic_buckets() {
    // scale 0: base 2; positive offset 0 → buckets (1,2], (2,4], (4,8].
    let h = ExpHistogram {
        scale: 0,
        zero_count: 1,
        zero_threshold: 0.0,
        positive_offset: 0,
        positive: &[2, 0, 3],
        negative_offset: 0,
        negative: &[],
        count: 6,
    };
    assert_eq!(
        exponential_to_classic(&h),
        vec![(0.0, 1), (2.0, 3), (8.0, 6), (f64::INFINITY, 6)]
    );
}

#[test]
fn negative_buckets_come_first_in_ascending_order() {
    // scale 1: base √2; negative offset -1 → buckets [-1,-1/√2) (index -1) and [-√2,-1) (index 0).
    let h = ExpHistogram {
        scale: 1,
        zero_count: 0,
        zero_threshold: 0.001,
        positive_offset: 1,
        positive: &[4],
        negative_offset: -1,
        negative: &[1, 2],
        count: 7,
    };
    let out = exponential_to_classic(&h);
    assert_eq!(out.len(), 5);
    assert!((out[0].0 - -1.0).abs() < 1e-12 && out[0].1 == 2, "{out:?}");
    assert!(
        (out[1].0 - -std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12 && out[1].1 == 3,
        "{out:?}"
    );
    assert_eq!(out[2], (0.001, 3));
    assert!((out[3].0 - 2.0).abs() < 1e-12 && out[3].1 == 7, "{out:?}");
    assert_eq!(out[4], (f64::INFINITY, 7));
}

#[test]
fn deltas_add_up_and_skip_nan() {
    let mut s = vec![(1, 2.0), (2, 3.0), (3, f64::NAN), (4, 5.0)];
    delta_to_cumulative(&mut s);
    assert_eq!(s[0].1, 2.0);
    assert_eq!(s[1].1, 5.0);
    assert!(s[2].1.is_nan());
    assert_eq!(s[3].1, 10.0);
}
