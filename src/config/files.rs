//! Where configuration files come from (a directory or logban's embedded
//! tree) and which files make up a name: `X.conf`, `X.d/*.conf`, `X.local`,
//! `X.d/*.local`, each with its `[INCLUDES]` `before`/`after` files (and their
//! `.local`) around it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use super::ini::{self, IniFile};
use super::layered::{Layered, Vars};

/// The files of a configuration tree.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A directory such as /etc/fail2ban; paths are full paths below it.
    Dir(PathBuf),
    /// Relative path -> content; paths are the relative names.
    Embedded(&'static [(&'static str, &'static str)]),
}

impl Source {
    /// The path of `rel` (`jail.conf`, `filter.d/sshd`) in this tree.
    pub fn path(&self, rel: &str) -> String {
        match self {
            Source::Dir(dir) => format!("{}/{rel}", dir.to_string_lossy().trim_end_matches('/')),
            Source::Embedded(_) => rel.to_string(),
        }
    }

    fn exists(&self, path: &str) -> bool {
        match self {
            Source::Dir(_) => Path::new(path).exists(),
            Source::Embedded(files) => files.iter().any(|(p, _)| *p == path),
        }
    }

    /// The text of `path`, None when it does not exist (or is a directory).
    fn read(&self, path: &str) -> Result<Option<String>, ConfigError> {
        match self {
            Source::Dir(_) => match std::fs::read(path) {
                Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
                    ConfigError::new(format!(
                        "not valid UTF-8 (byte {})",
                        e.utf8_error().valid_up_to()
                    ))
                    .in_file(path)
                }),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                    ) || Path::new(path).is_dir() =>
                {
                    Ok(None)
                }
                Err(e) => Err(ConfigError::new(format!("cannot read: {e}")).in_file(path)),
            },
            Source::Embedded(files) => Ok(files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, text)| text.to_string())),
        }
    }

    /// `dir/*.ext`, sorted, hidden files left out (Python's glob).
    fn list(&self, dir: &str, ext: &str) -> Vec<String> {
        let keep = |name: &str| !name.starts_with('.') && name.ends_with(ext);
        let mut out: Vec<String> = match self {
            Source::Dir(_) => std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| keep(n))
                        .map(|n| format!("{dir}/{n}"))
                        .collect()
                })
                .unwrap_or_default(),
            Source::Embedded(files) => files
                .iter()
                .filter_map(|(p, _)| {
                    let name = p.strip_prefix(dir)?.strip_prefix('/')?;
                    (!name.contains('/') && keep(name)).then(|| p.to_string())
                })
                .collect(),
        };
        out.sort();
        out
    }
}

/// Lexical normalisation (`a/./b/../c` -> `a/c`) so that include loops are
/// recognised whatever way a file is named.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn dirname(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `a.conf` -> `a.local` (Python's `splitext(f)[0] + '.local'`).
fn local_of(path: &str) -> String {
    let base = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let stem_len = match base.rfind('.') {
        Some(i) if base[..i].chars().any(|c| c != '.') => path.len() - base.len() + i,
        _ => path.len(),
    };
    format!("{}.local", &path[..stem_len])
}

/// Reads and caches files of one tree for one reading pass (a dump, a jail
/// list): a file included by many others is parsed once.
pub(crate) struct Files<'s> {
    pub source: &'s Source,
    parsed: RefCell<HashMap<String, Option<Arc<IniFile>>>>,
}

impl<'s> Files<'s> {
    pub fn new(source: &'s Source) -> Files<'s> {
        Files {
            source,
            parsed: RefCell::new(HashMap::new()),
        }
    }

    fn parse(&self, path: &str) -> Result<Option<Arc<IniFile>>, ConfigError> {
        if let Some(hit) = self.parsed.borrow().get(path) {
            return Ok(hit.clone());
        }
        let parsed = match self.source.read(path)? {
            Some(text) => Some(Arc::new(ini::parse(&Arc::from(path), &text)?)),
            None => None,
        };
        self.parsed
            .borrow_mut()
            .insert(path.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// The files that make up `rel` (`jail`, `filter.d/sshd`) merged in
    /// order; None when none of `X.conf`, `X.d/*.conf`, `X.local`,
    /// `X.d/*.local` exists.
    pub fn load(&self, rel: &str) -> Result<Option<Layered>, ConfigError> {
        let base = self.source.path(rel);
        let dir = format!("{base}.d");
        let mut candidates = vec![format!("{base}.conf")];
        candidates.extend(self.source.list(&dir, ".conf"));
        candidates.push(format!("{base}.local"));
        candidates.extend(self.source.list(&dir, ".local"));
        candidates.retain(|f| self.source.exists(f));
        self.merged(&candidates)
    }

    /// Exactly the file `path` (with its includes and `.local`), as
    /// Fail2ban's `readexplicit` reads a filter file given by path; None
    /// when it does not exist.
    pub fn load_explicit(&self, path: &str) -> Result<Option<Layered>, ConfigError> {
        if !self.source.exists(path) {
            return Ok(None);
        }
        self.merged(&[path.to_string()])
    }

    fn merged(&self, candidates: &[String]) -> Result<Option<Layered>, ConfigError> {
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut order = Vec::new();
        self.with_includes(candidates, &[], &mut order)?;
        let mut merged = Layered::default();
        for path in &order {
            if let Some(file) = self.parse(path)? {
                merged.merge(&file);
                merged.files.push(path.clone());
            }
        }
        if merged.files.is_empty() {
            return Ok(None);
        }
        Ok(Some(merged))
    }

    /// Each file preceded by its `before` includes and followed by its `after`
    /// includes, recursively; a file's `.local` follows it.
    fn with_includes(
        &self,
        files: &[String],
        ancestors: &[String],
        out: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let mut expanded: Vec<String> = Vec::new();
        for f in files {
            expanded.push(f.clone());
            let local = local_of(f);
            if !files.contains(&local) && self.source.exists(&local) {
                expanded.push(local);
            }
        }
        for resource in &expanded {
            let Some(file) = self.parse(resource)? else {
                continue;
            };
            let mut chain = ancestors.to_vec();
            chain.push(normalize(resource));
            let includes = include_lists(&file)?;
            let dir = dirname(resource);
            let mut lists: [Vec<String>; 2] = Default::default();
            for (list, names) in lists.iter_mut().zip(includes) {
                for name in names.split('\n').filter(|n| !n.is_empty()) {
                    let path = if name.starts_with('/') || dir.is_empty() {
                        name.to_string()
                    } else {
                        format!("{dir}/{name}")
                    };
                    if chain.contains(&normalize(&path)) {
                        let mut shown = chain.clone();
                        shown.push(normalize(&path));
                        return Err(ConfigError::new(format!(
                            "include loop: {}",
                            shown.join(" -> ")
                        ))
                        .in_file(resource)
                        .section("INCLUDES"));
                    }
                    self.with_includes(&[path], &chain, list)?;
                }
            }
            let [before, after] = lists;
            out.extend(before);
            out.push(resource.clone());
            out.extend(after);
        }
        Ok(())
    }
}

/// The `before` and `after` values of a file's `[INCLUDES]` (interpolated
/// within that file, DEFAULT included), empty when absent.
fn include_lists(file: &IniFile) -> Result<[String; 2], ConfigError> {
    const INCLUDES: &str = "INCLUDES";
    let mut lists: [String; 2] = Default::default();
    if !file.sections.contains_key(INCLUDES) {
        return Ok(lists);
    }
    let mut alone = Layered::default();
    alone.merge(file);
    for (slot, key) in lists.iter_mut().zip(["before", "after"]) {
        if let Some(v) = alone.get(INCLUDES, key, &Vars::new())? {
            *slot = v;
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("a/./b/../c"), "a/c");
        assert_eq!(normalize("/etc//fail2ban/../x"), "/etc/x");
        assert_eq!(normalize("../a"), "../a");
        assert_eq!(local_of("/etc/f/jail.conf"), "/etc/f/jail.local");
        assert_eq!(local_of("a.d/x.y.conf"), "a.d/x.y.local");
        assert_eq!(local_of("noext"), "noext.local");
        assert_eq!(local_of("p.local"), "p.local");
    }
}
