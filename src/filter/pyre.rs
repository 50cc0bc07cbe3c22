//! Python `re` patterns: parsed by Python 3.11's rules (so that a pattern
//! Fail2ban rejects is rejected here too) into a small tree, then written out
//! as PCRE2 with Python's meaning of `\s`, `\w`, `\b`, `\Z`, `{,n}`, scoped and
//! global inline flags. The tree also feeds the literal prefilter.

use std::collections::HashMap;
use std::fmt::Write;

/// Python's `MAXREPEAT` (an unbounded repeat).
const MAXREPEAT: u64 = u32::MAX as u64;
/// PCRE2's largest quantifier bound.
const PCRE2_MAX_REPEAT: u32 = 65535;

pub(crate) const FLAG_I: u8 = 1;
pub(crate) const FLAG_M: u8 = 2;
pub(crate) const FLAG_S: u8 = 4;
pub(crate) const FLAG_X: u8 = 8;
pub(crate) const FLAG_A: u8 = 16;
pub(crate) const FLAG_U: u8 = 32;

/// A pattern Python would refuse, with its message and character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyError {
    pub message: String,
    pub position: usize,
}

impl std::fmt::Display for PyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for PyError {}

/// `\d`, `\s`, `\w` (and their complements when `negated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Digit,
    Space,
    Word,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClassItem {
    Char(char),
    Range(char, char),
    Cat(Category, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    Begin,
    End,
    BeginString,
    EndString,
    Boundary,
    NonBoundary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepeatKind {
    Greedy,
    Lazy,
    Possessive,
}

/// A parsed pattern node. `icase` and `ascii` record the flags in force where
/// the node stands (the writer emits scoped flags as groups; the prefilter
/// needs them per node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Empty,
    Lit {
        c: char,
        icase: bool,
    },
    Any,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
        icase: bool,
        ascii: bool,
    },
    At {
        at: At,
        ascii: bool,
    },
    Look {
        behind: bool,
        negated: bool,
        node: Box<Node>,
    },
    Group {
        index: Option<u32>,
        name: Option<String>,
        add: u8,
        del: u8,
        node: Box<Node>,
    },
    Atomic(Box<Node>),
    Repeat {
        min: u32,
        max: Option<u32>,
        kind: RepeatKind,
        node: Box<Node>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Backref(u32),
    Cond {
        group: u32,
        yes: Box<Node>,
        no: Option<Box<Node>>,
    },
}

/// A parsed pattern with its global flags.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub node: Node,
    pub flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    C(char),
    E(char),
}

struct Source {
    chars: Vec<char>,
    index: usize,
    next: Option<Tok>,
}

impl Source {
    fn new(pattern: &str) -> Result<Source, PyError> {
        let mut s = Source {
            chars: pattern.chars().collect(),
            index: 0,
            next: None,
        };
        s.advance()?;
        Ok(s)
    }

    fn advance(&mut self) -> Result<(), PyError> {
        let i = self.index;
        let Some(&c) = self.chars.get(i) else {
            self.next = None;
            return Ok(());
        };
        if c == '\\' {
            let Some(&e) = self.chars.get(i + 1) else {
                return Err(PyError {
                    message: "bad escape (end of pattern)".into(),
                    position: self.chars.len() - 1,
                });
            };
            self.index = i + 2;
            self.next = Some(Tok::E(e));
        } else {
            self.index = i + 1;
            self.next = Some(Tok::C(c));
        }
        Ok(())
    }

    fn get(&mut self) -> Result<Option<Tok>, PyError> {
        let t = self.next;
        self.advance()?;
        Ok(t)
    }

    fn is(&self, c: char) -> bool {
        self.next == Some(Tok::C(c))
    }

    fn eat(&mut self, c: char) -> Result<bool, PyError> {
        if self.is(c) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn tell(&self) -> usize {
        match self.next {
            None => self.index,
            Some(Tok::C(_)) => self.index - 1,
            Some(Tok::E(_)) => self.index - 2,
        }
    }

    fn seek(&mut self, index: usize) -> Result<(), PyError> {
        self.index = index;
        self.advance()
    }

    fn error(&self, message: impl Into<String>, offset: usize) -> PyError {
        PyError {
            message: message.into(),
            position: self.tell().saturating_sub(offset),
        }
    }

    /// Up to `n` plain characters satisfying `pred`.
    fn get_while(&mut self, n: usize, pred: impl Fn(char) -> bool) -> Result<String, PyError> {
        let mut out = String::new();
        for _ in 0..n {
            match self.next {
                Some(Tok::C(c)) if pred(c) => {
                    out.push(c);
                    self.advance()?;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    fn get_until(&mut self, terminator: char, what: &str) -> Result<String, PyError> {
        let mut out = String::new();
        loop {
            let t = self.get()?;
            match t {
                None if out.is_empty() => return Err(self.error(format!("missing {what}"), 0)),
                None => {
                    return Err(self.error(
                        format!("missing {terminator}, unterminated name"),
                        out.chars().count(),
                    ))
                }
                Some(Tok::C(c)) if c == terminator => {
                    if out.is_empty() {
                        return Err(self.error(format!("missing {what}"), 1));
                    }
                    return Ok(out);
                }
                Some(Tok::C(c)) => out.push(c),
                Some(Tok::E(c)) => {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => chars.all(|c| c == '_' || c.is_alphanumeric()),
        _ => false,
    }
}

struct State {
    flags: u8,
    names: Vec<(String, u32)>,
    /// Width of each closed group, None while open; index 0 is the whole pattern.
    widths: Vec<Option<(u64, u64)>>,
    lookbehind_groups: Option<u32>,
    cond_refs: HashMap<u32, usize>,
}

impl State {
    fn groups(&self) -> u32 {
        self.widths.len() as u32
    }

    fn check_group(&self, gid: u32) -> bool {
        gid < self.groups() && self.widths[gid as usize].is_some()
    }

    fn check_lookbehind_group(&self, gid: u32, src: &Source) -> Result<(), PyError> {
        if let Some(lb) = self.lookbehind_groups {
            if !self.check_group(gid) {
                return Err(src.error("cannot refer to an open group", 0));
            }
            if gid >= lb {
                return Err(src.error(
                    "cannot refer to group defined in the same lookbehind subpattern",
                    0,
                ));
            }
        }
        Ok(())
    }

    fn group_index(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
    }
}

/// Parses `pattern` as Python 3.11's `re.compile(pattern, flags)` would.
pub(crate) fn parse(pattern: &str, flags: u8) -> Result<Parsed, PyError> {
    let mut src = Source::new(pattern)?;
    let mut state = State {
        flags,
        names: Vec::new(),
        widths: vec![None],
        lookbehind_groups: None,
        cond_refs: HashMap::new(),
    };
    let node = parse_sub(&mut src, &mut state, flags, flags & FLAG_X != 0, 0)?;
    if state.flags & FLAG_A != 0 && state.flags & FLAG_U != 0 {
        return Err(PyError {
            message: "ASCII and UNICODE flags are incompatible".into(),
            position: 0,
        });
    }
    if src.next.is_some() {
        return Err(src.error("unbalanced parenthesis", 0));
    }
    let groups = state.groups();
    if let Some((g, pos)) = state
        .cond_refs
        .iter()
        .filter(|(g, _)| **g >= groups)
        .min_by_key(|(_, p)| **p)
    {
        return Err(PyError {
            message: format!("invalid group reference {g}"),
            position: *pos,
        });
    }
    check_lookbehinds(&node, &state.widths)?;
    Ok(Parsed {
        node,
        flags: state.flags,
    })
}

/// `local` are the flags in force (global and scoped) for the nodes built here.
fn parse_sub(
    src: &mut Source,
    state: &mut State,
    local: u8,
    verbose: bool,
    nested: u32,
) -> Result<Node, PyError> {
    let mut items = Vec::new();
    let mut verbose = verbose;
    let mut local = local;
    loop {
        let first = nested == 0 && items.is_empty();
        let (item, l) = parse_seq(src, state, local, verbose, nested + 1, first)?;
        items.push(item);
        local = l;
        if !src.eat('|')? {
            break;
        }
        if nested == 0 {
            verbose = state.flags & FLAG_X != 0;
        }
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap()
    } else {
        Node::Alt(items)
    })
}

/// Parses a sequence; returns it and the flags in force after it (a leading
/// global flag group changes them for the rest of the pattern).
fn parse_seq(
    src: &mut Source,
    state: &mut State,
    mut local: u8,
    mut verbose: bool,
    nested: u32,
    first: bool,
) -> Result<(Node, u8), PyError> {
    let mut seq: Vec<Node> = Vec::new();
    while let Some(this) = src.next {
        if this == Tok::C('|') || this == Tok::C(')') {
            break;
        }
        src.advance()?;
        let here_start = src.tell();
        if verbose {
            match this {
                Tok::C(' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') => continue,
                Tok::C('#') => {
                    loop {
                        match src.get()? {
                            None | Some(Tok::C('\n')) => break,
                            _ => {}
                        }
                    }
                    continue;
                }
                _ => {}
            }
        }
        let icase = local & FLAG_I != 0;
        let ascii = local & FLAG_A != 0;
        match this {
            Tok::E(e) => seq.push(escape(src, state, e, icase, ascii)?),
            Tok::C(c) if !".\\[{()*+?^$|".contains(c) => seq.push(Node::Lit { c, icase }),
            Tok::C('[') => seq.push(parse_class(src, icase, ascii)?),
            Tok::C(q @ ('*' | '+' | '?' | '{')) => {
                let here = src.tell();
                let (min, max) = match q {
                    '?' => (0, Some(1)),
                    '*' => (0, None),
                    '+' => (1, None),
                    _ => {
                        if src.is('}') {
                            seq.push(Node::Lit { c: '{', icase });
                            continue;
                        }
                        let lo = src.get_while(usize::MAX, |c| c.is_ascii_digit())?;
                        let hi = if src.eat(',')? {
                            src.get_while(usize::MAX, |c| c.is_ascii_digit())?
                        } else {
                            lo.clone()
                        };
                        if !src.eat('}')? {
                            seq.push(Node::Lit { c: '{', icase });
                            src.seek(here)?;
                            continue;
                        }
                        let bound = |s: &str| -> Result<u64, PyError> {
                            match s.parse::<u64>() {
                                Ok(v) if v < MAXREPEAT => Ok(v),
                                _ => Err(PyError {
                                    message: "the repetition number is too large".into(),
                                    position: here,
                                }),
                            }
                        };
                        let min = if lo.is_empty() { 0 } else { bound(&lo)? };
                        let max = if hi.is_empty() {
                            None
                        } else {
                            Some(bound(&hi)?)
                        };
                        if let Some(max) = max {
                            if max < min {
                                return Err(src.error(
                                    "min repeat greater than max repeat",
                                    src.tell() - here,
                                ));
                            }
                        }
                        if min > PCRE2_MAX_REPEAT as u64
                            || max.is_some_and(|m| m > PCRE2_MAX_REPEAT as u64)
                        {
                            return Err(PyError {
                                message: format!(
                                    "repetition bound above {PCRE2_MAX_REPEAT} is not supported"
                                ),
                                position: here,
                            });
                        }
                        (min as u32, max.map(|m| m as u32))
                    }
                };
                let nothing = || src.error("nothing to repeat", src.tell() - here + 1);
                let item = match seq.pop() {
                    None | Some(Node::At { .. }) => return Err(nothing()),
                    Some(Node::Repeat { .. }) => {
                        return Err(src.error("multiple repeat", src.tell() - here + 1))
                    }
                    Some(item) => item,
                };
                let kind = if src.eat('?')? {
                    RepeatKind::Lazy
                } else if src.eat('+')? {
                    RepeatKind::Possessive
                } else {
                    RepeatKind::Greedy
                };
                seq.push(Node::Repeat {
                    min,
                    max,
                    kind,
                    node: Box::new(item),
                });
            }
            Tok::C('.') => seq.push(Node::Any),
            Tok::C('(') => {
                let start = here_start - 1;
                match parse_group(
                    src,
                    state,
                    local,
                    verbose,
                    nested,
                    first && seq.is_empty(),
                    start,
                )? {
                    GroupResult::Node(n) => seq.push(n),
                    GroupResult::Nothing => {}
                    GroupResult::GlobalFlags => {
                        verbose = state.flags & FLAG_X != 0;
                        local |= state.flags;
                    }
                }
            }
            Tok::C('^') => seq.push(Node::At {
                at: At::Begin,
                ascii,
            }),
            Tok::C('$') => seq.push(Node::At { at: At::End, ascii }),
            Tok::C(_) => unreachable!("every special character is handled"),
        }
    }
    Ok((
        if seq.len() == 1 {
            seq.pop().unwrap()
        } else if seq.is_empty() {
            Node::Empty
        } else {
            Node::Concat(seq)
        },
        local,
    ))
}

enum GroupResult {
    Node(Node),
    Nothing,
    GlobalFlags,
}

fn parse_group(
    src: &mut Source,
    state: &mut State,
    local: u8,
    verbose: bool,
    nested: u32,
    at_start: bool,
    start: usize,
) -> Result<GroupResult, PyError> {
    let unterminated =
        |src: &Source| src.error("missing ), unterminated subpattern", src.tell() - start);
    let mut capture = true;
    let mut atomic = false;
    let mut name = None;
    let (mut add, mut del) = (0u8, 0u8);
    if src.eat('?')? {
        let Some(ch) = src.get()? else {
            return Err(src.error("unexpected end of pattern", 0));
        };
        match ch {
            Tok::C('P') => {
                if src.eat('<')? {
                    let n = src.get_until('>', "group name")?;
                    check_group_name(src, &n, 1)?;
                    name = Some(n);
                } else if src.eat('=')? {
                    let n = src.get_until(')', "group name")?;
                    check_group_name(src, &n, 1)?;
                    let Some(gid) = state.group_index(&n) else {
                        return Err(
                            src.error(format!("unknown group name '{n}'"), n.chars().count() + 1)
                        );
                    };
                    if !state.check_group(gid) {
                        return Err(
                            src.error("cannot refer to an open group", n.chars().count() + 1)
                        );
                    }
                    state.check_lookbehind_group(gid, src)?;
                    return Ok(GroupResult::Node(Node::Backref(gid)));
                } else {
                    return Err(match src.get()? {
                        None => src.error("unexpected end of pattern", 0),
                        Some(Tok::C(c) | Tok::E(c)) => {
                            src.error(format!("unknown extension ?P{c}"), 3)
                        }
                    });
                }
            }
            Tok::C(':') => capture = false,
            Tok::C('#') => loop {
                if src.next.is_none() {
                    return Err(src.error("missing ), unterminated comment", src.tell() - start));
                }
                if src.get()? == Some(Tok::C(')')) {
                    return Ok(GroupResult::Nothing);
                }
            },
            Tok::C(c @ ('=' | '!' | '<')) => {
                let mut c = c;
                let behind = c == '<';
                let mut saved = None;
                if behind {
                    c = match src.get()? {
                        None => return Err(src.error("unexpected end of pattern", 0)),
                        Some(Tok::C(c @ ('=' | '!'))) => c,
                        Some(Tok::C(c) | Tok::E(c)) => {
                            return Err(src.error(format!("unknown extension ?<{c}"), 3))
                        }
                    };
                    saved = Some(state.lookbehind_groups);
                    if state.lookbehind_groups.is_none() {
                        state.lookbehind_groups = Some(state.groups());
                    }
                }
                let node = parse_sub(src, state, local, verbose, nested + 1)?;
                if let Some(saved) = saved {
                    if saved.is_none() {
                        state.lookbehind_groups = None;
                    }
                }
                if !src.eat(')')? {
                    return Err(unterminated(src));
                }
                return Ok(GroupResult::Node(Node::Look {
                    behind,
                    negated: c == '!',
                    node: Box::new(node),
                }));
            }
            Tok::C('(') => {
                let cond = src.get_until(')', "group name")?;
                let width = cond.chars().count();
                let group = if is_identifier(&cond) {
                    match state.group_index(&cond) {
                        Some(g) => g,
                        None => {
                            return Err(src.error(format!("unknown group name '{cond}'"), width + 1))
                        }
                    }
                } else {
                    let g: u32 = cond
                        .parse()
                        .ok()
                        .filter(|_| cond.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            src.error(format!("bad character in group name '{cond}'"), width + 1)
                        })?;
                    if g == 0 {
                        return Err(src.error("bad group number", width + 1));
                    }
                    state.cond_refs.entry(g).or_insert(src.tell() - width - 1);
                    g
                };
                state.check_lookbehind_group(group, src)?;
                let (yes, _) = parse_seq(src, state, local, verbose, nested + 1, false)?;
                let no = if src.eat('|')? {
                    let (no, _) = parse_seq(src, state, local, verbose, nested + 1, false)?;
                    if src.is('|') {
                        return Err(src.error("conditional backref with more than two branches", 0));
                    }
                    Some(Box::new(no))
                } else {
                    None
                };
                if !src.eat(')')? {
                    return Err(unterminated(src));
                }
                return Ok(GroupResult::Node(Node::Cond {
                    group,
                    yes: Box::new(yes),
                    no,
                }));
            }
            Tok::C('>') => {
                capture = false;
                atomic = true;
            }
            Tok::C(c) if "iLmsxatu-".contains(c) => match parse_flags(src, c)? {
                None => unreachable!(),
                Some(Flags::Global(f)) => {
                    if !at_start {
                        return Err(src.error(
                            "global flags not at the start of the expression",
                            src.tell() - start,
                        ));
                    }
                    state.flags |= f;
                    return Ok(GroupResult::GlobalFlags);
                }
                Some(Flags::Scoped(a, d)) => {
                    add = a;
                    del = d;
                    capture = false;
                }
            },
            Tok::C(c) | Tok::E(c) => return Err(src.error(format!("unknown extension ?{c}"), 2)),
        }
    }
    let index = if capture {
        let gid = state.groups();
        if let Some(n) = &name {
            if let Some(old) = state.group_index(n) {
                return Err(src.error(
                    format!("redefinition of group name '{n}' as group {gid}; was group {old}"),
                    n.chars().count() + 1,
                ));
            }
            state.names.push((n.clone(), gid));
        }
        state.widths.push(None);
        Some(gid)
    } else {
        None
    };
    let sub_verbose = (verbose || add & FLAG_X != 0) && del & FLAG_X == 0;
    let inner = (local | add) & !del;
    let node = parse_sub(src, state, inner, sub_verbose, nested + 1)?;
    if !src.eat(')')? {
        return Err(unterminated(src));
    }
    if let Some(gid) = index {
        state.widths[gid as usize] = Some(width(&node, &state.widths));
    }
    Ok(GroupResult::Node(if atomic {
        Node::Atomic(Box::new(node))
    } else {
        Node::Group {
            index,
            name,
            add,
            del,
            node: Box::new(node),
        }
    }))
}

fn check_group_name(src: &Source, name: &str, offset: usize) -> Result<(), PyError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(src.error(
            format!("bad character in group name '{name}'"),
            name.chars().count() + offset,
        ))
    }
}

enum Flags {
    Global(u8),
    Scoped(u8, u8),
}

fn flag_bit(c: char) -> Option<u8> {
    Some(match c {
        'i' => FLAG_I,
        'm' => FLAG_M,
        's' => FLAG_S,
        'x' => FLAG_X,
        'a' => FLAG_A,
        'u' => FLAG_U,
        // `L` is refused for str patterns below; `t` (template) is a no-op here.
        'L' | 't' => 0,
        _ => return None,
    })
}

fn parse_flags(src: &mut Source, first: char) -> Result<Option<Flags>, PyError> {
    const TYPE: u8 = FLAG_A | FLAG_U;
    let (mut add, mut del) = (0u8, 0u8);
    let mut ch = first;
    let mut global_t = false;
    if ch != '-' {
        loop {
            if ch == 'L' {
                return Err(src.error(
                    "bad inline flags: cannot use 'L' flag with a str pattern",
                    0,
                ));
            }
            global_t |= ch == 't';
            let bit = flag_bit(ch).unwrap();
            add |= bit;
            if bit & TYPE != 0 && add & TYPE != bit {
                return Err(src.error(
                    "bad inline flags: flags 'a', 'u' and 'L' are incompatible",
                    0,
                ));
            }
            ch = match src.get()? {
                None => return Err(src.error("missing -, : or )", 0)),
                Some(Tok::C(c)) if ")-:".contains(c) => {
                    ch = c;
                    break;
                }
                Some(Tok::C(c)) if flag_bit(c).is_some() => c,
                Some(Tok::C(c) | Tok::E(c)) => {
                    let msg = if c.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing -, : or )"
                    };
                    return Err(src.error(msg, 1));
                }
            };
        }
    }
    if ch == ')' {
        return Ok(Some(Flags::Global(add)));
    }
    if global_t {
        return Err(src.error("bad inline flags: cannot turn on global flag", 1));
    }
    if ch == '-' {
        ch = match src.get()? {
            None => return Err(src.error("missing flag", 0)),
            Some(Tok::C(c)) if flag_bit(c).is_some() => c,
            Some(Tok::C(c) | Tok::E(c)) => {
                let msg = if c.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing flag"
                };
                return Err(src.error(msg, 1));
            }
        };
        loop {
            if ch == 't' {
                return Err(src.error("bad inline flags: cannot turn off global flag", 1));
            }
            let bit = flag_bit(ch).unwrap();
            if bit & TYPE != 0 || ch == 'L' {
                return Err(src.error(
                    "bad inline flags: cannot turn off flags 'a', 'u' and 'L'",
                    0,
                ));
            }
            del |= bit;
            ch = match src.get()? {
                None => return Err(src.error("missing :", 0)),
                Some(Tok::C(':')) => break,
                Some(Tok::C(c)) if flag_bit(c).is_some() => c,
                Some(Tok::C(c) | Tok::E(c)) => {
                    let msg = if c.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing :"
                    };
                    return Err(src.error(msg, 1));
                }
            };
        }
    }
    if add & del != 0 {
        return Err(src.error("bad inline flags: flag turned on and off", 1));
    }
    Ok(Some(Flags::Scoped(add, del)))
}

fn category(e: char) -> Option<(Category, bool)> {
    Some(match e {
        'd' => (Category::Digit, false),
        'D' => (Category::Digit, true),
        's' => (Category::Space, false),
        'S' => (Category::Space, true),
        'w' => (Category::Word, false),
        'W' => (Category::Word, true),
        _ => return None,
    })
}

fn simple_escape(e: char) -> Option<char> {
    Some(match e {
        'a' => '\x07',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        '\\' => '\\',
        _ => return None,
    })
}

/// `\x`, `\u`, `\U`, `\N{..}`: the character, or None when `e` is none of them.
fn code_escape(src: &mut Source, e: char) -> Result<Option<char>, PyError> {
    let hex = |src: &mut Source, n: usize| -> Result<u32, PyError> {
        let digits = src.get_while(n, |c| c.is_ascii_hexdigit())?;
        if digits.len() != n {
            return Err(src.error(format!("incomplete escape \\{e}{digits}"), digits.len() + 2));
        }
        Ok(u32::from_str_radix(&digits, 16).unwrap())
    };
    let v = match e {
        'x' => hex(src, 2)?,
        'u' => hex(src, 4)?,
        'U' => hex(src, 8)?,
        'N' => {
            if !src.eat('{')? {
                return Err(src.error("missing {", 0));
            }
            let name = src.get_until('}', "character name")?;
            // No Unicode name table here: Fail2ban's filters do not use \N{..}.
            return Err(src.error(
                format!("undefined character name '{name}'"),
                name.chars().count() + 4,
            ));
        }
        _ => return Ok(None),
    };
    match char::from_u32(v) {
        Some(c) => Ok(Some(c)),
        None if (0xd800..0xe000).contains(&v) => {
            Err(src.error("surrogate code points are not supported", 0))
        }
        None => Err(src.error(format!("bad escape \\{e}{v:08x}"), 10)),
    }
}

fn escape(
    src: &mut Source,
    state: &mut State,
    e: char,
    icase: bool,
    ascii: bool,
) -> Result<Node, PyError> {
    match e {
        'A' => {
            return Ok(Node::At {
                at: At::BeginString,
                ascii,
            })
        }
        'Z' => {
            return Ok(Node::At {
                at: At::EndString,
                ascii,
            })
        }
        'b' => {
            return Ok(Node::At {
                at: At::Boundary,
                ascii,
            })
        }
        'B' => {
            return Ok(Node::At {
                at: At::NonBoundary,
                ascii,
            })
        }
        _ => {}
    }
    if let Some((cat, neg)) = category(e) {
        return Ok(Node::Class {
            negated: false,
            items: vec![ClassItem::Cat(cat, neg)],
            icase,
            ascii,
        });
    }
    if let Some(c) = simple_escape(e) {
        return Ok(Node::Lit { c, icase });
    }
    if let Some(c) = code_escape(src, e)? {
        return Ok(Node::Lit { c, icase });
    }
    if e == '0' {
        let digits = src.get_while(2, |c| ('0'..='7').contains(&c))?;
        let v = u32::from_str_radix(&format!("0{digits}"), 8).unwrap();
        return Ok(Node::Lit {
            c: char::from_u32(v).unwrap(),
            icase,
        });
    }
    if e.is_ascii_digit() {
        let mut text = e.to_string();
        if let Some(Tok::C(d)) = src.next {
            if d.is_ascii_digit() {
                src.advance()?;
                text.push(d);
                if let Some(Tok::C(d3)) = src.next {
                    if e <= '7' && d <= '7' && ('0'..='7').contains(&d3) {
                        src.advance()?;
                        text.push(d3);
                        let v = u32::from_str_radix(&text, 8).unwrap();
                        if v > 0o377 {
                            return Err(src.error(
                                format!("octal escape value \\{text} outside of range 0-0o377"),
                                4,
                            ));
                        }
                        return Ok(Node::Lit {
                            c: char::from_u32(v).unwrap(),
                            icase,
                        });
                    }
                }
            }
        }
        let group: u32 = text.parse().unwrap();
        if group < state.groups() {
            if !state.check_group(group) {
                return Err(src.error("cannot refer to an open group", text.len() + 1));
            }
            state.check_lookbehind_group(group, src)?;
            return Ok(Node::Backref(group));
        }
        return Err(src.error(format!("invalid group reference {group}"), text.len()));
    }
    if e.is_ascii_alphabetic() {
        return Err(src.error(format!("bad escape \\{e}"), 2));
    }
    Ok(Node::Lit { c: e, icase })
}

/// An escape inside `[..]`: a character or a category.
fn class_escape(src: &mut Source, e: char) -> Result<ClassItem, PyError> {
    if let Some((cat, neg)) = category(e) {
        return Ok(ClassItem::Cat(cat, neg));
    }
    if e == 'b' {
        return Ok(ClassItem::Char('\x08'));
    }
    if let Some(c) = simple_escape(e) {
        return Ok(ClassItem::Char(c));
    }
    if let Some(c) = code_escape(src, e)? {
        return Ok(ClassItem::Char(c));
    }
    if ('0'..='7').contains(&e) {
        let digits = src.get_while(2, |c| ('0'..='7').contains(&c))?;
        let text = format!("{e}{digits}");
        let v = u32::from_str_radix(&text, 8).unwrap();
        if v > 0o377 {
            return Err(src.error(
                format!("octal escape value \\{text} outside of range 0-0o377"),
                text.len() + 1,
            ));
        }
        return Ok(ClassItem::Char(char::from_u32(v).unwrap()));
    }
    if e.is_ascii_alphanumeric() {
        return Err(src.error(format!("bad escape \\{e}"), 2));
    }
    Ok(ClassItem::Char(e))
}

fn parse_class(src: &mut Source, icase: bool, ascii: bool) -> Result<Node, PyError> {
    let here = src.tell() - 1;
    let mut items: Vec<ClassItem> = Vec::new();
    let negated = src.eat('^')?;
    let unterminated = |src: &Source| src.error("unterminated character set", src.tell() - here);
    loop {
        let this = match src.get()? {
            None => return Err(unterminated(src)),
            Some(Tok::C(']')) if !items.is_empty() => break,
            Some(t) => t,
        };
        let first = match this {
            Tok::E(e) => class_escape(src, e)?,
            Tok::C(c) => ClassItem::Char(c),
        };
        if src.eat('-')? {
            let that = match src.get()? {
                None => return Err(unterminated(src)),
                Some(Tok::C(']')) => {
                    items.push(first);
                    items.push(ClassItem::Char('-'));
                    break;
                }
                Some(t) => t,
            };
            let second = match that {
                Tok::E(e) => class_escape(src, e)?,
                Tok::C(c) => ClassItem::Char(c),
            };
            let show = |t: Tok| match t {
                Tok::C(c) => c.to_string(),
                Tok::E(c) => format!("\\{c}"),
            };
            let msg = || format!("bad character range {}-{}", show(this), show(that));
            match (first, second) {
                (ClassItem::Char(lo), ClassItem::Char(hi)) if lo <= hi => {
                    items.push(ClassItem::Range(lo, hi))
                }
                _ => return Err(src.error(msg(), msg().chars().count() - 19)),
            }
        } else {
            items.push(first);
        }
    }
    let mut uniq: Vec<ClassItem> = Vec::with_capacity(items.len());
    for it in items {
        if !uniq.contains(&it) {
            uniq.push(it);
        }
    }
    Ok(Node::Class {
        negated,
        items: uniq,
        icase,
        ascii,
    })
}

/// Python's `getwidth`: (min, max) length in characters, capped at MAXREPEAT.
fn width(node: &Node, groups: &[Option<(u64, u64)>]) -> (u64, u64) {
    let (lo, hi) = match node {
        Node::Empty | Node::At { .. } | Node::Look { .. } => (0, 0),
        Node::Lit { .. } | Node::Any | Node::Class { .. } => (1, 1),
        Node::Group { node, .. } | Node::Atomic(node) => width(node, groups),
        Node::Repeat { min, max, node, .. } => {
            let (i, j) = width(node, groups);
            (
                i.saturating_mul(*min as u64),
                j.saturating_mul(max.map_or(MAXREPEAT, |m| m as u64)),
            )
        }
        Node::Concat(items) => items.iter().fold((0u64, 0u64), |(lo, hi), n| {
            let (i, j) = width(n, groups);
            (lo.saturating_add(i), hi.saturating_add(j))
        }),
        Node::Alt(items) => items.iter().fold((MAXREPEAT - 1, 0), |(lo, hi), n| {
            let (i, j) = width(n, groups);
            (lo.min(i), hi.max(j))
        }),
        Node::Backref(g) => groups.get(*g as usize).copied().flatten().unwrap_or((0, 0)),
        Node::Cond { yes, no, .. } => {
            let (i, j) = width(yes, groups);
            match no {
                Some(no) => {
                    let (l, h) = width(no, groups);
                    (i.min(l), j.max(h))
                }
                None => (0, j),
            }
        }
    };
    (lo.min(MAXREPEAT - 1), hi.min(MAXREPEAT))
}

fn check_lookbehinds(node: &Node, groups: &[Option<(u64, u64)>]) -> Result<(), PyError> {
    let err = || PyError {
        message: "look-behind requires fixed-width pattern".into(),
        position: 0,
    };
    match node {
        Node::Look { behind, node, .. } => {
            if *behind {
                let (lo, hi) = width(node, groups);
                if lo != hi {
                    return Err(err());
                }
            }
            check_lookbehinds(node, groups)
        }
        Node::Group { node, .. } | Node::Atomic(node) | Node::Repeat { node, .. } => {
            check_lookbehinds(node, groups)
        }
        Node::Concat(items) | Node::Alt(items) => {
            items.iter().try_for_each(|n| check_lookbehinds(n, groups))
        }
        Node::Cond { yes, no, .. } => {
            check_lookbehinds(yes, groups)?;
            no.as_ref().map_or(Ok(()), |n| check_lookbehinds(n, groups))
        }
        _ => Ok(()),
    }
}

/// Python's `\s` for str patterns (`str.isspace`), as PCRE2 class content.
const PY_SPACE: &str = r"\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}";
/// Python's ASCII `\s`.
const PY_SPACE_ASCII: &str = r"\t-\r\x{20}";
/// Python's `\w` for str patterns (letters, numbers, underscore). PCRE2's own
/// `\w` under UCP also takes combining marks and connector punctuation.
const PY_WORD: &str = r"\p{L}\p{N}_";
const PY_WORD_ASCII: &str = r"0-9A-Za-z_";
const PY_DIGIT_ASCII: &str = r"0-9";

/// The class content for a category (positive form).
fn category_set(cat: Category, ascii: bool) -> &'static str {
    match (cat, ascii) {
        // PCRE2's `\d` under UCP is exactly Unicode Nd, as Python's.
        (Category::Digit, false) => r"\d",
        (Category::Digit, true) => PY_DIGIT_ASCII,
        (Category::Space, false) => PY_SPACE,
        (Category::Space, true) => PY_SPACE_ASCII,
        (Category::Word, false) => PY_WORD,
        (Category::Word, true) => PY_WORD_ASCII,
    }
}

fn push_char(out: &mut String, c: char) {
    match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => out.push(c),
        ' '..='~' => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Writes a Python class as PCRE2. Negated categories inside a class with other
/// items have no flat PCRE2 form once `\s`/`\w` are spelled out, so they
/// become an alternation (positive class) or lookaheads (negated class).
fn push_class(out: &mut String, negated: bool, items: &[ClassItem], ascii: bool) {
    let mut flat = String::new();
    let mut complements: Vec<&'static str> = Vec::new();
    for it in items {
        match *it {
            ClassItem::Char(c) => push_char(&mut flat, c),
            ClassItem::Range(a, b) => {
                push_char(&mut flat, a);
                flat.push('-');
                push_char(&mut flat, b);
            }
            ClassItem::Cat(Category::Digit, true) if !ascii => flat.push_str(r"\D"),
            ClassItem::Cat(cat, false) => flat.push_str(category_set(cat, ascii)),
            ClassItem::Cat(cat, true) => complements.push(category_set(cat, ascii)),
        }
    }
    if complements.is_empty() {
        out.push('[');
        if negated {
            out.push('^');
        }
        out.push_str(&flat);
        out.push(']');
        return;
    }
    out.push_str("(?:");
    if negated {
        // not (flat or not S1 or not S2 ...) = not flat and S1 and S2 ...
        if !flat.is_empty() {
            let _ = write!(out, "(?![{flat}])");
        }
        let (last, rest) = complements.split_last().unwrap();
        for s in rest {
            let _ = write!(out, "(?=[{s}])");
        }
        let _ = write!(out, "[{last}]");
    } else {
        let mut first = true;
        if !flat.is_empty() {
            let _ = write!(out, "[{flat}]");
            first = false;
        }
        for s in complements {
            if !first {
                out.push('|');
            }
            first = false;
            let _ = write!(out, "[^{s}]");
        }
    }
    out.push(')');
}

fn push_flags(out: &mut String, add: u8, del: u8) {
    let letters = |out: &mut String, f: u8| {
        for (bit, c) in [(FLAG_I, 'i'), (FLAG_M, 'm'), (FLAG_S, 's')] {
            if f & bit != 0 {
                out.push(c);
            }
        }
    };
    letters(out, add);
    if del & (FLAG_I | FLAG_M | FLAG_S) != 0 {
        out.push('-');
        letters(out, del);
    }
}

fn push_boundary(out: &mut String, ascii: bool, negated: bool) {
    let w = category_set(Category::Word, ascii);
    if negated {
        let _ = write!(out, "(?:(?<=[{w}])(?=[{w}])|(?<![{w}])(?![{w}]))");
    } else {
        let _ = write!(out, "(?:(?<=[{w}])(?![{w}])|(?<![{w}])(?=[{w}]))");
    }
}

fn emit(out: &mut String, node: &Node) {
    match node {
        Node::Empty => {}
        Node::Lit { c, .. } => push_char(out, *c),
        Node::Any => out.push('.'),
        Node::Class {
            negated,
            items,
            ascii,
            ..
        } => push_class(out, *negated, items, *ascii),
        Node::At { at, ascii } => match at {
            At::Begin => out.push('^'),
            At::End => out.push('$'),
            At::BeginString => out.push_str(r"\A"),
            At::EndString => out.push_str(r"\z"),
            At::Boundary => push_boundary(out, *ascii, false),
            At::NonBoundary => push_boundary(out, *ascii, true),
        },
        Node::Look {
            behind,
            negated,
            node,
        } => {
            out.push_str(match (behind, negated) {
                (false, false) => "(?=",
                (false, true) => "(?!",
                (true, false) => "(?<=",
                (true, true) => "(?<!",
            });
            emit(out, node);
            out.push(')');
        }
        Node::Group {
            index,
            name,
            add,
            del,
            node,
        } => {
            match (index, name) {
                (Some(_), Some(name)) => {
                    let _ = write!(out, "(?P<{name}>");
                }
                (Some(_), None) => out.push('('),
                (None, _) => {
                    out.push_str("(?");
                    push_flags(out, *add, *del);
                    out.push(':');
                }
            }
            emit(out, node);
            out.push(')');
        }
        Node::Atomic(node) => {
            out.push_str("(?>");
            emit(out, node);
            out.push(')');
        }
        Node::Repeat {
            min,
            max,
            kind,
            node,
        } => {
            out.push_str("(?:");
            emit(out, node);
            out.push(')');
            match (min, max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (m, None) => {
                    let _ = write!(out, "{{{m},}}");
                }
                (m, Some(n)) if m == n => {
                    let _ = write!(out, "{{{m}}}");
                }
                (m, Some(n)) => {
                    let _ = write!(out, "{{{m},{n}}}");
                }
            }
            match kind {
                RepeatKind::Greedy => {}
                RepeatKind::Lazy => out.push('?'),
                RepeatKind::Possessive => out.push('+'),
            }
        }
        Node::Concat(items) => items.iter().for_each(|n| emit(out, n)),
        Node::Alt(items) => {
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(out, n);
            }
        }
        Node::Backref(g) => {
            let _ = write!(out, "\\g{{{g}}}");
        }
        Node::Cond { group, yes, no } => {
            let _ = write!(out, "(?({group})");
            emit(out, yes);
            if let Some(no) = no {
                out.push('|');
                emit(out, no);
            }
            out.push(')');
        }
    }
}

/// The PCRE2 pattern for a parsed Python pattern. Global flags are not
/// written: the caller turns [`Parsed::flags`] into compile options.
pub(crate) fn to_pcre2(parsed: &Parsed) -> String {
    let mut out = String::new();
    emit(&mut out, &parsed.node);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(p: &str) -> String {
        to_pcre2(&parse(p, 0).unwrap_or_else(|e| panic!("{p}: {e}")))
    }

    fn err(p: &str) -> String {
        parse(p, 0).map(|x| to_pcre2(&x)).expect_err(p).message
    }

    #[test]
    fn python_only_syntax_is_rewritten() {
        assert_eq!(tr(r"a\Z"), r"a\z");
        assert_eq!(tr(r"\d{,3}"), r"(?:[\d]){0,3}");
        assert_eq!(tr(r"x{}y{a}"), r"x\{\}y\{a\}");
        assert_eq!(tr(r"(a)\1"), r"(a)\g{1}");
        assert_eq!(tr(r"(?P<n>a)(?P=n)(?(n)b|c)"), r"(?P<n>a)\g{1}(?(1)b|c)");
        assert_eq!(tr(r"\v\u00e9\x41\101\0"), "\\x{b}éAA\\x{0}");
        assert_eq!(tr(r"[[:a]"), r"[\[\:a]");
        assert_eq!(tr(r"[^]]"), r"[^\]]");
        assert_eq!(tr(r"[]-]"), r"[\]\-]");
    }

    #[test]
    fn verbose_mode_drops_blanks_and_comments() {
        assert_eq!(tr("(?x) a b # comment\n c\\ d [ ]"), r"abc\ d[\ ]");
        assert_eq!(tr("a(?x: b c)d e"), r"a(?:bc)d\ e");
    }

    #[test]
    fn negated_categories_inside_classes() {
        assert_eq!(tr(r"[\S.]"), format!(r"(?:[\.]|[^{PY_SPACE}])"));
        assert_eq!(tr(r"[^\W\d]"), format!(r"(?:(?![\d])[{PY_WORD}])"));
        assert_eq!(tr(r"[^\D]"), r"[^\D]");
    }

    #[test]
    fn errors_python_raises() {
        assert!(err(r"a(?i)b").starts_with("global flags not at the start"));
        assert_eq!(err(r"a**"), "multiple repeat");
        assert_eq!(err(r"^*"), "nothing to repeat");
        assert_eq!(err(r"(?<=a+)b"), "look-behind requires fixed-width pattern");
        assert_eq!(
            err(r"(?<=ab|c)d"),
            "look-behind requires fixed-width pattern"
        );
        assert_eq!(
            err(r"(?P<a>x)(?P<a>y)"),
            "redefinition of group name 'a' as group 2; was group 1"
        );
        assert_eq!(err(r"\q"), r"bad escape \q");
        assert_eq!(err(r"(a"), "missing ), unterminated subpattern");
        assert_eq!(err(r"a)"), "unbalanced parenthesis");
        assert_eq!(err(r"[a"), "unterminated character set");
        assert_eq!(err(r"[z-a]"), "bad character range z-a");
        assert_eq!(err(r"\2(a)"), "invalid group reference 2");
        assert_eq!(err(r"(a\1)"), "cannot refer to an open group");
        assert_eq!(err(r"(?P<1a>x)"), "bad character in group name '1a'");
        assert_eq!(
            err(r"(?L)x"),
            "bad inline flags: cannot use 'L' flag with a str pattern"
        );
        assert_eq!(err(r"(?(2)a|b)(c)"), "invalid group reference 2");
    }

    #[test]
    fn global_flags_are_collected() {
        let p = parse(r"(?i)(?s)ab|c", 0).unwrap();
        assert_eq!(p.flags, FLAG_I | FLAG_S);
        assert!(
            matches!(&p.node, Node::Alt(v) if matches!(v[1], Node::Lit { c: 'c', icase: true }))
        );
        // Flags in the first alternative reach the later ones, as in Python.
        let p = parse(r"(?s:a)(?i:b)", 0).unwrap();
        assert_eq!(p.flags, 0);
        assert_eq!(to_pcre2(&p), "(?s:a)(?i:b)");
    }
}
