//! A small, fast, seedable PRNG (xoshiro256** seeded through SplitMix64) and the distributions the
//! simulation draws from. Owning it here, rather than using the `rand` crate, keeps the output
//! bit-for-bit stable across dependency upgrades: the same seed gives the same fleet forever.

/// Deterministic pseudo-random numbers: xoshiro256**, seeded with SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// One SplitMix64 step: advances `state` and returns a well-mixed 64-bit value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut state = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut state);
        }
        if s == [0; 4] {
            // xoshiro's one forbidden state; SplitMix64 never yields four zeros, but be explicit.
            s[0] = 1;
        }
        Rng { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (0 when `n` is 0). Multiply-shift; the bias is below 2⁻⁶⁰ for our `n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A standard normal variate (Box–Muller; one of the pair is discarded to keep the state simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]: ln is finite
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and shape: the usual shape of service latencies.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean (inter-arrival times of a Poisson process).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// A latency in nanoseconds: log-normal around `median_ms`, with a 1% chance of a 3–8× tail
    /// (a GC pause, a cold connection), as real latency distributions have.
    pub fn latency_ns(&mut self, median_ms: f64, sigma: f64) -> i64 {
        let mut ms = self.lognormal(median_ms, sigma);
        if self.chance(0.01) {
            ms *= 3.0 + 5.0 * self.f64();
        }
        (ms * 1e6).max(1_000.0) as i64
    }

    /// `N` random bytes, never all zero (valid as a trace or span id).
    pub fn id_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        loop {
            for chunk in out.chunks_mut(8) {
                let bytes = self.next_u64().to_be_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            if out.iter().any(|&b| b != 0) {
                return out;
            }
        }
    }

    /// An index drawn with the given relative weights (0 when all weights are zero).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return 0;
        }
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// An element of a non-empty slice (the first when it is a one-element slice; panics on empty,
    /// which only constant tables inside this crate are passed).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests;
