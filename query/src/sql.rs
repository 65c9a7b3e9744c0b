//! SQL: the read-only DataFusion session ([`session::QueryEngine`]), the statement guard
//! ([`readonly`]), the output encoders ([`format`]) and the `POST /api/v1/sql` endpoint ([`api`]).

pub mod api;
pub mod format;
pub mod readonly;
pub mod session;
