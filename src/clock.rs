//! Time as a dependency. Everything where time decides something (sessions, tokens,
//! trash expiry, purge dates, audit retention) reads the clock it was given, so tests move
//! time forward without sleeping. The service uses `SystemClock`; tests use
//! `ManualClock`. This module depends on nothing else in Coffer.

use std::sync::Arc;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to (tests and drills).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
        })
    }

    /// Starts at the current wall-clock time.
    pub fn starting_now() -> Arc<ManualClock> {
        ManualClock::new(OffsetDateTime::now_utc())
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = crate::db::lock(&self.now);
        *now += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *crate::db::lock(&self.now) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *crate::db::lock(&self.now)
    }
}

/// The current time of `clock` as the one timestamp format of every database.
pub fn stamp(clock: &dyn Clock) -> String {
    crate::db::timestamp(clock.now())
}

/// Parses a stored timestamp (RFC 3339).
pub fn parse_stamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::days(8));
        assert_eq!(stamp(clock.as_ref()), "2026-01-09T00:00:00.000Z");
        assert_eq!(parse_stamp("2026-01-09T00:00:00.000Z"), Some(clock.now()));
    }
}
