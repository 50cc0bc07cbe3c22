//! The local time zone: read once (from `TZ` or an explicit TZ value), then
//! used the way Fail2ban uses the C library: `datetime.fromtimestamp` for
//! "now" and `mktime` for dates written without a zone. The offset of the
//! last day seen is cached, so a line usually needs no zone lookup.

use super::strptime::civil_from_days;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use std::cell::Cell;

const DAY: i64 = 86_400;
const LOCAL_DAYS: usize = 32;
const NO_DAY: (i64, i64) = (i64::MIN, 0);

#[derive(Debug, Clone)]
pub(crate) struct LocalZone {
    tz: TimeZone,
    /// The offset of the last `mktime` result (glibc's starting guess).
    guess: Cell<i64>,
    /// (local day, offset) of local days without a transition, by day
    /// modulo the size: logs run in order, or jump between a few days.
    local_days: [Cell<(i64, i64)>; LOCAL_DAYS],
    /// (UTC day, offset) for a UTC day without a transition.
    utc_day: Cell<Option<(i64, i64)>>,
}

impl LocalZone {
    fn of(tz: TimeZone) -> LocalZone {
        LocalZone {
            tz,
            guess: Cell::new(0),
            local_days: std::array::from_fn(|_| Cell::new(NO_DAY)),
            utc_day: Cell::new(None),
        }
    }

    /// The process's zone: `TZ` from the environment, else /etc/localtime.
    pub fn system() -> LocalZone {
        LocalZone::of(TimeZone::system())
    }

    /// A zone given as a `TZ` value: empty (UTC), a POSIX rule such as
    /// `CET-01CEST-02,M3.5.0,M10.5.0`, an IANA name, or a TZif path
    /// (optionally after `:`).
    pub fn from_tz(value: &str) -> Result<LocalZone, String> {
        if value.is_empty() {
            return Ok(LocalZone::of(TimeZone::UTC));
        }
        if !value.starts_with(':') {
            if let Ok(tz) = TimeZone::posix(value) {
                return Ok(LocalZone::of(tz));
            }
        }
        let name = value.strip_prefix(':').unwrap_or(value);
        if !name.starts_with('/') {
            if let Ok(tz) = TimeZone::get(name) {
                return Ok(LocalZone::of(tz));
            }
        }
        let path = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/usr/share/zoneinfo/{name}")
        };
        let data = std::fs::read(&path)
            .map_err(|e| format!("unknown time zone {value:?}: {path}: {e}"))?;
        TimeZone::tzif(name, &data)
            .map(LocalZone::of)
            .map_err(|e| format!("unknown time zone {value:?}: {path}: {e}"))
    }

    fn offset_at(&self, secs: i64) -> Option<i64> {
        Some(
            self.tz
                .to_offset(Timestamp::from_second(secs).ok()?)
                .seconds() as i64,
        )
    }

    /// `datetime.fromtimestamp(t)`: the local wall-clock time of `t` as
    /// naive microseconds since 1970-01-01 (rounded half-even to the
    /// microsecond, as Python does).
    pub fn naive_micros(&self, t: f64) -> Option<i64> {
        if !t.is_finite() || t.abs() > 1e15 {
            return None;
        }
        let mut secs = t.trunc();
        let mut micros = ((t - secs) * 1e6).round_ties_even();
        if micros >= 1e6 {
            micros -= 1e6;
            secs += 1.0;
        } else if micros < 0.0 {
            micros += 1e6;
            secs -= 1.0;
        }
        let secs = secs as i64;
        let day = secs.div_euclid(DAY);
        let offset = match self.utc_day.get() {
            Some((d, offset)) if d == day => offset,
            _ => {
                let offset = self.offset_at(secs)?;
                let (first, last) = (
                    self.offset_at(day * DAY)?,
                    self.offset_at(day * DAY + DAY - 1)?,
                );
                if first == last {
                    self.utc_day.set(Some((day, first)));
                }
                offset
            }
        };
        Some((secs + offset) * 1_000_000 + micros as i64)
    }

    /// The offset(s) for naive local seconds.
    fn ambiguous(&self, naive: i64) -> Option<AmbiguousOffset> {
        let (year, month, day) = civil_from_days(naive.div_euclid(DAY));
        let secs = naive.rem_euclid(DAY);
        let dt = DateTime::new(
            i16::try_from(year).ok()?,
            month as i8,
            day as i8,
            (secs / 3600) as i8,
            (secs / 60 % 60) as i8,
            (secs % 60) as i8,
            0,
        )
        .ok()?;
        Some(self.tz.to_ambiguous_timestamp(dt).offset())
    }

    /// `mktime` with `tm_isdst = -1` for naive local seconds since
    /// 1970-01-01, as glibc does it: a time in a gap is read with the offset
    /// before the gap; in a fold glibc starts from the offset of its previous
    /// result, so the answer depends on what was converted before (kept here
    /// per zone, starting from 0 like glibc's static guess).
    pub fn mktime(&self, naive: i64) -> Option<i64> {
        let day = naive.div_euclid(DAY);
        let slot = &self.local_days[day.rem_euclid(LOCAL_DAYS as i64) as usize];
        let (cached_day, offset) = slot.get();
        if cached_day == day {
            self.guess.set(offset);
            return Some(naive - offset);
        }
        // A day that starts and ends with one offset has no transition.
        let unambiguous = |n| match self.ambiguous(n) {
            Some(AmbiguousOffset::Unambiguous { offset }) => Some(offset.seconds() as i64),
            _ => None,
        };
        if let (Some(first), Some(last)) =
            (unambiguous(day * DAY), unambiguous(day * DAY + DAY - 1))
        {
            if first == last {
                slot.set((day, first));
                self.guess.set(first);
                return Some(naive - first);
            }
        }
        let offset = match self.ambiguous(naive)? {
            AmbiguousOffset::Unambiguous { offset } => offset.seconds() as i64,
            AmbiguousOffset::Gap { before, .. } => before.seconds() as i64,
            AmbiguousOffset::Fold { before, after } => {
                let (before, after) = (before.seconds() as i64, after.seconds() as i64);
                let mut guess = self.guess.get();
                for _ in 0..4 {
                    let offset = self.offset_at(naive - guess)?;
                    if offset == guess {
                        break;
                    }
                    guess = offset;
                }
                if guess == before {
                    before
                } else {
                    after
                }
            }
        };
        self.guess.set(offset);
        Some(naive - offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CET: &str = "CET-01CEST-02,M3.5.0,M10.5.0";

    fn naive(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
        super::super::strptime::days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s
    }

    #[test]
    fn posix_rule_gap_reads_with_the_offset_before() {
        let z = LocalZone::from_tz(CET).unwrap();
        // Spring forward 2005-03-27 02:00 CET -> 03:00 CEST.
        assert_eq!(z.mktime(naive(2005, 3, 27, 1, 59, 59)), Some(1111885199));
        assert_eq!(z.mktime(naive(2005, 3, 27, 2, 0, 0)), Some(1111885200));
        assert_eq!(z.mktime(naive(2005, 3, 27, 2, 30, 0)), Some(1111887000));
        assert_eq!(z.mktime(naive(2005, 3, 27, 3, 0, 0)), Some(1111885200));
        z.mktime(naive(2005, 7, 1, 0, 0, 0));
        assert_eq!(z.mktime(naive(2005, 3, 27, 2, 30, 0)), Some(1111887000));
    }

    #[test]
    fn posix_rule_fold_follows_the_previous_result_like_glibc() {
        // Fall back at 02:00 CEST (the rule's default time) to 01:00 CET:
        // 01:00..02:00 happens twice.
        let z = LocalZone::from_tz(CET).unwrap();
        // First conversion ever: glibc starts from offset 0 and lands on CET.
        assert_eq!(z.mktime(naive(2005, 10, 30, 1, 30, 0)), Some(1130632200));
        // After a summer time, the summer reading.
        assert_eq!(z.mktime(naive(2005, 10, 30, 0, 59, 59)), Some(1130626799));
        assert_eq!(z.mktime(naive(2005, 10, 30, 1, 30, 0)), Some(1130628600));
        assert_eq!(z.mktime(naive(2005, 10, 30, 1, 59, 59)), Some(1130630399));
        // After a winter time, the winter reading.
        assert_eq!(z.mktime(naive(2005, 1, 1, 0, 0, 0)), Some(1104534000));
        assert_eq!(z.mktime(naive(2005, 10, 30, 1, 0, 0)), Some(1130630400));
        assert_eq!(z.mktime(naive(2005, 10, 30, 2, 0, 0)), Some(1130634000));
        assert_eq!(z.mktime(naive(2005, 10, 30, 2, 30, 0)), Some(1130635800));
    }

    #[test]
    fn now_is_local_wall_clock_in_micros() {
        let z = LocalZone::from_tz(CET).unwrap();
        // 1124013600 = 2005-08-14 10:00:00 UTC = 12:00 CEST.
        assert_eq!(
            z.naive_micros(1124013600.0),
            Some((1124013600 + 7200) * 1_000_000)
        );
        assert_eq!(
            z.naive_micros(1124013600.25),
            Some((1124013600 + 7200) * 1_000_000 + 250_000)
        );
        assert_eq!(
            z.naive_micros(-0.5),
            Some((-1 + 3600) * 1_000_000 + 500_000)
        );
        assert_eq!(z.naive_micros(f64::NAN), None);
    }

    #[test]
    fn tz_values_in_every_form() {
        assert_eq!(LocalZone::from_tz("").unwrap().naive_micros(0.0), Some(0));
        assert_eq!(
            LocalZone::from_tz("UTC").unwrap().naive_micros(0.0),
            Some(0)
        );
        let berlin = LocalZone::from_tz("Europe/Berlin").unwrap();
        assert_eq!(berlin.naive_micros(0.0), Some(3600 * 1_000_000));
        let path = LocalZone::from_tz(":/usr/share/zoneinfo/Europe/Berlin").unwrap();
        assert_eq!(
            path.naive_micros(1124013600.0),
            Some((1124013600 + 7200) * 1_000_000)
        );
        let err = LocalZone::from_tz("Nowhere/Atlantis").unwrap_err();
        assert!(err.contains("Nowhere/Atlantis"), "{err}");
    }
}
