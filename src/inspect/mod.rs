//! What auditors run: inspections of a data root from outside the request path, each a
//! report of findings (tenant, check id, path, fix hint) that a command prints and an
//! operator's API route returns. Read-only: an inspection never repairs what it finds.

pub mod deployment;
pub mod isolation;

pub use isolation::{Finding, IsolationReport};
