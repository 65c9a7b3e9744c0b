//! Where the evaluator reads series from: the [`SeriesSource`] trait, and [`MemorySource`] for
//! tests and scripts (Lumen's `metrics` table is [`super::reader::MetricsTableSource`]).

use std::collections::HashMap;

use promql_parser::label::Matchers;

use super::error::PromqlError;
use super::value::{Labels, Series};

/// Where the evaluator reads series from.
pub trait SeriesSource {
    /// All series matching `matchers` (the metric name is one of them, as `__name__`), with
    /// their samples in `[start_ms, end_ms]` in time order. Returning more samples is allowed.
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError>;

    /// When the query reading this source must stop (the evaluator stops at the earlier of this
    /// and [`super::config::EngineConfig::deadline`]).
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
}

/// Series held in memory, e.g. loaded by a test script.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
}

impl MemorySource {
    /// Adds samples to the series with these labels (creating it); keeps samples time-ordered,
    /// a later sample at the same timestamp replaces the earlier one.
    pub fn add(&mut self, series: Series) {
        let i = *self.index.entry(series.labels.clone()).or_insert_with(|| {
            self.series.push(Series {
                labels: series.labels.clone(),
                samples: Vec::new(),
            });
            self.series.len() - 1
        });
        let target = &mut self.series[i].samples;
        target.extend(series.samples);
        target.sort_by_key(|(t, _)| *t);
        target.reverse();
        target.dedup_by_key(|(t, _)| *t);
        target.reverse();
    }

    /// Removes every series.
    pub fn clear(&mut self) {
        self.series.clear();
        self.index.clear();
    }

    /// All series, in insertion order.
    pub fn series(&self) -> &[Series] {
        &self.series
    }
}

impl SeriesSource for MemorySource {
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError> {
        let mut out: Vec<Series> = self
            .series
            .iter()
            .filter(|s| s.labels.matches(matchers))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= start_ms && *t <= end_ms)
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}
