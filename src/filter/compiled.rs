//! One filter regex compiled as Fail2ban compiles it (tags expanded, inline
//! flags scoped, Python dialect translated to PCRE2), with what matching needs:
//! its named groups under Fail2ban's names, `alt_`/`tuple_` merging, the
//! `<SKIPLINES>` groups, and its prefilter condition.

use super::pcre::{Flags, Regex, Scratch};
use super::prefilter::{required, Cond, Interner};
use super::pyre::{self, At, Node, RepeatKind, FLAG_I, FLAG_M, FLAG_S};
use super::tags;
use crate::config::UseDns;
use std::sync::Arc;

/// The group names that identify a failure (or a multi-line connection).
const ID_GROUPS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];

#[derive(Debug)]
pub(crate) struct Compiled {
    /// The regex as Fail2ban shows it: tags expanded, inline flags scoped.
    pub text: String,
    pub re: Regex,
    pub cond: Cond,
    /// (group index, name) in order of definition.
    pub names: Vec<(usize, Arc<str>)>,
    /// `alt_NAME[_N]` groups merged into `NAME` when it is empty, sorted.
    alt: Vec<(Arc<str>, Arc<str>)>,
    /// `tuple_NAME[_N]` groups combined with `NAME` into a tuple, sorted.
    tuple: Vec<(Arc<str>, Arc<str>)>,
    /// Indices of `skiplines0`, `skiplines1`, ...
    pub skiplines: Vec<usize>,
    /// Whether every match starts at the start of the text (`^...`): such a
    /// regex fails fast on a line it does not fit.
    pub anchored: bool,
    /// For an anchored regex: the bytes a text it matches can start with
    /// (None: any, or not known).
    pub first: Option<FirstBytes>,
    /// Some(n) when the regex matches every line (text without `\n`, then
    /// the `\n` Fail2ban appends) of at least n characters; see [`any_line`].
    pub any_line: Option<usize>,
}

/// A named value of a match: None when the group did not take part.
pub(crate) type Groups = Vec<(Arc<str>, Option<String>)>;

impl Compiled {
    /// Compiles `raw` (a filter option value). `multiline` is Fail2ban's flag
    /// for failregexes of a filter with `maxlines > 1`.
    pub(crate) fn new(
        raw: &str,
        usedns: UseDns,
        multiline: bool,
        lits: &mut Interner,
    ) -> Result<Compiled, String> {
        let expanded = tags::expand(raw, usedns);
        if expanded.trim_start().is_empty() {
            return Err("Cannot add empty regex".into());
        }
        let text = tags::scope_inline_flags(&expanded);
        let fail = |e: &dyn std::fmt::Display| {
            format!("Unable to compile regular expression '{text}':\n{e}")
        };
        let parsed =
            pyre::parse(&text, if multiline { FLAG_M } else { 0 }).map_err(|e| fail(&e))?;
        let flags = Flags {
            caseless: parsed.flags & FLAG_I != 0,
            multiline: parsed.flags & FLAG_M != 0,
            dotall: parsed.flags & FLAG_S != 0,
            ucp: true,
            alt_circumflex: true,
            partial: false,
        };
        let re = Regex::new(&pyre::to_pcre2(&parsed), flags).map_err(|e| fail(&e))?;
        let cond = required(&parsed.node, lits);
        let any_line = any_line(&parsed.node, parsed.flags);
        let anchored = starts_anchored(&parsed.node);
        let first = match &parsed.node {
            Node::Concat(v) if anchored && parsed.flags & FLAG_M == 0 => first_bytes(&v[1..]),
            _ => None,
        };
        let names: Vec<(usize, Arc<str>)> = re
            .names()
            .iter()
            .map(|(i, n)| (*i, Arc::from(&**n)))
            .collect();
        let (mut alt, mut tuple) = (Vec::new(), Vec::new());
        for (_, k) in &names {
            if k.len() <= "alt_".len() {
                continue;
            }
            if let Some(n) = k.strip_prefix("alt_") {
                alt.push((k.clone(), complex_target(n)));
            } else if let Some(n) = k.strip_prefix("tuple_") {
                tuple.push((k.clone(), complex_target(n)));
            }
        }
        alt.sort();
        tuple.sort();
        let mut skiplines = Vec::new();
        while let Some(i) = re.group_index(&format!("skiplines{}", skiplines.len())) {
            skiplines.push(i);
        }
        Ok(Compiled {
            text,
            re,
            cond,
            names,
            alt,
            tuple,
            skiplines,
            anchored,
            first,
            any_line,
        })
    }

    pub(crate) fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|(_, n)| &**n == name)
    }

    /// Whether a failure id (or a connection id) can come out of this regex.
    pub(crate) fn has_id_group(&self) -> bool {
        ID_GROUPS.iter().any(|g| self.has_group(g))
    }

    /// Fail2ban's `getGroups`: every named group (None when it did not take
    /// part), then `alt_` and `tuple_` merging.
    pub(crate) fn groups(
        &self,
        text: &str,
        span: impl Fn(usize) -> Option<(usize, usize)>,
    ) -> Groups {
        let mut g: Groups = self
            .names
            .iter()
            .map(|(i, n)| (n.clone(), span(*i).map(|(s, e)| text[s..e].to_string())))
            .collect();
        for (k, n) in &self.alt {
            let v = get(&g, k).filter(|v| !v.is_empty()).map(str::to_string);
            if let Some(v) = v {
                if get(&g, n).map_or(true, str::is_empty) {
                    set(&mut g, n, Some(v));
                }
            }
        }
        let mut done: Vec<&Arc<str>> = Vec::new();
        for (_, n) in &self.tuple {
            if done.contains(&n) {
                continue;
            }
            done.push(n);
            let mut items = vec![get(&g, n).map(str::to_string)];
            items.extend(
                self.tuple
                    .iter()
                    .filter(|(_, t)| t == n)
                    .map(|(k, _)| get(&g, k).map(str::to_string)),
            );
            set(&mut g, n, Some(py_tuple(&items)));
        }
        g
    }

    /// The text of the `<SKIPLINES>` groups, split into lines as Python's
    /// `str.splitlines` does.
    pub(crate) fn skipped_lines(
        &self,
        text: &str,
        span: impl Fn(usize) -> Option<(usize, usize)>,
    ) -> Vec<String> {
        let mut all = String::new();
        for &i in &self.skiplines {
            if let Some((s, e)) = span(i) {
                all.push_str(&text[s..e]);
            }
        }
        splitlines(&all)
    }
}

/// A set of bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FirstBytes([u64; 4]);

impl FirstBytes {
    fn add(&mut self, b: u8) {
        self.0[b as usize / 64] |= 1 << (b % 64);
    }

    fn union(&mut self, o: &FirstBytes) {
        self.0.iter_mut().zip(o.0).for_each(|(a, b)| *a |= b);
    }

    /// Whether a text starting with `b` may match.
    pub(crate) fn allows(&self, b: u8) -> bool {
        self.0[b as usize / 64] & (1 << (b % 64)) != 0
    }
}

/// Whether `n` can match without consuming a character.
fn nullable(n: &Node) -> bool {
    match n {
        Node::Lit { .. } | Node::Any | Node::Class { .. } => false,
        Node::Group { node, .. } | Node::Atomic(node) => nullable(node),
        Node::Repeat { min, node, .. } => *min == 0 || nullable(node),
        Node::Concat(v) => v.iter().all(nullable),
        Node::Alt(v) => v.iter().any(nullable),
        _ => true,
    }
}

/// The first bytes of what a sequence of nodes matches; None when it may
/// match nothing or a character not worked out here (non-ASCII, classes
/// of categories, case folding beyond ASCII).
fn first_bytes(seq: &[Node]) -> Option<FirstBytes> {
    let mut set = FirstBytes::default();
    for n in seq {
        set.union(&first_of(n)?);
        if !nullable(n) {
            return Some(set);
        }
    }
    None
}

fn first_of(n: &Node) -> Option<FirstBytes> {
    let mut set = FirstBytes::default();
    // An ASCII character and, caseless, its other case (`k` and `s` also
    // fold to non-ASCII letters: unknown).
    let mut ascii = |c: char, icase: bool| -> Option<()> {
        if !c.is_ascii() || (icase && matches!(c.to_ascii_lowercase(), 'k' | 's')) {
            return None;
        }
        set.add(c as u8);
        if icase {
            set.add(c.to_ascii_lowercase() as u8);
            set.add(c.to_ascii_uppercase() as u8);
        }
        Some(())
    };
    match n {
        Node::Lit { c, icase } => ascii(*c, *icase)?,
        Node::Class {
            negated: false,
            items,
            icase,
            ..
        } => {
            for item in items {
                match *item {
                    pyre::ClassItem::Char(c) => ascii(c, *icase)?,
                    pyre::ClassItem::Range(a, b) if a <= b && b.is_ascii() => {
                        for c in a..=b {
                            ascii(c, *icase)?;
                        }
                    }
                    _ => return None,
                }
            }
        }
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } => {
            return first_of(node)
        }
        Node::Concat(v) => return first_bytes(v),
        Node::Alt(v) => {
            for alt in v {
                set.union(&first_of(alt)?);
            }
        }
        Node::At { .. } | Node::Look { .. } | Node::Empty => {}
        _ => return None,
    }
    Some(set)
}

fn starts_anchored(n: &Node) -> bool {
    match n {
        Node::At {
            at: At::Begin | At::BeginString,
            ..
        } => true,
        Node::Group { node, .. } | Node::Atomic(node) => starts_anchored(node),
        Node::Concat(v) => v.first().is_some_and(starts_anchored),
        Node::Alt(v) => v.iter().all(starts_anchored),
        _ => false,
    }
}

/// Recognises the prefregex shape `^(?:optional)...(?P<content>.+)$`: a
/// start anchor, parts that can all match nothing, then `.+` (or `.*`) and
/// `$`. With every part empty, `.+$` takes the whole line, so such a regex
/// matches every line of at least one (zero) characters, whatever the
/// parts hold. Returns that minimum length; None for any other shape
/// (a possessive or atomic part may keep what `.+` needs, dot-all or
/// multi-line flags change what `.` and `$` see).
fn any_line(node: &Node, flags: u8) -> Option<usize> {
    fn skippable(n: &Node) -> bool {
        match n {
            Node::Empty => true,
            Node::Repeat { min: 0, kind, .. } => *kind != RepeatKind::Possessive,
            Node::Group { node, .. } => skippable(node),
            Node::Concat(v) => v.iter().all(skippable),
            Node::Alt(v) => v.iter().any(skippable),
            _ => false,
        }
    }
    fn rest_of_line(n: &Node) -> Option<usize> {
        match n {
            Node::Group { node, add, .. } if add & FLAG_S == 0 => rest_of_line(node),
            Node::Repeat {
                min: min @ (0 | 1),
                max: None,
                node,
                ..
            } if **node == Node::Any => Some(*min as usize),
            _ => None,
        }
    }
    if flags & (FLAG_S | FLAG_M) != 0 {
        return None;
    }
    let Node::Concat(items) = node else {
        return None;
    };
    match &items[..] {
        [Node::At { at: At::Begin, .. }, middle @ .., tail, Node::At { at: At::End, .. }]
            if middle.iter().all(skippable) =>
        {
            rest_of_line(tail)
        }
        _ => None,
    }
}

/// `alt_user_1` -> `user`, `tuple_id` -> `fid`.
fn complex_target(rest: &str) -> Arc<str> {
    let base = match rest.rfind('_') {
        Some(p) if p + 1 < rest.len() && rest[p + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &rest[..p]
        }
        _ => rest,
    };
    tags::group_name(base).into()
}

pub(crate) fn get<'a>(g: &'a Groups, name: &str) -> Option<&'a str> {
    g.iter()
        .find(|(n, _)| &**n == name)
        .and_then(|(_, v)| v.as_deref())
}

pub(crate) fn set(g: &mut Groups, name: &str, v: Option<String>) {
    match g.iter_mut().find(|(n, _)| &**n == name) {
        Some((_, slot)) => *slot = v,
        None => g.push((name.into(), v)),
    }
}

/// As [`set`], with the name already shared.
pub(crate) fn set_named(g: &mut Groups, name: Arc<str>, v: Option<String>) {
    match g.iter_mut().find(|(n, _)| *n == name) {
        Some((_, slot)) => *slot = v,
        None => g.push((name, v)),
    }
}

pub(crate) fn pop(g: &mut Groups, name: &str) -> Option<String> {
    let i = g.iter().position(|(n, _)| &**n == name)?;
    g.remove(i).1
}

/// Python's `repr` of a tuple of optional strings.
fn py_tuple(items: &[Option<String>]) -> String {
    let mut out = String::from("(");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match it {
            None => out.push_str("None"),
            Some(s) => crate::util::py_str_repr(&mut out, s),
        }
    }
    if items.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}

/// Python's `str.splitlines()`.
pub(crate) fn splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Runs `re` over `text`, reporting PCRE2 limit hits through `on_limit`.
pub(crate) fn search(
    re: &Compiled,
    text: &str,
    scratch: &mut Scratch,
    on_limit: &mut dyn FnMut(&Compiled),
) -> bool {
    match re.re.find(text, scratch) {
        Ok(m) => m,
        Err(_) => {
            on_limit(re);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complex_names() {
        assert_eq!(&*complex_target("user_1"), "user");
        assert_eq!(&*complex_target("user"), "user");
        assert_eq!(&*complex_target("id"), "fid");
        assert_eq!(&*complex_target("user_x"), "user_x");
    }

    #[test]
    fn python_splitlines_and_repr() {
        assert_eq!(
            splitlines("a\nb\r\nc\rd\x0be\u{2028}"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(splitlines(""), Vec::<String>::new());
        assert_eq!(
            py_tuple(&[Some("a".into()), None, Some("it's".into())]),
            r#"('a', None, "it's")"#
        );
    }

    #[test]
    fn alt_and_tuple_groups_merge() {
        let mut lits = Interner::default();
        let c = Compiled::new(
            r"(?:user <F-USER>\w+</F-USER>|alias <F-ALT_USER>\w+</F-ALT_USER>) id <F-ID>\d+</F-ID>-<F-TUPLE_ID>\d+</F-TUPLE_ID>",
            UseDns::Warn,
            false,
            &mut lits,
        )
        .unwrap();
        let mut s = Scratch::default();
        let text = "alias bob id 7-8";
        assert!(c.re.find(text, &mut s).unwrap());
        let g = c.groups(text, |i| s.get(i));
        assert_eq!(get(&g, "user"), Some("bob"));
        assert_eq!(get(&g, "fid"), Some("('7', '8')"));
    }

    #[test]
    fn compile_errors_read_like_fail2ban() {
        let mut lits = Interner::default();
        assert_eq!(
            Compiled::new("  ", UseDns::Warn, false, &mut lits).unwrap_err(),
            "Cannot add empty regex"
        );
        let e = Compiled::new("a(<HOST>", UseDns::No, false, &mut lits).unwrap_err();
        assert!(
            e.starts_with("Unable to compile regular expression 'a(\\[?"),
            "{e}"
        );
        assert!(
            e.ends_with("missing ), unterminated subpattern at position 1"),
            "{e}"
        );
    }
}
