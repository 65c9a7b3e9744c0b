//! The evaluator's limits and defaults.

/// Evaluation limits and defaults.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold at once: what one evaluation step loads (selectors,
    /// subquery steps) plus the points of the range-query result built so far.
    pub max_samples: usize,
    /// Most points a range query may return per series (Prometheus's API: 11,000).
    pub max_points_per_series: i64,
    /// Step of subqueries without an explicit step (`[5m:]`) in instant queries.
    pub default_subquery_step_ms: i64,
    /// When set, evaluation stops with a `timeout` error once this instant has passed (so a
    /// timed-out query frees its thread instead of running on unobserved).
    pub deadline: Option<std::time::Instant>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_points_per_series: 11_000,
            default_subquery_step_ms: 60_000,
            deadline: None,
        }
    }
}
