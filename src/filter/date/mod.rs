//! Date detection: Fail2ban's default templates, custom `datepattern`s
//! (strftime-like codes, `{^LN-BEG}`, `{DATE}`, `{NONE}`, EPOCH, LEPOCH,
//! TAI64N), year inference and time zones.
//!
//! The detector keeps Fail2ban's search order exactly: the template that hit
//! last is tried first (for an unanchored one only between the same
//! boundaries), then the list in order, preferring the match nearest the
//! line start; winners move forward in the list. The common case (the last
//! template hits again) is one JIT match and an allocation-free conversion.

mod strptime;
mod template;
mod zone;

#[cfg(test)]
mod compare_fail2ban;
#[cfg(test)]
mod tests;

use crate::filter::pcre::Scratch;
use std::collections::HashSet;
use strptime::Now;
use template::{Kind, Template, LINE_BEGIN};
use zone::LocalZone;

/// A date found in a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateHit {
    /// Byte span of the date text in the line (empty when the pattern matched
    /// nothing, e.g. an optional date).
    pub start: usize,
    pub end: usize,
    /// Epoch seconds; None when the text matched but could not be converted.
    pub time: Option<f64>,
}

/// A `datepattern` or `logtimezone` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError(pub String);

impl std::fmt::Display for DateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DateError {}

/// A template in the detector's list with its usage statistics.
#[derive(Debug)]
struct Slot {
    t: Template,
    /// Its place in the list as built (the list is reordered).
    id: usize,
    /// Lines this template won.
    hits: u64,
    /// Whether its regex ever matched (won or not): Fail2ban's template-level
    /// hit count, which stops the search early.
    matched: bool,
    /// `now` of its last win.
    last_used: f64,
    /// Character offset of its last winning match.
    distance: usize,
}

impl Slot {
    fn weight(&self) -> f64 {
        self.hits as f64 * self.t.weight / self.distance.max(1) as f64
    }
}

/// One side of the last winning match: its character offset and the
/// characters around it (None for "nothing there").
#[derive(Debug, Clone, Copy)]
struct Edge {
    pos: usize,
    before: Option<char>,
    at: Option<char>,
}

/// A successful search: the template, the match (group 0) in characters
/// and bytes, and the end of the subject it ran on.
#[derive(Debug, Clone, Copy)]
struct Found {
    idx: usize,
    dist: usize,
    end: usize,
    start_b: usize,
    subject_end: usize,
}

/// Finds and converts the date of each line; remembers which template hit last.
pub struct DateDetector {
    templates: Vec<Slot>,
    last_idx: Option<usize>,
    last_start: Edge,
    last_end: Edge,
    first_unused: usize,
    /// `logtimezone` as minutes east of UTC.
    default_tz: Option<i32>,
    zone: LocalZone,
    scratch: Scratch,
    /// The search whose groups `scratch` holds: template, start, subject end.
    in_scratch: Option<(usize, usize, usize)>,
    memo: Memo,
    prefix: Prefix,
}

/// How far a line must equal the line a template last matched (anchored at
/// the line start) for the same match: lines of a log mostly start with the
/// same date as the one before, and the regex need not run again.
#[derive(Debug, Default)]
struct Prefix {
    /// The template (`Slot::id`); None before the first match.
    id: Option<usize>,
    text: Vec<u8>,
    /// The match's raw spans (see [`Scratch::raw`]).
    spans: Vec<usize>,
    /// The date found with it, and the `now` (bits) it was converted at.
    hit: Option<(u64, DateHit)>,
}

/// Whether `line` starts with `prefix` (short: compared a word at a time).
fn starts_with(line: &[u8], prefix: &[u8]) -> bool {
    if line.len() < prefix.len() {
        return false;
    }
    let word = |b: &[u8], i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
    let mut i = 0;
    while i + 8 <= prefix.len() {
        if word(line, i) != word(prefix, i) {
            return false;
        }
        i += 8;
    }
    line[i..prefix.len()] == prefix[i..]
}

/// How many characters past a match to look for its end.
const PREFIX_SLACK: usize = 8;

impl Prefix {
    fn holds(&self, id: usize, line: &str) -> bool {
        self.id == Some(id) && self.holds_for(line)
    }

    fn holds_for(&self, line: &str) -> bool {
        starts_with(line.as_bytes(), &self.text)
    }

    /// After template `slot` matched `line` (spans in `scratch`): the
    /// shortest start of the line on which its regex settles the same match
    /// (see [`crate::filter::pcre::Regex::settles`]), if one is near.
    fn learn(&mut self, slot: &Slot, line: &str, scratch: &mut Scratch) {
        self.id = None;
        self.hit = None;
        let Some((_, end)) = scratch.get(0) else {
            return;
        };
        self.spans.clear();
        self.spans.extend_from_slice(scratch.raw());
        let mut ends = line[end..]
            .char_indices()
            .map(|(i, c)| end + i + c.len_utf8())
            .take(PREFIX_SLACK);
        let Some(k) = ends.find(|&k| slot.t.regex.settles(&line[..k], scratch)) else {
            return;
        };
        // A settled match is the same match: keep the spans found above.
        self.text.clear();
        self.text.extend_from_slice(&line.as_bytes()[..k]);
        self.id = Some(slot.id);
        scratch.restore(&self.spans);
    }
}

/// The last conversion: its inputs (template, now, the fields' texts) and
/// its result.
#[derive(Debug, Default)]
struct Memo {
    valid: bool,
    id: usize,
    now: u64,
    /// The texts, joined.
    texts: String,
    /// Per field: where its text ends in `texts`; None for no text.
    ends: Vec<Option<usize>>,
    time: Option<f64>,
}

impl Memo {
    fn holds<'a>(&self, id: usize, now: f64, texts: impl Iterator<Item = Option<&'a str>>) -> bool {
        if !self.valid || self.id != id || self.now != now.to_bits() {
            return false;
        }
        let mut at = 0;
        let mut n = 0;
        for t in texts {
            match (t, self.ends.get(n)) {
                (None, Some(None)) => {}
                (Some(t), Some(Some(end))) if self.texts.get(at..*end) == Some(t) => at = *end,
                _ => return false,
            }
            n += 1;
        }
        n == self.ends.len()
    }

    fn keep<'a>(
        &mut self,
        id: usize,
        now: f64,
        texts: impl Iterator<Item = Option<&'a str>>,
        time: Option<f64>,
    ) {
        self.texts.clear();
        self.ends.clear();
        for t in texts {
            self.ends.push(t.map(|t| {
                self.texts.push_str(t);
                self.texts.len()
            }));
        }
        (self.valid, self.id, self.now, self.time) = (true, id, now.to_bits(), time);
    }
}

/// Usage of one template, for `fail2ban-regex`'s "Date template hits".
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateStat<'a> {
    /// Fail2ban's template name, e.g. `{^LN-BEG}ExYear(?P<_sep>[-/.])Month...`.
    pub name: &'a str,
    /// Lines won.
    pub hits: u64,
    /// Current sort weight (hits * base weight / last distance).
    pub weight: f64,
    /// 100 for the anchored default variants, else 1.
    pub base_weight: f64,
    /// The pattern the template was built from (empty for EPOCH/TAI64N).
    pub pattern: &'a str,
    /// The regex, in Fail2ban's (Python) dialect.
    pub regex: &'a str,
}

impl std::fmt::Debug for DateDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DateDetector")
            .field(
                "templates",
                &self.templates.iter().map(|s| &s.t.name).collect::<Vec<_>>(),
            )
            .field("default_tz", &self.default_tz)
            .field("zone", &self.zone)
            .finish()
    }
}

impl DateDetector {
    /// `datepattern`: the config value (None for the default templates; may
    /// hold several patterns, one per line). `logtimezone`: the jail's zone
    /// (`UTC`, `UTC+0200`, `CET`, `-0430`, ...); None means local time from
    /// the TZ environment (read once, here).
    pub fn new(
        datepattern: Option<&str>,
        logtimezone: Option<&str>,
    ) -> Result<DateDetector, DateError> {
        DateDetector::build(datepattern, logtimezone, LocalZone::system())
    }

    /// As [`DateDetector::new`] with the local zone given as a `TZ` value
    /// (a POSIX rule such as `CET-01CEST-02,M3.5.0,M10.5.0`, an IANA name,
    /// `:path`, or empty for UTC) instead of the environment.
    pub fn with_tz(
        datepattern: Option<&str>,
        logtimezone: Option<&str>,
        tz: &str,
    ) -> Result<DateDetector, DateError> {
        DateDetector::build(
            datepattern,
            logtimezone,
            LocalZone::from_tz(tz).map_err(DateError)?,
        )
    }

    fn build(
        datepattern: Option<&str>,
        logtimezone: Option<&str>,
        zone: LocalZone,
    ) -> Result<DateDetector, DateError> {
        let default_tz = logtimezone
            .map(|tz| {
                strptime::zone_offset(tz)
                    .map_err(|_| DateError(format!("Unknown or unsupported time zone: {tz:?}")))
            })
            .transpose()?;
        let mut list = TemplateList::default();
        for pattern in datepattern
            .unwrap_or("")
            .split('\n')
            .map(template::py_strip)
            .filter(|p| !p.is_empty())
        {
            list.append(pattern)?;
        }
        if list.templates.is_empty() {
            list.add_defaults(false, None)?;
        }
        let templates = list
            .templates
            .into_iter()
            .enumerate()
            .map(|(id, t)| Slot {
                t,
                id,
                hits: 0,
                matched: false,
                last_used: 0.0,
                distance: 0x7fff_ffff,
            })
            .collect();
        Ok(DateDetector {
            templates,
            last_idx: None,
            last_start: Edge {
                pos: 1,
                before: None,
                at: None,
            },
            last_end: Edge {
                pos: 0x7fff_ffff,
                before: None,
                at: None,
            },
            first_unused: 0,
            default_tz,
            zone,
            scratch: Scratch::default(),
            in_scratch: None,
            memo: Memo::default(),
            prefix: Prefix::default(),
        })
    }

    /// Finds the date in `line`. `now` (epoch seconds) drives year inference
    /// and `{NONE}`. A hit with an empty span (`{NONE}`, or a pattern whose
    /// date part is optional and absent) has `time = Some(now)`; Fail2ban's
    /// filter then prefers its last date if that is less than 60 s old.
    pub fn find(&mut self, line: &str, now: f64) -> Option<DateHit> {
        if let Some(hit) = self.repeat(line, now) {
            return Some(hit);
        }
        let hit = self.find_anew(line, now)?;
        if let Some(i) = self.last_idx {
            if self.prefix.id == Some(self.templates[i].id) && self.prefix.holds_for(line) {
                self.prefix.hit = Some((now.to_bits(), hit));
            }
        }
        Some(hit)
    }

    /// The common case: the line starts as the one before, where the last
    /// template (anchored at the line start) settled its match (see
    /// [`Prefix`]). The result is the last one; only the statistics move,
    /// as [`DateDetector::match_time`] moves them for the same winner.
    fn repeat(&mut self, line: &str, now: f64) -> Option<DateHit> {
        let i = self.last_idx?;
        let (bits, hit) = self.prefix.hit?;
        let slot = &mut self.templates[i];
        if bits != now.to_bits()
            || self.prefix.id != Some(slot.id)
            || slot.t.flags & LINE_BEGIN == 0
            || !self.prefix.holds_for(line)
        {
            return None;
        }
        slot.hits += 1;
        slot.matched = true;
        slot.last_used = now;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.in_scratch = None;
        Some(hit)
    }

    fn find_anew(&mut self, line: &str, now: f64) -> Option<DateHit> {
        let found = self.match_time(line, now)?;
        if self.in_scratch != Some((found.idx, found.start_b, found.subject_end)) {
            // The winner was set aside while other templates ran: redo its match.
            let regex = &self.templates[found.idx].t.regex;
            if !matches!(
                regex.find_at(&line[..found.subject_end], found.start_b, &mut self.scratch),
                Ok(true)
            ) {
                return None;
            }
        }
        let s = &self.scratch;
        let t = &self.templates[found.idx].t;
        let (start, end) = s.get(1).unwrap_or((found.start_b, found.start_b));
        if start == end {
            return Some(DateHit {
                start,
                end,
                time: Some(now),
            });
        }
        let text = |g: usize| s.get(g).map(|(a, b)| &line[a..b]);
        let time = match &t.kind {
            Kind::Pattern { fields, ampm, .. } => {
                // Lines of a log mostly repeat the last date: the conversion
                // is a function of the fields' texts, the template and now.
                let id = self.templates[found.idx].id;
                let texts = || fields.iter().map(|(g, _)| *g).chain(*ampm).map(text);
                if !self.memo.holds(id, now, texts()) {
                    let time = strptime::convert(
                        fields,
                        *ampm,
                        line,
                        s,
                        self.default_tz,
                        &mut Now::new(now, &self.zone),
                    );
                    self.memo.keep(id, now, texts(), time);
                }
                self.memo.time
            }
            Kind::Epoch { long, group } => {
                text(*group).and_then(|v| strptime::epoch_value(v, *long))
            }
            Kind::Tai64n => text(1).and_then(strptime::tai64n_value),
        };
        Some(DateHit { start, end, time })
    }

    /// The templates in their current order, with their hits.
    pub fn templates(&self) -> impl Iterator<Item = TemplateStat<'_>> {
        self.templates.iter().map(|s| TemplateStat {
            name: &s.t.name,
            hits: s.hits,
            weight: s.weight(),
            base_weight: s.t.weight,
            pattern: match &s.t.kind {
                Kind::Pattern { pattern, .. } => pattern,
                _ => "",
            },
            regex: &s.t.source,
        })
    }

    /// Searches with template `idx` in `line[..subject_end]` from byte
    /// `from`; returns the match in characters.
    fn search(&mut self, idx: usize, line: &str, from: usize, subject_end: usize) -> Option<Found> {
        let slot = &mut self.templates[idx];
        let whole = from == 0 && subject_end == line.len() && slot.t.flags & LINE_BEGIN != 0;
        let same = whole && self.prefix.holds(slot.id, line);
        // Python finds nothing when the range is reversed.
        let ok = same
            || (from <= subject_end
                && matches!(
                    slot.t
                        .regex
                        .find_at(&line[..subject_end], from, &mut self.scratch),
                    Ok(true)
                ));
        self.in_scratch = None;
        if !ok {
            return None;
        }
        if same {
            self.scratch.restore(&self.prefix.spans);
        } else if whole {
            self.prefix.learn(slot, line, &mut self.scratch);
        }
        slot.matched = true;
        let (a, b) = self.scratch.get(0).expect("group 0 of a match");
        self.in_scratch = Some((idx, a, subject_end));
        let dist = char_index(line, a);
        let end = dist + char_index(&line[a..], b - a);
        Some(Found {
            idx,
            dist,
            end,
            start_b: a,
            subject_end,
        })
    }

    /// Fail2ban's `matchTime`: which template wins this line.
    fn match_time(&mut self, line: &str, now: f64) -> Option<Found> {
        let n = self.templates.len();
        let mut reserve: Option<Found> = None;
        let mut skip = None;
        let mut winner = None;
        if let Some(i) = self.last_idx {
            let anchored = self.templates[i].t.anchored();
            let m = if anchored {
                skip = Some(i);
                self.search(i, line, 0, line.len())
            } else if let Some((from, to)) = self.same_boundaries(line) {
                self.search(i, line, from, to)
            } else {
                skip = Some(i);
                self.search(i, line, 0, line.len())
            };
            if let Some(m) = m {
                if n == 1
                    || anchored
                    || (m.dist == self.last_start.pos && m.end == self.last_end.pos)
                {
                    winner = Some(m);
                } else {
                    // Moved: maybe another format now; keep it in reserve.
                    reserve = Some(m);
                }
            }
        }
        if winner.is_none() {
            for i in 0..n {
                if skip == Some(i) {
                    continue;
                }
                let Some(m) = self.search(i, line, 0, line.len()) else {
                    continue;
                };
                if i + 1 >= n || self.templates[i].t.anchored() {
                    winner = Some(m);
                    break;
                }
                let slot = &self.templates[i];
                if m.dist == 0 && slot.hits > 0 && !self.templates[i + 1].matched {
                    winner = Some(m);
                    break;
                }
                if m.dist > slot.distance || m.dist > self.last_start.pos {
                    // Farther into the line than before: perhaps a date in the
                    // message; keep the nearest and look further.
                    if reserve.map_or(true, |r| m.dist < r.dist) {
                        reserve = Some(m);
                    }
                    continue;
                }
                winner = Some(m);
                break;
            }
        }
        let mut m = winner.or(reserve)?;
        let slot = &mut self.templates[m.idx];
        slot.hits += 1;
        slot.last_used = now;
        slot.distance = m.dist;
        if self.first_unused == m.idx {
            self.first_unused += 1;
        }
        let end_b = m.start_b + byte_index(&line[m.start_b..], m.end - m.dist);
        self.last_start = Edge {
            pos: m.dist,
            before: line[..m.start_b].chars().next_back(),
            at: line[m.start_b..].chars().next(),
        };
        self.last_end = Edge {
            pos: m.end,
            // Python's `line[endpos-1]` wraps to the last character at 0.
            before: if end_b == 0 {
                line.chars().next_back()
            } else {
                line[..end_b].chars().next_back()
            },
            at: line[end_b..].chars().next(),
        };
        if m.idx != 0 && Some(m.idx) != self.last_idx {
            let to = self.reorder(m.idx);
            if to != m.idx {
                self.in_scratch = match self.in_scratch {
                    Some((i, start, end)) if i == m.idx => Some((to, start, end)),
                    _ => None,
                };
                m.idx = to;
            }
        }
        self.last_idx = Some(m.idx);
        Some(m)
    }

    /// For an unanchored last template: the byte range to search when the
    /// characters around the last match's place are the same in this line
    /// (outside equal, or inside equal and not alphanumeric).
    fn same_boundaries(&self, line: &str) -> Option<(usize, usize)> {
        let (s, e) = (self.last_start, self.last_end);
        let from = byte_of_char(line, s.pos);
        let to = byte_of_char(line, e.pos);
        let before = |b: Option<usize>, pos: usize| {
            if pos == 0 {
                None
            } else {
                b.and_then(|b| line[..b].chars().next_back())
            }
        };
        let at = |b: Option<usize>| b.and_then(|b| line[b..].chars().next());
        let start_ok = before(from, s.pos) == s.before || (at(from) == s.at && !is_alnum(s.at));
        let end_ok = at(to) == e.at || (before(to, e.pos) == e.before && !is_alnum(e.before));
        if !(start_ok && end_ok) {
            return None;
        }
        Some((from.unwrap_or(line.len()), to.unwrap_or(line.len())))
    }

    /// Moves the template at `num` forward if it now outweighs the one at
    /// its target place (or that one has not won for 5 minutes). Returns
    /// its new index.
    fn reorder(&mut self, num: usize) -> usize {
        let t = &self.templates;
        let untime = t[num].last_used - 300.0;
        let weight = t[num].weight();
        let movable = |pos: usize| weight > t[pos].weight() || untime > t[pos].last_used;
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        if !movable(pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(pos) {
                return num;
            }
        }
        let slot = self.templates.remove(num);
        self.templates.insert(pos, slot);
        while self.first_unused < self.templates.len() && self.templates[self.first_unused].hits > 0
        {
            self.first_unused += 1;
        }
        pos
    }
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

/// Number of characters in `s[..b]`.
fn char_index(s: &str, b: usize) -> usize {
    let prefix = &s.as_bytes()[..b];
    if prefix.is_ascii() {
        b
    } else {
        prefix.iter().filter(|&&c| (c as i8) >= -0x40).count()
    }
}

/// Byte offset of character `ci` of `s` (clamped to the end).
fn byte_index(s: &str, ci: usize) -> usize {
    byte_of_char(s, ci).unwrap_or(s.len())
}

/// Byte offset of character `ci` of `s`; `s.len()` for one past the last
/// character, None beyond.
fn byte_of_char(s: &str, ci: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    if ci <= bytes.len() && bytes[..ci].is_ascii() {
        return Some(ci);
    }
    match s.char_indices().nth(ci) {
        Some((b, _)) => Some(b),
        None if s.chars().count() == ci => Some(s.len()),
        None => None,
    }
}

/// Builds the template list from `datepattern` lines as Fail2ban's
/// `appendTemplate` does.
#[derive(Default)]
struct TemplateList {
    templates: Vec<Template>,
    names: HashSet<String>,
}

impl TemplateList {
    fn append(&mut self, pattern: &str) -> Result<(), DateError> {
        let key = template::pattern_key(pattern);
        match key.as_str() {
            "{^LN-BEG}" => self.add_defaults(true, None),
            // Fail2ban's filter for `{DEFAULT}` accepts no template; an
            // otherwise empty list falls back to all defaults anyway.
            "{DEFAULT}" => Ok(()),
            k if template::has_date(k) => self.add_defaults(false, Some(pattern)),
            "{NONE}" => self.push(template::pattern_template("{UNB}^", Some(&key))?, false),
            _ => {
                let t = template::pattern_template(pattern, Some(&key))?;
                // Fail2ban caches templates by pattern: one written as an
                // anchored default is that template, its weight of 100 too.
                let defaults = template::defaults()?;
                let t = match defaults
                    .all
                    .iter()
                    .find(|d| d.weight > 1.0 && d.name == t.name)
                {
                    Some(d) => d.clone(),
                    None => t,
                };
                self.push(t, false)
            }
        }
    }

    /// The defaults (only the line-anchored ones with `line_begin_only`), or
    /// with `prematch` the 17 plain ones each put in place of `{DATE}`.
    fn add_defaults(
        &mut self,
        line_begin_only: bool,
        prematch: Option<&str>,
    ) -> Result<(), DateError> {
        let ignore_dup = !self.templates.is_empty();
        let defaults = template::defaults()?;
        let source = if prematch.is_some() {
            &defaults.plain
        } else {
            &defaults.all
        };
        for t in source {
            if line_begin_only && t.flags & LINE_BEGIN == 0 {
                continue;
            }
            let t = match prematch {
                Some(p) => template::wrapped(t, |s| {
                    template::replace_date(p, &template::unbound_pattern(s))
                })?,
                None => t.clone(),
            };
            self.push(t, ignore_dup)?;
        }
        Ok(())
    }

    fn push(&mut self, t: Template, ignore_dup: bool) -> Result<(), DateError> {
        if self.names.contains(&t.name) {
            if ignore_dup {
                return Ok(());
            }
            return Err(DateError(format!(
                "There is already a template with name {}",
                t.name
            )));
        }
        self.names.insert(t.name.clone());
        self.templates.push(t);
        Ok(())
    }
}
