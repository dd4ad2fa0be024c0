//! Slowing down password guessing: failed logins are counted per account and per client
//! IP in a sliding window; past the limit, further attempts are refused without checking
//! the password until the window has moved on.
//!
//! The clock is passed in (`Instant`), so tests need no sleeps. Memory is bounded: old
//! entries are pruned when the table grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per key within `WINDOW`.
pub const ACCOUNT_LIMIT: usize = 5;
pub const IP_LIMIT: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginThrottle {
    /// `Err(retry_after)` if any of the keys has reached its limit.
    pub fn check(&self, keys: &[(&str, usize)], now: Instant) -> Result<(), Duration> {
        let map = crate::db::lock(&self.failures);
        let mut wait = None;
        for (key, limit) in keys {
            if let Some(times) = map.get(*key) {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                if recent.len() >= *limit
                    && let Some(oldest) = recent.first()
                {
                    let retry = WINDOW.saturating_sub(now.duration_since(**oldest));
                    wait = Some(wait.map_or(retry, |w: Duration| w.max(retry)));
                }
            }
        }
        match wait {
            Some(w) => Err(w.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, keys: &[&str], now: Instant) {
        let mut map = crate::db::lock(&self.failures);
        if map.len() > MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < WINDOW));
        }
        for key in keys {
            let times = map.entry((*key).to_owned()).or_default();
            times.retain(|t| now.duration_since(*t) < WINDOW);
            times.push(now);
        }
    }

    /// A successful login clears the account's failures (not the IP's).
    pub fn record_success(&self, account_key: &str) {
        crate::db::lock(&self.failures).remove(account_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_recovers_after_the_window() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        let keys = [("acct:a", ACCOUNT_LIMIT), ("ip:1", IP_LIMIT)];
        for i in 0..ACCOUNT_LIMIT {
            assert!(t.check(&keys, start).is_ok(), "attempt {i}");
            t.record_failure(&["acct:a", "ip:1"], start);
        }
        let retry = t.check(&keys, start).unwrap_err();
        assert!(retry <= WINDOW && retry >= Duration::from_secs(1));
        assert!(
            t.check(&[("acct:b", ACCOUNT_LIMIT)], start).is_ok(),
            "other accounts unaffected"
        );
        assert!(
            t.check(&keys, start + WINDOW + Duration::from_secs(1))
                .is_ok()
        );
    }
}
