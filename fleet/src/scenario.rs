//! Scenarios: how traffic varies and which incident, if any, is injected and when. A scenario turns
//! a simulated time into [`Effects`] that the request flows read.

use std::fmt;
use std::str::FromStr;

use crate::topology::{SERVICE_COUNT, Service};

const NS_PER_SEC: i64 = 1_000_000_000;

/// What the fleet does over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Constant traffic, background error rates only.
    Steady,
    /// Traffic follows the hour of day (UTC): busiest around 20:00, quietest around 08:00.
    DailyCycle,
    /// The payment provider slows down tenfold: payment spans grow ×10, checkouts take seconds, and
    /// the gateway's 3 s deadline on charges expires for some of them, which are retried.
    PaymentLatencySpike,
    /// One service fails a quarter of its requests with exceptions (a bad deploy, a sick pool).
    ErrorBurst {
        /// The failing service.
        service: Service,
    },
    /// The payment provider answers most charges with 503: payment's breaker to the provider opens,
    /// then the gateway's breaker to payment; checkouts fail fast.
    CircuitBreakerOpen,
    /// Checkouts almost stop (a broken "place order" button) while everything technical looks healthy.
    OrdersDrop,
}

impl Scenario {
    /// The flag values [`Scenario::from_str`] accepts.
    pub const FLAG_VALUES: &'static [&'static str] = &[
        "steady",
        "daily",
        "payment-latency",
        "error-burst[:<service>]",
        "breaker-open",
        "orders-drop",
    ];

    /// Whether the scenario injects an incident (as opposed to shaping normal traffic).
    pub fn is_incident(&self) -> bool {
        !matches!(self, Scenario::Steady | Scenario::DailyCycle)
    }

    /// One sentence on what to look for in the data.
    pub fn what_to_look_for(&self) -> String {
        match self {
            Scenario::Steady => "steady traffic with background errors around 0.2%".to_string(),
            Scenario::DailyCycle => "request rate following the hour of day (UTC), peaking around 20:00".to_string(),
            Scenario::PaymentLatencySpike => {
                "payment spans ten times slower, slow checkouts, gateway charge calls hitting their 3 s deadline (DEADLINE_EXCEEDED) and retried".to_string()
            }
            Scenario::ErrorBurst { service } => format!("{service} failing about a quarter of its requests, with exceptions on its spans and ERROR logs"),
            Scenario::CircuitBreakerOpen => {
                "the payment provider failing, circuit_breaker.state going open for payment-provider then payment, checkouts rejected fast".to_string()
            }
            Scenario::OrdersDrop => "bookstore.orders nearly flat while request rates and error rates look normal".to_string(),
        }
    }

    /// The largest traffic multiplier the scenario ever applies (for arrival thinning).
    pub(crate) fn peak_traffic(&self) -> f64 {
        match self {
            Scenario::DailyCycle => 1.0 + DAILY_AMPLITUDE,
            _ => 1.0,
        }
    }

    /// The effects in force at `t`, given when the fleet started and the incident window.
    pub(crate) fn effects(&self, t: i64, fleet_start: i64, window: IncidentWindow) -> Effects {
        let mut e = Effects::baseline();
        if let Scenario::DailyCycle = self {
            let seconds_of_day = t.rem_euclid(86_400 * NS_PER_SEC) as f64 / 1e9;
            let hours = seconds_of_day / 3600.0;
            e.traffic =
                1.0 + DAILY_AMPLITUDE * ((hours - 20.0) / 24.0 * std::f64::consts::TAU).cos();
            // Busy hours are a little slower: queues and contention.
            e.latency = 1.0 + 0.3 * (e.traffic - 1.0).max(0.0);
            return e;
        }
        if !window.contains(t - fleet_start) {
            return e;
        }
        match self {
            Scenario::Steady | Scenario::DailyCycle => {}
            Scenario::PaymentLatencySpike => e.payment_slowdown = 10.0,
            Scenario::ErrorBurst { service } => e.error_rate[service.index()] = 0.25,
            Scenario::CircuitBreakerOpen => e.provider_failure = 0.85,
            Scenario::OrdersDrop => e.checkout_weight = 0.02,
        }
        e
    }
}

/// Relative swing of the daily cycle around the mean rate.
const DAILY_AMPLITUDE: f64 = 0.65;

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::Steady => f.write_str("steady"),
            Scenario::DailyCycle => f.write_str("daily"),
            Scenario::PaymentLatencySpike => f.write_str("payment-latency"),
            Scenario::ErrorBurst { service } => write!(f, "error-burst:{service}"),
            Scenario::CircuitBreakerOpen => f.write_str("breaker-open"),
            Scenario::OrdersDrop => f.write_str("orders-drop"),
        }
    }
}

impl FromStr for Scenario {
    type Err = String;

    /// Parses a flag value: `steady`, `daily`, `payment-latency`, `error-burst` (the warehouse) or
    /// `error-burst:<service>`, `breaker-open`, `orders-drop` (a few longer spellings too).
    fn from_str(s: &str) -> Result<Scenario, String> {
        let s = s.trim().to_ascii_lowercase();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s.as_str(), None),
        };
        let scenario = match name {
            "steady" => Scenario::Steady,
            "daily" | "daily-cycle" => Scenario::DailyCycle,
            "payment-latency" | "payment-latency-spike" => Scenario::PaymentLatencySpike,
            "error-burst" => Scenario::ErrorBurst {
                service: arg.map_or(Ok(Service::Warehouse), str::parse)?,
            },
            "breaker-open" | "circuit-breaker-open" => Scenario::CircuitBreakerOpen,
            "orders-drop" => Scenario::OrdersDrop,
            _ => {
                return Err(format!(
                    "unknown scenario {s:?}; expected one of {}",
                    Scenario::FLAG_VALUES.join(", ")
                ));
            }
        };
        if arg.is_some() && !matches!(scenario, Scenario::ErrorBurst { .. }) {
            return Err(format!("scenario {name:?} takes no argument"));
        }
        Ok(scenario)
    }
}

/// When an incident scenario's incident is in force, relative to the fleet's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncidentWindow {
    /// Simulated nanoseconds of normal operation before the incident begins.
    pub start_offset_ns: i64,
    /// How long the incident lasts (then the fleet recovers); `i64::MAX` for ever.
    pub duration_ns: i64,
}

impl IncidentWindow {
    /// An incident in force from the first moment, for ever.
    pub const ALWAYS: IncidentWindow = IncidentWindow {
        start_offset_ns: 0,
        duration_ns: i64::MAX,
    };

    fn contains(&self, offset: i64) -> bool {
        offset >= self.start_offset_ns && offset - self.start_offset_ns < self.duration_ns
    }
}

impl Default for IncidentWindow {
    /// One minute of normal operation, then ten minutes of incident.
    fn default() -> IncidentWindow {
        IncidentWindow {
            start_offset_ns: 60 * NS_PER_SEC,
            duration_ns: 600 * NS_PER_SEC,
        }
    }
}

/// How the scenario bends the simulation at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Effects {
    /// Multiplier on the request rate.
    pub traffic: f64,
    /// Multiplier on the share of requests that are checkouts.
    pub checkout_weight: f64,
    /// Multiplier on latencies everywhere (load).
    pub latency: f64,
    /// Multiplier on payment's own and the provider's latencies.
    pub payment_slowdown: f64,
    /// Chance that a request served by each service fails with an exception.
    pub error_rate: [f64; SERVICE_COUNT],
    /// Chance that the external payment provider answers 503.
    pub provider_failure: f64,
}

impl Effects {
    fn baseline() -> Effects {
        Effects {
            traffic: 1.0,
            checkout_weight: 1.0,
            latency: 1.0,
            payment_slowdown: 1.0,
            error_rate: [0.002; SERVICE_COUNT],
            provider_failure: 0.003,
        }
    }
}

#[cfg(test)]
mod tests;
