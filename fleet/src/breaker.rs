//! Circuit breakers as resilience libraries implement them (resilience4j, gobreaker): a count-based
//! sliding window of call outcomes; too many failures open the breaker, which rejects calls until a
//! cool-down passes; then a few trial calls (half-open) decide whether it closes again.

use std::fmt;

use crate::topology::Service;

/// Calls remembered by the sliding window.
const WINDOW: usize = 20;
/// Calls needed in the window before the failure rate is judged.
const MIN_CALLS: usize = 10;
/// Failure rate at or above which the breaker opens.
const FAILURE_THRESHOLD: f64 = 0.5;
/// How long an open breaker rejects calls before letting trial calls through.
const OPEN_NS: i64 = 30_000_000_000;
/// Successful trial calls needed to close a half-open breaker.
const TRIAL_CALLS: u32 = 3;

/// A breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// Every state, in metric export order.
    pub(crate) const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    /// The `circuit_breaker.state` attribute value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protected dependency: which service calls through the breaker, and what it protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Downstream {
    GatewayToAccount,
    GatewayToWarehouse,
    GatewayToPayment,
    PaymentToProvider,
}

impl Downstream {
    /// Every breaker in the fleet.
    pub(crate) const ALL: [Downstream; 4] = [
        Downstream::GatewayToAccount,
        Downstream::GatewayToWarehouse,
        Downstream::GatewayToPayment,
        Downstream::PaymentToProvider,
    ];

    /// The service holding the breaker.
    pub(crate) fn owner(self) -> Service {
        match self {
            Downstream::PaymentToProvider => Service::Payment,
            _ => Service::Gateway,
        }
    }

    /// The protected dependency's name (`peer.service`).
    pub(crate) fn peer(self) -> &'static str {
        match self {
            Downstream::GatewayToAccount => "account",
            Downstream::GatewayToWarehouse => "warehouse",
            Downstream::GatewayToPayment => "payment",
            Downstream::PaymentToProvider => "payment-provider",
        }
    }
}

/// A state change, for the owner's logs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// The failure rate that caused it (for closed → open).
    pub failure_rate: f64,
}

/// One circuit breaker.
#[derive(Clone, Debug)]
pub(crate) struct CircuitBreaker {
    state: BreakerState,
    outcomes: [bool; WINDOW],
    len: usize,
    next: usize,
    opened_at: i64,
    trial_successes: u32,
}

impl Default for CircuitBreaker {
    fn default() -> CircuitBreaker {
        CircuitBreaker {
            state: BreakerState::Closed,
            outcomes: [true; WINDOW],
            len: 0,
            next: 0,
            opened_at: 0,
            trial_successes: 0,
        }
    }
}

impl CircuitBreaker {
    /// The current state (an open breaker whose cool-down is over reports half-open).
    pub(crate) fn state(&self, now: i64) -> BreakerState {
        if self.state == BreakerState::Open && now - self.opened_at >= OPEN_NS {
            BreakerState::HalfOpen
        } else {
            self.state
        }
    }

    /// Asks to make a call at `now`: whether it may proceed, and the open → half-open change that
    /// asking caused once the cool-down is over.
    pub(crate) fn admit(&mut self, now: i64) -> (bool, Option<Transition>) {
        if self.state == BreakerState::Open && now - self.opened_at >= OPEN_NS {
            self.state = BreakerState::HalfOpen;
            self.trial_successes = 0;
            return (
                true,
                Some(Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                    failure_rate: 0.0,
                }),
            );
        }
        (self.state != BreakerState::Open, None)
    }

    /// Records the outcome of a permitted call; returns the state change it caused, if any.
    pub(crate) fn record(&mut self, now: i64, success: bool) -> Option<Transition> {
        match self.state {
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                if success {
                    self.trial_successes += 1;
                    if self.trial_successes >= TRIAL_CALLS {
                        self.state = BreakerState::Closed;
                        self.len = 0;
                        self.next = 0;
                        return Some(Transition {
                            from: BreakerState::HalfOpen,
                            to: BreakerState::Closed,
                            failure_rate: 0.0,
                        });
                    }
                    None
                } else {
                    self.open(now);
                    Some(Transition {
                        from: BreakerState::HalfOpen,
                        to: BreakerState::Open,
                        failure_rate: 1.0,
                    })
                }
            }
            BreakerState::Closed => {
                self.outcomes[self.next] = success;
                self.next = (self.next + 1) % WINDOW;
                self.len = (self.len + 1).min(WINDOW);
                if self.len < MIN_CALLS {
                    return None;
                }
                let failures = self.outcomes[..self.len].iter().filter(|ok| !**ok).count();
                let rate = failures as f64 / self.len as f64;
                if rate >= FAILURE_THRESHOLD {
                    self.open(now);
                    return Some(Transition {
                        from: BreakerState::Closed,
                        to: BreakerState::Open,
                        failure_rate: rate,
                    });
                }
                None
            }
        }
    }

    fn open(&mut self, now: i64) {
        self.state = BreakerState::Open;
        self.opened_at = now;
        self.len = 0;
        self.next = 0;
    }
}

#[cfg(test)]
mod tests;
