//! Fail2ban's match tags (`<HOST>`, `<ADDR>`, `<F-USER>..</F-USER>`,
//! `<SKIPLINES>`, ...) expanded into Python regex text, and its rewrite of
//! `((?i)..)` into a scoped flag group, both done the way Fail2ban does them.

use crate::config::UseDns;
use std::fmt::Write;

/// One IPv4 address: four runs of one to three digits joined by dots.
const IP4: &str = r"\d{1,3}(?:\.\d{1,3}){3}";
/// One IPv6 address, loosely: up to seven hex groups each closed by one or two
/// colons (or a bare `::`), then a last group or the second colon of a `::`.
const IP6: &str = r"(?:(?:[0-9A-Fa-f]{1,4}:?|:):){1,7}(?:[0-9A-Fa-f]{1,4}|(?<=:):)";

fn ip4_group() -> String {
    // An IPv4-mapped IPv6 prefix (lower-case `ffff`, up to two extra `f`) is skipped.
    format!(r"(?:::ffff(?:f{{0,2}}):)?(?P<ip4>{IP4})")
}

fn ip6_group() -> String {
    format!(r"(?P<ip6>{IP6})")
}

fn dns_group() -> &'static str {
    r"(?P<dns>[\w.^\-]*\w)"
}

fn cidr_group() -> &'static str {
    r"(?P<cidr>\d+)"
}

fn addr() -> String {
    format!(r"\[?(?:{}|{})\]?", ip4_group(), ip6_group())
}

fn host(usedns: UseDns) -> String {
    match usedns {
        UseDns::No => addr(),
        _ => format!("(?:{}|{})", addr(), dns_group()),
    }
}

fn subnet() -> String {
    format!(
        r"\[?(?:{}|{})(?:/{})?\]?",
        ip4_group(),
        ip6_group(),
        cidr_group()
    )
}

/// The fixed replacement of a tag name (the text between `<` and `>`).
fn fixed(name: &str, usedns: UseDns) -> Option<String> {
    Some(match name {
        "HOST" => host(usedns),
        "IP4" | "F-IP4/" => ip4_group(),
        "IP6" | "F-IP6/" => ip6_group(),
        "ADDR" | "F-ADDR/" => addr(),
        "CIDR" | "F-CIDR/" => cidr_group().into(),
        "SUBNET" | "F-SUBNET/" => subnet(),
        "DNS" | "F-DNS/" => dns_group().into(),
        "F-ID/" => r"(?P<fid>\S+)".into(),
        "F-PORT/" => r"(?P<fport>\w+)".into(),
        _ => return None,
    })
}

/// Fail2ban's group name for a custom tag name (`ID` -> `fid`, `USER` -> `user`).
pub fn group_name(tag: &str) -> String {
    let lower = tag.to_lowercase();
    match lower.as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        _ => lower,
    }
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The end (exclusive, in bytes) of a tag `</?[\w-]+/?>` starting at `start`.
fn tag_end(s: &str, start: usize) -> Option<usize> {
    let rest = &s[start + 1..];
    let body = rest.strip_prefix('/').unwrap_or(rest);
    let skipped = rest.len() - body.len();
    let word_len: usize = body
        .chars()
        .take_while(|&c| is_word(c) || c == '-')
        .map(char::len_utf8)
        .sum();
    if word_len == 0 {
        return None;
    }
    let after = &body[word_len..];
    let after_slash = after.strip_prefix('/').unwrap_or(after);
    after_slash
        .starts_with('>')
        .then(|| start + 1 + skipped + word_len + (after.len() - after_slash.len()) + 1)
}

/// A custom tag `F-NAME` or `/F-NAME` (upper-case letters, digits, `_`, `-`).
fn custom(name: &str) -> Option<(bool, &str)> {
    let (close, rest) = match name.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, name),
    };
    let n = rest.strip_prefix("F-")?;
    (!n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
    .then_some((close, n))
}

/// Replaces Fail2ban's tags in `regex`; unknown tags stay as they are.
pub(crate) fn expand(regex: &str, usedns: UseDns) -> String {
    let mut out = String::with_capacity(regex.len() * 2);
    let mut open: Vec<&str> = Vec::new();
    let mut skiplines = 0;
    let mut pos = 0;
    let mut i = 0;
    while let Some(off) = regex[i..].find('<') {
        let start = i + off;
        let Some(end) = tag_end(regex, start) else {
            i = start + 1;
            continue;
        };
        let tag = &regex[start..end];
        let name = &tag[1..tag.len() - 1];
        out.push_str(&regex[pos..start]);
        if name == "SKIPLINES" {
            let _ = write!(out, r"\n(?P<skiplines{skiplines}>(?:(?:.*\n)*?))");
            skiplines += 1;
        } else if let Some(text) = fixed(name, usedns) {
            out.push_str(&text);
        } else if let Some((close, n)) = custom(name) {
            if !close {
                open.push(n);
                let _ = write!(out, "(?P<{}>", group_name(n));
            } else if open.contains(&n) {
                out.push(')');
            } else {
                out.push_str(tag);
            }
        } else {
            out.push_str(tag);
        }
        pos = end;
        i = end;
    }
    out.push_str(&regex[pos..]);
    out
}

/// Fail2ban rewrites a group opening with a global flag, `((?i)..)` or
/// `(?:(?i)..)`, into a scoped one, `(?i:..)`, since Python refuses global
/// flags in mid-pattern.
pub(crate) fn scope_inline_flags(regex: &str) -> String {
    let b = regex.as_bytes();
    let mut out = String::with_capacity(regex.len());
    let mut pos = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') {
            let mut j = i + 1;
            if b[j..].starts_with(b"?:(?") {
                j += 2;
            }
            if b[j..].starts_with(b"(?") {
                let letters = b[j + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_lowercase())
                    .count();
                let close = j + 2 + letters;
                if letters > 0 && b.get(close) == Some(&b')') {
                    out.push_str(&regex[pos..i]);
                    out.push_str(&regex[j..close]);
                    out.push(':');
                    i = close + 1;
                    pos = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&regex[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_tags_open_close_and_map() {
        assert_eq!(
            expand("<F-ID>x</F-ID> <F-PORT>p</F-PORT>", UseDns::Warn),
            "(?P<fid>x) (?P<fport>p)"
        );
        assert_eq!(
            expand("<F-USER>\\S+</F-USER>", UseDns::Warn),
            r"(?P<user>\S+)"
        );
        assert_eq!(
            expand("<F-ALT_USER1>u</F-ALT_USER1>", UseDns::Warn),
            "(?P<alt_user1>u)"
        );
        // A close tag never opened, a self-closed custom tag and lower-case tags stay.
        assert_eq!(
            expand("</F-USER> <F-NOFAIL/> <f-user> <host>", UseDns::Warn),
            "</F-USER> <F-NOFAIL/> <f-user> <host>"
        );
        assert_eq!(expand("<F-ID/>", UseDns::Warn), r"(?P<fid>\S+)");
        assert_eq!(expand("(?P<name>x)", UseDns::Warn), "(?P<name>x)");
    }

    #[test]
    fn skiplines_are_numbered() {
        assert_eq!(
            expand("a<SKIPLINES>b<SKIPLINES>", UseDns::Warn),
            r"a\n(?P<skiplines0>(?:(?:.*\n)*?))b\n(?P<skiplines1>(?:(?:.*\n)*?))"
        );
    }

    #[test]
    fn host_depends_on_usedns() {
        assert!(expand("<HOST>", UseDns::Yes).contains("(?P<dns>"));
        assert!(expand("<HOST>", UseDns::Raw).contains("(?P<dns>"));
        assert!(!expand("<HOST>", UseDns::No).contains("(?P<dns>"));
        assert_eq!(expand("<HOST>", UseDns::No), expand("<ADDR>", UseDns::Yes));
    }

    #[test]
    fn inline_flag_groups_become_scoped() {
        assert_eq!(
            scope_inline_flags("a ((?i)login|plain) (?:(?s).*)"),
            "a (?i:login|plain) (?s:.*)"
        );
        assert_eq!(
            scope_inline_flags(r"\((?i)x) ((?iP<n>)"),
            r"\((?i)x) ((?iP<n>)"
        );
        assert_eq!(scope_inline_flags("((?i)"), "(?i:");
    }
}
