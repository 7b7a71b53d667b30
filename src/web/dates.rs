//! Dates as the pages' readers write them: "1 december 2026" in Swedish,
//! "1 December 2026" in English; not ISO dates, which read as code. The
//! month names are the report's ([`crate::people::report::long_date`]).

use chrono::{DateTime, Utc};

use crate::daemon::lists::Language;
use crate::people::report::{self, Lang};

/// The day of `t` (UTC), e.g. "1 december 2026" / "1 December 2026".
pub(super) fn long_date(t: DateTime<Utc>, lang: Language) -> String {
    let lang = match lang {
        Language::Sv => Lang::Sv,
        Language::En => Lang::En,
    };
    report::long_date(t.date_naive(), lang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_read_as_people_write_them() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 23, 59, 59).unwrap();
        assert_eq!(long_date(t, Language::Sv), "1 december 2026");
        assert_eq!(long_date(t, Language::En), "1 December 2026");
        let t = Utc.with_ymd_and_hms(2027, 1, 31, 0, 0, 0).unwrap();
        assert_eq!(long_date(t, Language::Sv), "31 januari 2027");
        assert_eq!(long_date(t, Language::En), "31 January 2027");
        let t = Utc.with_ymd_and_hms(2026, 5, 9, 12, 0, 0).unwrap();
        assert_eq!(long_date(t, Language::Sv), "9 maj 2026");
    }
}
