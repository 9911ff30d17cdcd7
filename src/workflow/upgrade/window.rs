//! When an instance's weekly maintenance window (`ddd:hh24:mi-ddd:hh24:mi`, UTC, as RDS spells
//! `PreferredMaintenanceWindow`) next opens. Pure: unit-tested here.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEK: i64 = 7 * 24 * 60;

/// Minutes since Monday 00:00 of `ddd:hh:mi`.
fn minute_of_week(text: &str) -> Option<i64> {
    let mut parts = text.split(':');
    let day = parts.next()?.to_lowercase();
    let day = DAYS.iter().position(|d| *d == day)? as i64;
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || hour > 23 || minute > 59 {
        return None;
    }
    Some(day * 24 * 60 + hour * 60 + minute)
}

/// How long until `window` opens, from `now`: zero while it is open. `None` for a window RDS
/// would not have written.
pub fn until_open(window: &str, now: DateTime<Utc>) -> Option<Duration> {
    let (start, end) = window.split_once('-')?;
    let start = minute_of_week(start)?;
    let end = minute_of_week(end)?;
    let now_minute = i64::from(now.weekday().num_days_from_monday()) * 24 * 60
        + i64::from(now.hour()) * 60
        + i64::from(now.minute());
    let length = (end - start).rem_euclid(WEEK);
    let since_start = (now_minute - start).rem_euclid(WEEK);
    if since_start < length {
        return Some(Duration::zero());
    }
    let minutes = WEEK - since_start;
    Some(Duration::minutes(minutes) - Duration::seconds(i64::from(now.second())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        // 2026-12-07 is a Monday.
        Utc.with_ymd_and_hms(2026, 12, 7 + day, h, m, 0).unwrap()
    }

    #[test]
    fn a_window_is_open_inside_and_opens_next_week_just_after() {
        let w = "sun:05:00-sun:05:30";
        assert_eq!(until_open(w, at(6, 5, 10)), Some(Duration::zero()));
        assert_eq!(until_open(w, at(6, 4, 0)), Some(Duration::hours(1)));
        assert_eq!(
            until_open(w, at(6, 5, 30)),
            Some(Duration::minutes(WEEK - 30))
        );
        assert_eq!(
            until_open(w, at(0, 5, 0)),
            Some(Duration::days(6)),
            "monday 05:00 to sunday 05:00"
        );
    }

    #[test]
    fn a_window_across_the_week_end_and_bad_windows() {
        let w = "sun:23:30-mon:00:30";
        assert_eq!(until_open(w, at(0, 0, 10)), Some(Duration::zero()));
        assert_eq!(until_open(w, at(6, 23, 0)), Some(Duration::minutes(30)));
        assert_eq!(until_open("sun:25:00-sun:26:00", at(0, 0, 0)), None);
        assert_eq!(until_open("someday", at(0, 0, 0)), None);
    }
}
