//! Behaviour of the detector per template family, code, zone and edge.

use super::{DateDetector, DateHit};

const CET: &str = "CET-01CEST-02,M3.5.0,M10.5.0";
/// 2005-08-14 12:00:00 CEST.
const NOW: f64 = 1124013600.0;
/// 2005-01-01 00:30:00 CET.
const NEW_YEAR: f64 = 1104535800.0;
/// 2005-01-23 21:59:59 CET.
const JAN23: f64 = 1106513999.0;

fn detector(datepattern: Option<&str>) -> DateDetector {
    DateDetector::with_tz(datepattern, None, CET).unwrap()
}

/// The matched text and time of `line`.
fn find<'a>(dd: &mut DateDetector, line: &'a str, now: f64) -> Option<(&'a str, Option<f64>)> {
    dd.find(line, now).map(|h| (&line[h.start..h.end], h.time))
}

#[test]
fn default_templates_read_every_common_format() {
    for (date, text) in [
        ("Jan 23 21:59:59", None),
        ("Sun Jan 23 21:59:59 2005", None),
        ("Sun Jan 23 2005 21:59:59", None),
        ("2005/01/23 21:59:59", None),
        ("2005.01.23 21:59:59", None),
        ("2005-01-23 21:59:59,000", None),
        ("2005-01-23T21:59:59.981746", None),
        ("23/01/2005 21:59:59", None),
        ("23/01/05 21:59:59", None),
        ("23-01-2005 21:59:59", None),
        (
            "[23/Jan/2005:21:59:59 +0100]",
            Some("23/Jan/2005:21:59:59 +0100"),
        ),
        ("23-Jan-2005 21:59:59.02", None),
        ("01/23/2005:21:59:59", None),
        ("01-23-2005 21:59:59.252", None),
        ("1106513999", None),
        ("[1106513999.000]", Some("1106513999.000")),
        ("@4000000041f4104f00000000", None),
        ("2005-01-23T20:59:59.252Z", None),
        ("2005-01-23T15:59:59-05:00", None),
        ("20050123T215959", None),
        ("20050123 215959", None),
        ("<01/23/05@21:59:59>", None),
        ("050123 21:59:59", None),
        ("Jan-23-05 21:59:59", None),
        ("Jan 23, 2005 9:59:59 PM", None),
        ("Sun Jan 23 21:59:59.011 2005", None),
        ("+01:00 Jan 23 21:59:59", None),
    ] {
        let mut dd = detector(None);
        let line = format!("{date} [sshd] error: PAM: Authentication failure");
        assert_eq!(
            find(&mut dd, &line, NOW),
            Some((text.unwrap_or(date), Some(JAN23))),
            "{line}"
        );
    }
}

#[test]
fn dates_inside_the_line_need_a_word_boundary() {
    let mut dd = detector(None);
    assert_eq!(
        find(&mut dd, "bogus-prefix Jan 23 21:59:59 x", NOW),
        Some(("Jan 23 21:59:59", Some(JAN23)))
    );
    let mut dd = detector(None);
    assert_eq!(find(&mut dd, "word-boundaryJan 23 21:59:59 x", NOW), None);
    let mut dd = detector(None);
    assert_eq!(find(&mut dd, "Jan 23 21:59:59123456789 x", NOW), None);
    let mut dd = detector(None);
    assert_eq!(find(&mut dd, "no date line", NOW), None);
    // Anchored forms only at the line start.
    let mut dd = detector(None);
    assert_eq!(find(&mut dd, "x <01/23/05@21:59:59>", NOW), None);
}

#[test]
fn epoch_forms() {
    let mut dd = detector(Some("EPOCH"));
    for (line, text, time) in [
        ("1138049999 x", "1138049999", 1138049999.0),
        ("[1138049999.555] x", "1138049999.555", 1138049999.555),
        (
            "audit(1138049999.555:101): x",
            "1138049999.555",
            1138049999.555,
        ),
        ("32535244799 x", "32535244799", 32535244799.0),
    ] {
        assert_eq!(find(&mut dd, line, NOW), Some((text, Some(time))), "{line}");
    }
    for line in [
        "123456789 x",
        "9999999999999999 x",
        "1138049999A x",
        "A1138049999 x",
        "x 1138049999",
    ] {
        assert_eq!(find(&mut dd, line, NOW), None, "{line}");
    }
}

#[test]
fn long_epoch_in_seconds_milliseconds_and_microseconds() {
    let mut dd = detector(Some("LEPOCH"));
    for (line, time) in [
        ("1138049999 x", 1138049999.0),
        ("1138049999000 x", 1138049999.0),
        ("1138049999123 x", 1138049999.123),
        ("1138049999000000 x", 1138049999.0),
        ("1138049999123456 x", 1138049999.123456),
        ("[1138049999123] x", 1138049999.123),
    ] {
        let hit = dd.find(line, NOW).unwrap();
        assert_eq!(hit.time, Some(time), "{line}");
    }
    assert_eq!(dd.find("999999999999999999 x", NOW), None);
    let mut dd = detector(Some(r"(?<=\|\s){LEPOCH}(?=\s\|)"));
    let line = "auth-error | 1138049999123 | invalid password";
    assert_eq!(
        find(&mut dd, line, NOW),
        Some(("1138049999123", Some(1138049999.123)))
    );
    assert_eq!(dd.find("test1138049999123", NOW), None);
}

#[test]
fn tai64n_seconds() {
    let mut dd = detector(Some("{^LN-BEG}TAI64N"));
    let line = "@4000000041f4104f00000000 dovecot: x";
    assert_eq!(
        find(&mut dd, line, NOW),
        Some(("@4000000041f4104f00000000", Some(JAN23)))
    );
    assert_eq!(dd.find("x @4000000041f4104f00000000", NOW), None);
    let mut dd = detector(Some("TAI64N"));
    assert_eq!(
        find(&mut dd, "x @4000000041f4104f00000000", NOW).unwrap().1,
        Some(JAN23)
    );
}

#[test]
fn none_means_no_date_and_now() {
    let mut dd = detector(Some("{NONE}"));
    assert_eq!(
        dd.find("Jan 23 21:59:59 x", NOW),
        Some(DateHit {
            start: 0,
            end: 0,
            time: Some(NOW)
        })
    );
    assert_eq!(
        dd.find("", NOW + 5.0),
        Some(DateHit {
            start: 0,
            end: 0,
            time: Some(NOW + 5.0)
        })
    );
    // An optional date part that is absent also gives an empty hit.
    let mut dd = detector(Some(r"^I\(()**"));
    assert_eq!(
        dd.find("I(x) login", NOW),
        Some(DateHit {
            start: 2,
            end: 2,
            time: Some(NOW)
        })
    );
}

#[test]
fn custom_codes() {
    let cases: &[(&str, &str, f64)] = &[
        (
            "^%B %Exd %I:%ExM:%ExS**",
            "January 23 12:59:59",
            1106438399.0,
        ),
        (
            "^%y %U %A %ExH:%ExM:%ExS**",
            "01 11 Wednesday 21:59:59",
            985208399.0,
        ),
        (
            "^%y %W %A %ExH:%ExM:%ExS**",
            "01 11 Wednesday 21:59:59",
            984603599.0,
        ),
        (
            "^%y %W %w %ExH:%ExM:%ExS**",
            "01 11 0 21:59:59",
            984949199.0,
        ),
        (
            "^%y %W %w %ExH:%ExM:%ExS**",
            "01 11 6 21:59:59",
            984862799.0,
        ),
        ("^%m/%d %ExH:%ExM:%ExS**", "09/01 21:59:59", 1094068799.0),
        ("^%Y-%m-%d**", "2004-09-01", 1093989600.0),
        ("^%Y-%m-%d%z**", "2004-09-01Z", 1093996800.0),
        ("^%Y %j %H:%M", "2005 032 10:00", 1107248400.0),
        ("^%I:%M %p", "12:15 am", 1123971300.0),
        // Later than now today: yesterday.
        ("^%I:%M %p", "12:15 PM", 1123928100.0),
        ("^%k:%M:%S", " 9:05:00", 1124003100.0),
        ("^%c", "Sun Jan 23 21:59:59 2005", JAN23),
        ("^%x %X", "01/23/05 21:59:59", JAN23),
        ("^L %d/%m/%Y - %H:%M:%S", "L 23/01/2005 - 21:59:59", JAN23),
        (r"^\[%d/%b/%Y %H:%M:%S\]", "[23/JAN/2005 21:59:59]", JAN23),
        ("^%Y:%m:%d-%H:%M:%S", "2005:01:23-21:59:59", JAN23),
        ("^%ExY%Exm%Exd%ExH%ExM%ExS**", "20050123215959", JAN23),
        ("^%%%H:%M:%S", "%21:59:59", 1123963199.0),
    ];
    for (pattern, line, time) in cases {
        let mut dd = detector(Some(pattern));
        assert_eq!(
            dd.find(line, NOW).and_then(|h| h.time),
            Some(*time),
            "{pattern} on {line}"
        );
    }
}

#[test]
fn missing_year_is_this_year_unless_more_than_a_day_ahead() {
    let mut dd = detector(None);
    assert_eq!(
        find(&mut dd, "Aug 15 12:00:00 x", NOW).unwrap().1,
        Some(1124100000.0)
    );
    assert_eq!(
        find(&mut dd, "Aug 15 12:00:01 x", NOW).unwrap().1,
        Some(1092564001.0)
    );
    let mut dd = detector(None);
    assert_eq!(
        find(&mut dd, "Dec 31 23:59:59 x", NEW_YEAR).unwrap().1,
        Some(1104533999.0)
    );
    assert_eq!(
        find(&mut dd, "Jan 2 00:30:00 x", NEW_YEAR).unwrap().1,
        Some(1104622200.0)
    );
    assert_eq!(
        find(&mut dd, "Jan 2 00:30:01 x", NEW_YEAR).unwrap().1,
        Some(1072999801.0)
    );
    // Feb 29 of a year that has none cannot be converted.
    let hit = dd.find("Feb 29 10:00:00 x", NOW).unwrap();
    assert_eq!((hit.start, hit.end, hit.time), (0, 15, None));
}

#[test]
fn time_only_is_today_or_yesterday() {
    let mut dd = detector(None);
    assert_eq!(find(&mut dd, "11:59:59 x", NOW).unwrap().1, Some(NOW - 1.0));
    assert_eq!(
        find(&mut dd, "12:00:01 x", NOW).unwrap().1,
        Some(NOW + 1.0 - 86400.0)
    );
    // Around New Year: a time later than now is yesterday, last year.
    assert_eq!(
        find(&mut dd, "23:59:59 x", NEW_YEAR).unwrap().1,
        Some(1104533999.0)
    );
    assert_eq!(
        find(&mut dd, "00:00:00 x", NEW_YEAR).unwrap().1,
        Some(1104534000.0)
    );
}

#[test]
fn zones_written_in_the_line_win_over_logtimezone() {
    let dp = "^%ExY-%Exm-%Exd %H:%M:%S(?: ?%Exz)?";
    let utc = |y, mo, d, h, mi| {
        super::strptime::days_from_civil(y, mo, d) as f64 * 86400.0
            + h as f64 * 3600.0
            + mi as f64 * 60.0
    };
    let line = "2017-01-23 15:00:00";
    for (tz, suffix, want) in [
        (Some("UTC+0300"), "", utc(2017, 1, 23, 12, 0)),
        (Some("UTC"), "", utc(2017, 1, 23, 15, 0)),
        (Some("UTC-0430"), "", utc(2017, 1, 23, 19, 30)),
        (Some("GMT+12"), "", utc(2017, 1, 23, 3, 0)),
        (None, "", utc(2017, 1, 23, 14, 0)),
        (Some("CET"), "", utc(2017, 1, 23, 14, 0)),
        (Some("CEST-01"), "", utc(2017, 1, 23, 14, 0)),
        (Some("CEST"), "", utc(2017, 1, 23, 13, 0)),
        (Some("CET+0130"), "", utc(2017, 1, 23, 12, 30)),
        (Some("UTC+0300"), " GMT", utc(2017, 1, 23, 15, 0)),
        (Some("UTC"), " -1045", utc(2017, 1, 24, 1, 45)),
        (None, " +09:45", utc(2017, 1, 23, 5, 15)),
        (Some("UTC+0300"), " Z", utc(2017, 1, 23, 15, 0)),
        (Some("GMT+12"), " CEST", utc(2017, 1, 23, 13, 0)),
        (Some("GMT+12"), " CET+0130", utc(2017, 1, 23, 12, 30)),
    ] {
        let mut dd = DateDetector::with_tz(Some(dp), tz, CET).unwrap();
        let line = format!("{line}{suffix}");
        assert_eq!(
            dd.find(&line, NOW).unwrap().time,
            Some(want),
            "{line} with {tz:?}"
        );
    }
    // An unknown abbreviation cannot be converted.
    let mut dd = DateDetector::with_tz(Some(dp), None, CET).unwrap();
    let hit = dd.find("2017-01-23 15:00:00 ABCD", NOW).unwrap();
    assert_eq!(hit.time, None);
}

#[test]
fn local_time_follows_the_dst_rule() {
    let mut dd = detector(None);
    for (line, time) in [
        ("2005-03-27 01:59:59 x", 1111885199.0),
        // In the spring gap: read with winter time, so 03:30 CEST.
        ("2005-03-27 02:30:00 x", 1111887000.0),
        ("2005-03-27 03:00:00 x", 1111885200.0),
        ("2005-07-01 12:00:00 x", 1120212000.0),
        ("2005-10-30 00:30:00 x", 1130625000.0),
        // In the autumn fold, after a summer time: the summer reading (glibc).
        ("2005-10-30 01:30:00 x", 1130628600.0),
        ("2005-10-30 02:30:00 x", 1130635800.0),
        ("2005-12-01 12:00:00 x", 1133434800.0),
    ] {
        assert_eq!(dd.find(line, NOW).unwrap().time, Some(time), "{line}");
    }
}

#[test]
fn other_posix_zones() {
    let mut dd = DateDetector::with_tz(None, None, "EST5EDT,M3.2.0,M11.1.0").unwrap();
    assert_eq!(
        dd.find("2005-01-23 16:59:59 x", NOW).unwrap().time,
        Some(JAN23 + 3600.0)
    );
    let mut dd = DateDetector::with_tz(None, None, "").unwrap();
    assert_eq!(
        dd.find("2005-01-23 20:59:59 x", NOW).unwrap().time,
        Some(JAN23)
    );
    assert!(DateDetector::with_tz(None, None, "Nowhere/Atlantis").is_err());
}

#[test]
fn the_winning_template_moves_forward() {
    let mut dd = detector(None);
    let first = dd.templates().next().unwrap().name.to_string();
    for _ in 0..5 {
        let line = "192.0.2.1 - - [23/Jan/2005:21:59:59 +0100] \"GET / HTTP/1.1\" 404";
        assert_eq!(find(&mut dd, line, NOW).unwrap().1, Some(JAN23));
    }
    let winner = dd.templates().find(|t| t.hits > 0).unwrap();
    assert_eq!(winner.hits, 5);
    assert_eq!(
        winner.name,
        r"Day(?P<_sep>[-/])MON(?P=_sep)ExYear[ :]?24hour:Minute:Second(?:\.Microseconds)?(?: Zone offset)?"
    );
    let pos = dd.templates().position(|t| t.hits > 0).unwrap();
    assert!(pos < 18, "moved to {pos}");
    assert_ne!(dd.templates().next().unwrap().name, "", "{first}");
}

#[test]
fn nearest_date_wins_and_foreign_dates_do_not() {
    let mut dd = detector(None);
    for (text, line, repeat) in [
        ("030324  0:03:59", "some free text 030324  0:03:59 -- 2003-03-07 17:05:01 ...", 1),
        ("2003-03-07 17:05:01", "some free text 2003-03-07 17:05:01 test ...", 15),
        (
            "030324  0:04:00",
            "server mysqld[1000]: 030324  0:04:00 [Warning] Access denied ... foreign-input just some free text 2003-03-07 17:05:01 test",
            10,
        ),
        ("Sep 16 21:30:26", "server mysqld[1020]: Sep 16 21:30:26 server mysqld: 030916 21:30:26 [Warning] Access denied", 15),
        ("2005-10-08T15:26:18.237955", "server mysqld[5906]: 2005-10-08T15:26:18.237955 6 [Note] Access denied", 20),
        ("051009 10:05:30", "server mysqld[1000]: 051009 10:05:30 [Warning] Access denied ...", 50),
    ] {
        for _ in 0..repeat {
            assert_eq!(find(&mut dd, line, NOW).map(|f| f.0), Some(text), "{line}");
        }
    }
}

#[test]
fn line_begin_allows_two_non_word_characters() {
    let mut dd = detector(Some("{^LN-BEG}%ExY%Exm%Exd%ExH%ExM%ExS**"));
    for line in [
        "2003123001020320030101000000",
        "#2003123001020320030101000000",
        "##2003123001020320030101000000",
    ] {
        assert_eq!(
            find(&mut dd, line, NOW).unwrap().0,
            "20031230010203",
            "{line}"
        );
    }
    assert_eq!(dd.find("###20031230010203", NOW), None);
    let mut dd = detector(Some("{^LN-BEG}%ExY%Exm%Exd %ExH%ExM%ExS"));
    assert_eq!(dd.find("00001230 010203 - 20030101 000000", NOW), None);
}

#[test]
fn prematch_puts_each_default_in_place_of_date() {
    let mut dd = detector(Some("^[^\\[]*\\[({DATE})\n{^LN-BEG}"));
    let line = "192.0.2.1 - - [23/Jan/2005:21:59:59 +0100] \"GET /\"";
    assert_eq!(
        find(&mut dd, line, NOW),
        Some(("23/Jan/2005:21:59:59 +0100", Some(JAN23)))
    );
    assert_eq!(
        find(&mut dd, "Jan 23 21:59:59 host x", NOW),
        Some(("Jan 23 21:59:59", Some(JAN23)))
    );
}

#[test]
fn spans_are_byte_offsets() {
    let mut dd = detector(None);
    let line = "ü Jan 23 21:59:59 x";
    let hit = dd.find(line, NOW).unwrap();
    assert_eq!((hit.start, hit.end), (3, 18));
    assert_eq!(&line[hit.start..hit.end], "Jan 23 21:59:59");
    // `\d` and the conversion accept digits of any script (`%ExY` does not).
    let line = "\u{ff12}\u{ff10}\u{ff10}\u{ff15}-01-23 21:59:59 fullwidth";
    assert_eq!(dd.find(line, NOW), None);
    let mut dd = detector(Some("^%Y-%m-%d %H:%M:%S"));
    assert_eq!(find(&mut dd, line, NOW), Some((&line[..27], Some(JAN23))));
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let err = DateDetector::with_tz(None, Some("WRONG-TZ"), CET).unwrap_err();
    assert_eq!(err.0, "Unknown or unsupported time zone: \"WRONG-TZ\"");
    assert!(DateDetector::with_tz(None, Some("ABCD"), CET).is_err());
    let err = DateDetector::with_tz(Some("%H:%M\n%H:%M"), None, CET).unwrap_err();
    assert!(err.0.contains("already a template"), "{}", err.0);
    let err = DateDetector::with_tz(Some("%H:%M %q"), None, CET).unwrap_err();
    assert!(err.0.contains("%H:%M %q"), "{}", err.0);
    let err = DateDetector::with_tz(Some("(%H"), None, CET).unwrap_err();
    assert!(err.0.contains("invalid regex"), "{}", err.0);
    // Defaults after custom patterns skip the names already there.
    assert!(DateDetector::with_tz(Some("{^LN-BEG}%H:%M:%S\n{^LN-BEG}"), None, CET).is_ok());
}

#[test]
fn garbage_and_huge_lines_do_not_panic() {
    let mut dd = detector(None);
    let mut state: u32 = 12345;
    for _ in 0..2000 {
        let line: String = (0..(state % 60))
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let pick = (state >> 16) % 40;
                match pick {
                    0..=9 => char::from(b'0' + pick as u8),
                    10 => ':',
                    11 => ' ',
                    12 => '-',
                    13 => '/',
                    14 => '[',
                    15 => 'é',
                    16 => '\u{0663}',
                    17 => '@',
                    18 => 'J',
                    19 => '.',
                    _ => char::from_u32(0x20 + (state >> 8) % 0x3000).unwrap_or('?'),
                }
            })
            .collect();
        if let Some(h) = dd.find(&line, NOW) {
            assert!(h.start <= h.end && h.end <= line.len() && line.is_char_boundary(h.start));
        }
    }
    // Absurd numbers in user groups.
    let mut dd = detector(Some(r"^(?P<Y>\d+) (?P<U>\d+) (?P<w>\d+) (?P<j>\d*)"));
    for line in [
        "2005 999999999999999999 999999999999999999 ",
        "2005 1 1 999999999999999999",
        "9999 52 6 ",
    ] {
        dd.find(line, NOW);
    }
    let mut dd = detector(None);
    let huge = "1".repeat(10 << 20);
    assert_eq!(dd.find(&huge, NOW), None);
    let huge = "12:".repeat(3 << 20) + " Jan 23 21:59:59";
    assert!(dd.find(&huge, NOW).is_some());
    let huge = "é".repeat(5 << 20);
    assert_eq!(dd.find(&huge, NOW), None);
}

#[test]
fn a_detector_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let dd = detector(None);
    send(&dd);
    let hit = std::thread::spawn(move || {
        let mut dd = dd;
        dd.find("Jan 23 21:59:59 x", NOW)
    })
    .join()
    .unwrap();
    assert_eq!(hit.and_then(|h| h.time), Some(JAN23));
}
