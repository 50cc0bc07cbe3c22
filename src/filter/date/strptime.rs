//! Turns the named groups of a date match into epoch seconds the way
//! Fail2ban's strptime does: fields in group order, year and day inference
//! from "now", zone offsets and abbreviations, `logtimezone`, then
//! `timegm` (zone known) or local `mktime` (zone unknown). Fractions of a
//! second are dropped, as in Fail2ban.

use super::zone::LocalZone;
use crate::filter::pcre::Scratch;

/// A strptime field a date regex can capture (by group name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Year,
    Year2,
    Month,
    MonthName,
    MonthAbbr,
    Day,
    Hour,
    Hour12,
    Minute,
    Second,
    WeekdayName,
    WeekdayAbbr,
    /// 0 = Sunday.
    Weekday,
    YearDay,
    /// Week of the year, weeks starting on Sunday (`%U`) or Monday (`%W`).
    WeekSun,
    WeekMon,
    Zone,
}

impl Field {
    /// The field a group name stands for; None for names the conversion
    /// ignores (`f`, `p`, `G`, `V`, `u`, user names such as `_sep`).
    pub fn from_group_name(name: &str) -> Option<Field> {
        Some(match name {
            "Y" => Field::Year,
            "y" => Field::Year2,
            "m" => Field::Month,
            "B" => Field::MonthName,
            "b" => Field::MonthAbbr,
            "d" => Field::Day,
            "H" => Field::Hour,
            "I" => Field::Hour12,
            "M" => Field::Minute,
            "S" => Field::Second,
            "A" => Field::WeekdayName,
            "a" => Field::WeekdayAbbr,
            "w" => Field::Weekday,
            "j" => Field::YearDay,
            "U" => Field::WeekSun,
            "W" => Field::WeekMon,
            "z" | "Z" => Field::Zone,
            _ => return None,
        })
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Position of `val` (any case) among `names` (full, or their first three
/// letters when `abbr`).
fn name_index(names: &[&str], val: &str, abbr: bool) -> Option<i64> {
    names
        .iter()
        .position(|n| {
            let n = if abbr { &n[..3] } else { n };
            n.eq_ignore_ascii_case(val)
        })
        .map(|i| i as i64)
}

/// The "now" a conversion infers missing fields from: epoch seconds, and its
/// local wall-clock time (computed on first use).
pub(super) struct Now<'z> {
    pub unix: f64,
    zone: &'z LocalZone,
    local: Option<Option<i64>>,
}

impl<'z> Now<'z> {
    pub fn new(unix: f64, zone: &'z LocalZone) -> Now<'z> {
        Now {
            unix,
            zone,
            local: None,
        }
    }

    /// Naive local microseconds since 1970-01-01.
    fn local_micros(&mut self) -> Option<i64> {
        *self
            .local
            .get_or_insert_with(|| self.zone.naive_micros(self.unix))
    }
}

const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub(super) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Python's datetime range: years 1 to 9999.
const MIN_DAYS: i64 = -719_162;
const MAX_DAYS: i64 = 2_932_896;

/// A validated naive date-time, in seconds since 1970-01-01 (no zone).
fn naive(y: i64, m: i64, d: i64, secs: i64) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * SECS_PER_DAY + secs)
}

/// Keeps a naive time inside Python's datetime range (else OverflowError).
fn in_range(t: i64) -> Option<i64> {
    (MIN_DAYS * SECS_PER_DAY..(MAX_DAYS + 1) * SECS_PER_DAY)
        .contains(&t)
        .then_some(t)
}

/// Python's `int()` of a matched number: surrounding whitespace, a sign,
/// and decimal digits of any script (single `_` between digits allowed).
pub(super) fn py_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0, |v, d| v * 10 + (d - b'0') as i64));
    }
    let s = super::template::py_strip(s);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        v = v.checked_mul(10)?.checked_add(digit_value(c)? as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// First code points of the runs of ten decimal digits (Unicode 14, the
/// version of Python 3.11's `int()`).
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a decimal digit of any script.
pub(super) fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return Some(c as u32 - '0' as u32);
    }
    let c = c as u32;
    let i = DIGIT_ZEROS.partition_point(|&z| z <= c).checked_sub(1)?;
    let v = c - DIGIT_ZEROS[i];
    (v < 10).then_some(v)
}

/// Zone abbreviations Fail2ban knows, by UTC offset in minutes (fixed
/// offsets: `CEST` is always +02:00).
const ZONE_ABBRS: &[(i32, &str)] = &[
    (-720, "Y"),
    (-660, "X NUT SST"),
    (-600, "W CKT HAST HST TAHT TKT"),
    (-540, "V AKST GAMT GIT HADT HNY"),
    (-480, "U AKDT CIST HAY HNP PST PT"),
    (-420, "T HAP HNR MST PDT"),
    (-360, "S CST EAST GALT HAR HNC MDT"),
    (-300, "R CDT COT EASST ECT EST ET HAC HNE PET"),
    (-240, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
    (
        -180,
        "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT",
    ),
    (-120, "O BRST FNT PMDT UYST WGST"),
    (-60, "N AZOT CVT EGT"),
    (0, "Z EGST GMT UTC WET WT"),
    (60, "A CET DFT WAT WEDT WEST"),
    (120, "B CAT CEDT CEST EET SAST WAST"),
    (180, "C EAT EEDT EEST IDT MSK"),
    (240, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
    (
        300,
        "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT",
    ),
    (360, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
    (420, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
    (
        480,
        "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST",
    ),
    (540, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
    (600, "K AEST PGT VLAT YAKST YAPT"),
    (660, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
    (
        720,
        "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT",
    ),
    (780, "FJST NZDT"),
    (690, "NFT"),
    (630, "ACDT LHST"),
    (570, "ACST"),
    (390, "CCT MMT"),
    (345, "NPT"),
    (330, "SLT"),
    (270, "AFT IRDT"),
    (210, "IRST"),
    (-150, "HAT NDT"),
    (-210, "HNT NST NT"),
    (-270, "HLV VET"),
    (-570, "MART MIT"),
];

fn abbr_offset(abbr: &str) -> Option<i32> {
    ZONE_ABBRS
        .iter()
        .find(|(_, names)| names.split(' ').any(|n| n == abbr))
        .map(|(o, _)| *o)
}

/// Why a zone text is refused: Fail2ban raises ValueError for text of the
/// wrong shape and KeyError for an unknown abbreviation.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ZoneError {
    Shape,
    UnknownAbbr,
}

/// A zone as `[ABBR][+-hh[[:]mm]]` (ABBR: 1 or 3-5 capitals, its offset
/// added to the numeric one; nothing at all means UTC), in minutes.
pub(super) fn zone_offset(text: &str) -> Result<i32, ZoneError> {
    // A trailing newline is allowed, as by Python's `$`.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let letters = text.bytes().take_while(u8::is_ascii_uppercase).count();
    let abbr_len = [5, 4, 3, 1, 0]
        .into_iter()
        .find(|&n| n <= letters && (n == letters || text[n..].starts_with(['+', '-'])))
        .ok_or(ZoneError::Shape)?;
    let (abbr, num) = text.split_at(abbr_len);
    // The shape first: an unknown abbreviation with a malformed offset is a
    // shape error, as the whole text fails Fail2ban's regex.
    let numeric = numeric_offset(num).ok_or(ZoneError::Shape)?;
    let base = if abbr.is_empty() {
        0
    } else {
        abbr_offset(abbr).ok_or(ZoneError::UnknownAbbr)?
    };
    Ok(base + numeric)
}

/// `+hh`, `+hhmm`, `+hh:mm` (first hour digit 0 or 1) or nothing, in minutes.
fn numeric_offset(num: &str) -> Option<i32> {
    let mut chars = num.chars();
    let sign = match chars.next() {
        None => return Some(0),
        Some('+') => 1,
        Some('-') => -1,
        Some(_) => return None,
    };
    let h1 = chars.next().filter(|c| matches!(c, '0' | '1'))?;
    let hours = (digit_value(h1)? * 10 + digit_value(chars.next()?)?) as i32;
    let rest = chars.as_str();
    let minutes = if rest.is_empty() {
        0
    } else {
        let mut mm = rest.strip_prefix(':').unwrap_or(rest).chars();
        match (mm.next(), mm.next(), mm.next()) {
            (Some(a), Some(b), None) => (digit_value(a)? * 10 + digit_value(b)?) as i32,
            _ => return None,
        }
    };
    Some(sign * (hours * 60 + minutes))
}

/// The zone of a parsed date: `Z`, `UTC`, `GMT` or [`zone_offset`].
fn parsed_zone(text: &str) -> Option<i32> {
    match text {
        "Z" | "UTC" | "GMT" => Some(0),
        _ => zone_offset(text).ok(),
    }
}

/// Converts the captured fields of a pattern template to epoch seconds.
/// None when Fail2ban's conversion fails (invalid date, unknown zone, ...).
pub(super) fn convert(
    fields: &[(usize, Field)],
    ampm: Option<usize>,
    line: &str,
    s: &Scratch,
    default_tz: Option<i32>,
    now: &mut Now,
) -> Option<f64> {
    let group = |i: usize| s.get(i).map(|(a, b)| &line[a..b]);
    let (mut year, mut month, mut day) = (None, None, None);
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    let (mut tzoffset, mut weekday, mut julian, mut week) = (None, None, None, None);
    for &(i, field) in fields {
        let Some(val) = group(i) else { continue };
        match field {
            Field::Year2 => {
                let y = py_int(val)?;
                year = Some(if y <= 2000 { y + 2000 } else { y });
            }
            Field::Year => year = Some(py_int(val)?),
            Field::Month => month = Some(py_int(val)?),
            // The month name lists start with an empty name for index 0.
            Field::MonthName | Field::MonthAbbr if val.is_empty() => month = Some(0),
            Field::MonthName => month = Some(name_index(&MONTHS, val, false)? + 1),
            Field::MonthAbbr => month = Some(name_index(&MONTHS, val, true)? + 1),
            Field::Day => day = Some(py_int(val)?),
            Field::Hour => hour = py_int(val)?,
            Field::Hour12 => {
                hour = py_int(val)?;
                // A `p` group that did not take part fails in Fail2ban.
                let p = match ampm {
                    Some(g) => group(g)?,
                    None => "",
                };
                if p.is_empty() || p.eq_ignore_ascii_case("am") {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if p.eq_ignore_ascii_case("pm") && hour != 12 {
                    hour += 12;
                }
            }
            Field::Minute => minute = py_int(val)?,
            Field::Second => second = py_int(val)?,
            Field::WeekdayName => weekday = Some(name_index(&WEEKDAYS, val, false)?),
            Field::WeekdayAbbr => weekday = Some(name_index(&WEEKDAYS, val, true)?),
            Field::Weekday => {
                weekday = Some(match py_int(val)? - 1 {
                    w if w < 0 => 6,
                    w => w,
                })
            }
            Field::YearDay => julian = Some(py_int(val)?),
            Field::WeekSun => week = Some((py_int(val)?, false)),
            Field::WeekMon => week = Some((py_int(val)?, true)),
            Field::Zone => tzoffset = Some(parsed_zone(val)?),
        }
    }

    let assume_year = year.is_none();
    let mut year = match year {
        Some(y) => y,
        None => civil_from_days(now.local_micros()?.div_euclid(1_000_000 * SECS_PER_DAY)).0,
    };
    if month.is_none() || day.is_none() {
        if julian.is_none() {
            if let (Some((w, starts_monday)), Some(wd)) = (week, weekday) {
                julian = Some(julian_from_week(year, w, wd, starts_monday)?);
            }
        }
        if let Some(j) = julian {
            let jan1 = naive(year, 1, 1, 0)? / SECS_PER_DAY;
            let days = jan1.checked_add(j)? - 1;
            if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
                return None;
            }
            let (y, m, d) = civil_from_days(days);
            (year, month, day) = (y, Some(m), Some(d));
        }
    }
    let assume_today = month.is_none() && day.is_none();
    let (month, day) = match (month, day) {
        (Some(m), Some(d)) => (m, d),
        (None, None) => {
            let (_, m, d) =
                civil_from_days(now.local_micros()?.div_euclid(1_000_000 * SECS_PER_DAY));
            (m, d)
        }
        // Fail2ban cannot build a date from a month without a day or back.
        _ => return None,
    };
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) || !(0..60).contains(&second) {
        return None;
    }
    let mut t = naive(year, month, day, hour * 3600 + minute * 60 + second)?;
    let tzoffset = tzoffset.or(default_tz);
    if let Some(off) = tzoffset {
        t = in_range(t - off as i64 * 60)?;
    }
    // Inference compares with local "now" even when `t` is UTC (as Fail2ban).
    if assume_today && t * 1_000_000 > now.local_micros()? {
        t = in_range(t - SECS_PER_DAY)?;
    }
    if assume_year && t * 1_000_000 > now.local_micros()? + SECS_PER_DAY * 1_000_000 {
        // Last year, with the written month and day (not the shifted ones).
        t = naive(year - 1, month, day, t.rem_euclid(SECS_PER_DAY))?;
    }
    let tm = match tzoffset {
        Some(_) => t,
        None => now.zone.mktime(t)?,
    };
    Some(tm as f64)
}

/// Day of the year from a week number and weekday (0 = Monday), as
/// Python's `_strptime`.
fn julian_from_week(year: i64, week: i64, weekday: i64, starts_monday: bool) -> Option<i64> {
    // 1970-01-01 was a Thursday (weekday 3).
    let mut first = (naive(year, 1, 1, 0)? / SECS_PER_DAY + 3).rem_euclid(7);
    let mut weekday = weekday;
    if !starts_monday {
        first = (first + 1) % 7;
        weekday = weekday.checked_add(1)?.rem_euclid(7);
    }
    if week == 0 {
        return (1 + weekday).checked_sub(first);
    }
    let days_to_week = (7 - first) % 7 + 7i64.checked_mul(week.checked_sub(1)?)?;
    days_to_week.checked_add(1)?.checked_add(weekday)
}

/// The value of an epoch match: seconds, or with `long` also milliseconds
/// (13+ digits) or microseconds (16+ digits without a dot).
pub(super) fn epoch_value(text: &str, long: bool) -> Option<f64> {
    let mut buf = [0u8; 64];
    let mut n = 0;
    for c in text.chars() {
        let b = if c == '.' {
            b'.'
        } else {
            b'0' + digit_value(c)? as u8
        };
        *buf.get_mut(n)? = b;
        n += 1;
    }
    let ascii = std::str::from_utf8(&buf[..n]).ok()?;
    let v: f64 = ascii.parse().ok()?;
    let len = text.chars().count();
    Some(if long && len >= 13 {
        if len >= 16 && !text.contains('.') {
            v / 1_000_000.0
        } else {
            v / 1000.0
        }
    } else {
        v
    })
}

/// TAI64N: hex digits 2..17 of `@4000000041f4104f00000000` are the seconds.
pub(super) fn tai64n_value(text: &str) -> Option<f64> {
    let hex = text.get(2..17)?;
    u64::from_str_radix(hex, 16).ok().map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-719_162, -1, 0, 1, 11_016, 13_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(MIN_DAYS), (1, 1, 1));
        assert_eq!(civil_from_days(MAX_DAYS), (9999, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn python_int_accepts_spaces_and_other_scripts() {
        assert_eq!(py_int(" 5"), Some(5));
        assert_eq!(py_int("07"), Some(7));
        assert_eq!(py_int("\u{ff11}\u{ff12}"), Some(12));
        assert_eq!(py_int("\u{0661}\u{0669}"), Some(19));
        assert_eq!(py_int(""), None);
        assert_eq!(py_int("1a"), None);
        assert_eq!(py_int("1_0"), Some(10));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("_1"), None);
        assert_eq!(py_int("-3"), Some(-3));
        assert_eq!(py_int("99999999999999999999"), None);
        assert_eq!(digit_value('\u{1D7CE}'), Some(0));
        assert_eq!(digit_value('\u{1D7D7}'), Some(9));
        assert_eq!(digit_value('\u{2160}'), None);
    }

    #[test]
    fn zone_texts() {
        assert_eq!(zone_offset("UTC+0300"), Ok(180));
        assert_eq!(zone_offset("UTC-0430"), Ok(-270));
        assert_eq!(zone_offset("GMT+12"), Ok(720));
        assert_eq!(zone_offset("GMT+23"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("GMT+11"), Ok(660));
        assert_eq!(zone_offset("CET"), Ok(60));
        assert_eq!(zone_offset("CEST-01"), Ok(60));
        assert_eq!(zone_offset("CET+01:30"), Ok(150));
        assert_eq!(zone_offset("+09:45"), Ok(585));
        assert_eq!(zone_offset("-10"), Ok(-600));
        assert_eq!(zone_offset(""), Ok(0));
        assert_eq!(zone_offset("NPT"), Ok(345));
        assert_eq!(zone_offset("WRONG-TZ"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("ABCD"), Err(ZoneError::UnknownAbbr));
        assert_eq!(zone_offset("PT"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("cet"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("+2"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("+0200x"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("+02:"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("+02:3"), Err(ZoneError::Shape));
        assert_eq!(zone_offset("-01:\u{0663}0"), Ok(-90));
    }

    #[test]
    fn week_numbers_give_the_day_of_year() {
        // Values of Python's `_calc_julian_from_U_or_W`.
        assert_eq!(julian_from_week(2001, 11, 2, false), Some(80));
        assert_eq!(julian_from_week(2001, 11, 2, true), Some(73));
        assert_eq!(julian_from_week(2001, 0, 0, true), Some(1));
        assert_eq!(julian_from_week(2005, 0, 3, false), Some(-1));
        assert_eq!(julian_from_week(2006, 0, 6, false), Some(1));
        assert_eq!(julian_from_week(2006, i64::MAX, 6, false), None);
        assert_eq!(julian_from_week(2006, 1, i64::MAX, true), None);
    }

    #[test]
    fn epoch_and_tai64n_values() {
        assert_eq!(epoch_value("1138049999", false), Some(1138049999.0));
        assert_eq!(epoch_value("1138049999.555", false), Some(1138049999.555));
        assert_eq!(
            epoch_value("1138049999555", true),
            Some(1138049999555.0 / 1000.0)
        );
        assert_eq!(
            epoch_value("1138049999555555", true),
            Some(1138049999555555.0 / 1e6)
        );
        assert_eq!(
            epoch_value("1138049999555.5", true),
            Some(1138049999555.5 / 1000.0)
        );
        assert_eq!(epoch_value("\u{0661}138049999", false), Some(1138049999.0));
        assert_eq!(
            tai64n_value("@4000000041f4104f00000000"),
            Some(1106513999.0)
        );
    }
}
