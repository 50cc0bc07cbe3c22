//! Small value syntaxes of Fail2ban's configuration: `name[k=v, k2="a,b"]`
//! parameters, the split of an `action` value into actions, word lists,
//! `shlex` splitting of journal matches, Python's `int()` and truth values.

use super::omap::OMap;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// An option name in `[...]`: word characters, `-` and `.`.
fn name_end(s: &str, i: usize) -> usize {
    s[i..]
        .char_indices()
        .find(|&(_, c)| !(is_word(c) || c == '-' || c == '.'))
        .map_or(s.len(), |(j, _)| i + j)
}

fn skip_space(s: &str, i: usize) -> usize {
    s[i..]
        .char_indices()
        .find(|&(_, c)| !c.is_whitespace())
        .map_or(s.len(), |(j, _)| i + j)
}

/// The end of a quoted value starting at `i` (after the closing quote).
fn quoted_end(s: &str, i: usize) -> Option<usize> {
    let q = s[i..].chars().next().filter(|c| *c == '"' || *c == '\'')?;
    s[i + 1..].find(q).map(|j| i + 1 + j + 1)
}

/// The end of an unquoted value: up to `,` or `]`.
fn unquoted_end(s: &str, i: usize) -> usize {
    s[i..].find([',', ']']).map_or(s.len(), |j| i + j)
}

/// `$` of a Python regex without MULTILINE: the end, or before a final newline.
fn at_end(s: &str, i: usize) -> bool {
    i == s.len() || (i + 1 == s.len() && s.as_bytes()[i] == b'\n')
}

/// `]`, optional whitespace, `[`: the separator between option groups.
fn group_sep_end(s: &str, i: usize) -> Option<usize> {
    let rest = s[i..].strip_prefix(']')?;
    let j = skip_space(s, s.len() - rest.len());
    s[j..].starts_with('[').then_some(j + 1)
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(25) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Splits `name[k=v, k2="a,b"][k3='c']` into the name and its parameters
/// (Fail2ban's `extractOptions`): values may be double- or single-quoted
/// (then they may hold `,` and `]`), unquoted values end at `,` or `]`,
/// keys and values are trimmed, groups `][` separate like commas.
pub fn extract_options(spec: &str) -> Result<(String, OMap<String>), String> {
    let name_len = spec.find('[').unwrap_or(spec.len());
    if name_len == 0 {
        return Err("unexpected option syntax".into());
    }
    let name = &spec[..name_len];
    let rest = &spec[name_len..];
    let mut opts = OMap::new();
    if rest.is_empty() {
        return Ok((name.to_string(), opts));
    }
    // `[` + everything up to the last `]` + trailing whitespace only.
    let inner = rest
        .rfind(']')
        .filter(|&e| rest[e + 1..].chars().all(char::is_whitespace))
        .map(|e| &rest[1..e])
        .ok_or_else(|| "unexpected option syntax".to_string())?;
    let s = inner;
    let mut i = 0;
    while i < s.len() {
        let key_start = skip_space(s, i);
        let key_end = name_end(s, key_start);
        if key_end > key_start && s[key_end..].starts_with('=') {
            let v = key_end + 1;
            let (value, after) = match quoted_end(s, v) {
                Some(e) => (&s[v + 1..e - 1], e),
                None => {
                    let e = unquoted_end(s, v);
                    (&s[v..e], e)
                }
            };
            let next = if s[after..].starts_with(',') {
                after + 1
            } else if let Some(j) = group_sep_end(s, after) {
                j
            } else if at_end(s, after) {
                s.len()
            } else {
                return Err(format!(
                    "unexpected syntax at {after} after option {:?}: {}",
                    &s[key_start..key_end],
                    shorten(&s[after..])
                ));
            };
            opts.insert(
                s[key_start..key_end].trim().to_string(),
                value.trim().to_string(),
            );
            i = next;
            continue;
        }
        // A trailing comma and whitespace are allowed.
        let tail = s[i..].strip_prefix(',').unwrap_or(&s[i..]);
        if tail.chars().all(char::is_whitespace) {
            break;
        }
        return Err(format!(
            "expected option, wrong syntax at {i}: {}",
            shorten(&s[i..])
        ));
    }
    Ok((name.to_string(), opts))
}

/// Splits an `action` (or `filter`) value into its entries: separated by
/// whitespace or newlines, except inside a well-formed `[...]` parameter list
/// (Fail2ban's `splitWithOptions`). Entries keep trailing whitespace; callers
/// trim them.
pub fn split_with_options(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < value.len() {
        let c = value[i..].chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let end = entry_with_params(value, i).unwrap_or_else(|| {
            value[i..]
                .find(char::is_whitespace)
                .map_or(value.len(), |j| i + j)
        });
        out.push(&value[i..end]);
        i = end;
    }
    out
}

/// An entry `name`, optionally followed by `[params]`, that ends at
/// whitespace or the end; the returned end includes following whitespace
/// except the last character of it.
fn entry_with_params(s: &str, start: usize) -> Option<usize> {
    let name_end = s[start..]
        .find(|c: char| c == '[' || c.is_whitespace())
        .map_or(s.len(), |j| start + j);
    if name_end == start {
        return None;
    }
    let open = skip_space(s, name_end);
    let after = if s[open..].starts_with('[') {
        let mut memo = std::collections::HashMap::new();
        params_then_close(s, skip_space(s, open + 1), 0, &mut memo)
    } else {
        None
    };
    // Without a parameter list the name itself must end at whitespace.
    let end = after.or((name_end == s.len() || open > name_end).then_some(name_end))?;
    let ws_end = skip_space(s, end);
    Some(if ws_end == s.len() {
        ws_end
    } else {
        let last = s[end..ws_end].chars().last().map_or(0, char::len_utf8);
        ws_end - last
    })
}

/// Parameters `k=v` (each followed by optional `,` or `][`), then `]`,
/// then end or whitespace; tried in the order a backtracking regex would.
/// Returns the position after `]`. Lists of more than [`MAX_PARAMS`]
/// parameters are not taken as lists (the recursion stays shallow).
fn params_then_close(
    s: &str,
    i: usize,
    depth: usize,
    memo: &mut std::collections::HashMap<usize, Option<usize>>,
) -> Option<usize> {
    if let Some(hit) = memo.get(&i) {
        return *hit;
    }
    if depth > MAX_PARAMS {
        return None;
    }
    let result = params_then_close_uncached(s, i, depth, memo);
    memo.insert(i, result);
    result
}

const MAX_PARAMS: usize = 256;

fn params_then_close_uncached(
    s: &str,
    i: usize,
    depth: usize,
    memo: &mut std::collections::HashMap<usize, Option<usize>>,
) -> Option<usize> {
    let key_end = name_end(s, i);
    if key_end > i && s[key_end..].starts_with('=') {
        let v = key_end + 1;
        let mut value_ends = Vec::new();
        if let Some(e) = quoted_end(s, v) {
            value_ends.push(e);
        }
        let longest = unquoted_end(s, v);
        let mut e = longest;
        loop {
            value_ends.push(e);
            if e == v {
                break;
            }
            e = s[..e].char_indices().next_back().map_or(v, |(j, _)| j);
        }
        for e in value_ends {
            let after = skip_space(s, e);
            let mut seps = Vec::with_capacity(2);
            if s[after..].starts_with(',') {
                seps.push(after + 1);
            } else if let Some(j) = group_sep_end(s, after) {
                seps.push(j);
            }
            seps.push(after);
            for sep in seps {
                if let Some(end) = params_then_close(s, skip_space(s, sep), depth + 1, memo) {
                    return Some(end);
                }
            }
        }
    }
    let close = s[i..].starts_with(']').then_some(i + 1)?;
    let ok = close == s.len() || s[close..].starts_with(char::is_whitespace);
    ok.then_some(close)
}

/// Words separated by commas, spaces or newlines (Fail2ban's `splitwords`).
pub fn splitwords(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// POSIX shell-like splitting (Python's `shlex.split`): whitespace separates,
/// `'...'` is literal, `"..."` allows `\"` and `\\`, a backslash outside
/// quotes escapes any character.
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    let mut in_token = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_token {
                    out.push(std::mem::take(&mut token));
                    in_token = false;
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => token.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => token.push(c),
                            Some(c) => {
                                token.push('\\');
                                token.push(c);
                            }
                            None => return Err("no escaped character".into()),
                        },
                        Some(c) => token.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_token = true;
                match chars.next() {
                    Some(c) => token.push(c),
                    None => return Err("no escaped character".into()),
                }
            }
            c => {
                in_token = true;
                token.push(c);
            }
        }
    }
    if in_token {
        out.push(token);
    }
    Ok(out)
}

/// Python's `int(str)`: surrounding whitespace, a sign, digits with single
/// underscores between them.
pub fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Fail2ban's `_as_bool`: `1`, `on`, `true`, `yes` (any case) are true.
pub fn as_bool(s: &str) -> bool {
    matches!(s.to_lowercase().as_str(), "1" | "on" | "true" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(spec: &str) -> (String, Vec<(String, String)>) {
        let (n, o) = extract_options(spec).unwrap();
        (n, o.into_iter().collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extract_simple_and_quoted() {
        assert_eq!(
            opts("mail-whois[name=SSH]"),
            ("mail-whois".into(), pairs(&[("name", "SSH")]))
        );
        assert_eq!(opts("mail.who_is"), ("mail.who_is".into(), vec![]));
        assert_eq!(opts("mail[a=',']"), ("mail".into(), pairs(&[("a", ",")])));
        assert_eq!(opts("mail[a=b, ]"), ("mail".into(), pairs(&[("a", "b")])));
        assert_eq!(opts("abc[]"), ("abc".into(), vec![]));
        let spec = "option[opt01=abc,opt02=\"123\",opt03=\"with=okay?\",opt04=\"andwith,okay...\",\
                    opt05=\"how about spaces\",opt06=\"single'in'double\",opt07='double\"in\"single',  \
                    opt08= leave some space, opt09=one for luck, opt10=, opt11=]";
        let expected = pairs(&[
            ("opt01", "abc"),
            ("opt02", "123"),
            ("opt03", "with=okay?"),
            ("opt04", "andwith,okay..."),
            ("opt05", "how about spaces"),
            ("opt06", "single'in'double"),
            ("opt07", "double\"in\"single"),
            ("opt08", "leave some space"),
            ("opt09", "one for luck"),
            ("opt10", ""),
            ("opt11", ""),
        ]);
        assert_eq!(opts(spec).1, expected);
        // `][` separates like `,`.
        let grouped = opts(&spec.replace(',', "]["));
        let expected2: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(',', "][")))
            .collect();
        assert_eq!(grouped.1, expected2);
        assert_eq!(
            opts("x[a=\"q]\", b='c,d']").1,
            pairs(&[("a", "q]"), ("b", "c,d")])
        );
    }

    #[test]
    fn extract_errors() {
        for bad in [
            "mail-how[",
            "mail[a=\"test with interim (wrong) \"\" quotes\"]",
            "mail[a='test with interim (wrong) '' quotes']",
            "mail[a='x, y, z', b=x, y, z]",
            "mail['s']",
            "[a=b]",
        ] {
            assert!(extract_options(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_entries() {
        for sep in ["\n", "\t", " "] {
            let j = |a: &str| format!("{a}{sep}b");
            assert_eq!(split_with_options(&j("a")), ["a", "b"]);
            assert_eq!(split_with_options(&j("a[x=y]")), ["a[x=y]", "b"]);
            assert_eq!(split_with_options(&j("a[x=y][z=z]")), ["a[x=y][z=z]", "b"]);
            assert_eq!(
                split_with_options(&j("a[x=\"y][z\"]")),
                ["a[x=\"y][z\"]", "b"]
            );
            assert_eq!(
                split_with_options(&j("a[x=\"y z\"]")),
                ["a[x=\"y z\"]", "b"]
            );
            assert_eq!(
                split_with_options(&j("a[x=\"y\tz\"]")),
                ["a[x=\"y\tz\"]", "b"]
            );
            assert_eq!(
                split_with_options(&j("a[x=\"y\nz\"]")),
                ["a[x=\"y\nz\"]", "b"]
            );
        }
        let multi =
            "iptables[name=x, port=\"1,2\", protocol=tcp]\n   sendmail-whois[sender=\"a b\"]";
        let got: Vec<_> = split_with_options(multi)
            .into_iter()
            .map(str::trim)
            .collect();
        assert_eq!(
            got,
            [
                "iptables[name=x, port=\"1,2\", protocol=tcp]",
                "sendmail-whois[sender=\"a b\"]"
            ]
        );
        // A bad list falls back to whitespace-separated words.
        assert_eq!(split_with_options("a[x=1, y] b"), ["a[x=1,", "y]", "b"]);
        // Space-separated parameters and a shorter value that lets a quoted one follow.
        assert_eq!(
            split_with_options("a[x=a y=\"b,c\"] z"),
            ["a[x=a y=\"b,c\"]", "z"]
        );
    }

    #[test]
    fn words_shlex_ints_bools() {
        assert_eq!(
            splitwords(" 127.0.0.1/8 ::1,10.0.0.1\n192.0.2.1 "),
            ["127.0.0.1/8", "::1", "10.0.0.1", "192.0.2.1"]
        );
        assert_eq!(
            shlex_split("_SYSTEMD_UNIT=sshd.service + _COMM=sshd").unwrap(),
            ["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]
        );
        assert_eq!(
            shlex_split(r#"a "b c" 'd e' f\ g "h\"i\n""#).unwrap(),
            ["a", "b c", "d e", "f g", "h\"i\\n"]
        );
        assert!(shlex_split("a 'b").is_err());
        assert_eq!(py_int(" 5 "), Some(5));
        assert_eq!(py_int("-1_000"), Some(-1000));
        assert_eq!(py_int("abc"), None);
        assert_eq!(py_int("1__0"), None);
        assert!(as_bool("Yes") && as_bool("1") && !as_bool("no") && !as_bool("2"));
    }
}
