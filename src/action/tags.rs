//! Tag substitution in action commands (and the jail's `ignorecommand`), in
//! two steps as Fail2ban does it.
//!
//! 1. [`Commands`]: the configuration's properties of the action for an
//!    address family ([`ActionDef::properties`], [`ActionProperties::command`]):
//!    every tag of the action's own options replaced, the family's conditional
//!    values first (`addr_set?family=inet6`). This text comes from the
//!    configuration and is trusted shell code.
//! 2. [`substitute_ticket`]: the ban's values (`<ip>`, `<matches>`, `<F-USER>`, ...),
//!    one pass, never recursive. Values logban formats itself (addresses,
//!    numbers) go in as text; everything else (log text, failure ids that are
//!    not addresses) goes in as a reference to an environment variable, quoted
//!    for the shell context the tag sits in, so it reaches the shell as data only.

use std::collections::HashMap;
use std::fmt;

use crate::config::tags::{tag_at, ESCAPED_TAGS};
use crate::config::{parse_time, ActionDef, ActionProperties};

/// An address family as actions name it (`<family>`, `[Init?family=inet6]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet4,
    Inet6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet4 => "inet4",
            Family::Inet6 => "inet6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A substitution that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error(
        "tag <{0}> carries log text into a quoted here-document, where it cannot be passed as data"
    )]
    QuotedHeredoc(String),
    #[error("tag <{0}> carries log text into an arithmetic expansion, where the shell may run it")]
    Arithmetic(String),
}

/// The commands of one action with the configuration's tags replaced, per
/// address family (None: no family), each resolved once.
pub struct Commands {
    /// The action without the options named after the ban's log tags
    /// (`matches`, ...), which always carry the ban's own text, and without a
    /// `timeout` that is not a time (the action warns and waits 60 s).
    def: ActionDef,
    props: HashMap<Option<Family>, Result<ActionProperties, String>>,
    commands: HashMap<(&'static str, Option<Family>), Result<String, String>>,
}

impl Commands {
    pub fn new(def: &ActionDef) -> Commands {
        let mut def = def.clone();
        def.options.retain(|(k, v)| {
            !ESCAPED_TAGS.contains(&k.as_str()) && (k != "timeout" || parse_time(v).is_ok())
        });
        Commands {
            def,
            props: HashMap::new(),
            commands: HashMap::new(),
        }
    }

    /// Command `key` (`actionban`, ...) for `family`, empty when the action
    /// has none; the ban's tags (`<ip>`, ...) are still in it.
    pub fn get(&mut self, key: &'static str, family: Option<Family>) -> Result<String, String> {
        let Commands {
            def,
            props,
            commands,
        } = self;
        commands
            .entry((key, family))
            .or_insert_with(|| {
                let props = props.entry(family).or_insert_with(|| {
                    def.properties(family.map(Family::as_str))
                        .map_err(|e| e.to_string())
                });
                let props = props.as_ref().map_err(String::clone)?;
                props.command(key).map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// The filter capture an `<F-NAME>` tag reads (Fail2ban's
/// `<F-([A-Z0-9_-]+)>` and `mapTag2Opt`): the name in lower case, `ID` as
/// `fid`, `PORT` as `fport`. None when `tag` is no such tag.
pub fn capture_key(tag: &str) -> Option<String> {
    let name = tag.strip_prefix("F-")?;
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    ok.then(|| crate::filter::tags::group_name(name))
}

/// A ban's value for a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Formatted by logban (an address, a number): safe as shell text.
    Text(String),
    /// From the log or otherwise outside logban's control: passed as data.
    Data(String),
}

/// A shell script with the data it reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub env: Vec<(String, String)>,
}

/// Where a tag sits in the shell script, as far as quoting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Outside quotes: top level, `$( )`, backquotes, `${ }`.
    Plain,
    /// Inside `$( )` or `$(( ))`: counts parentheses to find its end.
    Subst {
        depth: u32,
        arith: bool,
    },
    Backquote,
    Brace,
    Single,
    Double,
    Comment,
    Heredoc {
        quoted: bool,
    },
}

/// Tracks the quoting context while a script is read left to right.
struct Scanner {
    stack: Vec<Ctx>,
    /// Here-documents announced on the current line: (delimiter, quoted, strip tabs).
    pending: Vec<(String, bool, bool)>,
    /// The here-document being read: (delimiter, strip tabs).
    heredoc: Option<(String, bool)>,
    line_start: bool,
    word_start: bool,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            stack: vec![Ctx::Plain],
            pending: Vec::new(),
            heredoc: None,
            line_start: true,
            word_start: true,
        }
    }

    fn ctx(&self) -> Ctx {
        *self.stack.last().unwrap_or(&Ctx::Plain)
    }

    /// Reads the script text at `i` and returns how many bytes it consumed.
    fn step(&mut self, s: &[u8], i: usize) -> usize {
        if let Some((delim, strip)) = &self.heredoc {
            if self.line_start {
                let line_end = memchr::memchr(b'\n', &s[i..]).map_or(s.len(), |o| i + o);
                let mut line = &s[i..line_end];
                if *strip {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                if line == delim.as_bytes() {
                    self.heredoc = None;
                    self.stack.pop();
                    self.start_heredoc_if_pending();
                    self.line_start = false;
                    return line_end - i;
                }
            }
        }
        let c = s[i];
        let next = s.get(i + 1).copied();
        let was_word_start = self.word_start;
        self.line_start = c == b'\n';
        self.word_start = matches!(c, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')');
        match self.ctx() {
            Ctx::Single => {
                if c == b'\'' {
                    self.stack.pop();
                }
                1
            }
            Ctx::Comment => {
                if c == b'\n' {
                    self.stack.pop();
                    self.newline();
                }
                1
            }
            Ctx::Heredoc { quoted: true } => 1,
            Ctx::Double | Ctx::Heredoc { quoted: false } => match c {
                b'\\' => 1 + usize::from(next.is_some()),
                b'"' if self.ctx() == Ctx::Double => {
                    self.stack.pop();
                    1
                }
                _ => self.expansion(c, next, s.get(i + 2).copied()),
            },
            Ctx::Plain | Ctx::Subst { .. } | Ctx::Backquote | Ctx::Brace => match c {
                b'\\' => 1 + usize::from(next.is_some()),
                b'\'' => {
                    self.stack.push(Ctx::Single);
                    1
                }
                b'"' => {
                    self.stack.push(Ctx::Double);
                    1
                }
                b'#' if was_word_start => {
                    self.stack.push(Ctx::Comment);
                    1
                }
                b'(' => {
                    if let Some(Ctx::Subst { depth, .. }) = self.stack.last_mut() {
                        *depth += 1;
                    }
                    1
                }
                b')' => {
                    match self.stack.last_mut() {
                        Some(Ctx::Subst { depth: 0, .. }) => {
                            self.stack.pop();
                        }
                        Some(Ctx::Subst { depth, .. }) => *depth -= 1,
                        _ => {}
                    }
                    1
                }
                b'}' if self.ctx() == Ctx::Brace => {
                    self.stack.pop();
                    1
                }
                b'<' if next == Some(b'<') && s.get(i + 2) != Some(&b'<') => {
                    self.heredoc_operator(s, i + 2) - i
                }
                b'\n' => {
                    self.newline();
                    1
                }
                _ => self.expansion(c, next, s.get(i + 2).copied()),
            },
        }
    }

    /// Whether the position is inside an arithmetic expansion, where bash
    /// evaluates expanded text (array subscripts run commands).
    fn in_arith(&self) -> bool {
        self.stack
            .iter()
            .any(|c| matches!(c, Ctx::Subst { arith: true, .. }))
    }

    /// `$(`, `$((`, `${`, backquotes: where they open or close a context.
    fn expansion(&mut self, c: u8, next: Option<u8>, after: Option<u8>) -> usize {
        match (c, next) {
            (b'$', Some(b'(')) if after == Some(b'(') => {
                self.stack.push(Ctx::Subst {
                    depth: 1,
                    arith: true,
                });
                3
            }
            (b'$', Some(b'(')) => {
                self.stack.push(Ctx::Subst {
                    depth: 0,
                    arith: false,
                });
                2
            }
            (b'$', Some(b'{')) => {
                self.stack.push(Ctx::Brace);
                2
            }
            (b'`', _) => {
                if self.ctx() == Ctx::Backquote {
                    self.stack.pop();
                } else {
                    self.stack.push(Ctx::Backquote);
                }
                1
            }
            _ => 1,
        }
    }

    /// Reads `<<[-]WORD` from just after `<<`; returns the index after WORD.
    fn heredoc_operator(&mut self, s: &[u8], mut i: usize) -> usize {
        let strip = s.get(i) == Some(&b'-');
        if strip {
            i += 1;
        }
        while matches!(s.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let mut delim = Vec::new();
        let mut quoted = false;
        let mut quote: Option<u8> = None;
        while let Some(&c) = s.get(i) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => delim.push(c),
                (None, b'\'' | b'"') => {
                    quoted = true;
                    quote = Some(c);
                }
                (None, b'\\') => {
                    quoted = true;
                    if let Some(&n) = s.get(i + 1) {
                        delim.push(n);
                        i += 1;
                    }
                }
                (None, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')') => {
                    break
                }
                (None, c) => delim.push(c),
            }
            i += 1;
        }
        if !delim.is_empty() {
            self.pending
                .push((String::from_utf8_lossy(&delim).into_owned(), quoted, strip));
        }
        i
    }

    fn newline(&mut self) {
        self.line_start = true;
        self.start_heredoc_if_pending();
    }

    fn start_heredoc_if_pending(&mut self) {
        if self.heredoc.is_none() && !self.pending.is_empty() {
            let (delim, quoted, strip) = self.pending.remove(0);
            self.heredoc = Some((delim, strip));
            self.stack.push(Ctx::Heredoc { quoted });
        }
    }
}

/// The environment variable a data tag travels in (`<F-USER>` -> `f2bV_F_USER`).
fn var_name(tag: &str, env: &[(String, String)]) -> String {
    let base: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let base = format!("f2bV_{base}");
    let mut name = base.clone();
    let mut n = 1;
    while env.iter().any(|(k, _)| *k == name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

/// What the text between single quotes is, for a data tag inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleQuoted {
    /// Text (`-d '{"value":"<ip>"}'`): the quotes are closed around a quoted
    /// expansion, `'..'"${f2bV_ip}"'..'`.
    Text,
    /// A script for a nested shell (`sh -c 'echo <ip>'`): `${f2bV_ip}` stays
    /// as it is, for that shell to expand from the environment it inherits
    /// (expanded by the outer shell, the value would become the nested
    /// shell's code).
    Script,
}

/// Replaces the ban's tags in `script` (a command from [`Commands`], an
/// `ignorecommand`). `lookup` gives a tag's value, None for tags that are not
/// the ban's. `<F-NAME>` tags the ban does not have become empty, as in
/// Fail2ban. `single` says how data reaches single-quoted text.
pub fn substitute_ticket(
    script: &str,
    single: SingleQuoted,
    lookup: &mut dyn FnMut(&str) -> Option<Value>,
) -> Result<Script, TagError> {
    let s = script.as_bytes();
    let mut out = Script {
        text: String::with_capacity(script.len()),
        env: Vec::new(),
    };
    // Tag values seen so far, so that a tag used twice shares one variable.
    let mut vars: HashMap<&str, String> = HashMap::new();
    let mut scanner = Scanner::new();
    let mut i = 0;
    let mut copied = 0;
    while i < s.len() {
        if s[i] == b'<' {
            if let Some((end, name)) = tag_at(script, i) {
                let start = i;
                let value =
                    lookup(name).or_else(|| capture_key(name).map(|_| Value::Text(String::new())));
                if let Some(value) = value {
                    out.text.push_str(&script[copied..start]);
                    match value {
                        Value::Text(t) => out.text.push_str(&t),
                        Value::Data(d) => {
                            let var = match vars.get(name) {
                                Some(v) => v.clone(),
                                None => {
                                    let v = var_name(name, &out.env);
                                    // The environment cannot carry NUL bytes.
                                    out.env.push((v.clone(), d.replace('\0', "\u{fffd}")));
                                    vars.insert(name, v.clone());
                                    v
                                }
                            };
                            if scanner.in_arith() {
                                return Err(TagError::Arithmetic(name.to_string()));
                            }
                            let r = match scanner.ctx() {
                                Ctx::Double | Ctx::Heredoc { quoted: false } | Ctx::Comment => {
                                    format!("${{{var}}}")
                                }
                                Ctx::Single if single == SingleQuoted::Script => {
                                    format!("${{{var}}}")
                                }
                                Ctx::Single => format!("'\"${{{var}}}\"'"),
                                Ctx::Heredoc { quoted: true } => {
                                    return Err(TagError::QuotedHeredoc(name.to_string()))
                                }
                                Ctx::Plain | Ctx::Subst { .. } | Ctx::Backquote | Ctx::Brace => {
                                    format!("\"${{{var}}}\"")
                                }
                            };
                            out.text.push_str(&r);
                        }
                    }
                    i = end;
                    copied = end;
                    scanner.word_start = false;
                    scanner.line_start = false;
                    continue;
                }
            }
        }
        i += scanner.step(s, i);
    }
    out.text.push_str(&script[copied.min(script.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(kv: &[(&str, &str)]) -> Commands {
        Commands::new(&ActionDef {
            name: "t".into(),
            file: "t".into(),
            options: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            script: None,
        })
    }

    #[test]
    fn options_recursive_and_conditional() {
        let mut c = commands(&[
            ("name", "sshd"),
            ("addr_set", "addr-set-<name>"),
            ("addr_set?family=inet6", "addr6-set-<name>"),
            ("type", "multiport"),
            ("m-multiport", "dport"),
            ("actionban", "add <addr_set> <ip> <m-<type>><br>"),
            ("actioncheck", "t <<name>>"),
        ]);
        assert_eq!(
            c.get("actionban", None).unwrap(),
            "add addr-set-sshd <ip> dport\n"
        );
        assert_eq!(
            c.get("actionban", Some(Family::Inet6)).unwrap(),
            "add addr6-set-sshd <ip> dport\n"
        );
        // `<<name>>` (pf.conf): the inner tag is replaced, the outer `<`/`>` stay.
        assert_eq!(c.get("actioncheck", None).unwrap(), "t <sshd>");
        assert_eq!(c.get("actionflush", None).unwrap(), "");
        let mut c = commands(&[("actionban", "<a>"), ("a", "<b>"), ("b", "<a>")]);
        let e = c.get("actionban", None).unwrap_err();
        assert!(e.contains("themselves"), "{e}");
    }

    #[test]
    fn matches_never_from_options() {
        let mut c = commands(&[("matches", "oops"), ("actionban", "<matches>")]);
        assert_eq!(c.get("actionban", None).unwrap(), "<matches>");
    }

    #[test]
    fn timeout_in_seconds_or_the_default() {
        let ban = |timeout| {
            commands(&[("timeout", timeout), ("actionban", "wait <timeout>")])
                .get("actionban", None)
                .unwrap()
        };
        assert_eq!(ban("1m"), "wait 60");
        assert_eq!(ban("soon"), "wait 60");
        assert_eq!(ban("1.5"), "wait 1.5");
    }

    fn render(script: &str) -> Script {
        substitute_ticket(script, SingleQuoted::Text, &mut |t| match t {
            "ip" => Some(Value::Text("192.0.2.1".into())),
            "matches" => Some(Value::Data("a'b\"c$(x)`y`\nz".into())),
            "F-USER" => Some(Value::Data("root".into())),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn data_quoted_per_context() {
        let s = render("echo <ip> <matches> \"m: <matches>\" 'q <F-USER>' <F-NONE> <other>");
        assert_eq!(
            s.text,
            "echo 192.0.2.1 \"${f2bV_matches}\" \"m: ${f2bV_matches}\" 'q '\"${f2bV_F_USER}\"''  \
             <other>"
        );
        assert_eq!(s.env.len(), 2);
        assert_eq!(s.env[0].1, "a'b\"c$(x)`y`\nz");
    }

    #[test]
    fn single_quotes_around_a_nested_script() {
        let s = substitute_ticket(
            "sh -c 'echo <matches>' <matches>",
            SingleQuoted::Script,
            &mut |_| Some(Value::Data("x".into())),
        )
        .unwrap();
        assert_eq!(s.text, "sh -c 'echo ${f2bV_matches}' \"${f2bV_matches}\"");
        assert_eq!(s.env, [("f2bV_matches".to_string(), "x".to_string())]);
    }

    #[test]
    fn nested_contexts() {
        let s = render("x=\"$(printf '%s' <matches>)\" `echo \"<matches>\"` ${v:-<F-USER>}");
        assert_eq!(
            s.text,
            "x=\"$(printf '%s' \"${f2bV_matches}\")\" `echo \"${f2bV_matches}\"` ${v:-\"${f2bV_F_USER}\"}"
        );
        let s = render("# it's <matches>\necho <matches>");
        assert_eq!(s.text, "# it's ${f2bV_matches}\necho \"${f2bV_matches}\"");
    }

    #[test]
    fn arithmetic_refuses_log_text() {
        let s = render("echo $(( <ip> + 1 )) $(( (2) * 3 )) <matches>");
        assert_eq!(
            s.text,
            "echo $(( 192.0.2.1 + 1 )) $(( (2) * 3 )) \"${f2bV_matches}\""
        );
        let e = substitute_ticket(
            "echo $(( 1 + $(echo <matches>) ))",
            SingleQuoted::Text,
            &mut |_| Some(Value::Data("a[$(id)]".into())),
        );
        assert_eq!(e, Err(TagError::Arithmetic("matches".into())));
    }

    #[test]
    fn heredocs() {
        let s = render("cat <<EOF\nit's <matches>\nEOF\necho <matches>");
        assert_eq!(
            s.text,
            "cat <<EOF\nit's ${f2bV_matches}\nEOF\necho \"${f2bV_matches}\""
        );
        let e = substitute_ticket(
            "cat <<'EOF'\n<matches>\nEOF",
            SingleQuoted::Text,
            &mut |_| Some(Value::Data("x".into())),
        );
        assert_eq!(e, Err(TagError::QuotedHeredoc("matches".into())));
    }
}
