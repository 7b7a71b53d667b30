//! Time as the daemon sees it: the clock it is given (the system's in
//! production, a hand-moved one in tests) and the units every module counts
//! in, named once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Seconds in a day (the daily budgets, token and unconfirmed ages).
pub const SECS_PER_DAY: i64 = 86_400;
/// Seconds in an hour.
pub const SECS_PER_HOUR: i64 = 3_600;
/// Seconds in a minute.
pub const SECS_PER_MINUTE: i64 = 60;

/// What the daemon asks for "now". Everything that dates a record or decides
/// on an age reads this, never `Utc::now` directly.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A clock that stands still until it is moved: for tests that need time to
/// pass without sleeping.
#[derive(Clone)]
pub struct ManualClock {
    secs: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            secs: Arc::new(AtomicI64::new(start.timestamp())),
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.secs.fetch_add(secs, Ordering::SeqCst);
    }

    /// What the clock reads now.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs.load(Ordering::SeqCst), 0).unwrap_or_default()
    }

    /// The clock as the daemon takes it.
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let clock = c.clock();
        assert_eq!(clock().timestamp(), 1_800_000_000);
        c.advance(SECS_PER_DAY);
        assert_eq!(clock().timestamp(), 1_800_000_000 + SECS_PER_DAY);
    }
}
