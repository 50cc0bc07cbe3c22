//! What `fail2ban-regex`'s REGEX and IGNOREREGEX arguments name: a filter of
//! the config tree (`sshd[mode=aggressive]`), a filter file by path, or a
//! regex written out; and the `Use ...` lines it prints while reading them.

use crate::config::{split_spec, ConfigTree, FilterDef};
use std::path::Path;

/// The filter as the command line defines it, before it is compiled.
pub struct Source {
    pub def: FilterDef,
    /// The failregexes and ignoreregexes as written (tags not expanded),
    /// as the report lists them.
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    /// Whether the filter file set `maxlines` / `datepattern` (Fail2ban
    /// prints a `Use` line for each).
    pub file_maxlines: bool,
    pub file_datepattern: bool,
}

/// Fail2ban's `shortstr`: at most `l` characters, `...` marking a cut.
pub fn shortstr(s: &str, l: usize) -> String {
    if s.chars().count() > l {
        let mut t: String = s.chars().take(l - 3).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    }
}

/// Whether a REGEX argument looks like a filter name or path, optionally
/// with `[options]` (`^/{0,3}[\w/_\-.]+(?:\[.*\])?$`).
fn looks_like_filter(value: &str) -> bool {
    let rest = value.trim_start_matches('/');
    if value.len() - rest.len() > 3 {
        return false;
    }
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '.')))
        .unwrap_or(rest.len());
    let (name, opts) = rest.split_at(name_len);
    !name.is_empty()
        && !value.contains('\n')
        && (opts.is_empty() || (opts.starts_with('[') && opts.ends_with(']')))
}

/// `"." in name[-6:]`: the name has an extension already.
fn has_extension(name: &str) -> bool {
    let tail: Vec<char> = name.chars().rev().take(6).collect();
    tail.contains(&'.')
}

fn basename(p: &str) -> &str {
    Path::new(p)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

fn dirname(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => String::new(),
    }
}

/// The filter file a REGEX argument names, as Fail2ban looks for it: the
/// name, `.conf` or `.local` appended when it has no extension, under
/// `CONFIG/filter.d` unless the name holds a `/`. Returns the file and the
/// base directory it was looked up in.
fn find_file(config: &str, name: &str) -> Option<(String, String)> {
    let mut basedir = config.to_string();
    let tries: Vec<String> = if has_extension(name) {
        vec![name.to_string()]
    } else {
        vec![name.into(), format!("{name}.conf"), format!("{name}.local")]
    };
    for t in tries {
        let file = if !t.contains('/') {
            if basename(&basedir) == "filter.d" {
                format!("{}/{t}", basedir.trim_end_matches('/'))
            } else {
                format!("{}/filter.d/{t}", basedir.trim_end_matches('/'))
            }
        } else {
            basedir = dirname(&t);
            t
        };
        if Path::new(&file).is_file() {
            return Some((file, basedir));
        }
    }
    None
}

/// Python's `repr` of a `{key: value}` dict of strings.
pub fn dict_repr(pairs: &[(String, String)]) -> String {
    let obj: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    crate::util::py_repr(&serde_json::Value::Object(obj))
}

/// Reads the REGEX argument; `say` receives the `Use ...` lines. An error
/// is the message Fail2ban prints before giving up.
pub fn failregex(
    config: &str,
    value: &str,
    maxlines: usize,
    say: &mut dyn FnMut(String),
) -> Result<Source, String> {
    let found = if looks_like_filter(value) {
        let (name, opts) = split_spec(value).map_err(|e| {
            format!("ERROR: Wrong filter name or options: {e}\n       while parsing: {value}")
        })?;
        find_file(config, &name).map(|(file, basedir)| (name, opts, file, basedir))
    } else {
        None
    };
    let Some((name, opts, _file, basedir)) = found else {
        say(format!(
            "Use {:>11} line : {}",
            "failregex",
            shortstr(value, 53)
        ));
        return Ok(Source {
            def: FilterDef {
                name: shortstr(value, 53),
                failregex: vec![value.to_string()],
                maxlines,
                ..FilterDef::default()
            },
            failregex: vec![value.to_string()],
            ignoreregex: Vec::new(),
            file_maxlines: false,
            file_datepattern: false,
        });
    };
    let params = &value[value.find('[').unwrap_or(value.len())..];
    let in_tree = basedir == config
        || basename(&basedir) == "filter.d"
        || (!has_extension(&name) && !name.contains('/'));
    let loaded = if in_tree {
        let basedir = if basename(&basedir) == "filter.d" {
            dirname(&basedir)
        } else {
            basedir
        };
        let stem = Path::new(&name)
            .file_stem()
            .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
        say(format!(
            "Use {:>11} filter file : {stem}, basedir: {basedir}",
            "failregex"
        ));
        if !opts.is_empty() {
            say(format!("Use   filter options : {}", dict_repr(&opts)));
        }
        ConfigTree::open(&basedir).and_then(|t| t.filter(&format!("{stem}{params}")))
    } else {
        let path =
            std::path::absolute(&name).map_or(name.clone(), |p| p.to_string_lossy().into_owned());
        say(format!("Use {:>11} file : {path}", "failregex"));
        if !opts.is_empty() {
            say(format!("Use   filter options : {}", dict_repr(&opts)));
        }
        ConfigTree::open(dirname(&path)).and_then(|t| t.explicit_filter(&format!("{path}{params}")))
    };
    let def = loaded
        .map_err(|e| format!("Wrong config file: {e}\nERROR: failed to load filter {value}"))?;
    Ok(Source {
        failregex: def.failregex.clone(),
        ignoreregex: def.ignoreregex.clone(),
        file_maxlines: def.options.contains_key("maxlines"),
        file_datepattern: def.datepattern.is_some(),
        def,
    })
}

/// Adds the IGNOREREGEX argument (always a regex) to the filter.
pub fn ignoreregex(src: &mut Source, value: &str, say: &mut dyn FnMut(String)) {
    say(format!(
        "Use {:>11} line : {}",
        "ignoreregex",
        shortstr(value, 53)
    ));
    src.def.ignoreregex.push(value.to_string());
    src.ignoreregex.push(value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_and_regexes_are_told_apart() {
        for v in [
            "sshd",
            "sshd[mode=aggressive]",
            "/etc/f/x.conf",
            "filter.d/a-b.local",
        ] {
            assert!(looks_like_filter(v), "{v}");
        }
        for v in ["fail <HOST>", "////x", "a[b", "^x$", "", "a\nb"] {
            assert!(!looks_like_filter(v), "{v}");
        }
        assert!(has_extension("x.conf") && !has_extension("a.b/sshd_x"));
        assert_eq!(shortstr("abcdefgh", 6), "abc...");
        assert_eq!(shortstr("abcdef", 6), "abcdef");
    }
}
