//! Slowing down password guessing: failed logins are counted per account and per client
//! IP in a sliding window, together with the attempts still being checked, so that many
//! simultaneous guesses count as many (checking first and recording after would let a
//! burst through). Past the limit, further attempts are refused without checking the
//! password until the window has moved on.
//!
//! The clock is passed in (`Instant`), so tests need no sleeps. Memory is bounded: keys
//! are short (an e-mail is cut to its longest valid length), old entries are pruned when
//! the table grows, and when it is full of live entries the stalest go. A client address
//! counts by its /64 for IPv6 (`client_group`), since one client holds a whole /64.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db;

/// Failures allowed per key within `WINDOW`.
pub const ACCOUNT_LIMIT: usize = 5;
pub const IP_LIMIT: usize = 20;
/// Sign-ups allowed per client address within `WINDOW`.
pub const SIGNUP_LIMIT: usize = 5;
/// Password-reset requests allowed per account, and per client address (an office
/// behind one address has many people), within `WINDOW`: each one sends mail and writes
/// a row.
pub const RESET_REQUEST_LIMIT: usize = 5;
pub const RESET_REQUEST_IP_LIMIT: usize = 20;
/// Wrong reset tokens allowed per client address within `WINDOW`.
pub const RESET_GUESS_LIMIT: usize = 10;
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
        if map.len() > MAX_KEYS {
            evict_stalest(&mut map, MAX_KEYS / 2);
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

/// Keeps the `keep` entries with the newest failures (and every entry in flight): a table
/// full of live keys (a flood from many addresses) cannot grow without end.
fn evict_stalest(map: &mut HashMap<String, KeyState>, keep: usize) {
    let mut newest: Vec<Instant> = map
        .values()
        .filter(|s| s.in_flight == 0)
        .filter_map(|s| s.failures.last().copied())
        .collect();
    if newest.len() <= keep {
        return;
    }
    newest.sort_unstable();
    let cutoff = newest[newest.len() - keep];
    map.retain(|_, s| s.in_flight > 0 || s.failures.last().is_some_and(|t| *t >= cutoff));
}

/// The part of a client address that counts as one client: the address for IPv4, its
/// /64 network for IPv6 (one subscriber holds a whole /64 and could otherwise rotate
/// through 2^64 addresses).
pub fn client_group(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => ip,
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

/// A throttle key for a client address as the request carries it (text, or unknown).
pub fn client_key(kind: &str, ip: Option<&str>) -> String {
    match ip.and_then(|text| text.parse::<std::net::IpAddr>().ok()) {
        Some(ip) => format!("{kind}:{}", client_group(ip)),
        None => format!("{kind}:unknown"),
    }
}

/// A throttle key for an account as typed (folded, and cut to the longest valid e-mail so
/// a megabyte of "e-mail" costs no megabyte of memory).
pub fn account_key(kind: &str, email: &str) -> String {
    let folded: String = email
        .trim()
        .chars()
        .take(320)
        .collect::<String>()
        .to_lowercase();
    format!("{kind}:{folded}")
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
    fn ipv6_counts_by_its_64_and_keys_are_short() {
        let a = client_key("ip", Some("2001:db8:1:2:aaaa::1"));
        let b = client_key("ip", Some("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let c = client_key("ip", Some("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(client_key("ip", Some("192.0.2.7")), "ip:192.0.2.7");
        assert_eq!(client_key("ip", Some("not an ip")), "ip:unknown");
        assert!(account_key("acct", &"x".repeat(1 << 20)).len() < 400);
    }

    #[test]
    fn a_table_full_of_live_keys_stays_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            let key = format!("ip:{i}");
            t.begin(&[(&key, IP_LIMIT)], now + Duration::from_millis(i as u64))
                .unwrap()
                .failed();
        }
        let len = db::lock(&t.keys).len();
        assert!(len <= MAX_KEYS, "{len} keys kept");
        // The newest keys are the ones kept.
        let key = format!("ip:{}", MAX_KEYS + 9);
        assert!(db::lock(&t.keys).contains_key(&key));
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
