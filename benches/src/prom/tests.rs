use super::*;

#[test]
fn parses_counters_and_histograms() {
    let a = Scrape::parse(
        "# HELP x\nlumen_wal_fsync_seconds_bucket{le=\"0.001\"} 1\nlumen_wal_fsync_seconds_bucket{le=\"+Inf\"} 2\nlumen_wal_fsync_seconds_sum 0.01\nlumen_wal_fsync_seconds_count 2\nitems{signal=\"a\"} 3\nitems{signal=\"b\"} 4\n",
    );
    let b = Scrape::parse(
        "lumen_wal_fsync_seconds_bucket{le=\"0.001\"} 9\nlumen_wal_fsync_seconds_bucket{le=\"+Inf\"} 12\nlumen_wal_fsync_seconds_sum 0.02\nlumen_wal_fsync_seconds_count 12\nitems{signal=\"a\"} 10\n",
    );
    assert_eq!(a.get("items"), 7.0);
    assert_eq!(b.delta(&a, "lumen_wal_fsync_seconds_count"), 10.0);
    assert_eq!(
        b.quantile_bound(&a, "lumen_wal_fsync_seconds", 0.5),
        Some(0.001)
    );
    assert_eq!(
        b.quantile_bound(&a, "lumen_wal_fsync_seconds", 0.99),
        Some(f64::INFINITY)
    );
}
