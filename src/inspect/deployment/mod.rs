//! `coffer audit deployment`: what a deploy pipeline runs before it switches traffic to
//! a Coffer instance (`ExecStartPre` in `deploy/systemd/coffer.service`). It is two
//! halves that never mix: `facts` looks at the machine, the data root and the
//! configuration and writes down what it saw (`Facts`); `checks` is a table of rules,
//! each a pure function of those facts with an id, a one-line explanation, a severity
//! and a fix hint. So every rule lives in one place and a test can drive each one to
//! pass and to fail by changing one fact.
//!
//! A check passes, warns (the deployment works but an auditor would ask: no backup yet,
//! the data root not on an encrypted device) or fails. The command exits non-zero when a
//! check at or above `--fail-on` (default: every severity) fails.

mod checks;
pub mod facts;

use serde::Serialize;

pub use checks::CHECKS;
pub use facts::Facts;

/// How much a failed check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// A check's conclusion and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub detail: String,
}

impl Verdict {
    pub fn pass(detail: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Pass,
            detail: detail.into(),
        }
    }
    pub fn warn(detail: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Warn,
            detail: detail.into(),
        }
    }
    pub fn fail(detail: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Fail,
            detail: detail.into(),
        }
    }
    /// Fails with `detail` unless `ok`.
    pub fn expect(ok: bool, good: impl Into<String>, bad: impl Into<String>) -> Verdict {
        if ok {
            Verdict::pass(good)
        } else {
            Verdict::fail(bad)
        }
    }
}

/// One rule of the deployment audit.
pub struct Check {
    /// Stable id for scripts and suppressions (`transport-tls`).
    pub id: &'static str,
    /// What the rule asks, in one line.
    pub explains: &'static str,
    pub severity: Severity,
    /// What an operator does when it fails.
    pub fix: &'static str,
    pub run: fn(&Facts) -> Verdict,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    pub explains: &'static str,
    pub severity: Severity,
    pub status: Status,
    pub detail: String,
    pub fix: &'static str,
}

/// Every check's result, in the table's order.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentReport {
    pub checks: Vec<CheckResult>,
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
}

impl DeploymentReport {
    /// Failed checks at `severity` or above.
    pub fn failures_at_least(&self, severity: Severity) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.severity >= severity)
            .count()
    }

    /// The result of the check `id`, if it ran.
    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Runs every check of the table over `facts`.
pub fn evaluate(facts: &Facts) -> DeploymentReport {
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .map(|check| {
            let verdict = (check.run)(facts);
            CheckResult {
                id: check.id,
                explains: check.explains,
                severity: check.severity,
                status: verdict.status,
                detail: verdict.detail,
                fix: check.fix,
            }
        })
        .collect();
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    DeploymentReport {
        passed: count(Status::Pass),
        warnings: count(Status::Warn),
        failed: count(Status::Fail),
        checks,
    }
}
