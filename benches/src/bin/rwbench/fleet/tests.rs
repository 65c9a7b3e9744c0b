use super::*;

fn spec() -> FleetSpec {
    FleetSpec {
        targets: 3,
        interval_ms: 15_000,
        scrapes: 20,
        end_ms: 1_800_000_000_000,
        jitter_ms: 0,
        idle_share: 0.0,
        seed: 7,
    }
}

#[test]
fn template_has_one_hundred_unique_series() {
    let fleet = Fleet::new(spec());
    let target = fleet.target(1);
    assert_eq!(target.labels().len(), SERIES_PER_TARGET);
    let mut keys: Vec<String> = target.labels().iter().map(|l| format!("{l:?}")).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), SERIES_PER_TARGET);
    for labels in target.labels() {
        assert_eq!(labels[0].name, "__name__");
        assert!(
            labels.windows(2).all(|w| w[0].name < w[1].name),
            "{labels:?}"
        );
    }
}

#[test]
fn counters_and_buckets_never_decrease_and_the_data_is_reproducible() {
    let spec = spec();
    let fleet = Fleet::new(spec.clone());
    let mut a = fleet.target(2);
    let mut b = fleet.target(2);
    let mut last = a.values().to_vec();
    for scrape in 0..20 {
        assert_eq!(a.timestamp(&spec, scrape), b.timestamp(&spec, scrape));
        a.advance(15.0);
        b.advance(15.0);
        assert_eq!(a.values(), b.values());
        for (i, labels) in a.labels().iter().enumerate() {
            let name = &labels[0].value;
            if name.ends_with("_total")
                || name.ends_with("_bucket")
                || name.ends_with("_count")
                || name.ends_with("_sum")
            {
                assert!(a.values()[i] >= last[i], "{name} decreased");
            }
        }
        // Buckets are cumulative over le: GET's 12 buckets are series 10..22.
        assert!(a.values()[10..22].windows(2).all(|w| w[0] <= w[1]));
        last = a.values().to_vec();
    }
    let ts: Vec<i64> = (0..3).map(|s| a.timestamp(&spec, s)).collect();
    assert!(ts[0] >= spec.start_ms() && ts[1] - ts[0] == 15_000 && ts[2] < spec.end_ms);
}
