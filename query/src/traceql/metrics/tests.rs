use std::collections::BTreeMap;

use super::{format_number, quantile};

#[test]
fn quantiles_interpolate_within_power_of_two_buckets() {
    // 10 values in (512, 1024], 10 in (1024, 2048].
    let counts: BTreeMap<i64, f64> = [(10, 10.0), (11, 10.0)].into_iter().collect();
    assert_eq!(quantile(&counts, 0.5), 1024.0);
    assert_eq!(quantile(&counts, 0.25), 768.0);
    assert_eq!(quantile(&counts, 1.0), 2048.0);
    assert_eq!(quantile(&counts, 0.0), 512.0);
    assert_eq!(quantile(&BTreeMap::new(), 0.5), 0.0);
    // Bucket 0 holds values up to 1, from 0.
    let small: BTreeMap<i64, f64> = [(0, 4.0)].into_iter().collect();
    assert_eq!(quantile(&small, 0.5), 0.5);
}

#[test]
fn numbers_are_written_shortest() {
    assert_eq!(format_number(0.9), "0.9");
    assert_eq!(format_number(1.0), "1");
    assert_eq!(format_number(2f64.powi(30) / 1e9), "1.073741824");
}
