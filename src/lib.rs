//! Coffer: a multi-tenant filesystem vault service for small businesses.
//!
//! Each tenant's documents live in a vault directory reached only through a
//! capability-restricted layer (`vault`), with a per-tenant SQLite index, a control plane
//! (`control`) and a hash-chained audit log (`audit`). See `ARCHITECTURE.md` for the map
//! and the invariants.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod coffer;
pub mod config;
pub mod control;
pub mod db;
pub mod demo;
pub mod digest;
pub mod export;
pub mod haproxy;
pub mod http;
pub mod inspect;
pub mod names;
pub mod signing;
pub mod vault;
