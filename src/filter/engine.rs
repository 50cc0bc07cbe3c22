//! The per-line filter: Fail2ban 1.0.2's `processLine`/`findFailure` — date
//! cut out of the line, multi-line window, `prefregex` and `<F-CONTENT>`,
//! ignoreregex, failregexes (first match, or all in check-all mode), failure
//! ids, `<F-MLFID>` connections — behind a literal prefilter that lets most
//! lines through without running any regex and without allocating.

use super::addr::{self, Id, IdError, CIDR_RAW, CIDR_UNSPEC, FAM_IPV4, FAM_IPV6};
use super::compiled::{get, pop, search, set, set_named, Compiled, Groups};
use super::date::{DateDetector, DateHit};
use super::dns::{Resolver, SystemResolver};
use super::pcre::Scratch;
use super::prefilter::{Cond, Gate, Hits, Interner, Prefilter};
use super::Failure;
use crate::config::{FilterDef, UseDns};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a filter runs: in the server or for `fail2ban-regex`.
#[derive(Clone)]
pub struct FilterOptions {
    /// Overrides the filter's `usedns` (`--usedns`, or the jail's value).
    pub usedns: Option<UseDns>,
    /// The jail's `logtimezone` for dates without a zone.
    pub logtimezone: Option<String>,
    /// Overrides the filter's `maxlines` (`-L`).
    pub maxlines: Option<usize>,
    /// Try every failregex and report each match (`fail2ban-regex` default).
    pub check_all: bool,
    /// Drop `<F-MLFID>` matches that have no failure id yet.
    pub ignore_pending: bool,
    /// Take `<HOST>` and `<F-ID>` text as is, never parsed or resolved (`-r`).
    pub raw_hosts: bool,
    /// The server's time checks with this `findtime`: dates far from now are
    /// taken as now, and before [`Filter::set_in_operation`] lines older than
    /// `findtime` are skipped. None for `fail2ban-regex` (dates as found).
    pub find_time: Option<f64>,
    /// A fixed "now" (epoch seconds); None reads the clock for each line.
    pub now: Option<f64>,
    /// Use the literal prefilter (off only to check it against the regexes).
    pub prefilter: bool,
    /// Keep what `fail2ban-regex`'s summary needs: whether the prefregex
    /// matched on every line, and which buffered lines a multi-line match took.
    pub report: bool,
    /// Failures carry what a summary counts (id, time, regex, flags), not
    /// their lines (`matches`), captures (`data`) and `users`:
    /// `fail2ban-regex`'s report needs no more, and a busy log is read faster.
    pub counts_only: bool,
    /// Resolves DNS names for `usedns = yes|warn`.
    pub resolver: Arc<dyn Resolver>,
}

impl FilterOptions {
    /// The server's filter: first match wins, pending ids dropped, time checks on.
    pub fn server(find_time: f64) -> FilterOptions {
        FilterOptions {
            usedns: None,
            logtimezone: None,
            maxlines: None,
            check_all: false,
            ignore_pending: true,
            raw_hosts: false,
            find_time: Some(find_time),
            now: None,
            prefilter: true,
            report: false,
            counts_only: false,
            resolver: Arc::new(SystemResolver::default()),
        }
    }

    /// `fail2ban-regex` without `-o`: every failregex tried, pending ids kept,
    /// dates taken as found, summary data kept.
    pub fn regex_tool() -> FilterOptions {
        FilterOptions {
            check_all: true,
            ignore_pending: false,
            find_time: None,
            report: true,
            ..FilterOptions::server(600.0)
        }
    }
}

/// A filter that cannot be built, naming the filter and the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The option at fault (`failregex`, `datepattern`, ...).
    pub option: &'static str,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FilterError {}

/// What happened to one line, beyond the failures pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineResult {
    /// Entries pushed to the output (no-fail and pending ones included).
    pub failures: usize,
    /// An ignoreregex matched (see [`Filter::ignore_hits`]).
    pub ignored: bool,
    /// Fail2ban's "prefregex has matched" as `fail2ban-regex` reads it after
    /// the line (it keeps the previous line's state when the prefregex was
    /// not tried); meaningful with [`FilterOptions::report`].
    pub prefregex: bool,
    /// Skipped as older than `findtime` before the jail went into operation.
    pub skipped: bool,
    /// Rejected by the prefilter: no regex ran.
    pub rejected: bool,
}

/// One buffered line as Fail2ban keeps it: text before the date, the date
/// text, text after it (stored joined), and which prefilter gates it opens
/// (the second one found out only when needed).
#[derive(Debug, Clone, Default)]
struct Line {
    text: String,
    pre: usize,
    post: usize,
    gates: (bool, Option<bool>),
}

impl Line {
    fn push_stripped(&self, out: &mut String) {
        out.push_str(&self.text[..self.pre]);
        out.push_str(&self.text[self.post..]);
    }

    /// Whether the line without its date is `s` (compared in place).
    fn stripped_is(&self, s: &str) -> bool {
        let (a, b) = (&self.text[..self.pre], &self.text[self.post..]);
        s.len() == a.len() + b.len() && s.starts_with(a) && s.ends_with(b)
    }

    /// Whether the line without its date has `min` characters or more and
    /// no `\n` (what a prefregex with `any_line` matches).
    fn is_line_of(&self, min: usize) -> bool {
        let (a, b) = (&self.text[..self.pre], &self.text[self.post..]);
        let nl = |t: &str| memchr::memchr(b'\n', t.as_bytes()).is_some();
        a.len() + b.len() >= min && !nl(a) && !nl(b)
    }

    fn same(&self, o: &Line) -> bool {
        self.pre == o.pre && self.post == o.post && self.text == o.text
    }
}

/// What Fail2ban's `lineBuffer` holds during one line, relative to the
/// window the line started with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Buffer {
    Window,
    Lines(Vec<usize>),
    Content,
}

/// The failure data Fail2ban carries in a dict: named groups plus the keys it
/// adds itself.
#[derive(Debug, Clone, Default)]
struct Fail {
    groups: Groups,
    matches: Vec<String>,
    nofail_matches: Option<Vec<String>>,
    users: Vec<String>,
    pending: bool,
    ip: Option<Id>,
}

impl Fail {
    fn get(&self, k: &str) -> Option<&str> {
        get(&self.groups, k)
    }

    fn truthy(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| !v.is_empty())
    }

    fn pop(&mut self, k: &str) -> Option<String> {
        pop(&mut self.groups, k)
    }

    fn set(&mut self, k: &str, v: Option<String>) {
        set(&mut self.groups, k, v)
    }

    /// `dict.update`, or with `skip_none` the update Fail2ban does with the
    /// values that are not None.
    fn update(&mut self, from: Groups, skip_none: bool) {
        for (k, v) in from {
            if !(skip_none && v.is_none()) {
                set_named(&mut self.groups, k, v);
            }
        }
    }

    /// `_updateUsers`: adds `user` to the set; returns the set's size.
    fn add_user(&mut self, user: Option<String>) -> usize {
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            if !self.users.contains(&u) {
                self.users.push(u);
            }
        }
        self.users.len()
    }
}

const MLFID_MAX: usize = 100;
const MLFID_TTL: f64 = 300.0;

/// Fail2ban's `Utils.Cache(maxCount=100, maxTime=300)` of connection ids:
/// insertion-ordered, expired entries dropped on read, the oldest dropped
/// when full. Entries are boxed and found by a hash of their key, so that
/// a full cache costs no large moves and few string comparisons per line.
#[derive(Debug, Default)]
struct MlfidCache {
    hashes: Vec<u64>,
    // Boxed: a full cache drops its oldest entry on each insertion.
    #[allow(clippy::vec_box)]
    entries: Vec<Box<MlfidEntry>>,
}

#[derive(Debug)]
struct MlfidEntry {
    key: String,
    expiry: f64,
    fail: Fail,
}

/// FNV-1a: keys are short; a collision only costs a string comparison.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl MlfidCache {
    fn get(&mut self, key: &str, now: f64) -> Option<usize> {
        let i = self.find(key)?;
        if self.entries[i].expiry > now {
            return Some(i);
        }
        self.remove(i);
        None
    }

    /// Sets `key`; returns its entry's index.
    fn set(&mut self, key: &str, fail: Fail, now: f64) -> usize {
        if self.entries.len() >= MLFID_MAX {
            while !self.entries.is_empty() {
                let expiry = self.remove(0).expiry;
                if expiry > now && self.entries.len() < MLFID_MAX {
                    break;
                }
            }
        }
        match self.find(key) {
            Some(i) => {
                let e = &mut self.entries[i];
                e.expiry = now + MLFID_TTL;
                e.fail = fail;
                i
            }
            None => {
                self.hashes.push(key_hash(key));
                self.entries.push(Box::new(MlfidEntry {
                    key: key.to_string(),
                    expiry: now + MLFID_TTL,
                    fail,
                }));
                self.entries.len() - 1
            }
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        let h = key_hash(key);
        self.hashes
            .iter()
            .zip(&self.entries)
            .position(|(&eh, e)| eh == h && e.key == key)
    }

    fn remove(&mut self, i: usize) -> Box<MlfidEntry> {
        self.hashes.remove(i);
        self.entries.remove(i)
    }
}

/// Where a merged multi-line failure lives after `_mergeFailure`.
enum Slot {
    /// Entry `i` of the cache (valid until the cache next changes).
    Cached(usize),
    Local(Fail),
}

/// The compiled, immutable part of a filter.
struct Def {
    name: String,
    prefregex: Option<Compiled>,
    failregex: Vec<Compiled>,
    ignoreregex: Vec<Compiled>,
    maxlines: usize,
    usedns: UseDns,
    opts: FilterOptions,
    prefilter: Prefilter,
    /// Fail2ban tries the ignoreregexes first when there are few of them.
    ignore_first: bool,
    /// Whether lines are scanned for literals at all.
    scan: bool,
    /// Whether some failregexes are skipped on lines without their literals
    /// (those marked in `masked`).
    per_regex: bool,
    masked: Vec<bool>,
    /// Some(n): the prefregex matches every line of n or more characters,
    /// and a report counts it so on lines the prefilter rejects.
    pref_any_line: Option<usize>,
}

/// How often a message about bad input may be logged per filter and kind.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A message about bad input (a line the log's writer controls) is logged at
/// most once a minute, with the count of those left out since.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Some(count left out since the last one) when a message may go out.
    fn allow(&mut self) -> Option<u64> {
        if self.last.map_or(true, |t| t.elapsed() >= LOG_EVERY) {
            self.last = Some(Instant::now());
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// The throttled messages of a filter.
#[derive(Default)]
struct Throttles {
    limit: Throttle,
    bad_time: Throttle,
    no_group: Throttle,
    failed: Throttle,
}

impl Throttles {
    fn limit_hit(&mut self, filter: &str, re: &Compiled) {
        if let Some(n) = self.limit.allow() {
            tracing::warn!(
                "[{filter}] a regex gave up on a line at the PCRE2 match or depth limit ({n} more since the last warning): {}",
                re.text
            );
        }
    }
}

/// Runs `re` over `text`; a limit hit counts as no match and is reported.
fn find(
    re: &Compiled,
    text: &str,
    scratch: &mut Scratch,
    logs: &mut Throttles,
    filter: &str,
) -> bool {
    search(re, text, scratch, &mut |re| logs.limit_hit(filter, re))
}

/// The mutable state of a filter.
struct State {
    dates: DateDetector,
    lines: Vec<Line>,
    spare: Vec<Line>,
    last_date: Option<f64>,
    last_time_text: String,
    in_operation: bool,
    mlfid: MlfidCache,
    scratch: Scratch,
    /// The window joined (Fail2ban's `buf` before any change).
    buf: String,
    /// The buffer the failregexes see once it differs from `buf`.
    alt: String,
    /// The matched lines an ignoreregex sees in multi-line mode.
    ibuf: String,
    content: String,
    pref_spans: Vec<Option<(usize, usize)>>,
    pref_matched: bool,
    /// `pref_spans` are the prefregex's on `buf` (false when the match was
    /// only inferred, see `Def::pref_any_line`).
    pref_spans_valid: bool,
    /// The prefilter's literals in the line (with `Def::per_regex`).
    line_hits: Hits,
    ignore_hits: Vec<usize>,
    taken: Vec<String>,
    next_warn: [f64; 3],
    logs: Throttles,
}

/// Keys of Fail2ban's once-a-day warnings.
const WARN_SIM_TIME: usize = 0;
const WARN_OLD: usize = 1;
const WARN_NO_TIME: usize = 2;

/// A filter with its state (line window, last date, connection cache).
pub struct Filter {
    def: Def,
    st: State,
}

fn fmt_duration(sec: f64) -> String {
    let s = sec.round() as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

impl Filter {
    /// Builds the filter `def` with `opts`. Every regex is compiled here; a
    /// regex that does not compile, or a failregex that can yield no failure
    /// id, is an error naming the filter and the regex.
    pub fn new(def: &FilterDef, opts: FilterOptions) -> Result<Filter, FilterError> {
        let name = def.name.clone();
        let err = |option: &'static str, i: usize, e: String| FilterError {
            option,
            message: format!("filter '{name}': {option} #{i}: {e}"),
        };
        let usedns = opts.usedns.unwrap_or(def.usedns);
        let maxlines = opts.maxlines.unwrap_or(def.maxlines).max(1);
        let mut lits = Interner::default();
        let prefregex = match def.prefregex.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(
                Compiled::new(p, usedns, false, &mut lits).map_err(|e| err("prefregex", 1, e))?,
            ),
            None => None,
        };
        let mut failregex = Vec::with_capacity(def.failregex.len());
        for (i, r) in def.failregex.iter().enumerate() {
            let c = Compiled::new(r, usedns, maxlines > 1, &mut lits)
                .map_err(|e| err("failregex", i + 1, e))?;
            if !c.has_id_group() && !prefregex.as_ref().is_some_and(Compiled::has_id_group) {
                return Err(err(
                    "failregex",
                    i + 1,
                    format!("No failure-id group in '{}'", c.text),
                ));
            }
            failregex.push(c);
        }
        let mut ignoreregex = Vec::with_capacity(def.ignoreregex.len());
        for (i, r) in def.ignoreregex.iter().enumerate() {
            ignoreregex.push(
                Compiled::new(r, usedns, false, &mut lits)
                    .map_err(|e| err("ignoreregex", i + 1, e))?,
            );
        }
        let dates = DateDetector::new(def.datepattern.as_deref(), opts.logtimezone.as_deref())
            .map_err(|e| FilterError {
                option: "datepattern",
                message: format!("filter '{name}': datepattern: {e}"),
            })?;

        let ignore_first = !ignoreregex.is_empty() && ignoreregex.len() + 2 < failregex.len();
        let fail_gate = Cond::or(failregex.iter().map(|r| r.cond.clone()).collect());
        // A report counts the lines the prefregex matches; one that matches
        // every line (see `Compiled::any_line`) is counted without running.
        let pref_any_line = prefregex
            .as_ref()
            .and_then(|p| p.any_line)
            .filter(|_| opts.report && maxlines == 1);
        let mut gate = match &prefregex {
            // The prefregex's own effects (the summary's count, a content
            // window in multi-line mode) need it tried whenever it can match.
            Some(p)
                if (opts.report && pref_any_line.is_none())
                    || (maxlines > 1 && p.has_group("content")) =>
            {
                p.cond.clone()
            }
            Some(p) => Cond::and_two(p.cond.clone(), fail_gate.clone()),
            None => fail_gate.clone(),
        };
        if ignore_first {
            gate = Cond::or(
                std::iter::once(gate)
                    .chain(ignoreregex.iter().map(|r| r.cond.clone()))
                    .collect(),
            );
        }
        let each: Vec<&Cond> = failregex.iter().map(|r| &r.cond).collect();
        let prefilter = Prefilter::new(&lits, &gate, &fail_gate, &each);
        let scan = opts.prefilter && !(prefilter.before.always() && prefilter.after.always());
        // In a one-line window a failregex needs one of its literals in the
        // line: a line's literals tell which of those not anchored at the
        // start (they search the whole line) can be skipped.
        let masked: Vec<bool> = failregex
            .iter()
            .zip(&prefilter.each)
            .map(|(r, m)| !r.anchored && m.is_some())
            .collect();
        let per_regex = opts.prefilter && maxlines == 1 && masked.contains(&true);
        let def = Def {
            name: name.clone(),
            prefregex,
            failregex,
            ignoreregex,
            maxlines,
            usedns,
            opts,
            prefilter,
            ignore_first,
            scan,
            per_regex,
            masked,
            pref_any_line,
        };
        let st = State {
            dates,
            lines: Vec::new(),
            spare: Vec::new(),
            last_date: None,
            last_time_text: String::new(),
            in_operation: true,
            mlfid: MlfidCache::default(),
            scratch: Scratch::default(),
            buf: String::new(),
            alt: String::new(),
            ibuf: String::new(),
            content: String::new(),
            pref_spans: Vec::new(),
            pref_matched: false,
            pref_spans_valid: false,
            line_hits: def.prefilter.hits(),
            ignore_hits: Vec::new(),
            taken: Vec::new(),
            next_warn: [0.0; 3],
            logs: Throttles::default(),
        };
        Ok(Filter { def, st })
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The failregexes as Fail2ban shows them (tags expanded).
    pub fn failregexes(&self) -> impl Iterator<Item = &str> {
        self.def.failregex.iter().map(|r| r.text.as_str())
    }

    pub fn ignoreregexes(&self) -> impl Iterator<Item = &str> {
        self.def.ignoreregex.iter().map(|r| r.text.as_str())
    }

    pub fn prefregex(&self) -> Option<&str> {
        self.def.prefregex.as_ref().map(|r| r.text.as_str())
    }

    pub fn maxlines(&self) -> usize {
        self.def.maxlines
    }

    /// The prefregex's named groups (None when a group took no part) as it
    /// last matched; empty when it did not match on the last line
    /// (`fail2ban-regex -v` lists them).
    pub fn prefregex_groups(&mut self) -> Vec<(String, Option<String>)> {
        let Filter { def, st } = self;
        let Some(p) = def.prefregex.as_ref().filter(|_| st.pref_matched) else {
            return Vec::new();
        };
        if !st.pref_spans_valid {
            join(&st.lines, None, &mut st.buf);
            if !find(p, &st.buf, &mut st.scratch, &mut st.logs, &def.name) {
                return Vec::new();
            }
            st.pref_spans.clear();
            st.pref_spans
                .extend((0..=p.re.captures_len()).map(|i| st.scratch.get(i)));
            st.pref_spans_valid = true;
        }
        let spans = &st.pref_spans;
        p.groups(&st.buf, |i| spans.get(i).copied().flatten())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// The date detector (`fail2ban-regex` prints its template hits).
    pub fn date_detector(&self) -> &DateDetector {
        &self.st.dates
    }

    /// The prefilter, for a scan shared between filters
    /// ([`Filter::process_line_scanned`]).
    pub fn prefilter(&self) -> &Prefilter {
        &self.def.prefilter
    }

    /// Whether the prefilter can ever reject a line (a filter whose regexes
    /// have no required literal cannot).
    pub fn prefilter_rejects(&self) -> bool {
        self.def.opts.prefilter && !self.def.prefilter.before.always()
    }

    /// Fail2ban's `inOperation`: false while a jail reads its backlog at
    /// start (lines older than `findtime` are then skipped).
    pub fn set_in_operation(&mut self, on: bool) {
        self.st.in_operation = on;
    }

    /// The lines of the multi-line window (Fail2ban's `lineBuffer`), whole.
    pub fn window_texts(&self) -> Vec<String> {
        self.st.lines.iter().map(|l| l.text.clone()).collect()
    }

    /// The ignoreregexes (indices) that matched on the last line.
    pub fn ignore_hits(&self) -> &[usize] {
        &self.st.ignore_hits
    }

    /// With [`FilterOptions::report`] and `maxlines > 1`: the earlier lines of
    /// the window that the last line's match took out of the buffer (as
    /// `fail2ban-regex` then counts them matched instead of missed).
    pub fn taken_lines(&self) -> &[String] {
        &self.st.taken
    }

    fn now(&self) -> f64 {
        self.def.opts.now.unwrap_or_else(crate::util::now)
    }

    /// Processes one log line (already decoded): finds its date, runs the
    /// regexes, pushes the failures found onto `out`.
    pub fn process_line(&mut self, line: &str, out: &mut Vec<Failure>) -> LineResult {
        self.find_date_and_run(line, Scan::Own, out)
    }

    /// As [`Filter::process_line`], with the line's date already found by a
    /// detector built as this filter's is (same `datepattern` and
    /// `logtimezone`) at `now` (epoch seconds): the filters of one file can
    /// share one detector, which sees the same lines in the same order, and
    /// one clock reading per line.
    pub fn process_line_found(
        &mut self,
        line: &str,
        hit: Option<DateHit>,
        now: f64,
        out: &mut Vec<Failure>,
    ) -> LineResult {
        let now = self.def.opts.now.unwrap_or(now);
        self.run(Input::Found { line, hit }, Scan::Own, now, out)
    }

    /// As [`Filter::process_line`], with the prefilter's literals already
    /// found in `line` by a scan shared with other filters (`hits` numbered
    /// as [`Prefilter::literals`]).
    pub fn process_line_scanned(
        &mut self,
        line: &str,
        hits: &Hits,
        out: &mut Vec<Failure>,
    ) -> LineResult {
        self.find_date_and_run(line, Scan::Hits(hits), out)
    }

    /// As [`Filter::process_line`], when a scan of a block of lines
    /// ([`Prefilter::next_candidate`]) found whether `line` holds a literal
    /// of the first gate (`open`).
    pub fn process_line_gated(
        &mut self,
        line: &str,
        open: bool,
        out: &mut Vec<Failure>,
    ) -> LineResult {
        self.find_date_and_run(line, Scan::Before(open), out)
    }

    /// Processes a line whose date is known (a journal entry): `time_text`
    /// stands where the date was, `text` is the message.
    pub fn process_dated(
        &mut self,
        time_text: &str,
        text: &str,
        time: f64,
        out: &mut Vec<Failure>,
    ) -> LineResult {
        let now = self.now();
        self.run(
            Input::Dated {
                time_text,
                text,
                time,
            },
            Scan::Own,
            now,
            out,
        )
    }

    /// Finds the line's date with the filter's own detector, then runs it.
    fn find_date_and_run(
        &mut self,
        line: &str,
        scanned: Scan,
        out: &mut Vec<Failure>,
    ) -> LineResult {
        let now = self.now();
        let hit = self.st.dates.find(line, now);
        self.run(Input::Found { line, hit }, scanned, now, out)
    }

    fn run(&mut self, input: Input, scanned: Scan, now: f64, out: &mut Vec<Failure>) -> LineResult {
        let Filter { def, st } = self;
        st.ignore_hits.clear();
        st.taken.clear();
        let start = out.len();
        match st.process(def, input, scanned, now, out) {
            Ok(r) => r,
            Err(IdError(e)) => {
                if let Some(n) = st.logs.failed.allow() {
                    tracing::error!(
                        "[{}] Failed to process line ({n} more since): {e}",
                        def.name
                    );
                }
                out.truncate(start);
                LineResult {
                    prefregex: st.pref_matched,
                    ..LineResult::default()
                }
            }
        }
    }
}

impl Cond {
    fn and_two(a: Cond, b: Cond) -> Cond {
        match (a, b) {
            (Cond::True, x) | (x, Cond::True) => x,
            (a, b) => Cond::And(vec![a, b]),
        }
    }
}

/// What is known of a line's literals before the filter sees it.
enum Scan<'a> {
    /// Nothing: the filter scans the line.
    Own,
    /// Every literal the raw line holds.
    Hits(&'a Hits),
    /// Whether the raw line holds a literal of the first gate.
    Before(bool),
}

enum Input<'a> {
    Found {
        line: &'a str,
        hit: Option<DateHit>,
    },
    Dated {
        time_text: &'a str,
        text: &'a str,
        time: f64,
    },
}

/// Which string the failregexes currently search.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Searched {
    Buf,
    Alt,
    Stale,
}

impl State {
    fn recent_date(&self, now: f64) -> Option<f64> {
        self.last_date.filter(|d| *d != 0.0 && *d > now - 60.0)
    }

    /// The next line slot: the current window's line when `maxlines == 1`,
    /// else a new entry at the end of the window.
    fn slot(&mut self, maxlines: usize) -> &mut Line {
        if maxlines == 1 {
            if self.lines.len() > 1 {
                self.spare.extend(self.lines.drain(1..));
            }
            if self.lines.is_empty() {
                self.lines.push(self.spare.pop().unwrap_or_default());
            }
        } else {
            let l = self.spare.pop().unwrap_or_default();
            self.lines.push(l);
            while self.lines.len() > maxlines {
                let old = self.lines.remove(0);
                self.spare.push(old);
            }
        }
        let l = self.lines.last_mut().unwrap();
        l.text.clear();
        l
    }

    fn process(
        &mut self,
        def: &Def,
        input: Input,
        scanned: Scan,
        now: f64,
        out: &mut Vec<Failure>,
    ) -> Result<LineResult, IdError> {
        let timed = def.opts.find_time.is_some();
        let mut no_date = false;
        // (text, pre, post) of the line as Fail2ban's tuple, the date, and
        // where the line's own text starts in it (for a shared scan).
        let mut date: Option<f64>;
        let mut use_last = false;
        let (line, span) = match input {
            Input::Dated {
                time_text,
                text,
                time,
            } => {
                self.last_time_text.clear();
                self.last_time_text.push_str(time_text);
                self.last_date = Some(time);
                date = Some(time);
                use_last = true;
                (text, None)
            }
            Input::Found { line, hit } => {
                // A span that is no span of this line is taken as no date.
                let hit = hit.filter(|h| {
                    h.start <= h.end
                        && h.end <= line.len()
                        && line.is_char_boundary(h.start)
                        && line.is_char_boundary(h.end)
                });
                date = None;
                let mut span = None;
                match hit {
                    Some(h) if h.start < h.end => {
                        span = Some((h.start, h.end));
                        match h.time {
                            Some(t) => {
                                date = Some(t);
                                self.last_time_text.clear();
                                self.last_time_text.push_str(&line[h.start..h.end]);
                                self.last_date = Some(t);
                            }
                            None => {
                                if let Some(n) = self.logs.bad_time.allow() {
                                    tracing::error!(
                                        "[{}] findFailure failed to parse timeText ({n} more since): {}",
                                        def.name,
                                        &line[h.start..h.end]
                                    );
                                }
                            }
                        }
                    }
                    Some(h) => {
                        span = Some((h.start, h.end));
                        match self.recent_date(now) {
                            Some(d) => {
                                use_last = true;
                                date = Some(d);
                            }
                            None => date = Some(now),
                        }
                    }
                    None => {}
                }
                if date.is_none() {
                    no_date = true;
                    if let Some(d) = self.recent_date(now) {
                        use_last = true;
                        date = Some(d);
                    } else if timed && self.in_operation {
                        date = Some(now);
                    }
                }
                (line, if use_last { None } else { span })
            }
        };

        if let (Some(find_time), Some(d)) = (def.opts.find_time, date) {
            if self.in_operation {
                let delta = (d - now).trunc();
                if delta.abs() > 60.0 {
                    let name = &def.name;
                    warn_once(&mut self.next_warn[WARN_SIM_TIME], now, || {
                        tracing::warn!(
                            "[{name}] Detected a log entry {} {} the current time in operation mode. This looks like a {} problem. Treating such entries as if they just happened.",
                            fmt_duration(delta.abs()),
                            if delta < 0.0 { "before" } else { "after" },
                            if (-3300.0..0.0).contains(&delta) { "latency" } else { "timezone" }
                        );
                        tracing::warn!("[{name}] Please check a jail for a timing issue. Line with odd timestamp: {line}");
                    });
                    date = Some(now);
                    self.last_date = Some(now);
                }
            } else if d < now - find_time {
                let name = &def.name;
                warn_once(&mut self.next_warn[WARN_OLD], now, || {
                    tracing::warn!("[{name}] Ignoring all log entries older than {find_time}s; these are probably messages generated while fail2ban was not running.");
                    tracing::warn!("[{name}] Please check a jail for a timing issue. Line with odd timestamp: {line}");
                });
                return Ok(LineResult {
                    skipped: true,
                    prefregex: self.pref_matched,
                    ..LineResult::default()
                });
            }
        }

        // The line as Fail2ban's (before, date, after) tuple, into the window.
        let last_time = std::mem::take(&mut self.last_time_text);
        let slot = self.slot(def.maxlines);
        if use_last {
            slot.text.push_str(&last_time);
            slot.text.push_str(line);
            slot.pre = 0;
            slot.post = last_time.len();
        } else {
            slot.text.push_str(line);
            let (s, e) = span.unwrap_or((0, 0));
            slot.pre = s;
            slot.post = e;
        }
        self.last_time_text = last_time;

        if def.scan {
            let slot = self.lines.last_mut().unwrap();
            let n = def.prefilter.longest();
            let at_cut = |g: &Gate| gate_at_cut(g, &slot.text, slot.pre, slot.post, n);
            slot.gates = match scanned {
                // A scan of the raw line: add what joining the text around a
                // cut-out date may have created.
                Scan::Hits(h) if !use_last => {
                    let open = |g: &Gate| g.in_hits(h) || at_cut(g);
                    (
                        open(&def.prefilter.before),
                        Some(open(&def.prefilter.after)),
                    )
                }
                Scan::Before(open) if !use_last => (open || at_cut(&def.prefilter.before), None),
                _ => (
                    gate_of(&def.prefilter.before, slot, def.prefilter.longest()),
                    None,
                ),
            };
        }
        self.find_failure(def, date, no_date, now, out)
    }

    fn find_failure(
        &mut self,
        def: &Def,
        date: Option<f64>,
        no_date: bool,
        now: f64,
        out: &mut Vec<Failure>,
    ) -> Result<LineResult, IdError> {
        let mut window = std::mem::take(&mut self.lines);
        let mut res = LineResult::default();
        if def.scan && !window.iter().any(|l| l.gates.0) {
            if def.prefregex.is_some() {
                self.pref_matched = def
                    .pref_any_line
                    .is_some_and(|min| window.iter().all(|l| l.is_line_of(min)));
                self.pref_spans_valid = false;
            }
            self.lines = window;
            return Ok(LineResult {
                rejected: true,
                prefregex: self.pref_matched,
                ..res
            });
        }
        join(&window, None, &mut self.buf);
        let mut buffer = Buffer::Window;
        let r = self.find_in_window(
            def,
            &mut window,
            &mut buffer,
            date,
            no_date,
            now,
            out,
            &mut res,
        );
        self.restore_window(def, window, buffer);
        res.ignored = !self.ignore_hits.is_empty();
        res.prefregex = self.pref_matched;
        r.map(|()| res)
    }

    /// Puts Fail2ban's `lineBuffer` back as the window for the next line.
    fn restore_window(&mut self, def: &Def, mut window: Vec<Line>, buffer: Buffer) {
        if def.maxlines == 1 {
            self.lines = window;
            return;
        }
        let kept: Vec<Line> = match buffer {
            Buffer::Window => {
                self.lines = window;
                return;
            }
            Buffer::Lines(idx) => idx.iter().map(|&i| window[i].clone()).collect(),
            Buffer::Content => {
                let mut l = self.spare.pop().unwrap_or_default();
                l.text.clear();
                l.text.push_str(&self.content);
                l.pre = 0;
                l.post = 0;
                let b = l.text.as_bytes();
                l.gates = (
                    def.prefilter.before.scan(b),
                    Some(def.prefilter.after.scan(b)),
                );
                vec![l]
            }
        };
        if def.opts.report {
            let n = window.len().saturating_sub(1);
            for old in &window[..n] {
                if !kept.iter().any(|k| k.same(old)) {
                    self.taken.push(old.text.clone());
                }
            }
        }
        self.spare.append(&mut window);
        self.lines = kept;
    }

    #[allow(clippy::too_many_arguments)]
    fn find_in_window(
        &mut self,
        def: &Def,
        window: &mut [Line],
        buffer: &mut Buffer,
        date: Option<f64>,
        no_date: bool,
        now: f64,
        out: &mut Vec<Failure>,
        res: &mut LineResult,
    ) -> Result<(), IdError> {
        let name = def.name.as_str();
        if def.ignore_first && self.ignore_line(def, window, buffer, Searched::Buf, None) {
            return Ok(());
        }

        // The prefregex: its groups (content aside) join every failure.
        let mut searched = Searched::Buf;
        let mut pre_groups: Option<Groups> = None;
        if let Some(p) = &def.prefregex {
            let m = find(p, &self.buf, &mut self.scratch, &mut self.logs, name);
            self.pref_matched = m;
            self.pref_spans_valid = m;
            if !m {
                return Ok(());
            }
            self.pref_spans.clear();
            self.pref_spans
                .extend((0..=p.re.captures_len()).map(|i| self.scratch.get(i)));
            if let Some(ci) = p.re.group_index("content") {
                if let Some((s, e)) = self.pref_spans[ci].filter(|(s, e)| s < e) {
                    self.content.clear();
                    self.content.push_str(&self.buf[s..e]);
                    *buffer = Buffer::Content;
                    searched = Searched::Stale;
                }
            }
        }
        if def.scan {
            let n = def.prefilter.longest();
            let mut open = false;
            for l in window.iter_mut() {
                let g = l
                    .gates
                    .1
                    .unwrap_or_else(|| gate_of(&def.prefilter.after, l, n));
                l.gates.1 = Some(g);
                open |= g;
            }
            if !open {
                return Ok(());
            }
        }
        if def.per_regex {
            let (h, l) = (&mut self.line_hits, &window[0]);
            h.clear();
            let b = l.text.as_bytes();
            def.prefilter.scan(&b[..l.pre], h);
            def.prefilter.scan(&b[l.post..], h);
            match joint(&l.text, l.pre, l.post, def.prefilter.longest()) {
                Joint::Nothing => {}
                Joint::Bytes(j, n) => def.prefilter.scan(&j[..n], h),
                Joint::TooLong => h.fill(),
            }
        }
        let window = &*window;

        let defcidr = if def.usedns == UseDns::Raw || def.opts.raw_hosts {
            CIDR_RAW
        } else {
            CIDR_UNSPEC
        };
        for (idx, fr) in def.failregex.iter().enumerate() {
            if def.per_regex
                && def.masked[idx]
                && def.prefilter.each[idx]
                    .as_ref()
                    .is_some_and(|m| !m.meets(&self.line_hits))
            {
                continue;
            }
            if searched == Searched::Stale {
                self.rebuild(window, buffer);
                searched = Searched::Alt;
            }
            let text = if searched == Searched::Buf {
                &self.buf
            } else {
                &self.alt
            };
            // An anchored regex cannot match a text that starts otherwise.
            if fr
                .first
                .as_ref()
                .is_some_and(|f| !text.as_bytes().first().is_some_and(|&b| f.allows(b)))
            {
                continue;
            }
            if !find(fr, text, &mut self.scratch, &mut self.logs, name) {
                continue;
            }
            let scratch = &self.scratch;
            let groups = fr.groups(text, |i| scratch.get(i));
            let (matched, unmatched) = split_lines(fr, text, scratch, window);
            if !def.ignoreregex.is_empty()
                && self.ignore_line(def, window, buffer, searched, Some((&matched, &unmatched)))
            {
                searched = Searched::Stale;
                if !def.opts.check_all {
                    break;
                }
                continue;
            }
            if no_date {
                let tl = &window.last().unwrap().text[..];
                let next = &mut self.next_warn[WARN_NO_TIME];
                warn_once(next, now, || {
                    let lines: Vec<&str> =
                        matched.iter().map(|&i| window[i].text.as_str()).collect();
                    tracing::warn!(
                        "[{name}] Found a match but no valid date/time found for {tl:?}."
                    );
                    tracing::warn!("[{name}] Match without a timestamp: {}", lines.join("\n"));
                    tracing::warn!("[{name}] Please try setting a custom date pattern (see man page jail.conf(5)).");
                });
                if date.is_none() && def.opts.find_time.is_some() {
                    continue;
                }
            }
            if !def.opts.check_all || def.maxlines > 1 {
                *buffer = Buffer::Lines(unmatched);
                searched = Searched::Stale;
            }
            let mut fail = Fail::default();
            match &def.prefregex {
                Some(p) if p.names.iter().any(|(_, n)| &**n != "content") => {
                    let pre = pre_groups.get_or_insert_with(|| {
                        let spans = &self.pref_spans;
                        // The content is not a failure's: not even copied.
                        let content = p.re.group_index("content");
                        let mut g = p.groups(&self.buf, |i| {
                            spans
                                .get(i)
                                .copied()
                                .flatten()
                                .filter(|_| Some(i) != content)
                        });
                        pop(&mut g, "content");
                        g
                    });
                    fail.groups = pre.clone();
                    fail.update(groups, false);
                }
                _ => fail.groups = groups,
            }
            let matched_text: Vec<String> = if def.opts.counts_only {
                Vec::new()
            } else {
                matched.iter().map(|&i| window[i].text.clone()).collect()
            };
            let mlfid = fail.get("mlfid").map(str::to_string);
            let mut slot = match &mlfid {
                Some(id) => {
                    let mut slot = self.merge_failure(id, fail, matched_text, now);
                    if fail_of(&mut self.mlfid, &mut slot).truthy("nofail") && !def.opts.check_all {
                        return Ok(());
                    }
                    slot
                }
                None => {
                    fail.matches.extend(matched_text);
                    Slot::Local(fail)
                }
            };
            let f = fail_of(&mut self.mlfid, &mut slot);
            let fid = f.get("fid").map(str::to_string);
            let (ip, cidr, raw) = if let Some(ip) = f.get("ip4") {
                (Some(ip.to_string()), cidr_of(f, FAM_IPV4)?, true)
            } else if let Some(ip) = f.get("ip6") {
                (Some(ip.to_string()), cidr_of(f, FAM_IPV6)?, true)
            } else if let Some(dns) = f.get("dns") {
                (Some(dns.to_string()), defcidr, defcidr == CIDR_RAW)
            } else {
                if fid.is_none() && mlfid.is_none() {
                    let text = if searched == Searched::Buf {
                        &self.buf
                    } else {
                        &self.alt
                    };
                    if let Some(n) = self.logs.no_group.allow() {
                        tracing::error!(
                            "[{name}] No group found in '{text}' using '{}' ({n} more since)",
                            fr.text
                        );
                    }
                    continue;
                }
                (fid.clone(), defcidr, true)
            };
            let ids: Vec<Option<Id>> = match ip {
                None => {
                    f.pending = true;
                    if !def.opts.check_all && def.opts.ignore_pending {
                        return Ok(());
                    }
                    vec![None]
                }
                Some(ip) if raw => match fid.as_deref() {
                    Some(fid) if fid != ip => {
                        f.ip = Some(Id::new(&ip, cidr)?);
                        vec![Some(Id::new(fid, defcidr)?)]
                    }
                    _ => vec![Some(Id::new(&ip, cidr)?)],
                },
                Some(host) => text_to_ip(def, &host).into_iter().map(Some).collect(),
            };
            // The server never stamps a failure in the future.
            let mut time = date.unwrap_or(now);
            if def.opts.find_time.is_some() && time > now {
                time = now;
            }
            for id in ids {
                out.push(failure(
                    f,
                    idx,
                    id,
                    time,
                    date.is_some(),
                    def.opts.counts_only,
                ));
                res.failures += 1;
            }
            if !def.opts.check_all {
                break;
            }
        }
        Ok(())
    }

    /// Rebuilds the failregexes' buffer from Fail2ban's `lineBuffer`.
    fn rebuild(&mut self, window: &[Line], buffer: &Buffer) {
        match buffer {
            Buffer::Window => {
                self.alt.clear();
                self.alt.push_str(&self.buf);
            }
            Buffer::Lines(idx) => join(window, Some(idx), &mut self.alt),
            Buffer::Content => {
                self.alt.clear();
                self.alt.push_str(&self.content);
                self.alt.push('\n');
            }
        }
    }

    /// Fail2ban's `_ignoreLine`: tries the ignoreregexes; with a failregex
    /// match (`fr`) in multi-line mode, over the matched lines only.
    fn ignore_line(
        &mut self,
        def: &Def,
        window: &[Line],
        buffer: &mut Buffer,
        searched: Searched,
        fr: Option<(&[usize], &[usize])>,
    ) -> bool {
        let name = def.name.as_str();
        let multi = def.maxlines > 1 && fr.is_some();
        if multi {
            let mut ib = std::mem::take(&mut self.ibuf);
            join(window, fr.map(|(m, _)| m), &mut ib);
            self.ibuf = ib;
        }
        let mut found = false;
        for (i, re) in def.ignoreregex.iter().enumerate() {
            let text = match (multi, searched) {
                (true, _) => &self.ibuf,
                (false, Searched::Buf) => &self.buf,
                (false, _) => &self.alt,
            };
            if !find(re, text, &mut self.scratch, &mut self.logs, name) {
                continue;
            }
            found = true;
            self.ignore_hits.push(i);
            if !def.opts.check_all || def.maxlines > 1 {
                if let Some((_, unmatched)) = fr {
                    *buffer = Buffer::Lines(unmatched.to_vec());
                }
            }
            if !def.opts.check_all {
                break;
            }
        }
        found
    }

    /// Fail2ban's `_mergeFailure` for a line with connection id `mlfid`.
    fn merge_failure(
        &mut self,
        mlfid: &str,
        mut fail: Fail,
        matched: Vec<String>,
        now: f64,
    ) -> Slot {
        let cached = self.mlfid.get(mlfid, now);
        let mut flags = 0u8;
        if fail.truthy("mlfgained") {
            flags |= 8 | 1;
            if !fail.truthy("nofail") {
                let g = fail.get("mlfgained").map(str::to_string);
                fail.set("nofail", g);
            }
        } else if fail.truthy("nofail") {
            flags |= 1;
        }
        if fail.pop("mlfforget").is_some_and(|v| !v.is_empty()) {
            flags |= 2;
        }
        let user = |fail: &Fail| fail.get("user").map(str::to_string);
        let (slot, users) = match cached {
            Some(i) => {
                let cached = &mut self.mlfid.entries[i].fail;
                let users = cached.add_user(user(&fail));
                if cached.pop("nofail").is_some_and(|v| !v.is_empty()) {
                    flags |= 4;
                }
                if cached.pop("mlfgained").is_some_and(|v| !v.is_empty()) {
                    flags |= 4;
                }
                if flags & 8 != 0 {
                    cached.pending = false;
                }
                if flags & 4 == 0 && !cached.pending {
                    cached.matches.clear();
                }
                cached.update(std::mem::take(&mut fail.groups), true);
                if flags & 2 != 0 {
                    (Slot::Local(self.mlfid.remove(i).fail), users)
                } else {
                    (Slot::Cached(i), users)
                }
            }
            None if flags & 2 == 0 => {
                let users = fail.add_user(user(&fail));
                (Slot::Cached(self.mlfid.set(mlfid, fail, now)), users)
            }
            None => (Slot::Local(fail), 0),
        };
        let mut slot = slot;
        let f = fail_of(&mut self.mlfid, &mut slot);
        if std::mem::take(&mut f.pending) || users > 1 {
            f.pop("nofail");
            f.pop("mlfgained");
            flags &= !(8 | 1);
        }
        if flags & 1 == 0 {
            let mut m = f.nofail_matches.take().unwrap_or_default();
            m.extend(f.matches.iter().cloned());
            if flags & 8 == 0 {
                m.extend(matched);
            }
            f.matches = m;
        } else if flags & 3 == 1 {
            f.nofail_matches
                .get_or_insert_with(Vec::new)
                .extend(matched);
        }
        slot
    }
}

/// Fail2ban's `DNSUtils.textToIp`: a dotted IPv4 text is taken as is, other
/// text is resolved with `usedns = yes|warn`.
fn text_to_ip(def: &Def, text: &str) -> Vec<Id> {
    if let Some(id) = addr::search_ipv4(text) {
        return vec![id];
    }
    if !matches!(def.usedns, UseDns::Yes | UseDns::Warn) {
        return Vec::new();
    }
    let ips = def.opts.resolver.resolve(text);
    let mut ids: Vec<Id> = ips
        .iter()
        .filter_map(|ip| Id::new(&ip.to_string(), CIDR_UNSPEC).ok())
        .collect();
    ids.sort_by_key(Id::text);
    if !ids.is_empty() && def.usedns == UseDns::Warn {
        let shown: Vec<String> = ids.iter().map(Id::text).collect();
        tracing::warn!("Determined IP using DNS Lookup: {text} = {shown:?}");
    }
    ids
}

/// Fail2ban's `_logWarnOnce`: `emit` at most once a day per kind.
fn warn_once(next: &mut f64, now: f64, emit: impl FnOnce()) {
    if now >= *next {
        *next = now + 86400.0;
        emit();
    }
}

/// The failure a merge left in the cache or handed back.
fn fail_of<'a>(cache: &'a mut MlfidCache, slot: &'a mut Slot) -> &'a mut Fail {
    match slot {
        Slot::Local(f) => f,
        Slot::Cached(i) => &mut cache.entries[*i].fail,
    }
}

/// Whether a line (without its date) holds one of the gate's literals.
fn gate_of(g: &Gate, l: &Line, longest: usize) -> bool {
    g.scan(&l.text.as_bytes()[..l.pre])
        || g.scan(&l.text.as_bytes()[l.post..])
        || gate_at_cut(g, &l.text, l.pre, l.post, longest)
}

/// Whether joining the text around a cut-out date (`pre..post`) made one of
/// the gate's literals (at most `longest` bytes): only the bytes next to the
/// joint can form one.
fn gate_at_cut(g: &Gate, text: &str, pre: usize, post: usize, longest: usize) -> bool {
    match joint(text, pre, post, longest) {
        Joint::Nothing => false,
        Joint::Bytes(j, n) => g.scan(&j[..n]),
        Joint::TooLong => true,
    }
}

/// What joining the text around a cut-out date may have made (on the
/// stack, briefly: no allocation per line).
#[allow(clippy::large_enum_variant)]
enum Joint {
    /// The cut is at an end of the line: nothing new.
    Nothing,
    /// The bytes on both sides of the cut a literal can span, joined.
    Bytes([u8; 2 * JOINT_SIDE], usize),
    /// A literal longer than the buffer holds: assume it is there.
    TooLong,
}

const JOINT_SIDE: usize = 256;

fn joint(text: &str, pre: usize, post: usize, longest: usize) -> Joint {
    // An empty cut (an optional date that matched nothing) splits the text
    // in two as well: a literal may span the split.
    if pre > post || pre == 0 || post >= text.len() || longest < 2 {
        return Joint::Nothing;
    }
    let n = longest - 1;
    if n > JOINT_SIDE {
        return Joint::TooLong;
    }
    let mut joint = [0u8; 2 * JOINT_SIDE];
    let before = &text.as_bytes()[pre.saturating_sub(n)..pre];
    let after = &text.as_bytes()[post..(post + n).min(text.len())];
    joint[..before.len()].copy_from_slice(before);
    joint[before.len()..before.len() + after.len()].copy_from_slice(after);
    Joint::Bytes(joint, before.len() + after.len())
}

/// `int(fail.get('cidr') or family)`.
fn cidr_of(f: &Fail, family: i128) -> Result<i128, IdError> {
    match f.get("cidr").filter(|c| !c.is_empty()) {
        None => Ok(family),
        Some(c) => addr::py_int(c)
            .ok_or_else(|| IdError(format!("invalid literal for int() with base 10: '{c}'"))),
    }
}

/// The failure as the filter hands it out; with `counts_only` without its
/// lines and captures.
fn failure(
    f: &Fail,
    regex: usize,
    id: Option<Id>,
    time: f64,
    dated: bool,
    counts_only: bool,
) -> Failure {
    let target = f.ip.as_ref().or(id.as_ref());
    let (matches, data, users) = if counts_only {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let data = f
            .groups
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
            .collect();
        (f.matches.clone(), data, f.users.clone())
    };
    Failure {
        fid: id.as_ref().map(Id::text).unwrap_or_default(),
        addr: target.and_then(Id::ip),
        time,
        matches,
        data,
        nofail: f.truthy("nofail"),
        regex,
        prefix_len: target.and_then(Id::prefix_len),
        ip: f.ip.as_ref().map(Id::text),
        users,
        pending: id.is_none(),
        dated,
    }
}

/// Fail2ban's `_tupleLinesBuf`: the lines without their dates, each ended by `\n`.
fn join(window: &[Line], only: Option<&[usize]>, out: &mut String) {
    out.clear();
    let n = only.map_or(window.len(), <[usize]>::len);
    for k in 0..n {
        if k > 0 {
            out.push('\n');
        }
        window[only.map_or(k, |idx| idx[k])].push_stripped(out);
    }
    out.push('\n');
}

/// Fail2ban's `Regex.search` bookkeeping: which window lines the match
/// covers (minus `<SKIPLINES>` lines) and which it leaves.
fn split_lines(
    re: &Compiled,
    text: &str,
    scratch: &Scratch,
    window: &[Line],
) -> (Vec<usize>, Vec<usize>) {
    let n = window.len();
    if n <= 1 {
        return ((0..n).collect(), Vec::new());
    }
    let (ms, me) = scratch.get(0).unwrap_or((0, 0));
    let b = text.as_bytes();
    let line_start = b[..(ms + 1).min(b.len())]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let from = if me == 0 {
        b.len().saturating_sub(1)
    } else {
        me - 1
    };
    let line_end = b[from.min(b.len())..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| from + p + 1);
    let c1 = b[..line_start]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .min(n);
    let c2 = b[..line_end]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .min(n)
        .max(c1);
    let mut matched: Vec<usize> = (c1..c2).collect();
    let mut unmatched: Vec<usize> = (0..c1).collect();
    let mut k = 0;
    for skipped in re.skipped_lines(text, |i| scratch.get(i)) {
        if let Some(m) = matched[k.min(matched.len())..]
            .iter()
            .position(|&i| window[i].stripped_is(&skipped))
        {
            unmatched.push(matched.remove(k + m));
            k += m;
        }
    }
    unmatched.extend(c2..n);
    (matched, unmatched)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 1_124_013_000.0;

    fn filter(fail: &str, opts: FilterOptions) -> Filter {
        let def = FilterDef {
            name: "t".into(),
            failregex: vec![fail.into()],
            maxlines: 1,
            ..FilterDef::default()
        };
        Filter::new(
            &def,
            FilterOptions {
                now: Some(T + 30.0),
                ..opts
            },
        )
        .unwrap()
    }

    /// A line as the date detector would hand it over.
    fn found(
        f: &mut Filter,
        line: &str,
        hit: Option<DateHit>,
        scanned: Option<&Hits>,
    ) -> Vec<Failure> {
        let mut out = Vec::new();
        let now = f.now();
        let scanned = scanned.map_or(Scan::Own, Scan::Hits);
        f.run(Input::Found { line, hit }, scanned, now, &mut out);
        out
    }

    fn hit(start: usize, end: usize, time: Option<f64>) -> Option<DateHit> {
        Some(DateHit { start, end, time })
    }

    #[test]
    fn the_date_is_cut_out_and_the_rest_joined() {
        let mut f = filter(
            r"^ host sshd\[1\]: fail <HOST>$",
            FilterOptions::server(600.0),
        );
        let line = "Aug 14 11:00:00 host sshd[1]: fail 192.0.2.1";
        let out = found(&mut f, line, hit(0, 15, Some(T)), None);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].time, &out[0].matches[..]),
            (T, &[line.to_string()][..])
        );
        // A date in mid-line: the text around it is joined.
        let mut f = filter(r"^\[x\]  fail <HOST>$", FilterOptions::server(600.0));
        let out = found(
            &mut f,
            "[x] 2005-08-14 11:00:00 fail 192.0.2.2",
            hit(4, 23, Some(T)),
            None,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn lines_without_their_own_date_borrow_the_last_one() {
        let mut f = filter(r"fail <HOST>", FilterOptions::server(600.0));
        let first = "Aug 14 11:00:00 fail 192.0.2.1";
        found(&mut f, first, hit(0, 15, Some(T)), None);
        // An optional date that matched nothing, an unreadable date, no date:
        // the last date (recent enough) and its text stand in.
        for (line, h) in [
            ("fail 192.0.2.2", hit(0, 0, None)),
            ("Foo 99 fail 192.0.2.3", hit(0, 6, None)),
            ("fail 192.0.2.4", None),
        ] {
            let out = found(&mut f, line, h, None);
            assert_eq!(
                (out[0].time, &out[0].matches[..]),
                (T, &[format!("Aug 14 11:00:00{line}")][..]),
                "{line}"
            );
        }
        // Older than a minute: now, and the line as it is.
        let mut f = filter(r"fail <HOST>", FilterOptions::regex_tool());
        f.def.opts.now = Some(T);
        found(&mut f, first, hit(0, 15, Some(T - 61.0)), None);
        let out = found(&mut f, "fail 192.0.2.5", hit(0, 0, None), None);
        assert_eq!(
            (out[0].time, &out[0].matches[..]),
            (T, &["fail 192.0.2.5".to_string()][..])
        );
        // fail2ban-regex: no date stays no date.
        let mut f = filter(r"fail <HOST>", FilterOptions::regex_tool());
        let out = found(&mut f, "fail 192.0.2.6", None, None);
        assert!(!out[0].dated);
    }

    #[test]
    fn a_date_span_outside_the_line_is_no_date() {
        let mut f = filter(r"fail <HOST>", FilterOptions::regex_tool());
        for h in [hit(5, 99, Some(T)), hit(3, 2, Some(T)), hit(1, 2, Some(T))] {
            let out = found(&mut f, "\u{e9}fail 192.0.2.1", h, None);
            assert_eq!(out.len(), 1);
            assert!(!out[0].dated && out[0].matches == ["\u{e9}fail 192.0.2.1"]);
        }
    }

    #[test]
    fn a_shared_scan_sees_literals_made_by_the_cut() {
        let mut f = filter(r"abcdef fail <HOST>", FilterOptions::server(600.0));
        assert!(f.prefilter_rejects());
        let line = "abc2005-08-14 11:00:00def fail 192.0.2.1";
        let mut raw = f.prefilter().hits();
        f.prefilter().scan(line.as_bytes(), &mut raw);
        assert!(!raw.get(0), "the literal is not in the raw line");
        let out = found(&mut f, line, hit(3, 22, Some(T)), Some(&raw));
        assert_eq!(out.len(), 1);
        // The shared scan is trusted: what it did not see is not there.
        let empty = f.prefilter().hits();
        assert!(found(
            &mut f,
            "2005 abcdef fail 192.0.2.1",
            hit(0, 4, Some(T)),
            Some(&empty)
        )
        .is_empty());
        assert_eq!(
            found(
                &mut f,
                "2005 abcdef fail 192.0.2.1",
                hit(0, 4, Some(T)),
                None
            )
            .len(),
            1
        );
    }

    #[test]
    fn a_literal_across_an_empty_date_match_is_seen() {
        // `^WARNING:()**` matches an empty date after `WARNING:`.
        let mut f = filter(
            r"^WARNING: Authentication from <HOST>$",
            FilterOptions::regex_tool(),
        );
        let line = "WARNING: Authentication from 192.0.2.1";
        assert_eq!(found(&mut f, line, hit(8, 8, Some(T)), None).len(), 1);
        let mut raw = f.prefilter().hits();
        f.prefilter().scan(line.as_bytes(), &mut raw);
        assert_eq!(found(&mut f, line, hit(8, 8, Some(T)), Some(&raw)).len(), 1);
    }

    #[test]
    fn a_filter_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Filter>();
    }

    #[test]
    fn mlfid_cache_is_fifo_with_expiry() {
        let mut c = MlfidCache::default();
        for i in 0..MLFID_MAX {
            c.set(&i.to_string(), Fail::default(), 0.0);
        }
        // Full: setting drops the oldest live entry.
        c.set("new", Fail::default(), 1.0);
        assert_eq!(c.entries.len(), MLFID_MAX);
        assert!(c.find("0").is_none() && c.find("1").is_some() && c.find("new").is_some());
        assert_eq!(c.get("1", 299.0), Some(0));
        assert_eq!(c.get("1", 300.0), None);
        assert!(c.find("1").is_none());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(3725.0), "1h 2m 5s");
        assert_eq!(fmt_duration(0.2), "0s");
    }
}
