use super::*;

#[test]
fn same_seed_same_sequence() {
    let mut a = Rng::new(7);
    let mut b = Rng::new(7);
    for _ in 0..1000 {
        assert_eq!(a.next_u64(), b.next_u64());
    }
    assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
}

#[test]
fn distributions_are_sane() {
    let mut r = Rng::new(1);
    let n = 100_000;
    let mean = (0..n).map(|_| r.f64()).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.01, "{mean}");
    let mut lat: Vec<f64> = (0..n).map(|_| r.lognormal(10.0, 0.5)).collect();
    lat.sort_by(f64::total_cmp);
    let median = lat[n / 2];
    assert!((median - 10.0).abs() < 0.3, "{median}");
    let exp_mean = (0..n).map(|_| r.exponential(2.0)).sum::<f64>() / n as f64;
    assert!((exp_mean - 2.0).abs() < 0.05, "{exp_mean}");
    for _ in 0..1000 {
        let x = r.between(3, 5);
        assert!((3..=5).contains(&x));
        assert!(r.below(10) < 10);
    }
    let id: [u8; 16] = r.id_bytes();
    assert!(id.iter().any(|&b| b != 0));
}
