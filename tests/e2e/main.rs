//! End-to-end tests: the real `lumen` binary on free loopback ports, driven by real clients
//! (the OpenTelemetry SDK exporters, an HTTP client), with `kill -9` for crash safety.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerting;
mod bad_input;
mod crash;
mod demo;
mod examples;
mod jaeger;
mod promql;
mod promql_diff;
mod remote_write;
mod sdk;
mod server;
mod spanmetrics;
mod sql;
mod sql_golden;
mod tempo;
