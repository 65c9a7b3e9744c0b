//! TraceQL and the Tempo HTTP API that serves it to Grafana's Tempo data source.
//!
//! - [`parser`] turns TraceQL text into the syntax tree of [`ast`], refusing what Lumen does not
//!   support with a message naming the construct.
//! - [`sql`] writes each span-set filter as SQL over `spans`; [`search`] runs one pruned scan and
//!   evaluates span-set operators and stages per trace.
//! - [`api`] serves the Tempo routes; trace by id reads through [`crate::traces`].
//!
//! - [`tags`] lists attribute keys and the typed values of one tag for the TraceQL editor.
//! - [`metrics`] answers TraceQL metrics queries (`{ … } | rate() by (…)`) with one aggregate scan.

pub mod api;
pub mod ast;
pub mod metrics;
pub mod parser;
pub mod search;
pub mod sql;
pub mod tags;
