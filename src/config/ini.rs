//! One INI file in the dialect Fail2ban gets from Python's ConfigParser:
//! `[section]` headers (case-sensitive, `[DEFAULT]` special), `key = value` or
//! `key: value` (keys lower-cased), `#`/`;` comment lines, `;` inline comments
//! only after whitespace (`#` is never an inline comment), indented
//! continuation lines, blank lines kept inside multi-line values, duplicate
//! sections or keys in one file refused.

use std::sync::Arc;

use super::error::{ConfigError, Origin};
use super::omap::OMap;

/// A raw (not interpolated) value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Val {
    pub text: String,
    pub origin: Origin,
}

pub(crate) type Section = OMap<Val>;

/// A parsed file: its `[DEFAULT]` options and its other sections in order.
#[derive(Debug, Default)]
pub(crate) struct IniFile {
    pub defaults: Section,
    pub sections: OMap<Section>,
}

pub(crate) const DEFAULT: &str = "DEFAULT";

/// Python's `str.isspace()` for the characters that matter in config files.
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Lines as Python's text mode yields them: `\n`, `\r\n` and `\r` all end a line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            usize::from(end < rest.len())
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// Where a `;` inline comment starts: the first `;` at the line start or after
/// whitespace.
fn inline_comment(line: &str) -> Option<usize> {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == ';' && prev_space {
            return Some(i);
        }
        prev_space = py_space(c);
    }
    None
}

pub(crate) fn parse(file: &Arc<str>, text: &str) -> Result<IniFile, ConfigError> {
    let mut out = IniFile::default();
    // Values are collected as lines and joined at the end, as ConfigParser
    // does; `None` as section means `[DEFAULT]`.
    let mut pending: Vec<(Option<String>, String, Vec<String>)> = Vec::new();
    // The current section: outer None before any header, inner None for DEFAULT.
    let mut cursor: Option<Option<String>> = None;
    let mut sections_seen: Vec<String> = Vec::new();
    let mut keys_seen: Vec<(Option<String>, String)> = Vec::new();
    let mut current: Option<usize> = None; // index into `pending` of the open option
    let mut indent_level = 0usize;
    let mut bad_lines: Vec<(u32, String)> = Vec::new();
    let err = |line: u32, msg: String| ConfigError::new(msg).in_file(file).line(line);

    for (n, line) in lines(text).enumerate() {
        let lineno = n as u32 + 1;
        let full_comment = py_strip(line).starts_with(['#', ';']);
        let comment_start = if full_comment {
            Some(0)
        } else {
            inline_comment(line)
        };
        let value = py_strip(&line[..comment_start.unwrap_or(line.len())]);
        if value.is_empty() {
            if let (None, Some(i)) = (comment_start, current) {
                pending[i].2.push(String::new());
            }
            continue;
        }
        let indent = line
            .char_indices()
            .find(|&(_, c)| !py_space(c))
            .map_or(0, |(i, _)| line[..i].chars().count());
        if let Some(i) = current.filter(|_| indent > indent_level) {
            pending[i].2.push(value.to_string());
            continue;
        }
        indent_level = indent;
        if let Some(header) = section_header(value) {
            if header == DEFAULT {
                cursor = Some(None);
            } else {
                if sections_seen.iter().any(|s| s == header) {
                    return Err(err(
                        lineno,
                        format!("section {header:?} already exists in this file"),
                    ));
                }
                sections_seen.push(header.to_string());
                out.sections.insert(header, Section::new());
                cursor = Some(Some(header.to_string()));
            }
            current = None;
            continue;
        }
        let Some(section) = &cursor else {
            return Err(err(
                lineno,
                format!("no section header before this line: {line:?}"),
            ));
        };
        let Some(delim) = value.find(['=', ':']) else {
            bad_lines.push((lineno, line.to_string()));
            current = None;
            continue;
        };
        let name = value[..delim].trim_end_matches(py_space).to_lowercase();
        if name.is_empty() {
            bad_lines.push((lineno, line.to_string()));
        }
        if keys_seen.iter().any(|(s, k)| s == section && *k == name) {
            let sect_name = section.as_deref().unwrap_or(DEFAULT);
            return Err(err(
                lineno,
                format!("option {name:?} in section {sect_name:?} already exists in this file"),
            )
            .section(sect_name)
            .key(&name));
        }
        keys_seen.push((section.clone(), name.clone()));
        let placeholder = Val {
            text: String::new(),
            origin: Origin {
                file: file.clone(),
                line: lineno,
            },
        };
        match section {
            None => out.defaults.insert(name.clone(), placeholder),
            Some(s) => {
                if let Some(sec) = out.sections.get_mut(s) {
                    sec.insert(name.clone(), placeholder)
                }
            }
        }
        // A key set twice in one file was refused above, so each pending entry
        // is a distinct (section, key).
        pending.push((
            section.clone(),
            name,
            vec![py_strip(&value[delim + 1..]).to_string()],
        ));
        current = Some(pending.len() - 1);
    }
    if let Some((line, text)) = bad_lines.first() {
        let more = match bad_lines.len() {
            1 => String::new(),
            n => format!(" (and {} more bad lines)", n - 1),
        };
        return Err(err(
            *line,
            format!("not a section header, an option or a continuation: {text:?}{more}"),
        ));
    }
    for (section, name, parts) in pending {
        let slot = match &section {
            None => out.defaults.get_mut(&name),
            Some(s) => out.sections.get_mut(s).and_then(|sec| sec.get_mut(&name)),
        };
        if let Some(v) = slot {
            v.text = parts.join("\n").trim_end_matches(py_space).to_string();
        }
    }
    Ok(out)
}

/// `[name]`: everything between the first `[` and the last `]` (at least one
/// character); text after the last `]` is ignored, as Python's regex does.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<IniFile, ConfigError> {
        parse(&Arc::from("t.conf"), text)
    }

    fn get<'a>(f: &'a IniFile, sec: &str, key: &str) -> &'a str {
        let s = if sec == DEFAULT {
            &f.defaults
        } else {
            f.sections.get(sec).unwrap()
        };
        &s.get(key).unwrap().text
    }

    #[test]
    fn keys_comments_and_continuations() {
        let f = p("# top\n[DEFAULT]\nA = 1 ; gone\nb=x;kept # kept too\n\
                   [Definition]\nFailRegex = one\n    two\n\n  ; comment inside\n\n    three\n\
                   ignore: ok\n\n[Init]\nx =\n")
        .unwrap();
        assert_eq!(get(&f, DEFAULT, "a"), "1");
        assert_eq!(get(&f, DEFAULT, "b"), "x;kept # kept too");
        assert_eq!(get(&f, "Definition", "failregex"), "one\ntwo\n\n\nthree");
        assert_eq!(get(&f, "Definition", "ignore"), "ok");
        assert_eq!(get(&f, "Init", "x"), "");
        assert_eq!(
            f.sections.keys().collect::<Vec<_>>(),
            ["Definition", "Init"]
        );
        let origin = &f
            .sections
            .get("Definition")
            .unwrap()
            .get("ignore")
            .unwrap()
            .origin;
        assert_eq!(origin.line, 12);
    }

    #[test]
    fn first_delimiter_splits_and_header_takes_last_bracket() {
        let f = p("[a] [b] junk\nk: v = w\nurl = http://x\n").unwrap();
        assert_eq!(get(&f, "a] [b", "k"), "v = w");
        assert_eq!(get(&f, "a] [b", "url"), "http://x");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = p("key = v\n").unwrap_err();
        assert_eq!((e.file.as_deref(), e.line), (Some("t.conf"), Some(1)));
        let e = p("[s]\na = 1\n\nnot an option\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().starts_with("t.conf:4: "), "{e}");
        let e = p("[s]\na = 1\n[s]\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        let e = p("[s]\na = 1\nA = 2\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("a")));
        // DEFAULT may open twice, its keys still may not repeat.
        assert!(p("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n").is_ok());
        assert!(p("[DEFAULT]\na=1\n[DEFAULT]\na=2\n").is_err());
    }

    #[test]
    fn crlf_and_cr_lines() {
        let f = p("[s]\r\na = 1\r\n  2\rb = 3").unwrap();
        assert_eq!(get(&f, "s", "a"), "1\n2");
        assert_eq!(get(&f, "s", "b"), "3");
    }
}
