//! Files merged in reading order, and `%(name)s` interpolation over them.
//!
//! Merging follows Fail2ban: DEFAULT options and sections are updated file by
//! file; a value that a later file overrides is kept in a `KNOWN/<section>`
//! section (what `%(known/opt)s` reads); `[Name?family=inet6]` sections are
//! folded into `[Name]` with keys `opt?family=inet6`.
//!
//! Interpolation is Python's BasicInterpolation with Fail2ban's additions:
//! lookup in the given variables, then the section, then DEFAULT;
//! `%(__name__)s`; `%(sec/opt)s`, `%(default/opt)s`, `%(known/opt)s`; `%%`;
//! at most 10 levels deep.

use super::error::{ConfigError, Origin};
use super::ini::{IniFile, Section, Val, DEFAULT};
use super::omap::OMap;

/// Extra values consulted before the section (Python's `vars=`).
pub(crate) type Vars = OMap<String>;

const MAX_DEPTH: usize = 10;

#[derive(Debug, Default, Clone)]
pub(crate) struct Layered {
    pub defaults: Section,
    pub sections: OMap<Section>,
    /// The files merged, in order.
    pub files: Vec<String>,
}

/// `Name?cond` -> (`Name`, `?cond`) when `Name` is a word (Python `^(\w+)(\?.+)$`).
pub(crate) fn split_conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let (base, cond) = name.split_at(q);
    let word = !base.is_empty() && base.chars().all(|c| c.is_alphanumeric() || c == '_');
    (word && cond.len() > 1).then_some((base, cond))
}

fn is_word_or_dash(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `sec/opt` as Fail2ban's `get_ex` recognises it: `^([\w\-]+)/([^\s>]+)$`.
fn section_option(name: &str) -> Option<(&str, &str)> {
    let (sec, opt) = name.split_once('/')?;
    let ok = is_word_or_dash(sec)
        && !opt.is_empty()
        && !opt.chars().any(|c| c.is_whitespace() || c == '>');
    ok.then_some((sec, opt))
}

/// Variables added by each interpolation level: `__name__` and the
/// `%(sec/opt)s` references found at that level.
struct Scope<'p> {
    parent: Option<&'p Scope<'p>>,
    entries: Vec<(String, String)>,
}

impl Scope<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some((_, v)) = s.entries.iter().rev().find(|(k, _)| k == key) {
                return Some(v);
            }
            scope = s.parent;
        }
        None
    }
}

impl Layered {
    /// Adds one file on top, keeping overridden values under `KNOWN/`.
    pub fn merge(&mut self, file: &IniFile) {
        self.defaults.update(&file.defaults);
        for (name, section) in file.sections.iter() {
            let (name, section) = match split_conditional(name) {
                Some((base, cond)) => (
                    base,
                    section
                        .iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect(),
                ),
                None => (name, section.clone()),
            };
            match self.sections.get_mut(name) {
                Some(old) => {
                    let known: Section = old
                        .iter()
                        .filter(|(k, _)| section.contains_key(k))
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    old.update(&section);
                    self.sections
                        .entry_or_insert_with(&format!("KNOWN/{name}"), Section::new)
                        .update(&known);
                }
                None => self.sections.insert(name, section),
            }
        }
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The section's own option names (no DEFAULT), in order.
    pub fn own_options(&self, section: &str) -> Vec<String> {
        self.sections
            .get(section)
            .map(|s| s.keys().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The section's options and then DEFAULT's others.
    pub fn options_with_defaults(&self, section: &str) -> Vec<String> {
        let mut out = self.own_options(section);
        for k in self.defaults.keys() {
            if !out.iter().any(|o| o == k) {
                out.push(k.to_string());
            }
        }
        out
    }

    /// Where `option` of `section` (or DEFAULT) was written.
    pub fn origin(&self, section: &str, option: &str) -> Option<&Origin> {
        let option = option.to_lowercase();
        self.sections
            .get(section)
            .and_then(|s| s.get(&option))
            .or_else(|| self.defaults.get(&option))
            .map(|v| &v.origin)
    }

    /// Python's `dict.update` of DEFAULT with plain values (no origin).
    pub fn merge_defaults(&mut self, values: &[(&str, &str)]) {
        for (k, v) in values {
            self.defaults.insert(
                *k,
                Val {
                    text: v.to_string(),
                    origin: Origin {
                        file: "<built-in>".into(),
                        line: 0,
                    },
                },
            );
        }
    }

    /// Sets `prefix + key` for each value (Fail2ban's `merge_section`), keys
    /// already starting with the prefix left out.
    pub fn merge_section<'a>(
        &mut self,
        section: &str,
        values: impl Iterator<Item = (&'a str, &'a str)>,
        prefix: &str,
        origin: &Origin,
    ) {
        let sec = self.sections.entry_or_insert_with(section, Section::new);
        for (k, v) in values {
            if k.starts_with(prefix) || k == "__name__" {
                continue;
            }
            sec.insert(
                format!("{prefix}{k}"),
                Val {
                    text: v.to_string(),
                    origin: origin.clone(),
                },
            );
        }
    }

    /// The raw value: `vars`, then the section, then DEFAULT. None when the
    /// section (other than DEFAULT) or the option does not exist.
    fn raw<'a>(
        &'a self,
        section: &str,
        option: &str,
        vars: &'a Vars,
    ) -> Option<(&'a str, Option<&'a Origin>)> {
        let sect = if section == DEFAULT {
            None
        } else {
            Some(self.sections.get(section)?)
        };
        if let Some((_, v)) = vars.iter().rev().find(|(k, _)| k.to_lowercase() == option) {
            return Some((v.as_str(), None));
        }
        sect.and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
            .map(|v| (v.text.as_str(), Some(&v.origin)))
    }

    /// The raw text of `option` in `section` or DEFAULT.
    pub fn raw_text(&self, section: &str, option: &str) -> Option<&str> {
        let option = option.to_lowercase();
        self.sections
            .get(section)
            .and_then(|s| s.get(&option))
            .or_else(|| self.defaults.get(&option))
            .map(|v| v.text.as_str())
    }

    /// The interpolated value of `option` in `section`.
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<String>, ConfigError> {
        let option = option.to_lowercase();
        let Some((raw, origin)) = self.raw(section, &option, vars) else {
            return Ok(None);
        };
        let mut out = String::with_capacity(raw.len());
        self.interpolate(section, raw, vars, None, 1, &mut out)
            .map_err(|e| e.at(origin).section(section).key(&option))?;
        Ok(Some(out))
    }

    /// Like [`Layered::get`], and `sec/opt` names read another section:
    /// `known/opt` the value before the last override (else the current
    /// one), `default/opt` DEFAULT.
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<String>, ConfigError> {
        if let Some((sec, opt)) = section_option(option) {
            let known = format!("KNOWN/{section}");
            let candidates: &[&str] = match sec.to_lowercase().as_str() {
                "known" => &[&known, section],
                "default" => &[DEFAULT],
                _ => &[sec],
            };
            for s in candidates {
                if let Some(v) = self.get(s, opt, &Vars::new())? {
                    return Ok(Some(v));
                }
            }
        }
        self.get(section, option, vars)
    }

    fn lookup<'a>(
        &'a self,
        scope: &'a Scope,
        vars: &'a Vars,
        section: &str,
        key: &str,
    ) -> Option<&'a str> {
        scope
            .get(key)
            .or_else(|| self.raw(section, key, vars).map(|(v, _)| v))
    }

    /// Adds the `%(sec/opt)s` references of `rest` to `scope`: the raw value
    /// of `opt` in `sec` (`known`: before the override, `default`: DEFAULT),
    /// DEFAULT when the section lacks it.
    fn map_section_options(&self, section: &str, rest: &str, vars: &Vars, scope: &mut Scope) {
        if !rest.contains('/') || !rest.contains("%(") {
            return;
        }
        let mut from = 0;
        while let Some(p) = rest[from..].find("%(") {
            let start = from + p + 2;
            from = start;
            let Some(close) = rest[start..].find(')') else {
                break;
            };
            let name = &rest[start..start + close];
            if !rest[start + close + 1..].starts_with('s') {
                continue;
            }
            let Some((sec, opt)) = name.split_once('/') else {
                continue;
            };
            if !is_word_or_dash(sec) || opt.is_empty() {
                continue;
            }
            from = start + close + 2;
            if self.lookup(scope, vars, section, name).is_some() {
                continue;
            }
            let own = match sec.to_lowercase().as_str() {
                "default" => None,
                "known" => self
                    .sections
                    .get(&format!("KNOWN/{section}"))
                    .and_then(|s| s.get(opt)),
                _ => match self.sections.get(sec) {
                    Some(s) => s.get(opt),
                    None => continue,
                },
            };
            if let Some(v) = own.or_else(|| self.defaults.get(opt)) {
                scope.entries.push((name.to_string(), v.text.clone()));
            }
        }
    }

    fn interpolate(
        &self,
        section: &str,
        rest: &str,
        vars: &Vars,
        parent: Option<&Scope>,
        depth: usize,
        out: &mut String,
    ) -> Result<(), ConfigError> {
        let mut scope = Scope {
            parent,
            entries: vec![("__name__".to_string(), section.to_string())],
        };
        self.map_section_options(section, rest, vars, &mut scope);
        if depth > MAX_DEPTH {
            return Err(ConfigError::new(format!(
                "%(..)s references nested more than {MAX_DEPTH} levels deep (a reference loop?)"
            )));
        }
        let mut rest = rest;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if rest.starts_with("%%") {
                out.push('%');
                rest = &rest[2..];
            } else if rest.starts_with("%(") {
                let name_end = rest[2..].find(')').map(|i| i + 2);
                let Some(end) = name_end.filter(|&e| e > 2 && rest[e + 1..].starts_with('s'))
                else {
                    return Err(ConfigError::new(format!(
                        "bad interpolation reference {:?}",
                        short(rest)
                    )));
                };
                let var = rest[2..end].to_lowercase();
                rest = &rest[end + 2..];
                let Some(v) = self.lookup(&scope, vars, section, &var) else {
                    return Err(ConfigError::new(format!(
                        "%({var})s refers to an option that is set neither in [{section}] nor in [DEFAULT]"
                    )));
                };
                if v.contains('%') {
                    self.interpolate(section, v, vars, Some(&scope), depth + 1, out)?;
                } else {
                    out.push_str(v);
                }
            } else {
                return Err(ConfigError::new(format!(
                    "'%' must be followed by '%' or '(', found {:?} (write %% for a literal %)",
                    short(rest)
                )));
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::parse;
    use std::sync::Arc;

    fn layered(files: &[&str]) -> Layered {
        let mut l = Layered::default();
        for (i, text) in files.iter().enumerate() {
            let name: Arc<str> = Arc::from(format!("f{i}.conf"));
            l.merge(&parse(&name, text).unwrap());
        }
        l
    }

    fn get(l: &Layered, s: &str, o: &str) -> String {
        l.get(s, o, &Vars::new()).unwrap().unwrap()
    }

    #[test]
    fn basic_name_and_escapes() {
        let l = layered(&["[DEFAULT]\nb = a\nzz = the%(__name__)s\n\
                           [section]\ny = 4%(b)s\ne = 5${b}\nz = %(__name__)s\npct = 100%%\n"]);
        assert_eq!(get(&l, "section", "y"), "4a");
        assert_eq!(get(&l, "section", "e"), "5${b}");
        assert_eq!(get(&l, "section", "z"), "section");
        assert_eq!(get(&l, "section", "zz"), "thesection");
        assert_eq!(get(&l, "section", "pct"), "100%");
        assert_eq!(get(&l, DEFAULT, "zz"), "theDEFAULT");
        assert_eq!(l.get("nosuch", "b", &Vars::new()).unwrap(), None);
        assert_eq!(l.get("section", "nosuch", &Vars::new()).unwrap(), None);
    }

    #[test]
    fn targeted_sections_and_known() {
        let l = layered(&["[DEFAULT]\na = def-a\nb = def-b,a:`%(a)s`\n\
             c = def-c,b:\"%(b)s\"\nd = def-d-b:\"%(known/b)s\"\n\
             [jail]\na = jail-a-%(test/a)s\nb = jail-b-%(test/b)s\ny = %(test/y)s\n\
             [test]\na = test-a-%(default/a)s\nb = test-b-%(known/b)s\nx = %(test/x)s\ny = %(jail/y)s\n"]);
        assert_eq!(get(&l, "test", "a"), "test-a-def-a");
        assert_eq!(get(&l, "test", "b"), "test-b-def-b,a:`test-a-def-a`");
        assert_eq!(
            get(&l, "jail", "b"),
            "jail-b-test-b-def-b,a:`jail-a-test-a-def-a`"
        );
        assert_eq!(
            get(&l, "jail", "c"),
            "def-c,b:\"jail-b-test-b-def-b,a:`jail-a-test-a-def-a`\""
        );
        assert_eq!(
            get(&l, "jail", "d"),
            "def-d-b:\"def-b,a:`jail-a-test-a-def-a`\""
        );
        assert_eq!(get(&l, DEFAULT, "d"), "def-d-b:\"def-b,a:`def-a`\"");
        let e = l.get("test", "x", &Vars::new()).unwrap_err();
        assert_eq!(
            (e.section.as_deref(), e.key.as_deref()),
            (Some("test"), Some("x"))
        );
        assert_eq!((e.file.as_deref(), e.line), (Some("f0.conf"), Some(13)));
        assert!(l.get("jail", "y", &Vars::new()).is_err());
    }

    #[test]
    fn known_is_the_value_before_the_override() {
        let l = layered(&[
            "[Definition]\nfailregex = one\nother = x\n",
            "[Definition]\nfailregex = %(known/failregex)s\n            two\n",
        ]);
        assert_eq!(get(&l, "Definition", "failregex"), "one\ntwo");
        assert_eq!(
            l.get_ex("Definition", "known/failregex", &Vars::new())
                .unwrap()
                .unwrap(),
            "one"
        );
        assert_eq!(
            l.get_ex("Definition", "known/other", &Vars::new())
                .unwrap()
                .unwrap(),
            "x"
        );
    }

    #[test]
    fn conditional_sections_fold_into_their_base() {
        let l = layered(&["[Init]\nx = 4\n[Init?family=inet6]\nx = 6\n"]);
        assert_eq!(get(&l, "Init", "x"), "4");
        assert_eq!(get(&l, "Init", "x?family=inet6"), "6");
        assert!(!l.has_section("Init?family=inet6"));
    }

    #[test]
    fn vars_win_and_errors_are_named() {
        let l =
            layered(&["[s]\na = %(b)s\nb = sect\nbad = 5%\nloop = %(loop2)s\nloop2 = %(loop)s\n"]);
        let mut vars = Vars::new();
        vars.insert("B", "var".to_string());
        assert_eq!(l.get("s", "a", &vars).unwrap().unwrap(), "var");
        let e = l.get("s", "bad", &Vars::new()).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("bad")));
        let e = l.get("s", "loop", &Vars::new()).unwrap_err();
        assert!(e.message.contains("nested"), "{e}");
    }
}
