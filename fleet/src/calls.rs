//! The primitives every request flow is built from — an HTTP or gRPC call between services (with
//! deadline, retries and circuit breaker), a database query, a cache command, publishing and
//! consuming a message — each producing the spans, metrics and logs its instrumentation would,
//! following the OpenTelemetry semantic conventions.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::breaker::{BreakerState, Downstream, Transition};
use crate::faults::{fault_of, grpc_code_name, grpc_server_error, http_status_text};
use crate::logs::{BuiltLog, LogContext, Severity, log_record};
use crate::metrics::{Attr, ExemplarRef, Inst, i, s};
use crate::otlp::{kv_f64, kv_i64, kv_str};
use crate::scenario::Effects;
use crate::topology::{Runtime, ScopeKind, Service};
use crate::traces::{SpanRef, TraceBuilder};
use crate::world::World;

/// PostgreSQL, as clients address it.
pub(crate) const POSTGRES_HOST: &str = "postgres.bookstore.svc.cluster.local";
/// Redis, as clients address it.
pub(crate) const REDIS_HOST: &str = "redis.bookstore.svc.cluster.local";
/// The Kafka bootstrap server.
pub(crate) const KAFKA_HOST: &str = "kafka.bookstore.svc.cluster.local";

/// One request being simulated: the world it changes, the trace it builds, the effects in force.
#[derive(Debug)]
pub(crate) struct Req<'w> {
    pub w: &'w mut World,
    pub trace: TraceBuilder,
    pub fx: Effects,
}

/// How a server answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Success.
    Ok,
    /// Refused for a business reason (4xx, or a non-error gRPC code such as FAILED_PRECONDITION).
    Refused {
        http_status: i64,
        grpc_code: i64,
        reason: &'static str,
    },
    /// Failed (5xx, INTERNAL, UNAVAILABLE); the exception is recorded where it happened.
    Failed { http_status: i64, grpc_code: i64 },
}

/// A server's answer and when it was sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reply {
    pub end: i64,
    pub outcome: Outcome,
}

/// What the caller saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum CallOutcome {
    Ok,
    Refused {
        http_status: i64,
        grpc_code: i64,
        reason: &'static str,
    },
    Failed {
        http_status: i64,
        grpc_code: i64,
    },
    /// The caller's deadline expired first.
    Timeout,
    /// The caller's circuit breaker refused to make the call.
    BreakerOpen,
}

impl CallOutcome {
    /// Whether a retry may help.
    fn retryable(self) -> bool {
        matches!(self, CallOutcome::Failed { .. } | CallOutcome::Timeout)
    }

    /// Whether the dependency behaved (a business refusal counts as healthy for breakers).
    fn healthy(self) -> bool {
        matches!(self, CallOutcome::Ok | CallOutcome::Refused { .. })
    }
}

/// The end of a call and what the caller saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallResult {
    pub end: i64,
    pub outcome: CallOutcome,
}

/// The caller's resilience settings for one dependency.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub timeout_ms: f64,
    pub attempts: u32,
    pub breaker: Option<Downstream>,
}

/// The endpoint of a call between services.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Http {
        callee: Service,
        method: &'static str,
        route: &'static str,
        path: &'a str,
        ok_status: i64,
    },
    Rpc {
        callee: Service,
        service: &'static str,
        method: &'static str,
    },
}

impl Target<'_> {
    fn callee(&self) -> Service {
        match self {
            Target::Http { callee, .. } | Target::Rpc { callee, .. } => *callee,
        }
    }

    fn scope(&self) -> ScopeKind {
        match self {
            Target::Http { .. } => ScopeKind::Http,
            Target::Rpc { .. } => ScopeKind::Rpc,
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Http {
                callee,
                method,
                route,
                ..
            } => format!("{method} {callee}{route}"),
            Target::Rpc {
                service, method, ..
            } => format!("{service}/{method}"),
        }
    }
}

/// A PostgreSQL statement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DbOp {
    pub operation: &'static str,
    pub collection: &'static str,
    /// `db.query.summary`, also the span name.
    pub summary: &'static str,
    pub query: &'static str,
    pub median_ms: f64,
}

impl<'w> Req<'w> {
    /// Starts simulating a request.
    pub(crate) fn new(w: &'w mut World, fx: Effects) -> Req<'w> {
        let trace = TraceBuilder::new(&mut w.rng);
        Req { w, trace, fx }
    }

    /// Hands the finished trace to the services' span processors.
    pub(crate) fn finish(self) {
        self.w.pending.add_spans(self.trace.into_spans());
    }

    /// Starts a span.
    pub(crate) fn span(
        &mut self,
        parent: Option<SpanRef>,
        service: Service,
        scope: ScopeKind,
        kind: SpanKind,
        name: impl Into<String>,
        at: i64,
    ) -> SpanRef {
        self.trace
            .start(&mut self.w.rng, parent, service, scope, kind, name, at)
    }

    /// One network hop inside the cluster (ns).
    pub(crate) fn hop(&mut self) -> i64 {
        self.w.rng.latency_ns(0.35, 0.35)
    }

    /// A latency (ns) in `service`, scaled by load and, for payment, by its slowdown.
    pub(crate) fn latency(&mut self, service: Service, median_ms: f64, sigma: f64) -> i64 {
        let factor = self.fx.latency
            * if service == Service::Payment {
                self.fx.payment_slowdown
            } else {
                1.0
            };
        self.w.rng.latency_ns(median_ms * factor, sigma)
    }

    /// Time `service` spends computing (ns); it also counts towards its CPU time.
    pub(crate) fn work(&mut self, service: Service, median_ms: f64) -> i64 {
        let d = self.latency(service, median_ms, 0.4);
        self.w.processes[service.index()].busy_ns += d;
        d
    }

    /// The exemplar for a measurement taken in `span`.
    pub(crate) fn exemplar(&self, span: SpanRef, at: i64) -> Option<ExemplarRef> {
        Some(ExemplarRef {
            at,
            trace_id: self.trace.trace_id(),
            span_id: self.trace.span_id(span),
        })
    }

    /// Writes a log record in `service`, inside `span` when given.
    pub(crate) fn log(
        &mut self,
        service: Service,
        span: Option<SpanRef>,
        at: i64,
        severity: Severity,
        body: String,
        attributes: Vec<KeyValue>,
    ) {
        self.log_event(service, span, at, severity, None, body, attributes);
    }

    /// Writes a log record that is also a named event.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log_event(
        &mut self,
        service: Service,
        span: Option<SpanRef>,
        at: i64,
        severity: Severity,
        event_name: Option<&str>,
        body: String,
        mut attributes: Vec<KeyValue>,
    ) {
        let context = span.map(|sp| LogContext {
            trace_id: self.trace.trace_id(),
            span_id: self.trace.span_id(sp),
        });
        if service.runtime() == Runtime::Jvm {
            attributes.push(kv_str(
                "thread.name",
                format!("http-nio-8080-exec-{}", self.w.rng.between(1, 24)),
            ));
        }
        let record = log_record(at, severity, body, context, event_name, attributes);
        self.w.pending.add_log(BuiltLog { service, record });
    }

    /// Calls another service, retrying and guarding as `policy` says; `handler` simulates the
    /// server's work from its start time and returns its reply.
    pub(crate) fn call<F>(
        &mut self,
        parent: SpanRef,
        t: i64,
        caller: Service,
        target: Target<'_>,
        policy: Policy,
        mut handler: F,
    ) -> CallResult
    where
        F: FnMut(&mut Self, SpanRef, i64) -> Reply,
    {
        let callee = target.callee();
        let mut start = t;
        let mut result = CallResult {
            end: t,
            outcome: CallOutcome::Ok,
        };
        for attempt in 0..policy.attempts.max(1) {
            if let Some(d) = policy.breaker {
                let (allowed, change) = self.w.breaker(d).admit(start);
                if let Some(c) = change {
                    self.breaker_changed(d, c, parent, start);
                }
                if !allowed {
                    return self.rejected(parent, start, d);
                }
            }
            let (client_name, server_name) = match target {
                Target::Http { method, route, .. } => {
                    (method.to_string(), format!("{method} {route}"))
                }
                Target::Rpc {
                    service, method, ..
                } => {
                    let name = format!("{service}/{method}");
                    (name.clone(), name)
                }
            };
            let client = self.span(
                Some(parent),
                caller,
                target.scope(),
                SpanKind::Client,
                client_name,
                start,
            );
            let server_start = start + self.hop();
            let server = self.span(
                Some(client),
                callee,
                target.scope(),
                SpanKind::Server,
                server_name,
                server_start,
            );
            let reply = if self.w.rng.chance(self.fx.error_rate[callee.index()]) {
                self.fail(callee, server, server_start)
            } else {
                handler(self, server, server_start)
            };
            self.w.processes[callee.index()].requests += 1;
            self.finish_server(server, caller, target, reply, server_start);

            let arrival = reply.end + self.hop();
            let deadline = start + (policy.timeout_ms * 1e6) as i64;
            let (end, outcome) = if arrival > deadline {
                (deadline, CallOutcome::Timeout)
            } else {
                let seen = match reply.outcome {
                    Outcome::Ok => CallOutcome::Ok,
                    Outcome::Refused {
                        http_status,
                        grpc_code,
                        reason,
                    } => CallOutcome::Refused {
                        http_status,
                        grpc_code,
                        reason,
                    },
                    // A gRPC caller sees only the status code.
                    Outcome::Failed {
                        http_status,
                        grpc_code,
                    } => match target {
                        Target::Http { .. } => CallOutcome::Failed {
                            http_status,
                            grpc_code: 0,
                        },
                        Target::Rpc { .. } => CallOutcome::Failed {
                            http_status: 0,
                            grpc_code,
                        },
                    },
                };
                (arrival, seen)
            };
            self.finish_client(client, caller, target, attempt, start, end, outcome);
            if let Some(d) = policy.breaker {
                self.breaker_record(d, parent, start, end, outcome.healthy());
            }
            result = CallResult { end, outcome };
            if !outcome.retryable() || attempt + 1 >= policy.attempts {
                break;
            }
            let backoff =
                (50e6 * f64::from(1u32 << attempt.min(8)) * (0.8 + 0.4 * self.w.rng.f64())) as i64;
            let why = match outcome {
                CallOutcome::Timeout => "deadline exceeded".to_string(),
                CallOutcome::Failed {
                    http_status,
                    grpc_code,
                } => match target {
                    Target::Http { .. } => format!("HTTP {http_status}"),
                    Target::Rpc { .. } => grpc_code_name(grpc_code).to_string(),
                },
                _ => "error".to_string(),
            };
            self.log(
                caller,
                Some(parent),
                end,
                Severity::Warn,
                format!(
                    "call to {} failed ({why}); retrying in {} ms (attempt {} of {})",
                    target.describe(),
                    backoff / 1_000_000,
                    attempt + 2,
                    policy.attempts
                ),
                vec![
                    kv_str("peer.service", callee.name()),
                    kv_i64("retry.attempt", i64::from(attempt) + 1),
                ],
            );
            start = end + backoff;
        }
        result
    }

    /// The server failed: its first dependency call errors and it reports an exception.
    pub(crate) fn fail(&mut self, service: Service, server: SpanRef, t: i64) -> Reply {
        let f = fault_of(service);
        let mut now = t + self.work(service, 0.3);
        if service != Service::Gateway {
            let (system, host, port, scope) = if f.on_cache {
                ("redis", REDIS_HOST, 6379, ScopeKind::Cache)
            } else {
                ("postgresql", POSTGRES_HOST, 5432, ScopeKind::Db)
            };
            let child = self.span(
                Some(server),
                service,
                scope,
                SpanKind::Client,
                f.summary,
                now,
            );
            self.trace.attrs(
                child,
                [
                    kv_str("db.system.name", system),
                    kv_str("db.operation.name", f.operation),
                    kv_str("server.address", host),
                    kv_i64("server.port", port),
                    kv_str("error.type", f.cause_type),
                ],
            );
            if let Some(code) = f.sqlstate {
                self.trace
                    .attr(child, kv_str("db.response.status_code", code));
            }
            let d = self.w.rng.latency_ns(f.dependency_ms, 0.15);
            self.trace
                .exception(child, now + d, f.cause_type, f.cause_message, "");
            self.trace.set_error(child, f.cause_message);
            self.trace.end(child, now + d);
            let attrs = [
                s("db.system.name", system),
                s("db.operation.name", f.operation),
                s("server.address", host),
                s("error.type", f.cause_type),
            ];
            self.w
                .meter(service)
                .record(Inst::DbClientDuration, &attrs, d as f64 / 1e9, None);
            now += d;
        }
        now += self.work(service, 0.2);
        self.trace
            .exception(server, now, f.error_type, f.message, f.stacktrace);
        self.log(
            service,
            Some(server),
            now,
            Severity::Error,
            f.message.to_string(),
            vec![
                kv_str("exception.type", f.error_type),
                kv_str("exception.message", f.message),
                kv_str("exception.stacktrace", f.stacktrace),
            ],
        );
        Reply {
            end: now,
            outcome: Outcome::Failed {
                http_status: f.http_status,
                grpc_code: f.grpc_code,
            },
        }
    }

    fn finish_server(
        &mut self,
        server: SpanRef,
        caller: Service,
        target: Target<'_>,
        reply: Reply,
        start: i64,
    ) {
        let callee = target.callee();
        self.trace.end(server, reply.end);
        let seconds = (reply.end - start) as f64 / 1e9;
        let exemplar = self.exemplar(server, reply.end);
        match target {
            Target::Http {
                method,
                route,
                path,
                ok_status,
                ..
            } => {
                let status = match reply.outcome {
                    Outcome::Ok => ok_status,
                    Outcome::Refused { http_status, .. } | Outcome::Failed { http_status, .. } => {
                        http_status
                    }
                };
                self.trace.attrs(
                    server,
                    [
                        kv_str("http.request.method", method),
                        kv_str("http.route", route),
                        kv_str("url.path", path),
                        kv_str("url.scheme", "http"),
                        kv_str("server.address", callee.host()),
                        kv_i64("server.port", callee.port()),
                        kv_str("network.protocol.version", "1.1"),
                        kv_str("client.address", caller.pod_ip()),
                        kv_str("user_agent.original", "Go-http-client/1.1"),
                        kv_i64("http.response.status_code", status),
                    ],
                );
                let mut attrs: Vec<Attr> = vec![
                    s("http.request.method", method),
                    s("http.route", route),
                    i("http.response.status_code", status),
                    s("url.scheme", "http"),
                ];
                if status >= 500 {
                    self.trace
                        .attr(server, kv_str("error.type", http_status_text(status)));
                    self.trace.set_error(server, "");
                    attrs.push(s("error.type", http_status_text(status)));
                }
                self.w
                    .meter(callee)
                    .record(Inst::HttpServerDuration, &attrs, seconds, exemplar);
            }
            Target::Rpc {
                service, method, ..
            } => {
                let code = match reply.outcome {
                    Outcome::Ok => 0,
                    Outcome::Refused { grpc_code, .. } | Outcome::Failed { grpc_code, .. } => {
                        grpc_code
                    }
                };
                self.trace.attrs(
                    server,
                    [
                        kv_str("rpc.system", "grpc"),
                        kv_str("rpc.service", service),
                        kv_str("rpc.method", method),
                        kv_str("server.address", callee.host()),
                        kv_i64("server.port", callee.port()),
                        kv_str("network.peer.address", caller.pod_ip()),
                        kv_i64("rpc.grpc.status_code", code),
                    ],
                );
                if grpc_server_error(code) {
                    self.trace
                        .attr(server, kv_str("error.type", grpc_code_name(code)));
                    self.trace.set_error(server, grpc_code_name(code));
                }
                let attrs = [
                    s("rpc.system", "grpc"),
                    s("rpc.service", service),
                    s("rpc.method", method),
                    i("rpc.grpc.status_code", code),
                ];
                self.w
                    .meter(callee)
                    .record(Inst::RpcServerDuration, &attrs, seconds, exemplar);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_client(
        &mut self,
        client: SpanRef,
        caller: Service,
        target: Target<'_>,
        attempt: u32,
        start: i64,
        end: i64,
        outcome: CallOutcome,
    ) {
        let callee = target.callee();
        match target {
            Target::Http {
                method,
                path,
                ok_status,
                ..
            } => {
                let status = match outcome {
                    CallOutcome::Ok => Some(ok_status),
                    CallOutcome::Refused { http_status, .. }
                    | CallOutcome::Failed { http_status, .. } => Some(http_status),
                    CallOutcome::Timeout | CallOutcome::BreakerOpen => None,
                };
                let url = format!("http://{}:{}{}", callee.host(), callee.port(), path);
                self.http_client_done(
                    client,
                    caller,
                    method,
                    callee.host(),
                    callee.port(),
                    url,
                    attempt,
                    start,
                    end,
                    status,
                );
            }
            Target::Rpc {
                service, method, ..
            } => {
                let code = match outcome {
                    CallOutcome::Ok => 0,
                    CallOutcome::Refused { grpc_code, .. }
                    | CallOutcome::Failed { grpc_code, .. } => grpc_code,
                    CallOutcome::Timeout => 4,
                    CallOutcome::BreakerOpen => 14,
                };
                self.trace.end(client, end);
                self.trace.attrs(
                    client,
                    [
                        kv_str("rpc.system", "grpc"),
                        kv_str("rpc.service", service),
                        kv_str("rpc.method", method),
                        kv_str("server.address", callee.host()),
                        kv_i64("server.port", callee.port()),
                        kv_i64("rpc.grpc.status_code", code),
                    ],
                );
                if code != 0 {
                    self.trace
                        .attr(client, kv_str("error.type", grpc_code_name(code)));
                    self.trace.set_error(
                        client,
                        if code == 4 {
                            "context deadline exceeded"
                        } else {
                            grpc_code_name(code)
                        },
                    );
                }
                let attrs = [
                    s("rpc.system", "grpc"),
                    s("rpc.service", service),
                    s("rpc.method", method),
                    i("rpc.grpc.status_code", code),
                    s("server.address", callee.host()),
                ];
                let exemplar = self.exemplar(client, end);
                self.w.meter(caller).record(
                    Inst::RpcClientDuration,
                    &attrs,
                    (end - start) as f64 / 1e9,
                    exemplar,
                );
            }
        }
    }

    /// Completes an HTTP client span and records `http.client.request.duration`; `status` is `None`
    /// when no response arrived (timeout).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn http_client_done(
        &mut self,
        client: SpanRef,
        caller: Service,
        method: &'static str,
        host: &'static str,
        port: i64,
        url: String,
        attempt: u32,
        start: i64,
        end: i64,
        status: Option<i64>,
    ) {
        self.trace.end(client, end);
        self.trace.attrs(
            client,
            [
                kv_str("http.request.method", method),
                kv_str("url.full", url),
                kv_str("server.address", host),
                kv_i64("server.port", port),
                kv_str("network.protocol.version", "1.1"),
            ],
        );
        if attempt > 0 {
            self.trace.attr(
                client,
                kv_i64("http.request.resend_count", i64::from(attempt)),
            );
        }
        let mut attrs: Vec<Attr> = vec![
            s("http.request.method", method),
            s("server.address", host),
            i("server.port", port),
        ];
        match status {
            Some(code) => {
                self.trace
                    .attr(client, kv_i64("http.response.status_code", code));
                attrs.push(i("http.response.status_code", code));
                if code >= 400 {
                    self.trace
                        .attr(client, kv_str("error.type", http_status_text(code)));
                    self.trace.set_error(client, "");
                    attrs.push(s("error.type", http_status_text(code)));
                }
            }
            None => {
                self.trace.attr(client, kv_str("error.type", "timeout"));
                self.trace.set_error(
                    client,
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                );
                attrs.push(s("error.type", "timeout"));
            }
        }
        let exemplar = self.exemplar(client, end);
        self.w.meter(caller).record(
            Inst::HttpClientDuration,
            &attrs,
            (end - start) as f64 / 1e9,
            exemplar,
        );
    }

    /// The breaker refused the call: the application records a short failed span, no request leaves.
    fn rejected(&mut self, parent: SpanRef, at: i64, d: Downstream) -> CallResult {
        let owner = d.owner();
        let span = self.span(
            Some(parent),
            owner,
            ScopeKind::App,
            SpanKind::Internal,
            format!("circuit_breaker {}", d.peer()),
            at,
        );
        let end = at + self.w.rng.between(15_000, 60_000);
        self.trace.attrs(
            span,
            [
                kv_str("peer.service", d.peer()),
                kv_str("circuit_breaker.state", "open"),
                kv_str("error.type", "circuit_breaker_open"),
            ],
        );
        self.trace.exception(
            span,
            end,
            "gobreaker.ErrOpenState",
            "circuit breaker is open",
            "",
        );
        self.trace.set_error(span, "circuit breaker is open");
        self.trace.end(span, end);
        self.w.meter(owner).add(
            Inst::BreakerCalls,
            &[s("peer.service", d.peer()), s("outcome", "rejected")],
            1.0,
        );
        CallResult {
            end,
            outcome: CallOutcome::BreakerOpen,
        }
    }

    /// Feeds a permitted call's outcome to its breaker.
    pub(crate) fn breaker_record(
        &mut self,
        d: Downstream,
        span: SpanRef,
        start: i64,
        end: i64,
        healthy: bool,
    ) {
        let outcome = if healthy { "success" } else { "failure" };
        let attrs = [s("peer.service", d.peer()), s("outcome", outcome)];
        let meter = self.w.meter(d.owner());
        meter.add(Inst::BreakerCalls, &attrs, 1.0);
        meter.record(
            Inst::BreakerCallDuration,
            &attrs,
            (end - start) as f64 / 1e9,
            None,
        );
        if let Some(change) = self.w.breaker(d).record(end, healthy) {
            self.breaker_changed(d, change, span, end);
        }
    }

    /// Logs a breaker's state change.
    pub(crate) fn breaker_changed(
        &mut self,
        d: Downstream,
        change: Transition,
        span: SpanRef,
        at: i64,
    ) {
        let upper = |st: BreakerState| st.name().to_ascii_uppercase();
        let (severity, why) = match change.to {
            BreakerState::Open => (
                Severity::Warn,
                format!(
                    " (failure rate {:.0}% over the last calls, threshold 50%)",
                    change.failure_rate * 100.0
                ),
            ),
            BreakerState::HalfOpen => (
                Severity::Info,
                " (cool-down over; letting trial calls through)".to_string(),
            ),
            BreakerState::Closed => (Severity::Info, " (trial calls succeeded)".to_string()),
        };
        let body = format!(
            "circuit breaker '{}' changed state from {} to {}{why}",
            d.peer(),
            upper(change.from),
            upper(change.to)
        );
        self.log(
            d.owner(),
            Some(span),
            at,
            severity,
            body,
            vec![
                kv_str("peer.service", d.peer()),
                kv_str("circuit_breaker.state.from", change.from.name()),
                kv_str("circuit_breaker.state", change.to.name()),
            ],
        );
    }

    /// Runs a PostgreSQL statement from `service`; returns when it completed.
    pub(crate) fn db(&mut self, parent: SpanRef, t: i64, service: Service, op: &DbOp) -> i64 {
        let span = self.span(
            Some(parent),
            service,
            ScopeKind::Db,
            SpanKind::Client,
            op.summary,
            t,
        );
        let d = self.latency(service, op.median_ms, 0.55);
        let end = t + d;
        self.trace.end(span, end);
        self.trace.attrs(
            span,
            [
                kv_str("db.system.name", "postgresql"),
                kv_str("db.namespace", "bookstore"),
                kv_str("db.operation.name", op.operation),
                kv_str("db.collection.name", op.collection),
                kv_str("db.query.summary", op.summary),
                kv_str("db.query.text", op.query),
                kv_str("server.address", POSTGRES_HOST),
                kv_i64("server.port", 5432),
            ],
        );
        let attrs = [
            s("db.system.name", "postgresql"),
            s("db.namespace", "bookstore"),
            s("db.operation.name", op.operation),
            s("db.collection.name", op.collection),
            s("server.address", POSTGRES_HOST),
        ];
        let exemplar = self.exemplar(span, end);
        self.w
            .meter(service)
            .record(Inst::DbClientDuration, &attrs, d as f64 / 1e9, exemplar);
        if d > 200_000_000 {
            self.log(
                service,
                Some(span),
                end,
                Severity::Warn,
                format!("slow query took {} ms: {}", d / 1_000_000, op.query),
                vec![
                    kv_str("db.query.summary", op.summary),
                    kv_f64("db.duration_ms", d as f64 / 1e6),
                ],
            );
        }
        end
    }

    /// Runs a Redis command from `service`; returns when it completed.
    pub(crate) fn cache(
        &mut self,
        parent: SpanRef,
        t: i64,
        service: Service,
        command: &'static str,
        key: &str,
    ) -> i64 {
        let span = self.span(
            Some(parent),
            service,
            ScopeKind::Cache,
            SpanKind::Client,
            command,
            t,
        );
        let d = self.latency(service, 0.3, 0.4);
        let end = t + d;
        self.trace.end(span, end);
        self.trace.attrs(
            span,
            [
                kv_str("db.system.name", "redis"),
                kv_str("db.namespace", "0"),
                kv_str("db.operation.name", command),
                kv_str("db.query.text", format!("{command} {key}")),
                kv_str("server.address", REDIS_HOST),
                kv_i64("server.port", 6379),
            ],
        );
        let attrs = [
            s("db.system.name", "redis"),
            s("db.namespace", "0"),
            s("db.operation.name", command),
            s("server.address", REDIS_HOST),
        ];
        self.w
            .meter(service)
            .record(Inst::DbClientDuration, &attrs, d as f64 / 1e9, None);
        end
    }

    /// Publishes a message to `topic`; returns the producer span and when the broker acknowledged.
    pub(crate) fn publish(
        &mut self,
        parent: SpanRef,
        t: i64,
        service: Service,
        topic: &'static str,
        key: &str,
    ) -> (SpanRef, i64) {
        let span = self.span(
            Some(parent),
            service,
            ScopeKind::Messaging,
            SpanKind::Producer,
            format!("send {topic}"),
            t,
        );
        let end = t + self.latency(service, 2.0, 0.5);
        let partition = (self.w.rng.below(12)).to_string();
        self.trace.end(span, end);
        self.trace.attrs(
            span,
            [
                kv_str("messaging.system", "kafka"),
                kv_str("messaging.operation.type", "send"),
                kv_str("messaging.operation.name", "send"),
                kv_str("messaging.destination.name", topic),
                kv_str("messaging.destination.partition.id", partition),
                kv_str("messaging.kafka.message.key", key),
                kv_str("server.address", KAFKA_HOST),
                kv_i64("server.port", 9092),
            ],
        );
        let attrs = [
            s("messaging.system", "kafka"),
            s("messaging.operation.name", "send"),
            s("messaging.destination.name", topic),
        ];
        self.w.meter(service).add(Inst::MessagingSent, &attrs, 1.0);
        (span, end)
    }

    /// Starts processing a message published by `producer`; the caller ends the returned span.
    pub(crate) fn consume(
        &mut self,
        producer: SpanRef,
        t: i64,
        service: Service,
        topic: &'static str,
        group: &'static str,
        key: &str,
    ) -> SpanRef {
        let span = self.span(
            Some(producer),
            service,
            ScopeKind::Messaging,
            SpanKind::Consumer,
            format!("process {topic}"),
            t,
        );
        let offset = self.w.kafka_offset;
        self.w.kafka_offset += 1;
        self.trace.link(
            span,
            producer,
            vec![kv_str("messaging.operation.type", "send")],
        );
        self.trace.attrs(
            span,
            [
                kv_str("messaging.system", "kafka"),
                kv_str("messaging.operation.type", "process"),
                kv_str("messaging.operation.name", "process"),
                kv_str("messaging.destination.name", topic),
                kv_str("messaging.consumer.group.name", group),
                kv_str("messaging.kafka.message.key", key),
                kv_i64("messaging.kafka.offset", offset),
            ],
        );
        let attrs = [
            s("messaging.system", "kafka"),
            s("messaging.operation.name", "process"),
            s("messaging.destination.name", topic),
            s("messaging.consumer.group.name", group),
        ];
        self.w
            .meter(service)
            .add(Inst::MessagingConsumed, &attrs, 1.0);
        span
    }

    /// Ends a consumer span and records `messaging.process.duration`.
    pub(crate) fn consumed(
        &mut self,
        span: SpanRef,
        service: Service,
        topic: &'static str,
        group: &'static str,
        end: i64,
    ) {
        self.trace.end(span, end);
        let start = self.trace.start_of(span);
        let attrs = [
            s("messaging.system", "kafka"),
            s("messaging.operation.name", "process"),
            s("messaging.destination.name", topic),
            s("messaging.consumer.group.name", group),
        ];
        let exemplar = self.exemplar(span, end);
        self.w.meter(service).record(
            Inst::MessagingProcessDuration,
            &attrs,
            (end - start) as f64 / 1e9,
            exemplar,
        );
    }
}
