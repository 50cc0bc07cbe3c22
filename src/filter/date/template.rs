//! Date templates: how a `datepattern` line becomes a search regex with the
//! word/line boundaries Fail2ban adds, which strftime codes it understands,
//! and the built-in template list (each default also in a `{^LN-BEG}`
//! anchored variant that is tried first).

use super::strptime::Field;
use super::DateError;
use crate::filter::pcre::{Flags, Regex, Scratch};
use std::sync::OnceLock;

/// Template flags, as Fail2ban numbers them.
pub(super) const LINE_BEGIN: u8 = 8;
pub(super) const LINE_END: u8 = 4;
pub(super) const WORD_BEGIN: u8 = 2;
pub(super) const WORD_END: u8 = 1;

/// How a template turns its match into a time.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// strftime-like fields; `pattern` is the source the template was built
    /// from (re-wrapped for the anchored and `{DATE}` variants).
    Pattern {
        pattern: String,
        fields: Vec<(usize, Field)>,
        ampm: Option<usize>,
    },
    /// Seconds since the epoch in group `group`; `long` also accepts
    /// milliseconds and microseconds.
    Epoch { long: bool, group: usize },
    /// `@` and 24 hex digits in group 1.
    Tai64n,
}

#[derive(Debug, Clone)]
pub(super) struct Template {
    pub name: String,
    /// The regex in Fail2ban's (Python) dialect, before translation to PCRE2.
    pub source: String,
    pub regex: Regex,
    pub flags: u8,
    pub weight: f64,
    pub kind: Kind,
}

impl Template {
    pub fn anchored(&self) -> bool {
        self.flags & (LINE_BEGIN | LINE_END) != 0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum WordBegin {
    No,
    Yes,
    /// `{^LN-BEG}`: at the line start, after at most two non-word characters.
    Start,
}

/// The patterns behind the default templates, in their trial order.
const DEFAULT_PATTERNS: [&str; 17] = [
    // ISO 8601 and simple dates: 2005-01-23T21:59:59.981746, 2005/01/23 21:59:59, 2006.12.21 06:43:20
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    // asctime, optional weekday, fraction and year: Sun Jan 23 21:59:59.011 2005
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    // year before the time: Sun Jan 23 2005 21:59:59.011
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    // 23/01/2005 21:59:59, 23/01/05 21:59:59, 17-07-2008 17:23:25
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    // Apache: [31/Oct/2006:09:22:55 -0000], 26-Jul-2007 15:20:52.252 +0200
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    // CPanel: 05/20/2008:01:57:39
    r"%m/%d/%ExY:%H:%M:%S",
    // 01-27-2012 16:22:44.252
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    // time only
    r"{^LN-BEG}%H:%M:%S",
    // <09/16/08@05:03:30>
    r"^<%m/%d/%Exy@%H:%M:%S>",
    // MySQL: 130322 11:46:11
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    // Tomcat: Jan 23, 2005 9:59:59 PM
    r"%b %d, %ExY %I:%M:%S %p",
    // ASSP: Apr-27-13 02:33:06
    r"^%b-%d-%Exy %k:%M:%S",
    // 20050123T215959, 20050123 215959
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    // zone name first (monit): PDT Apr 16 21:05:29
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    // zone offset first: +00:00 Jan 23 21:59:59.011 2005
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

/// The default templates, built once per process like Fail2ban's cache (the
/// `%ExY` year range is fixed at that moment too).
pub(super) struct Defaults {
    /// The 17 templates as written (what `{DATE}` wraps).
    pub plain: Vec<Template>,
    /// Anchored variants first (weight 100), then the plain ones: the list a
    /// detector without `datepattern` uses.
    pub all: Vec<Template>,
}

pub(super) fn defaults() -> Result<&'static Defaults, DateError> {
    static DEFAULTS: OnceLock<Result<Defaults, DateError>> = OnceLock::new();
    DEFAULTS
        .get_or_init(build_defaults)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_defaults() -> Result<Defaults, DateError> {
    let plain = DEFAULT_PATTERNS
        .iter()
        .map(|p| pattern_template(p, None))
        .collect::<Result<Vec<_>, _>>()?;
    let mut anchored = Vec::new();
    for t in &plain {
        if !t.name.starts_with("{^LN-BEG}") && !t.name.starts_with('^') {
            let mut a = wrapped(t, |s| format!("{{^LN-BEG}}{s}"))?;
            if a.name != t.name {
                a.weight = 100.0;
                anchored.push(a);
            }
        }
    }
    let all = anchored.into_iter().chain(plain.iter().cloned()).collect();
    Ok(Defaults { plain, all })
}

/// A template around `t`: `wrap` applied to its pattern (or, for the epoch
/// and TAI64N templates, to its name, which is then read as a pattern).
pub(super) fn wrapped(t: &Template, wrap: impl Fn(&str) -> String) -> Result<Template, DateError> {
    match &t.kind {
        Kind::Pattern { pattern, .. } => pattern_template(&wrap(pattern), None),
        _ => pattern_template(&wrap(&t.name), None),
    }
}

/// The lookup key of a pattern: case-insensitive unless it holds `%` codes.
pub(super) fn pattern_key(pattern: &str) -> String {
    if pattern.contains('%') {
        pattern.to_string()
    } else {
        pattern.to_uppercase()
    }
}

/// The template for one pattern line (`EPOCH`, `LEPOCH`, `TAI64N` with or
/// without `{^LN-BEG}`/`^`, a pattern holding `{EPOCH}`/`{LEPOCH}`, or a
/// strftime-like pattern).
pub(super) fn pattern_template(pattern: &str, key: Option<&str>) -> Result<Template, DateError> {
    let key = key.map_or_else(|| pattern_key(pattern), str::to_string);
    if key.contains("EPOCH") {
        if meta().epoch.is_match(pattern, &mut Scratch::default()) {
            return epoch_pattern(pattern, key.contains("LEPOCH"));
        }
        for (long, bare) in [(false, "EPOCH"), (true, "LEPOCH")] {
            if key == bare {
                return epoch(long, false);
            }
            if key == format!("{{^LN-BEG}}{bare}") || key == format!("^{bare}") {
                return epoch(long, true);
            }
        }
    }
    match key.as_str() {
        "TAI64N" => tai64n(WordBegin::No),
        "{^LN-BEG}TAI64N" | "^TAI64N" => tai64n(WordBegin::Start),
        _ => strftime_template(pattern),
    }
}

const EPOCH_RE: &str = r"\d{10,11}\b(?:\.\d{3,6})?";
const LONG_EPOCH_RE: &str = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?";

fn epoch(long: bool, line_begin: bool) -> Result<Template, DateError> {
    let digits = if long { LONG_EPOCH_RE } else { EPOCH_RE };
    let mut name = String::from(if long { "LongEpoch" } else { "Epoch" });
    let (source, flags) = if line_begin {
        let regex = format!(r"((?P<square>(?<=^\[))?{digits})(?(square)(?=\]))");
        bound_regex(&mut name, &regex, WordBegin::Start, true)
    } else {
        // At the line start, in square brackets at the line start, or in an
        // SELinux `audit(...)` stamp.
        let regex = format!(
            r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\())){digits})(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))"
        );
        bound_regex(&mut name, &regex, WordBegin::No, true)
    };
    finish(name, source, flags, Kind::Epoch { long, group: 1 })
}

fn epoch_pattern(pattern: &str, long: bool) -> Result<Template, DateError> {
    let digits = if long { LONG_EPOCH_RE } else { EPOCH_RE };
    let inner = replace_all(&meta().epoch, pattern, |_, _| format!("({digits})"));
    let mut name = pattern.to_string();
    let (source, flags) = bound_regex(&mut name, &format!("({inner})"), WordBegin::Yes, true);
    finish(name, source, flags, Kind::Epoch { long, group: 2 })
}

fn tai64n(word_begin: WordBegin) -> Result<Template, DateError> {
    let mut name = String::from("TAI64N");
    let (source, flags) = bound_regex(&mut name, "@[0-9a-f]{24}", word_begin, true);
    finish(name, source, flags, Kind::Tai64n)
}

/// A strftime-like pattern, with the `{UNB}` (no boundaries) and `{^LN-BEG}`
/// prefixes.
fn strftime_template(pattern: &str) -> Result<Template, DateError> {
    let mut body = pattern;
    let (mut word_begin, mut word_end) = (WordBegin::Yes, true);
    if let Some(rest) = body.strip_prefix("{UNB}") {
        body = rest;
        (word_begin, word_end) = (WordBegin::No, false);
    }
    if word_begin != WordBegin::No {
        if let Some(rest) = body.strip_prefix("{^LN-BEG}") {
            body = rest;
            word_begin = WordBegin::Start;
        }
    }
    let expanded = expand_codes(body).map_err(|why| {
        DateError(format!(
            "Failed to set datepattern '{pattern}' (may be an invalid format or unescaped percent char): {why}"
        ))
    })?;
    let mut regex = expanded.regex;
    if meta().alpha.is_match(body, &mut Scratch::default()) {
        regex.insert_str(0, "(?iu)");
    }
    let mut name = expanded.name;
    let (source, flags) = bound_regex(&mut name, &regex, word_begin, word_end);
    finish(
        name,
        source,
        flags,
        Kind::Pattern {
            pattern: pattern.to_string(),
            fields: Vec::new(),
            ampm: None,
        },
    )
}

/// Compiles the regex and resolves the named groups the conversion reads.
fn finish(name: String, source: String, flags: u8, kind: Kind) -> Result<Template, DateError> {
    let invalid = |e: &dyn std::fmt::Display| {
        DateError(format!(
            "date pattern '{name}': invalid regex {source:?}: {e}"
        ))
    };
    let (leading_flags, body) = split_leading_flags(&source);
    if let Some(at) = global_flags_at(body) {
        // Python refuses these (PCRE2 would scope them): refuse them too.
        let at = source.len() - body.len() + at;
        return Err(invalid(&format!(
            "global flags not at the start of the expression at offset {at}"
        )));
    }
    let pcre = format!("{}{}", to_pcre_flags(leading_flags), to_pcre(body));
    let regex = Regex::new(
        &pcre,
        Flags {
            ucp: true,
            // A template anchored at the line start can vouch for its match
            // on the next lines (see `DateDetector::search`).
            partial: flags & LINE_BEGIN != 0,
            ..Flags::default()
        },
    )
    .map_err(|e| invalid(&e))?;
    let kind = match kind {
        Kind::Pattern { pattern, .. } => {
            let fields = regex
                .names()
                .iter()
                .filter_map(|(i, n)| Field::from_group_name(n).map(|f| (*i, f)))
                .collect();
            let ampm = regex.group_index("p");
            Kind::Pattern {
                pattern,
                fields,
                ampm,
            }
        }
        other => other,
    };
    Ok(Template {
        name,
        source,
        regex,
        flags,
        weight: 1.0,
        kind,
    })
}

/// Adds the word or line boundaries and the capturing group Fail2ban puts
/// around a date regex. `**` at either end of the regex suppresses the
/// boundary on that side. Returns the regex and its flags; `name` gains the
/// `{^LN-BEG}` prefix when anchored at the line start.
fn bound_regex(
    name: &mut String,
    regex: &str,
    word_begin: WordBegin,
    word_end: bool,
) -> (String, u8) {
    let m = meta();
    let mut s = Scratch::default();
    let mut regex = py_strip(regex).to_string();
    // Global flags such as `(?iu)` move to the front after the rewriting.
    let global_flags = match m.global_flags.find(&regex, &mut s) {
        Ok(true) => {
            let (a, b) = s.get(0).expect("group 0 of a match");
            let flags = regex[a..b].to_string();
            regex.replace_range(a..b, "");
            Some(flags)
        }
        _ => None,
    };
    let bound_begin = word_begin != WordBegin::No && !m.no_word_begin.is_match(&regex, &mut s);
    let bound_end = word_end && !m.no_word_end.is_match(&regex, &mut s);
    if !m.grouped.is_match(&regex, &mut s) {
        // Group the whole expression (after leading flags and `^`, before `$`).
        if let Ok(true) = m.group.find(&regex, &mut s) {
            let part = |i| s.get(i).map_or("", |(a, b)| &regex[a..b]);
            regex = format!("{}({}){}", part(1), part(2), part(3));
        }
    }
    let mut flags = 0;
    if bound_begin {
        if word_begin == WordBegin::Start {
            flags |= LINE_BEGIN;
            regex.insert_str(0, r"^(?:\W{0,2})?");
            if !name.starts_with("{^LN-BEG}") {
                name.insert_str(0, "{^LN-BEG}");
            }
        } else {
            flags |= WORD_BEGIN;
            regex.insert_str(0, r"(?=^|\b|\W)");
        }
    }
    if bound_end {
        flags |= WORD_END;
        regex.push_str(r"(?=\b|\W|$)");
    }
    if flags & LINE_BEGIN == 0 && m.line_begin.is_match(&regex, &mut s) {
        flags |= LINE_BEGIN;
    }
    if m.line_end.is_match(&regex, &mut s) {
        flags |= LINE_END;
    }
    let mut regex = replace_all(&m.del_word_bounds, &regex, |whole, _| {
        whole.replace("**", "")
    });
    if let Some(gf) = global_flags {
        regex.insert_str(0, &gf);
    }
    (regex, flags)
}

/// Removes the boundary markers a pattern may carry, so that it can be
/// embedded in a `{DATE}` pre-match.
pub(super) fn unbound_pattern(pattern: &str) -> String {
    let p = pattern.strip_prefix("{UNB}").unwrap_or(pattern);
    let p = p.strip_prefix("{^LN-BEG}").unwrap_or(p);
    let m = meta();
    let p = replace_all(&m.start_anchor, p, |_, _| String::new());
    replace_all(&m.end_anchor, &p, |_, _| String::new())
}

/// Replaces every `{DATE}` (not preceded by a backslash, any case) in
/// `prematch` with `date`.
pub(super) fn replace_date(prematch: &str, date: &str) -> String {
    replace_all(&meta().date, prematch, |_, _| date.to_string())
}

/// Whether `{DATE}` occurs in a pattern key.
pub(super) fn has_date(key: &str) -> bool {
    key.contains("{DATE}")
}

struct Expanded {
    regex: String,
    name: String,
}

/// What one strftime code matches (Python's `_strptime` in the C locale with
/// Fail2ban's replacements) and how it is named in a template name.
fn code_info(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "%" => ("%", "%"),
        "a" => ("(?P<a>mon|tue|wed|thu|fri|sat|sun)", "DAY"),
        "A" => ("(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)", "DAYNAME"),
        "b" => ("(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", "MON"),
        "B" => (
            "(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)",
            "MONTH",
        ),
        "c" => (
            concat!(
                r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
                r"\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d)",
                r":(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)"
            ),
            "%c",
        ),
        "d" => (r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])", "Day"),
        "f" => (r"(?P<f>[0-9]{1,6})", "Microseconds"),
        "G" => (r"(?P<G>\d\d\d\d)", "%G"),
        "H" => (r"(?P<H>[0-1]?\d|2[0-3])", "24hour"),
        "I" => (r"(?P<I>1[0-2]|0[1-9]|[1-9])", "12hour"),
        "j" => (r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])", "Yearday"),
        "k" => (r" ?(?P<H>[0-2]?\d)", "%k"),
        "l" => (r" ?(?P<I>1?\d)", "%l"),
        "m" => (r"(?P<m>0?[1-9]|1[0-2])", "Month"),
        "M" => (r"(?P<M>[0-5]?\d)", "Minute"),
        "p" => ("(?P<p>am|pm)", "AMPM"),
        "S" => (r"(?P<S>[0-5]?\d|6[0-1])", "Second"),
        "u" => ("(?P<u>[1-7])", "%u"),
        "U" => (r"(?P<U>5[0-3]|[0-4]\d|\d)", "Yearweek"),
        "V" => (r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)", "%V"),
        "w" => ("(?P<w>[0-6])", "Weekday"),
        "W" => (r"(?P<W>5[0-3]|[0-4]\d|\d)", "Yearweek"),
        "x" => (
            r"(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)",
            "%x",
        ),
        "X" => (r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)", "%X"),
        "y" => (r"(?P<y>\d\d)", "Year2"),
        "Y" => (r"(?P<Y>\d{4})", "Year"),
        "z" => (r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)", "Zone offset"),
        "Z" => ("(?P<Z>Z|[A-Z]{3,5})", "Zone name"),
        // Exact variants: two digits, a plausible year, zone abbreviations.
        "Exd" => (r"(?P<d>[1-2]\d|0[1-9]|3[0-1])", "ExDay"),
        "Exm" => (r"(?P<m>0[1-9]|1[0-2])", "ExMonth"),
        "ExH" => (r"(?P<H>[0-1]\d|2[0-3])", "Ex24hour"),
        "Exk" => (r" ?(?P<H>[0-1]?\d|2[0-3])", "Ex%k"),
        "Exl" => (r" ?(?P<I>1[0-2]|\d)", "Ex%l"),
        "ExM" => (r"(?P<M>[0-5]\d)", "ExMinute"),
        "ExS" => (r"(?P<S>[0-5]\d|6[0-1])", "ExSecond"),
        "ExY" => (exact_year_regex(), "ExYear"),
        "Exy" => (r"(?P<y>\d{2})", "ExYear2"),
        "ExZ" => ("(?P<Z>[A-Z](?:[A-Z]{2,4})?)", "ExZone name"),
        "Exz" => (
            r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)",
            "ExZone offset",
        ),
        _ => return None,
    })
}

/// `%ExY`: four digits whose first three are those of a year between 2000
/// and three years from now (Fail2ban fixes the range when it starts).
fn exact_year_regex() -> &'static str {
    static RE: OnceLock<String> = OnceLock::new();
    // The local year, as Python's `datetime.now()`.
    RE.get_or_init(|| exact_year_regex_for(jiff::Zoned::now().year().into()))
}

fn exact_year_regex_for(year: i64) -> String {
    // The first three digits of last year, of three years ahead, and of
    // every third year from 2000 (Fail2ban's test date) up to now.
    let cent = |y: i64| y.to_string().chars().take(3).collect::<String>();
    let mut set: Vec<String> = [year - 1, year + 3].into_iter().map(cent).collect();
    set.extend((2000..=year).step_by(3).map(cent));
    set.sort();
    set.dedup();
    format!(r"(?P<Y>{}\d)", year_group(&set))
}

/// Fail2ban's compact form of a sorted set of digit strings: a common
/// prefix, then a class (`20[012]`) or an alternation.
fn year_group(set: &[String]) -> String {
    if set.len() > 1 {
        let common = |len: fn(&str) -> usize| {
            let first = &set[0][..len(&set[0])];
            set.iter()
                .all(|s| &s[..len(s)] == first)
                .then(|| first.to_string())
                .filter(|c| !c.is_empty())
        };
        let prefix = common(|s| s.len().saturating_sub(1)).or_else(|| common(|s| s.len().min(1)));
        if let Some(c) = prefix {
            let rest: Vec<String> = set.iter().map(|s| s[c.len()..].to_string()).collect();
            return format!("{c}{}", year_group(&rest));
        }
        return if set[0].len() > 1 {
            format!("(?:{})", set.join("|"))
        } else {
            format!("[{}]", set.concat())
        };
    }
    set.concat()
}

/// Replaces the `%` codes of a pattern by their regexes and names. A `%`
/// that starts no known code is an error (Fail2ban's `%` formatting fails).
fn expand_codes(pattern: &str) -> Result<Expanded, String> {
    let mut regex = String::with_capacity(pattern.len() * 4);
    let mut name = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        regex.push_str(&rest[..at]);
        name.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let code = [3, 1]
            .into_iter()
            .filter_map(|n| after.get(..n))
            .find(|c| (c.len() == 1 || c.starts_with("Ex")) && code_info(c).is_some())
            .ok_or_else(|| format!("unsupported format code at {:?}", &rest[at..]))?;
        let (re, nm) = code_info(code).expect("checked above");
        regex.push_str(re);
        name.push_str(nm);
        rest = &after[code.len()..];
    }
    regex.push_str(rest);
    name.push_str(rest);
    Ok(Expanded { regex, name })
}

/// Python's `str.strip()` (its whitespace set includes U+001C..U+001F).
pub(super) fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// The global flag groups (`(?iu)`) at the start of a Python regex, and the rest.
fn split_leading_flags(source: &str) -> (&str, &str) {
    let mut rest = source;
    while let Some(len) = flag_group_len(rest) {
        rest = &rest[len..];
    }
    (&source[..source.len() - rest.len()], rest)
}

/// Length of a global flag group such as `(?iu)` at the start of `s`.
fn flag_group_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("(?")?;
    let letters = body.bytes().take_while(|b| b"aiLmsux".contains(b)).count();
    (letters > 0 && body[letters..].starts_with(')')).then_some(letters + 3)
}

/// Byte offset of a global flag group in `s` (outside character classes,
/// not escaped).
fn global_flags_at(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut in_class = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                // A `]` right after `[` or `[^` is a literal.
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class && flag_group_len(&s[i..]).is_some() => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// PCRE2 form of leading Python flag groups: `u`, `a` and `L` have no
/// counterpart (Unicode matching is always on).
fn to_pcre_flags(groups: &str) -> String {
    let kept: String = groups.chars().filter(|c| "imsx".contains(*c)).collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("(?{kept})")
    }
}

/// Python's `\Z` (end of subject) is PCRE2's `\z`.
fn to_pcre(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push('z'),
                Some(n) => out.push(n),
                None => {}
            }
        }
    }
    out
}

/// `re.sub` with a function replacement over every match.
fn replace_all(re: &Regex, text: &str, mut f: impl FnMut(&str, &Scratch) -> String) -> String {
    let mut s = Scratch::default();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at <= text.len() {
        match re.find_at(text, at, &mut s) {
            Ok(true) => {}
            _ => break,
        }
        let (a, b) = s.get(0).expect("group 0 of a match");
        out.push_str(&text[copied..a]);
        out.push_str(&f(&text[a..b], &s));
        copied = b;
        at = if b > a {
            b
        } else {
            b + text[b..].chars().next().map_or(1, char::len_utf8)
        };
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// The regexes Fail2ban uses to rewrite date patterns.
struct Meta {
    /// A capturing `(` (not `\(`, not `(?`, not the `(` of `(?(`).
    grouped: Regex,
    /// Splits a regex into leading flags/`^`, body, trailing `$`.
    group: Regex,
    global_flags: Regex,
    /// The regex starts at the line start or with `**`: no word boundary before.
    no_word_begin: Regex,
    /// The regex ends with `$`, `\b`, `\s` or `**`: no word boundary after.
    no_word_end: Regex,
    del_word_bounds: Regex,
    line_begin: Regex,
    line_end: Regex,
    /// `%a %A %b %B %p %c` make the template case-insensitive.
    alpha: Regex,
    epoch: Regex,
    date: Regex,
    start_anchor: Regex,
    end_anchor: Regex,
}

fn meta() -> &'static Meta {
    static META: OnceLock<Meta> = OnceLock::new();
    META.get_or_init(|| {
        let re = |p: &str| {
            Regex::new(
                p,
                Flags {
                    ucp: true,
                    ..Flags::default()
                },
            )
            .expect("built-in meta regex")
        };
        let re_i = |p: &str| {
            Regex::new(
                p,
                Flags {
                    ucp: true,
                    caseless: true,
                    ..Flags::default()
                },
            )
            .expect("built-in meta regex")
        };
        Meta {
            grouped: re(r"(?<!(?:\(\?))(?<!\\)\((?!\?)"),
            group: re(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$"),
            global_flags: re(r"((?:^|(?!<\\))\(\?[a-z]+\))"),
            no_word_begin: re(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)"),
            no_word_end: re(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$"),
            del_word_bounds: re(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$"),
            line_begin: re(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))"),
            line_end: re(r"(?<![\\\|])(?:\$\)?)$"),
            alpha: re(r"(?<!\%)\%[aAbBpc]"),
            epoch: re_i(r"(?<!\\)\{L?EPOCH\}"),
            date: re_i(r"(?<!\\)\{DATE\}"),
            start_anchor: re(r"^\((?:\?:)?\^\|\\b\|\\W\)"),
            end_anchor: re(r"\(\?=\\b\|\\W\|\$\)$"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn year() -> String {
        exact_year_regex().to_string()
    }

    #[test]
    fn exact_year_covers_decades_from_2000_to_three_years_ahead() {
        // As Fail2ban writes them (compared with Python's output).
        assert_eq!(exact_year_regex_for(2026), r"(?P<Y>20[012]\d)");
        assert_eq!(exact_year_regex_for(2027), r"(?P<Y>20[0123]\d)");
        assert_eq!(exact_year_regex_for(2005), r"(?P<Y>200\d)");
        assert_eq!(exact_year_regex_for(1990), r"(?P<Y>19[89]\d)");
        assert_eq!(
            exact_year_regex_for(2099),
            r"(?P<Y>2(?:00|01|02|03|04|05|06|07|08|09|10)\d)"
        );
    }

    #[test]
    fn default_list_has_anchored_variants_first() {
        let d = defaults().unwrap();
        assert_eq!(d.plain.len(), 17);
        assert_eq!(d.all.len(), 31);
        assert_eq!(d.all.iter().filter(|t| t.weight == 100.0).count(), 14);
        assert!(d.all[..14]
            .iter()
            .all(|t| t.name.starts_with("{^LN-BEG}") && t.flags == LINE_BEGIN | WORD_END));
        assert_eq!(d.all[7].name, "{^LN-BEG}Epoch");
        assert_eq!(d.all[13].name, "{^LN-BEG}TAI64N");
        assert_eq!(d.all[14].name, d.plain[0].name);
        assert_eq!(d.all[21].name, "Epoch");
        assert_eq!(d.all[21].flags, WORD_END);
        assert_eq!(d.all[22].name, "{^LN-BEG}24hour:Minute:Second");
        assert_eq!(d.all[23].name, "^<Month/Day/ExYear2@24hour:Minute:Second>");
    }

    #[test]
    fn word_bounds_group_and_flags_as_fail2ban_builds_them() {
        let t = pattern_template(r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?", None).unwrap();
        assert_eq!(
            t.name,
            r"(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?"
        );
        assert_eq!(
            t.source,
            format!(
                r"(?iu)(?=^|\b|\W)((?:(?P<a>mon|tue|wed|thu|fri|sat|sun) )?(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) (?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])  ?(?P<H>[0-2]?\d):(?P<M>[0-5]?\d):(?P<S>[0-5]?\d|6[0-1])(?:\.(?P<f>[0-9]{{1,6}}))?(?: {})?)(?=\b|\W|$)",
                year()
            )
        );
        assert_eq!(t.flags, WORD_BEGIN | WORD_END);

        let t = pattern_template("{^LN-BEG}%H:%M:%S", None).unwrap();
        assert_eq!(t.name, "{^LN-BEG}24hour:Minute:Second");
        assert_eq!(
            t.source,
            r"^(?:\W{0,2})?((?P<H>[0-1]?\d|2[0-3]):(?P<M>[0-5]?\d):(?P<S>[0-5]?\d|6[0-1]))(?=\b|\W|$)"
        );
        assert_eq!(t.flags, LINE_BEGIN | WORD_END);

        let t = pattern_template(r"^(?:=[^=]+={3,} )?(%ExY-%m)", None).unwrap();
        assert!(
            t.source.starts_with(r"^(?:=[^=]+={3,} )?((?P<Y>"),
            "{}",
            t.source
        );
        assert_eq!(t.flags, LINE_BEGIN | WORD_END);

        let t = pattern_template(r"^I\(()**", None).unwrap();
        assert_eq!(t.source, r"^I\(()");
        assert_eq!(t.flags, LINE_BEGIN);

        let t = pattern_template(r"(?iu)**time:%ExH**", None).unwrap();
        assert_eq!(t.source, r"(?iu)(time:(?P<H>[0-1]\d|2[0-3]))");
        assert_eq!(t.flags, 0);

        let t = pattern_template(r"%H:%M:%S %d.%m.%Y$", None).unwrap();
        assert_eq!(t.flags, WORD_BEGIN | LINE_END);
        assert!(t.source.ends_with(r"(?P<Y>\d{4}))$"), "{}", t.source);
    }

    #[test]
    fn special_keys_select_epoch_and_tai64n() {
        let t = pattern_template("{^LN-BEG}Epoch", None).unwrap();
        assert!(matches!(
            t.kind,
            Kind::Epoch {
                long: false,
                group: 1
            }
        ));
        assert_eq!(t.name, "{^LN-BEG}Epoch");
        assert_eq!(t.flags, LINE_BEGIN | WORD_END);
        let t = pattern_template("lepoch", None).unwrap();
        assert!(matches!(
            t.kind,
            Kind::Epoch {
                long: true,
                group: 1
            }
        ));
        assert_eq!(t.name, "LongEpoch");
        let t = pattern_template(r"(?<=\|\s){LEPOCH}(?=\s\|)", None).unwrap();
        assert!(matches!(
            t.kind,
            Kind::Epoch {
                long: true,
                group: 2
            }
        ));
        assert_eq!(
            t.source,
            format!(r"(?=^|\b|\W)((?<=\|\s)({LONG_EPOCH_RE})(?=\s\|))(?=\b|\W|$)")
        );
        let t = pattern_template("^TAI64N", None).unwrap();
        assert!(matches!(t.kind, Kind::Tai64n));
        assert_eq!(t.source, r"^(?:\W{0,2})?(@[0-9a-f]{24})(?=\b|\W|$)");
    }

    #[test]
    fn unknown_percent_code_is_an_error_naming_the_pattern() {
        let err = pattern_template("%Q %H", None).unwrap_err();
        assert!(err.0.contains("'%Q %H'"), "{}", err.0);
        let err = pattern_template("100% %H", None).unwrap_err();
        assert!(err.0.contains("100%"), "{}", err.0);
        assert!(pattern_template("%%%H", None).is_ok());
    }

    #[test]
    fn bad_regex_is_an_error() {
        let err = pattern_template("(%ExY%Exm%Exd", None).unwrap_err();
        assert!(err.0.contains("invalid regex"), "{}", err.0);
    }

    #[test]
    fn unbound_pattern_strips_markers() {
        assert_eq!(unbound_pattern("{^LN-BEG}%H:%M"), "%H:%M");
        assert_eq!(unbound_pattern(r"(?:^|\b|\W)%H(?=\b|\W|$)"), "%H");
        assert_eq!(replace_date(r"^[^\[]*\[({date})", "X"), r"^[^\[]*\[(X)");
        assert_eq!(replace_date(r"a\{DATE}", "X"), r"a\{DATE}");
    }

    #[test]
    fn python_flags_and_end_anchor_translate_to_pcre2() {
        assert_eq!(
            split_leading_flags("(?iu)(?s)a(?i)"),
            ("(?iu)(?s)", "a(?i)")
        );
        assert_eq!(to_pcre_flags("(?iu)(?s)"), "(?is)");
        assert_eq!(to_pcre_flags("(?u)"), "");
        assert_eq!(to_pcre(r"a\Zb\\Z(?P<x>a)"), r"a\zb\\Z(?P<x>a)");
        assert_eq!(global_flags_at("a(?i)b"), Some(1));
        assert_eq!(global_flags_at(r"a\(?i)[(?i)]b(?i:c)"), None);
        assert_eq!(global_flags_at("[](?i)]x"), None);
    }

    #[test]
    fn global_flags_after_the_start_are_refused_like_python() {
        let err = pattern_template("^x(?i)%Y %b", None).unwrap_err();
        assert!(err.0.contains("global flags not at the start"), "{}", err.0);
        assert!(pattern_template("(?i)^x%Y", None).is_ok());
    }
}
