//! Fixtures shared by this crate's unit tests, its integration tests and its benches: generated
//! `metrics` rows ([`metrics_gen`]) and in-memory snapshot sources ([`snapshots`]). Built for
//! `cfg(test)` and with the `testing` feature; not part of the server.

pub mod metrics_gen;
pub mod snapshots;
