//! Time as the daemon sees it: the clock it is given (the system's in
//! production, a hand-moved one in tests), the units every module counts
//! in, named once, and the leader's time: the zone of `timezone` in which
//! the leader types a time (`--at 2027-01-15T08:00`, the workspace's form)
//! and reads one, to the minute. Records keep UTC; only these functions
//! turn it into the leader's clock and back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

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

/// The zone the leader lives in (`timezone` in utskick.toml, an IANA name
/// such as `Europe/Stockholm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(Tz);

impl Zone {
    /// The default zone: the project works in Sweden.
    pub const STOCKHOLM: Zone = Zone(Tz::Europe__Stockholm);
    /// UTC, for tests and for a leader who wants it.
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The zone named `name` (IANA: `Europe/Stockholm`, `UTC`).
    pub fn named(name: &str) -> Result<Zone, String> {
        name.trim().parse::<Tz>().map(Zone).map_err(|_| {
            format!("{name:?} is not a time zone (an IANA name such as \"Europe/Stockholm\" or \"UTC\")")
        })
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::STOCKHOLM
    }
}

impl TryFrom<String> for Zone {
    type Error = String;

    fn try_from(name: String) -> Result<Zone, String> {
        Zone::named(&name)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a time the leader typed names no instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderTimeError {
    /// Not a time in any form we read.
    #[error("{text:?}: expected a time like 2027-01-15 08:00, 2027-01-15T08:00 or 2027-01-15T08:00:00+01:00")]
    Unreadable { text: String },
    /// A wall-clock time the zone skips: the clocks move forward over it
    /// (in Europe/Stockholm 02:00–02:59 on the last Sunday of March).
    #[error("{text} does not exist in {zone}: the clocks move forward over it; give a time outside the skipped hour, such as {after}")]
    Skipped {
        text: String,
        zone: Zone,
        /// The same wall-clock time an hour later, which exists.
        after: String,
    },
}

/// The forms a leader types a local time in, with or without seconds.
const LEADER_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
];

/// A time the leader typed: `2027-01-15T08:00` or `2027-01-15 08:00`
/// (optionally with seconds) is wall-clock time in `zone`; a full RFC 3339
/// time with an offset (`2027-01-15T08:00:00+01:00`, `…Z`) means what it
/// says. A wall-clock time the zone skips (the spring-forward hour) is
/// refused, naming the hour after; one the zone has twice (the autumn
/// hour) is the first of the two, as cron and systemd timers take it.
pub fn parse_leader_time(text: &str, zone: Zone) -> Result<DateTime<Utc>, LeaderTimeError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = LEADER_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| LeaderTimeError::Unreadable {
            text: text.to_string(),
        })?;
    match zone.0.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => Err(LeaderTimeError::Skipped {
            text: naive.format("%Y-%m-%d %H:%M").to_string(),
            zone,
            after: (naive + chrono::Duration::hours(1))
                .format("%Y-%m-%d %H:%M")
                .to_string(),
        }),
    }
}

/// An instant as the leader reads it: wall-clock time in `zone`, to the
/// minute, with the zone's abbreviation (`2027-01-15 08:00 CET`), so a
/// time near a change of clocks is never read in the wrong hour.
pub fn leader_time(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.0)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// [`leader_time`] of an RFC 3339 text (as the admin protocol carries
/// times); a text that is not one is returned as it is.
pub fn leader_time_of(rfc3339: &str, zone: Zone) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => leader_time(t.with_timezone(&Utc), zone),
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_leaders_time_is_read_in_their_zone() {
        let z = Zone::STOCKHOLM;
        let winter = utc("2027-01-15T07:00:00Z");
        assert_eq!(parse_leader_time("2027-01-15T08:00", z), Ok(winter));
        assert_eq!(parse_leader_time("2027-01-15 08:00", z), Ok(winter));
        assert_eq!(parse_leader_time(" 2027-01-15 08:00:00 ", z), Ok(winter));
        assert_eq!(
            parse_leader_time("2027-01-15T08:00:00+01:00", z),
            Ok(winter)
        );
        assert_eq!(parse_leader_time("2027-01-15T07:00:00Z", z), Ok(winter));
        assert_eq!(
            parse_leader_time("2027-06-15T08:00", z),
            Ok(utc("2027-06-15T06:00:00Z"))
        );
        assert_eq!(
            parse_leader_time("2027-01-15T08:00", Zone::UTC),
            Ok(utc("2027-01-15T08:00:00Z"))
        );
        assert!(matches!(
            parse_leader_time("tomorrow", z),
            Err(LeaderTimeError::Unreadable { .. })
        ));
    }

    #[test]
    fn the_skipped_hour_is_refused_and_the_doubled_hour_is_the_first() {
        let z = Zone::STOCKHOLM;
        let e = parse_leader_time("2027-03-28T02:30", z).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2027-03-28 02:30 does not exist in Europe/Stockholm: the clocks move forward over it; give a time outside the skipped hour, such as 2027-03-28 03:30"
        );
        // 02:30 happens twice on 2027-10-31: first in summer time (+02:00).
        assert_eq!(
            parse_leader_time("2027-10-31T02:30", z),
            Ok(utc("2027-10-31T00:30:00Z"))
        );
    }

    #[test]
    fn a_leader_reads_minutes_in_their_zone() {
        let z = Zone::STOCKHOLM;
        let t = utc("2027-01-15T07:00:59.123456789Z");
        assert_eq!(leader_time(t, z), "2027-01-15 08:00 CET");
        assert_eq!(
            leader_time(utc("2027-06-15T06:00:00Z"), z),
            "2027-06-15 08:00 CEST"
        );
        assert_eq!(
            leader_time_of("2027-01-15T07:00:00+00:00", z),
            "2027-01-15 08:00 CET"
        );
        assert_eq!(leader_time_of("not a time", z), "not a time");
    }

    #[test]
    fn a_zone_is_named_or_refused() {
        assert_eq!(Zone::named("Europe/Stockholm"), Ok(Zone::STOCKHOLM));
        assert_eq!(Zone::default(), Zone::STOCKHOLM);
        let e = Zone::named("Europe/Stokholm").unwrap_err();
        assert!(e.contains("\"Europe/Stokholm\" is not a time zone"), "{e}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let clock = c.clock();
        assert_eq!(clock().timestamp(), 1_800_000_000);
        c.advance(SECS_PER_DAY);
        assert_eq!(clock().timestamp(), 1_800_000_000 + SECS_PER_DAY);
    }
}
