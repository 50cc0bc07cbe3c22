//! The literal prefilter: from each parsed regex, a condition over literal
//! substrings every match must contain (an AND/OR tree, as RE2's prefilter
//! builds), reduced to sets of literals of which a line must hold one; a fast
//! Aho-Corasick scan then lets most lines by without running any regex.
//!
//! The sets only ever over-approximate: a case-insensitive character with
//! non-ASCII case partners (`k`, `s`, any non-ASCII letter) ends a literal,
//! repeats that may be empty, classes of more than a few characters,
//! backreferences, conditionals and lookarounds require nothing, and literals
//! never span a line break (multi-line windows are joined by `\n`).

use super::pyre::{ClassItem, Node};
use aho_corasick::{packed, AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Largest exact set kept before it is turned into a condition.
const MAX_EXACT: usize = 16;
/// Shortest literal worth a lookup; shorter ones require nothing.
const MIN_LITERAL: usize = 3;
/// Largest character class expanded into alternatives.
const MAX_CLASS: usize = 8;

/// A substring to find: as is, or ASCII case-insensitively (`caseless`,
/// then stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literal {
    pub text: String,
    pub caseless: bool,
}

impl Literal {
    /// Whether finding `self` in a text proves `other` is there too.
    fn implies(&self, other: &Literal) -> bool {
        (other.caseless || !self.caseless)
            && other.text.len() <= self.text.len()
            && self.text.contains(&other.text)
    }
}

/// A condition on which literals a text contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    True,
    Lit(u32),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    pub(crate) fn and(items: Vec<Cond>) -> Cond {
        let mut out = Vec::new();
        for c in items {
            match c {
                Cond::True => {}
                Cond::And(v) => out.extend(v),
                c => out.push(c),
            }
        }
        dedup(&mut out);
        match out.len() {
            0 => Cond::True,
            1 => out.pop().unwrap(),
            _ => Cond::And(out),
        }
    }

    pub(crate) fn or(items: Vec<Cond>) -> Cond {
        let mut out = Vec::new();
        for c in items {
            match c {
                Cond::True => return Cond::True,
                Cond::Or(v) => out.extend(v),
                c => out.push(c),
            }
        }
        dedup(&mut out);
        match out.len() {
            // An empty OR comes only from no regex at all: nothing can match.
            0 => Cond::Or(out),
            1 => out.pop().unwrap(),
            _ => Cond::Or(out),
        }
    }
}

fn dedup(v: &mut Vec<Cond>) {
    let mut seen = Vec::with_capacity(v.len());
    v.retain(|c| {
        if seen.contains(c) {
            false
        } else {
            seen.push(c.clone());
            true
        }
    });
}

/// Which literals a text holds: one bit per literal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    bits: Vec<u64>,
}

impl Hits {
    fn with_len(n: usize) -> Hits {
        Hits {
            bits: vec![0; n.div_ceil(64)],
        }
    }

    /// Every literal present (when a scan cannot tell).
    pub(crate) fn fill(&mut self) {
        self.bits.iter_mut().for_each(|b| *b = u64::MAX);
    }

    pub fn clear(&mut self) {
        self.bits.iter_mut().for_each(|b| *b = 0);
    }

    pub fn set(&mut self, i: u32) {
        self.bits[i as usize / 64] |= 1 << (i % 64);
    }

    pub fn get(&self, i: u32) -> bool {
        self.bits
            .get(i as usize / 64)
            .is_some_and(|b| b & (1 << (i % 64)) != 0)
    }

    /// Whether the two sets share a literal.
    pub(crate) fn meets(&self, other: &Hits) -> bool {
        self.bits.iter().zip(&other.bits).any(|(a, b)| a & b != 0)
    }
}

/// Interns literals while conditions are built.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    list: Vec<Literal>,
    index: HashMap<Literal, u32>,
}

impl Interner {
    fn id(&mut self, l: &Literal) -> u32 {
        if let Some(&i) = self.index.get(l) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(l.clone());
        self.index.insert(l.clone(), i);
        i
    }
}

/// What a node can match: its exact set of strings when small, else a
/// condition every match satisfies.
struct Info {
    exact: Option<Vec<Literal>>,
    cond: Cond,
}

impl Info {
    fn any() -> Info {
        Info {
            exact: None,
            cond: Cond::True,
        }
    }

    fn exact(v: Vec<Literal>) -> Info {
        Info {
            exact: Some(v),
            cond: Cond::True,
        }
    }

    fn empty() -> Info {
        Info::exact(vec![Literal {
            text: String::new(),
            caseless: false,
        }])
    }

    fn into_cond(self, lits: &mut Interner) -> Cond {
        match self.exact {
            Some(set) => set_cond(&set, lits),
            None => self.cond,
        }
    }
}

fn set_cond(set: &[Literal], lits: &mut Interner) -> Cond {
    let mut alts = Vec::with_capacity(set.len());
    // A literal holding another of the set adds nothing to their OR.
    let minimal = set
        .iter()
        .filter(|s| !set.iter().any(|o| o != *s && s.implies(o)));
    for s in minimal {
        let pieces: Vec<Cond> = s
            .text
            .split('\n')
            .filter(|p| p.len() >= MIN_LITERAL)
            .map(|p| {
                Cond::Lit(lits.id(&Literal {
                    text: p.to_string(),
                    caseless: s.caseless,
                }))
            })
            .collect();
        if pieces.is_empty() {
            return Cond::True;
        }
        alts.push(Cond::and(pieces));
    }
    Cond::or(alts)
}

/// The literal a regex character stands for, or None when an ASCII
/// case-insensitive scan could miss what the regex matches.
fn lit_char(c: char, icase: bool) -> Option<Literal> {
    if !icase {
        return Some(Literal {
            text: c.to_string(),
            caseless: false,
        });
    }
    if !c.is_ascii() || matches!(c, 'k' | 'K' | 's' | 'S') {
        return None;
    }
    Some(Literal {
        text: c.to_ascii_lowercase().to_string(),
        caseless: c.is_ascii_alphabetic(),
    })
}

fn sorted(mut v: Vec<Literal>) -> Vec<Literal> {
    v.sort();
    v.dedup();
    v
}

fn concat(a: &Literal, b: &Literal) -> Literal {
    let caseless = a.caseless || b.caseless;
    let text = if caseless {
        format!("{}{}", a.text, b.text).to_ascii_lowercase()
    } else {
        format!("{}{}", a.text, b.text)
    };
    Literal { text, caseless }
}

fn class_info(negated: bool, items: &[ClassItem], icase: bool) -> Info {
    if negated {
        return Info::any();
    }
    let mut chars = Vec::new();
    for it in items {
        let (lo, hi) = match *it {
            ClassItem::Char(c) => (c, c),
            ClassItem::Range(a, b) => (a, b),
            ClassItem::Cat(..) => return Info::any(),
        };
        if (hi as u32 - lo as u32) as usize >= MAX_CLASS {
            return Info::any();
        }
        for c in lo..=hi {
            match lit_char(c, icase) {
                Some(l) => chars.push(l),
                None => return Info::any(),
            }
        }
        if chars.len() > MAX_CLASS {
            return Info::any();
        }
    }
    Info::exact(sorted(chars))
}

fn info(node: &Node, lits: &mut Interner) -> Info {
    match node {
        Node::Empty | Node::At { .. } | Node::Look { .. } => Info::empty(),
        Node::Lit { c, icase } => match lit_char(*c, *icase) {
            Some(l) => Info::exact(vec![l]),
            None => Info::any(),
        },
        Node::Any | Node::Backref(_) | Node::Cond { .. } => Info::any(),
        Node::Class {
            negated,
            items,
            icase,
            ..
        } => class_info(*negated, items, *icase),
        Node::Group { node, .. } | Node::Atomic(node) => info(node, lits),
        Node::Repeat { min, max, node, .. } => {
            let inner = info(node, lits);
            match (min, max) {
                (1, Some(1)) => inner,
                (0, Some(1)) => match inner.exact {
                    Some(mut set) if set.len() < MAX_EXACT => {
                        set.extend(Info::empty().exact.unwrap());
                        Info::exact(sorted(set))
                    }
                    _ => Info::any(),
                },
                (0, _) => Info::any(),
                _ => Info {
                    exact: None,
                    cond: inner.into_cond(lits),
                },
            }
        }
        Node::Concat(items) => {
            let mut ands = Vec::new();
            let mut cur = Info::empty().exact.unwrap();
            for item in items {
                let i = info(item, lits);
                match i.exact {
                    Some(set) if cur.len() * set.len() <= MAX_EXACT => {
                        cur = sorted(
                            cur.iter()
                                .flat_map(|a| set.iter().map(move |b| concat(a, b)))
                                .collect(),
                        );
                    }
                    Some(set) => {
                        ands.push(set_cond(&cur, lits));
                        cur = set;
                    }
                    None => {
                        ands.push(set_cond(&cur, lits));
                        ands.push(i.cond);
                        cur = Info::empty().exact.unwrap();
                    }
                }
            }
            if ands.is_empty() {
                Info::exact(cur)
            } else {
                ands.push(set_cond(&cur, lits));
                Info {
                    exact: None,
                    cond: Cond::and(ands),
                }
            }
        }
        Node::Alt(items) => {
            let infos: Vec<Info> = items.iter().map(|n| info(n, lits)).collect();
            let total = infos.iter().fold(0usize, |t, i| {
                t.saturating_add(i.exact.as_ref().map_or(usize::MAX, Vec::len))
            });
            if total <= MAX_EXACT {
                Info::exact(sorted(
                    infos.into_iter().flat_map(|i| i.exact.unwrap()).collect(),
                ))
            } else {
                Info {
                    exact: None,
                    cond: Cond::or(infos.into_iter().map(|i| i.into_cond(lits)).collect()),
                }
            }
        }
    }
}

/// The condition every match of `node` satisfies; only its literals are
/// added to `lits` (building it interns intermediate ones).
pub(crate) fn required(node: &Node, lits: &mut Interner) -> Cond {
    let mut scratch = Interner::default();
    let cond = info(node, &mut scratch).into_cond(&mut scratch);
    remap(cond, &scratch, lits)
}

fn remap(cond: Cond, from: &Interner, to: &mut Interner) -> Cond {
    match cond {
        Cond::True => Cond::True,
        Cond::Lit(i) => Cond::Lit(to.id(&from.list[i as usize])),
        Cond::And(v) => Cond::And(v.into_iter().map(|c| remap(c, from, to)).collect()),
        Cond::Or(v) => Cond::Or(v.into_iter().map(|c| remap(c, from, to)).collect()),
    }
}

/// Literals of which a text must hold at least one, when such a set exists:
/// a condition reduced to what one fast scan can check. An AND keeps its most
/// selective side, an OR needs the literals of all its sides.
fn necessary(cond: &Cond, lits: &Interner) -> Option<Vec<u32>> {
    match cond {
        Cond::True => None,
        Cond::Lit(i) => Some(vec![*i]),
        Cond::Or(v) => {
            let mut all = Vec::new();
            for c in v {
                all.extend(necessary(c, lits)?);
            }
            all.sort_unstable();
            all.dedup();
            Some(all)
        }
        Cond::And(v) => v
            .iter()
            .filter_map(|c| necessary(c, lits))
            .max_by_key(|set| {
                // Longer shortest literal first, then fewer literals.
                let shortest = set
                    .iter()
                    .map(|&i| lits.list[i as usize].text.len())
                    .min()
                    .unwrap_or(0);
                (shortest.min(12), usize::MAX - set.len())
            }),
    }
}

/// Automata finding a set of literals: the case-sensitive ones (with a SIMD
/// searcher for "is any there") and the case-insensitive ones apart.
#[derive(Debug, Clone, Default)]
struct Finder {
    exact: Option<AhoCorasick>,
    packed: Option<packed::Searcher>,
    caseless: Option<AhoCorasick>,
    /// Pattern index in each automaton -> literal index.
    ids: [Vec<u32>; 2],
}

impl Finder {
    /// A finder of the literals; with `overlapping`, able to report each
    /// of them ([`Finder::all`]), else only whether any is there.
    fn new<'a>(lits: impl Iterator<Item = (u32, &'a Literal)>, overlapping: bool) -> Finder {
        let mut f = Finder::default();
        let mut texts: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
        for (i, l) in lits {
            texts[l.caseless as usize].push(&l.text);
            f.ids[l.caseless as usize].push(i);
        }
        let build = |t: &[&str], caseless: bool| {
            (!t.is_empty()).then(|| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(caseless)
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(t)
                    .expect("literal automaton")
            })
        };
        f.caseless = build(&texts[1], true);
        if !overlapping {
            // Leftmost-first finds a match whenever any literal occurs.
            f.packed = (!texts[0].is_empty())
                .then(|| packed::Searcher::new(texts[0].iter()))
                .flatten();
        }
        if f.packed.is_none() {
            f.exact = build(&texts[0], false);
        }
        f
    }

    fn is_match(&self, text: &[u8]) -> bool {
        if text.is_empty() {
            return false;
        }
        // Standard (not leftmost) matching: a find stops at the first match
        // as `is_match` does.
        self.find_exact(text).is_some() || self.caseless.as_ref().is_some_and(|a| a.is_match(text))
    }

    /// Where the first case-sensitive literal in `text` starts.
    fn find_exact(&self, text: &[u8]) -> Option<usize> {
        match (&self.packed, &self.exact) {
            (Some(p), _) => p.find(text).map(|m| m.start()),
            (None, Some(a)) => a.find(text).map(|m| m.start()),
            (None, None) => None,
        }
    }

    /// Where the first literal in `text[from..]` starts.
    fn find_from(&self, text: &[u8], from: usize) -> Option<usize> {
        let rest = text.get(from..)?;
        let exact = self.find_exact(rest);
        let caseless = self
            .caseless
            .as_ref()
            .and_then(|a| a.find(rest))
            .map(|m| m.start());
        match (exact, caseless) {
            (Some(a), Some(b)) => Some(from + a.min(b)),
            (a, b) => a.or(b).map(|p| from + p),
        }
    }

    fn all(&self, text: &[u8], hits: &mut Hits) {
        for (a, ids) in [&self.exact, &self.caseless].iter().zip(&self.ids) {
            if let Some(a) = a {
                for m in a.find_overlapping_iter(text) {
                    hits.set(ids[m.pattern().as_usize()]);
                }
            }
        }
    }
}

/// Shortest common prefix that stands for several literals in a gate.
const GATE_PREFIX: usize = 12;

/// What a gate looks for instead of `literals`: each without leading
/// blanks and punctuation, and literals sharing a long prefix (`Connection
/// closed by`, `Connection closed from`) as that prefix.
fn gate_parts<'a>(literals: impl Iterator<Item = &'a Literal>) -> Vec<Literal> {
    let mut parts: Vec<Literal> = literals
        .map(|l| {
            let from = l.text.find(|c: char| c.is_alphanumeric()).unwrap_or(0);
            let text = if l.text.len() - from >= MIN_LITERAL {
                &l.text[from..]
            } else {
                &l.text[..]
            };
            Literal {
                text: text.to_string(),
                caseless: l.caseless,
            }
        })
        .collect();
    parts.sort();
    let mut out: Vec<Literal> = Vec::new();
    for p in parts {
        if let Some(last) = out.last_mut().filter(|l| l.caseless == p.caseless) {
            let common = common_prefix(&last.text, &p.text);
            if common >= GATE_PREFIX {
                last.text.truncate(common);
                continue;
            }
        }
        out.push(p);
    }
    out
}

/// Length of the common prefix of `a` and `b`, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// One check of the prefilter: does a text hold any of these literals?
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    /// None: every text passes.
    finder: Option<Finder>,
    /// The gate's literals as bits of the filter's literal list.
    mask: Hits,
}

impl Gate {
    fn new(set: Option<Vec<u32>>, literals: &[Literal], index: &HashMap<u32, u32>) -> Gate {
        let mut mask = Hits::with_len(literals.len());
        let Some(set) = set else {
            return Gate { finder: None, mask };
        };
        let mine: Vec<u32> = set.iter().map(|i| index[i]).collect();
        mine.iter().for_each(|&i| mask.set(i));
        // A gate only asks "any of them?": parts of the literals answer it
        // too (over-approximating), and fewer distinct ones scan faster.
        let parts = gate_parts(mine.iter().map(|&i| &literals[i as usize]));
        let kept: Vec<&Literal> = parts
            .iter()
            .filter(|p| !parts.iter().any(|q| q != *p && p.implies(q)))
            .collect();
        Gate {
            finder: Some(Finder::new(kept.into_iter().map(|l| (0, l)), false)),
            mask,
        }
    }

    pub(crate) fn always(&self) -> bool {
        self.finder.is_none()
    }

    /// Whether `text` holds one of the literals.
    pub(crate) fn scan(&self, text: &[u8]) -> bool {
        self.finder.as_ref().map_or(true, |f| f.is_match(text))
    }

    /// Whether a shared scan found one of the literals.
    pub(crate) fn in_hits(&self, hits: &Hits) -> bool {
        self.finder.is_none() || self.mask.meets(hits)
    }
}

/// The prefilter of one filter: two gates, before the prefregex (can the
/// line matter at all?) and after it (can a failregex match?).
#[derive(Debug, Clone)]
pub struct Prefilter {
    literals: Vec<Literal>,
    pub(crate) before: Gate,
    pub(crate) after: Gate,
    /// Per regex given to [`Prefilter::new`]: the literals of which a text
    /// it matches holds one (None: no such set).
    pub(crate) each: Vec<Option<Hits>>,
    longest: usize,
    /// Every literal, for [`Prefilter::scan`] (built on first use).
    all: OnceLock<Finder>,
}

impl Prefilter {
    /// The gates `before` and `after`, and a mask for each of `each` (the
    /// failregexes, so that a line's literals tell which ones can match).
    pub(crate) fn new(lits: &Interner, before: &Cond, after: &Cond, each: &[&Cond]) -> Prefilter {
        let (b, a) = (necessary(before, lits), necessary(after, lits));
        let sets: Vec<Option<Vec<u32>>> = each.iter().map(|c| necessary(c, lits)).collect();
        let mut used: Vec<u32> = b
            .iter()
            .chain(a.iter())
            .chain(sets.iter().flatten())
            .flatten()
            .copied()
            .collect();
        used.sort_unstable();
        used.dedup();
        let index: HashMap<u32, u32> = used
            .iter()
            .enumerate()
            .map(|(n, &i)| (i, n as u32))
            .collect();
        let literals: Vec<Literal> = used
            .iter()
            .map(|&i| lits.list[i as usize].clone())
            .collect();
        let each = sets
            .into_iter()
            .map(|set| {
                let mut mask = Hits::with_len(literals.len());
                set?.iter().for_each(|i| mask.set(index[i]));
                Some(mask)
            })
            .collect();
        Prefilter {
            longest: literals.iter().map(|l| l.text.len()).max().unwrap_or(0),
            before: Gate::new(b, &literals, &index),
            after: Gate::new(a, &literals, &index),
            each,
            all: OnceLock::new(),
            literals,
        }
    }

    /// The literals a line is checked for. A scan shared between filters
    /// reports literal `i` of this list as bit `i` of a [`Hits`] made by
    /// [`Prefilter::hits`] (it must find overlapping occurrences).
    pub fn literals(&self) -> &[Literal] {
        &self.literals
    }

    /// The length of the longest literal, in bytes.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// An empty hit set sized for this prefilter.
    pub fn hits(&self) -> Hits {
        Hits::with_len(self.literals.len())
    }

    /// Adds every literal found in `text` to `hits`, as a shared scan does.
    pub fn scan(&self, text: &[u8], hits: &mut Hits) {
        let all = self.all.get_or_init(|| {
            let lits = self.literals.iter().enumerate();
            Finder::new(lits.map(|(i, l)| (i as u32, l)), true)
        });
        all.all(text, hits);
    }

    /// For a scan of many lines at once: where in `text[from..]` the first
    /// literal of the first gate starts (`from` itself when the gate lets
    /// every line by). A line holding none of them needs no regex, unless
    /// cutting its date out joins one (see [`Filter::process_line_gated`]).
    ///
    /// [`Filter::process_line_gated`]: super::Filter::process_line_gated
    pub fn next_candidate(&self, text: &[u8], from: usize) -> Option<usize> {
        match &self.before.finder {
            None => Some(from),
            Some(f) => f.find_from(text, from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pyre::parse;
    use super::*;

    fn cond(p: &str) -> (Cond, Vec<String>) {
        let mut lits = Interner::default();
        let c = required(&parse(p, 0).unwrap().node, &mut lits);
        (
            c,
            lits.list
                .into_iter()
                .map(|l| {
                    if l.caseless {
                        format!("(?i){}", l.text)
                    } else {
                        l.text
                    }
                })
                .collect(),
        )
    }

    fn accepts(p: &str, text: &str) -> bool {
        let mut lits = Interner::default();
        let c = required(&parse(p, 0).unwrap().node, &mut lits);
        let pf = Prefilter::new(&lits, &c, &Cond::True, &[&c]);
        let mut own = pf.hits();
        pf.scan(text.as_bytes(), &mut own);
        let exact = pf.each[0].as_ref().map_or(true, |m| m.meets(&own));
        assert_eq!(exact, pf.before.in_hits(&own));
        // The gate looks for parts of the literals: it may open for more.
        assert!(pf.before.scan(text.as_bytes()) || !exact);
        exact
    }

    #[test]
    fn literals_and_alternatives() {
        let (c, lits) = cond(r"^\s*Failed password for (?:invalid user )?\S+ from \d+");
        assert_eq!(lits, ["Failed password for ", " from "]);
        assert_eq!(c, Cond::And(vec![Cond::Lit(0), Cond::Lit(1)]));
        let (c, lits) = cond(r"(?:authentication failure|Invalid user) x");
        assert_eq!(lits, ["Invalid user x", "authentication failure x"]);
        assert_eq!(c, Cond::Or(vec![Cond::Lit(0), Cond::Lit(1)]));
    }

    #[test]
    fn optional_and_short_parts_require_nothing() {
        assert_eq!(cond(r"(?:abc)*x").0, Cond::True);
        assert_eq!(cond(r"a|bcd").0, Cond::True);
        assert_eq!(cond(r"\w+\s\d").0, Cond::True);
        assert_eq!(cond(r"(?=abcd)x|(?!efgh)y").0, Cond::True);
        assert_eq!(cond(r"(a)\1").0, Cond::True);
    }

    #[test]
    fn case_and_classes() {
        assert!(accepts(r"(?i)user unknown", "USER UNKNOWN"));
        assert!(!accepts(r"User Unknown", "user unknown"));
        assert_eq!(cond(r"(?i:bad) login").1, ["(?i)bad login"]);
        assert!(accepts(r"(?i:bad) login", "BAD LOGIN"));
        // `k` and `s` fold to non-ASCII letters: they end literals.
        assert_eq!(cond(r"(?i)ask").1, Vec::<String>::new());
        assert_eq!(cond(r"(?i)maker").1, Vec::<String>::new());
        assert_eq!(cond(r"[Ff]ailed").1, ["Failed", "failed"]);
        assert!(accepts(r"[Ff]ailed", "failed"));
        assert!(!accepts(r"[Ff]ailed", "FAILED"));
    }

    #[test]
    fn gates_look_for_shared_prefixes() {
        let lit = |t: &str| Literal {
            text: t.into(),
            caseless: false,
        };
        let parts = gate_parts(
            [
                lit("Connection closed by"),
                lit(" not allowed because x"),
                lit("Connection closed from"),
                lit("Connection from "),
                lit(": 4"),
            ]
            .iter(),
        );
        let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                ": 4",
                "Connection closed ",
                "Connection from ",
                "not allowed because x"
            ]
        );
        let mut lits = Interner::default();
        let re = "(?:Connection closed by|Connection closed from) x";
        let c = required(&parse(re, 0).unwrap().node, &mut lits);
        let pf = Prefilter::new(&lits, &c, &Cond::True, &[]);
        assert!(pf.before.scan(b"Connection closed x"));
        assert!(!pf.before.scan(b"Connection reset by"));
    }

    #[test]
    fn longer_literals_holding_shorter_ones_are_dropped() {
        assert_eq!(cond(r"(?:auth |)failure").1, ["failure"]);
        // A case-insensitive literal proves nothing of a case-sensitive one.
        assert_eq!(cond(r"(?:(?i:x )|)Fail").1, ["Fail", "(?i)x fail"]);
    }

    #[test]
    fn line_breaks_split_literals() {
        let (c, lits) = cond("first line\nsecond line");
        assert_eq!(lits, ["first line", "second line"]);
        assert_eq!(c, Cond::And(vec![Cond::Lit(0), Cond::Lit(1)]));
    }
}
