//! A tiny reader of the Prometheus text format, enough to take differences of Lumen's own counters
//! and histograms (`/metrics`) across a benchmark phase.

use std::collections::BTreeMap;

/// Every sample of a scrape, keyed by the metric name (labels summed away).
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    values: BTreeMap<String, f64>,
}

impl Scrape {
    /// Parses Prometheus text output.
    pub fn parse(text: &str) -> Scrape {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name_labels, value) = match line.rsplit_once(' ') {
                Some(parts) => parts,
                None => continue,
            };
            let name = name_labels.split('{').next().unwrap_or(name_labels);
            // Histogram buckets are kept per `le`, everything else summed over its labels.
            let key = if name.ends_with("_bucket") {
                let le = name_labels
                    .split("le=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or("");
                format!("{name}{{le={le}}}")
            } else {
                name.to_string()
            };
            if let Ok(v) = value.parse::<f64>() {
                *values.entry(key).or_insert(0.0) += v;
            }
        }
        Scrape { values }
    }

    /// The value of `name` (summed over labels), or 0.
    pub fn get(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(0.0)
    }

    /// `self - earlier` for `name`.
    pub fn delta(&self, earlier: &Scrape, name: &str) -> f64 {
        self.get(name) - earlier.get(name)
    }

    /// Upper bounds and counts of histogram `name`'s buckets, as a difference from `earlier`.
    pub fn bucket_deltas(&self, earlier: &Scrape, name: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{le=");
        let mut out: Vec<(f64, f64)> = self
            .values
            .iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(&prefix)?.strip_suffix('}')?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, v - earlier.values.get(k).copied().unwrap_or(0.0)))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    /// The upper bound of the bucket holding quantile `q` of histogram `name` over the interval.
    pub fn quantile_bound(&self, earlier: &Scrape, name: &str, q: f64) -> Option<f64> {
        let buckets = self.bucket_deltas(earlier, name);
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= q * total)
            .map(|(bound, _)| *bound)
    }
}

#[cfg(test)]
mod tests;
