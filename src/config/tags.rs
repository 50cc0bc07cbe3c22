//! `<tag>` substitution, at configuration time and at ban time.
//!
//! A tag is `<name>` where the name has no space, `<` or `>`. Three operations
//! cover Fail2ban's uses:
//!
//! - `resolve` (crate-internal; at runtime through
//!   [`ActionDef::properties`](super::ActionDef::properties)): replaces tags among a set of options by the other options'
//!   values, recursively (`match = <rule_match-<type>>` resolves `<type>`
//!   first), each tag at most [`MAX_TAG_REPLACE_COUNT`] times per option,
//!   a self reference being an error. Unknown tags stay as they are. With a
//!   conditional (`family=inet6`), `opt?family=inet6` is preferred to `opt`.
//!   The reader runs it over the merged options of a filter or an action.
//! - [`substitute`]: replaces the tags of one text from a lookup, repeatedly
//!   until nothing changes (at most 26 rounds). Unknown tags fall back to the
//!   built-ins `<br>` (newline), `<sp>` (space), `<fq-hostname>`,
//!   `<sh-hostname>`, else stay. This is how an action command is built from
//!   the action's properties: see [`ActionProperties::command`](super::ActionProperties::command).
//! - [`substitute_once`]: one pass, no recursion: the caller's lookup
//!   returns the final text.
//!
//! Runtime use by the action module, for a ban of an IPv6 address:
//!
//! ```text
//! let props = action_def.properties(Some("inet6"))?;   // `?family=inet6` values win
//! let cmd = props.command("actionban")?;              // static tags resolved
//! // The ban's values (`<ip>`, `<matches>`, ...) then go in quoted for the
//! // shell: `action::tags::substitute_ticket`.
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::error::ConfigError;
use super::omap::OMap;

/// How many times one tag may be replaced within one option.
pub const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Tags whose values come from the log and must never be expanded
/// recursively (Fail2ban's escaped tags).
pub const ESCAPED_TAGS: [&str; 3] = ["matches", "ipmatches", "ipjailmatches"];

/// The tag whose `<` is at byte `start` (Fail2ban's `<([^ <>]+)>`): (end, name).
pub fn tag_at(text: &str, start: usize) -> Option<(usize, &str)> {
    let name_start = start + 1;
    let rest = text.as_bytes().get(name_start..)?;
    let len = rest.iter().position(|&b| matches!(b, b' ' | b'<' | b'>'))?;
    (len > 0 && rest[len] == b'>')
        .then(|| (name_start + len + 1, &text[name_start..name_start + len]))
}

/// The first tag at or after byte `from`: (start, end, name).
pub fn find_tag(text: &str, from: usize) -> Option<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut i = from;
    while let Some(p) = memchr::memchr(b'<', &bytes[i.min(bytes.len())..]) {
        let start = i + p;
        if let Some((end, name)) = tag_at(text, start) {
            return Some((start, end, name));
        }
        i = start + 1;
    }
    None
}

/// The built-in tags: `br`, `sp`, `fq-hostname`, `sh-hostname`.
pub fn builtin(tag: &str) -> Option<Cow<'static, str>> {
    match tag {
        "br" => Some("\n".into()),
        "sp" => Some(" ".into()),
        "fq-hostname" => Some(crate::util::host_names().0.as_str().into()),
        "sh-hostname" => Some(crate::util::host_names().1.as_str().into()),
        _ => None,
    }
}

/// Replaces, recursively, the tags of every option by the values of the
/// other options (Fail2ban's `substituteRecursiveTags`); see the module docs.
///
/// `conditional` (`family=inet6`, or empty) makes `<x>` prefer option
/// `x?family=inet6`. Options and tags for which `ignore` is true are left as
/// they are. `extra` supplies tags that are not options (None: keep the tag).
/// A `None` value is an option without value (an action without
/// `[Definition]`), kept as is.
pub(crate) fn resolve(
    options: &mut OMapOpt,
    conditional: &str,
    ignore: &dyn Fn(&str) -> bool,
    extra: &mut dyn FnMut(&str) -> Result<Option<String>, ConfigError>,
) -> Result<(), ConfigError> {
    let mut done: HashSet<String> = HashSet::new();
    let mut counts: HashMap<String, HashMap<String, usize>> = HashMap::new();
    loop {
        let mut again = false;
        for idx in 0..options.len() {
            let tag = options.key_at(idx).to_string();
            if ignore(&tag) || done.contains(&tag) {
                continue;
            }
            let Some(original) = options.value_at(idx).clone() else {
                continue;
            };
            let mut value = original.clone();
            let kept = counts.remove(&tag);
            let had_counts = kept.is_some();
            let mut rplc = kept.unwrap_or_default();
            let mut m = owned_tag(&value, 0);
            while let Some((start, end, rtag)) = m {
                if ignore(&rtag) {
                    m = owned_tag(&value, end);
                    continue;
                }
                if rtag == tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    return Err(ConfigError::new(format!(
                        "tags refer to themselves and cannot be resolved: <{rtag}> in option {tag:?} (value {value:?})"
                    ))
                    .key(&tag));
                }
                let mut repl = None;
                if !conditional.is_empty() {
                    repl = options
                        .get(&format!("{rtag}?{conditional}"))
                        .cloned()
                        .flatten();
                }
                if repl.is_none() {
                    repl = options.get(&rtag).cloned().flatten();
                }
                if repl.is_none() {
                    repl = extra(&rtag)?;
                }
                let Some(repl) = repl else {
                    m = owned_tag(&value, end);
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *rplc.entry(rtag).or_insert(0) += 1;
                m = owned_tag(&value, start);
            }
            let changed = value != original;
            if had_counts || (changed && find_tag(&value, 0).is_some()) {
                counts.insert(tag.clone(), rplc);
            }
            if changed {
                again |= find_tag(&value, 0).is_some();
                options.set_at(idx, Some(value.clone()));
            }
            if !value.contains('<') {
                done.insert(tag);
            }
        }
        if !again {
            return Ok(());
        }
    }
}

/// [`find_tag`] with the name owned, for a loop that rewrites the text.
fn owned_tag(text: &str, from: usize) -> Option<(usize, usize, String)> {
    find_tag(text, from).map(|(s, e, n)| (s, e, n.to_string()))
}

/// Options as the reader keeps them: a value may be absent.
pub(crate) type OMapOpt = OMap<Option<String>>;

/// Replaces the tags of `text` from `lookup`, round after round until the
/// text no longer changes (recursive expansion, at most
/// `MAX_TAG_REPLACE_COUNT + 1` rounds). Tags `lookup` does not know fall back
/// to the [`builtin`]s, else stay as they are.
pub fn substitute<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<Cow<'a, str>>,
) -> Result<String, ConfigError> {
    let mut query = text.to_string();
    if !query.contains('<') {
        return Ok(query);
    }
    let mut rounds = MAX_TAG_REPLACE_COUNT + 1;
    loop {
        let value = substitute_once(&query, &lookup);
        if value == query || !value.contains('<') {
            return Ok(value);
        }
        query = value;
        rounds -= 1;
        if rounds == 0 {
            return Err(ConfigError::new(format!(
                "tag replacement does not end (tags referring to themselves?): {query:?}"
            )));
        }
    }
}

/// One left-to-right pass over `text`: each tag is replaced by
/// `lookup(name)`, else by a [`builtin`], else kept. Replaced text is not
/// searched again.
pub fn substitute_once<'a>(text: &str, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some((start, end, name)) = find_tag(text, pos) {
        out.push_str(&text[pos..start]);
        match lookup(name).or_else(|| builtin(name)) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&text[start..end]),
        }
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Fail2ban's escaping of log-derived values placed in a command
/// (`<matches>` and friends): a backslash before each shell-special
/// character, `\n`/`\r` as `\n`/`\r`.
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' | '#' | '&' | ';' | '`' | '|' | '*' | '?' | '~' | '<' | '>' | '^' | '(' | ')'
            | '[' | ']' | '{' | '}' | '$' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> OMapOpt {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    fn resolved(pairs: &[(&str, &str)], cond: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut m = map(pairs);
        resolve(&mut m, cond, &|_| false, &mut |_| Ok(None))?;
        Ok(m.into_iter().map(|(k, v)| (k, v.unwrap())).collect())
    }

    fn val(r: &[(String, String)], k: &str) -> String {
        r.iter().find(|(x, _)| x == k).unwrap().1.clone()
    }

    #[test]
    fn finds_tags() {
        assert_eq!(find_tag("a <b> c", 0), Some((2, 5, "b")));
        assert_eq!(find_tag("<lt_<logtype>/x>", 0), Some((4, 13, "logtype")));
        assert_eq!(find_tag("< b> <>", 0), None);
        assert_eq!(find_tag("x<a\tb>", 0), Some((1, 6, "a\tb")));
    }

    #[test]
    fn recursive_nested_and_unknown() {
        let r = resolved(
            &[
                ("a", "3"),
                ("b", "<a>_3"),
                ("mode", "extra"),
                ("mdre-extra", "<mdre-normal> X"),
                ("mdre-normal", "N<a>"),
                ("failregex", "<mdre-<mode>> <HOST> <unknown>"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(val(&r, "b"), "3_3");
        assert_eq!(val(&r, "failregex"), "N3 X <HOST> <unknown>");
    }

    #[test]
    fn self_reference_and_limit() {
        assert!(resolved(&[("a", "x<a>")], "").is_err());
        let e = resolved(&[("a", "<b>"), ("b", "<a>")], "").unwrap_err();
        assert!(e.message.contains("themselves"), "{e}");
        // Each replacement adds another reference: stops at 25 replacements.
        assert!(resolved(
            &[("a", "<b>"), ("b", "<c><c>"), ("c", "<d>"), ("d", "<c>")],
            ""
        )
        .is_err());
    }

    #[test]
    fn conditional_values_win() {
        let opts = [
            ("addr_set", "addr-set-<name>"),
            ("addr_set?family=inet6", "addr6-set-<name>"),
            ("name", "sshd"),
            ("actionban", "add <addr_set> <ip>"),
        ];
        let r6 = resolved(&opts, "family=inet6").unwrap();
        assert_eq!(val(&r6, "actionban"), "add addr6-set-sshd <ip>");
        let r4 = resolved(&opts, "").unwrap();
        assert_eq!(val(&r4, "actionban"), "add addr-set-sshd <ip>");
    }

    #[test]
    fn ignored_and_extra() {
        let mut m = map(&[
            ("actionban", "<matches> <x> <known/chain>"),
            ("matches", "<x>"),
            ("x", "1"),
        ]);
        resolve(&mut m, "", &|t| ESCAPED_TAGS.contains(&t), &mut |t| {
            Ok((t == "known/chain").then(|| "INPUT".to_string()))
        })
        .unwrap();
        assert_eq!(
            m.get("actionban").unwrap().as_deref(),
            Some("<matches> 1 INPUT")
        );
        assert_eq!(m.get("matches").unwrap().as_deref(), Some("<x>"));
    }

    #[test]
    fn runtime_substitution() {
        let lookup = |t: &str| match t {
            "a" => Some(Cow::Borrowed("<b>")),
            "b" => Some(Cow::Borrowed("B")),
            "self" => Some(Cow::Borrowed("<self>x")),
            _ => None,
        };
        assert_eq!(
            substitute("<a>|<br>|<sp>|<nope>", lookup).unwrap(),
            "B|\n| |<nope>"
        );
        assert_eq!(substitute_once("<a>", lookup), "<b>");
        assert!(substitute("<self>", lookup).is_err());
        assert!(!substitute("<sh-hostname>", lookup).unwrap().contains('.'));
        assert_eq!(escape_tag("a;b$(c)\n"), "a\\;b\\$\\(c\\)\\n");
    }
}
