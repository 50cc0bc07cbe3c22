//! The literal prefilter: from each parsed regex, a condition over literal
//! substrings that every match must contain (an AND/OR tree, as RE2's
//! prefilter builds), and one Aho-Corasick scan per line that tells which
//! literals are present. A line whose literals cannot satisfy a regex's
//! condition is never given to that regex.
//!
//! The conditions only ever over-approximate: literals are matched ASCII
//! case-insensitively, a case-insensitive character with non-ASCII case
//! partners (`k`, `s`, any non-ASCII letter) ends a literal, repeats that may
//! be empty, classes of more than a few characters, backreferences and
//! conditionals require nothing, lookarounds require nothing, and literals
//! never span a line break (multi-line windows are joined by `\n`).

use super::pyre::{ClassItem, Node};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;

/// Largest exact set kept before it is turned into a condition.
const MAX_EXACT: usize = 16;
/// Shortest literal worth a lookup; shorter ones require nothing.
const MIN_LITERAL: usize = 3;
/// Largest character class expanded into alternatives.
const MAX_CLASS: usize = 8;

/// A condition on which literals a text contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    True,
    Lit(u32),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    fn and(items: Vec<Cond>) -> Cond {
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

    pub(crate) fn eval(&self, hits: &Hits) -> bool {
        match self {
            Cond::True => true,
            Cond::Lit(i) => hits.get(*i),
            Cond::And(v) => v.iter().all(|c| c.eval(hits)),
            Cond::Or(v) => v.iter().any(|c| c.eval(hits)),
        }
    }

    pub(crate) fn is_true(&self) -> bool {
        *self == Cond::True
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

    pub fn union(&mut self, other: &Hits) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }
}

/// Interns literals (ASCII lower-cased) while conditions are built.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// What a node can match: its exact set of strings when small, else a
/// condition every match satisfies.
struct Info {
    exact: Option<Vec<String>>,
    cond: Cond,
}

impl Info {
    fn any() -> Info {
        Info {
            exact: None,
            cond: Cond::True,
        }
    }

    fn exact(v: Vec<String>) -> Info {
        Info {
            exact: Some(v),
            cond: Cond::True,
        }
    }

    fn empty() -> Info {
        Info::exact(vec![String::new()])
    }

    fn into_cond(self, lits: &mut Interner) -> Cond {
        match self.exact {
            Some(set) => set_cond(&set, lits),
            None => self.cond,
        }
    }
}

fn set_cond(set: &[String], lits: &mut Interner) -> Cond {
    let mut alts = Vec::with_capacity(set.len());
    // A string holding another of the set adds nothing to their OR.
    let minimal = set.iter().filter(|s| {
        !set.iter()
            .any(|o| o.len() < s.len() && s.contains(o.as_str()))
    });
    for s in minimal {
        let pieces: Vec<Cond> = s
            .split('\n')
            .filter(|p| p.len() >= MIN_LITERAL)
            .map(|p| Cond::Lit(lits.id(p)))
            .collect();
        if pieces.is_empty() {
            return Cond::True;
        }
        alts.push(Cond::and(pieces));
    }
    Cond::or(alts)
}

/// The text a literal character stands for in the scan, or None when the
/// ASCII case-insensitive scan could miss what the regex matches.
fn lit_char(c: char, icase: bool) -> Option<char> {
    if icase && (!c.is_ascii() || matches!(c, 'k' | 'K' | 's' | 'S')) {
        return None;
    }
    Some(c.to_ascii_lowercase())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
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
                Some(c) => chars.push(c.to_string()),
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
            Some(c) => Info::exact(vec![c.to_string()]),
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
                        set.push(String::new());
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
            let mut cur = vec![String::new()];
            for item in items {
                let i = info(item, lits);
                match i.exact {
                    Some(set) if cur.len() * set.len() <= MAX_EXACT => {
                        cur = sorted(
                            cur.iter()
                                .flat_map(|a| set.iter().map(move |b| format!("{a}{b}")))
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
                        cur = vec![String::new()];
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

/// The literals of one filter and the automaton that finds them.
#[derive(Debug, Clone)]
pub struct Prefilter {
    literals: Vec<String>,
    ac: Option<AhoCorasick>,
    longest: usize,
}

impl Prefilter {
    pub(crate) fn new(lits: Interner) -> Prefilter {
        let longest = lits.list.iter().map(String::len).max().unwrap_or(0);
        let ac = (!lits.list.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&lits.list)
                .expect("literal automaton")
        });
        Prefilter {
            literals: lits.list,
            ac,
            longest,
        }
    }

    /// The literals (ASCII lower-case, to be found ASCII case-insensitively);
    /// a shared scan reports literal `i` of this list as bit `i`.
    pub fn literals(&self) -> &[String] {
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

    /// Empties `hits` and sizes it for this prefilter.
    pub fn reset(&self, hits: &mut Hits) {
        hits.bits.clear();
        hits.bits.resize(self.literals.len().div_ceil(64), 0);
    }

    /// Adds the literals found in `text` to `hits`.
    pub fn scan(&self, text: &[u8], hits: &mut Hits) {
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text) {
                hits.set(m.pattern().as_u32());
            }
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
        (c, lits.list)
    }

    fn accepts(p: &str, text: &str) -> bool {
        let mut lits = Interner::default();
        let c = required(&parse(p, 0).unwrap().node, &mut lits);
        let pf = Prefilter::new(lits);
        let mut hits = pf.hits();
        pf.scan(text.as_bytes(), &mut hits);
        c.eval(&hits)
    }

    #[test]
    fn literals_and_alternatives() {
        let (c, lits) = cond(r"^\s*Failed password for (?:invalid user )?\S+ from \d+");
        assert_eq!(lits, ["failed password for ", " from "]);
        assert_eq!(c, Cond::And(vec![Cond::Lit(0), Cond::Lit(1)]));
        let (c, lits) = cond(r"(?:authentication failure|Invalid user) x");
        assert_eq!(lits, ["authentication failure x", "invalid user x"]);
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
        assert!(accepts(r"User Unknown", "user unknown"));
        // `k` and `s` fold to non-ASCII letters: they end literals.
        assert_eq!(cond(r"(?i)ask").1, Vec::<String>::new());
        assert_eq!(cond(r"(?i)maker").1, Vec::<String>::new());
        assert_eq!(cond(r"[Ff]ailed").1, ["failed"]);
        assert!(accepts(r"[Ff]ailed", "FAILED"));
        assert!(!accepts(r"[Ff]ailed", "fail ed"));
    }

    #[test]
    fn line_breaks_split_literals() {
        let (c, lits) = cond("first line\nsecond line");
        assert_eq!(lits, ["first line", "second line"]);
        assert_eq!(c, Cond::And(vec![Cond::Lit(0), Cond::Lit(1)]));
    }
}
