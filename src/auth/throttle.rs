//! Slowing down password guessing: failed logins are counted per account and per client
//! IP in a sliding window, together with the attempts still being checked, so that many
//! simultaneous guesses count as many (checking first and recording after would let a
//! burst through). Past the limit, further attempts are refused without checking the
//! password until the window has moved on.
//!
//! The clock is passed in (`Instant`), so tests need no sleeps. Memory is bounded: old
//! entries are pruned when the table grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db;

/// Failures allowed per key within `WINDOW`.
pub const ACCOUNT_LIMIT: usize = 5;
pub const IP_LIMIT: usize = 20;
/// Sign-ups allowed per client address within `WINDOW`.
pub const SIGNUP_LIMIT: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct KeyState {
    failures: Vec<Instant>,
    in_flight: usize,
}

#[derive(Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<String, KeyState>>,
}

/// An attempt admitted by the throttle: it counts against every key until it ends as a
/// success, a failure, or is dropped.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<String>,
    now: Instant,
    ended: bool,
}

impl LoginThrottle {
    /// Admits an attempt, or `Err(retry_after)` if any key has reached its limit counting
    /// recent failures and attempts in flight.
    pub fn begin(&self, keys: &[(&str, usize)], now: Instant) -> Result<Attempt<'_>, Duration> {
        let mut map = db::lock(&self.keys);
        if map.len() > MAX_KEYS {
            map.retain(|_, s| {
                s.in_flight > 0 || s.failures.iter().any(|t| now.duration_since(*t) < WINDOW)
            });
        }
        if let Some(w) = refusal(&mut map, keys, now) {
            return Err(w);
        }
        for (key, _) in keys {
            map.entry((*key).to_owned()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys: keys.iter().map(|(k, _)| (*k).to_owned()).collect(),
            now,
            ended: false,
        })
    }
}

impl LoginThrottle {
    /// `Some(retry_after)` if an attempt now would be refused: a cheap check before a
    /// request takes a password-hashing slot, so a flood at a locked account or address
    /// neither waits in the queue nor writes anything.
    pub fn would_refuse(&self, keys: &[(&str, usize)], now: Instant) -> Option<Duration> {
        refusal(&mut db::lock(&self.keys), keys, now)
    }
}

/// How long until every key is under its limit, if one is not (recent failures and
/// attempts in flight both count).
fn refusal(
    map: &mut HashMap<String, KeyState>,
    keys: &[(&str, usize)],
    now: Instant,
) -> Option<Duration> {
    let mut wait: Option<Duration> = None;
    for (key, limit) in keys {
        let Some(state) = map.get_mut(*key) else {
            continue;
        };
        state.failures.retain(|t| now.duration_since(*t) < WINDOW);
        if state.failures.len() + state.in_flight >= *limit {
            let retry = state
                .failures
                .first()
                .map_or(Duration::from_secs(1), |oldest| {
                    WINDOW.saturating_sub(now.duration_since(*oldest))
                });
            wait = Some(wait.map_or(retry, |w| w.max(retry)));
        }
    }
    wait.map(|w| w.max(Duration::from_secs(1)))
}

impl Attempt<'_> {
    fn end(&mut self, failed: bool, clear: Option<&str>) {
        let mut map = db::lock(&self.throttle.keys);
        for key in &self.keys {
            if let Some(state) = map.get_mut(key) {
                state.in_flight = state.in_flight.saturating_sub(1);
                if failed {
                    state.failures.push(self.now);
                }
            }
        }
        if let Some(key) = clear
            && let Some(state) = map.get_mut(key)
        {
            state.failures.clear();
        }
        self.ended = true;
    }

    /// The password was wrong: a failure for every key.
    pub fn failed(mut self) {
        self.end(true, None);
    }

    /// The password was right: the account's failures are forgiven (not the IP's).
    pub fn succeeded(mut self, account_key: &str) {
        self.end(false, Some(account_key));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(false, None);
        }
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
            t.begin(&keys, start)
                .unwrap_or_else(|_| panic!("attempt {i}"))
                .failed();
        }
        let retry = t.begin(&keys, start).err().unwrap();
        assert!(retry <= WINDOW && retry >= Duration::from_secs(1));
        assert!(
            t.begin(&[("acct:b", ACCOUNT_LIMIT)], start).is_ok(),
            "other accounts unaffected"
        );
        assert!(
            t.begin(&keys, start + WINDOW + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn attempts_in_flight_count() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let keys = [("acct:a", ACCOUNT_LIMIT)];
        let held: Vec<_> = (0..ACCOUNT_LIMIT)
            .map(|_| t.begin(&keys, now).unwrap())
            .collect();
        assert!(
            t.begin(&keys, now).is_err(),
            "a burst cannot exceed the limit"
        );
        drop(held);
        let ok = t.begin(&keys, now).unwrap();
        ok.succeeded("acct:a");
        assert!(t.begin(&keys, now).is_ok());
    }
}
