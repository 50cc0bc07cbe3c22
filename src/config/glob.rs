//! `logpath` globs as Python's `glob.glob` expands them: `*`, `?`, `[...]`
//! (`[!...]` negated) per path component, hidden names only for patterns
//! starting with `.`, results in directory order (not sorted), dangling
//! symlinks left out as Fail2ban does.

use std::path::Path;

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Python's `os.path.split`.
fn split(path: &str) -> (&str, &str) {
    let i = path.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = path.split_at(i);
    let trimmed = head.trim_end_matches('/');
    (if trimmed.is_empty() { head } else { trimmed }, tail)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn lexists(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The existing files matching `pattern`, in Python's order.
pub fn expand(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    glob(pattern, false, &mut out);
    out.retain(|p| Path::new(p).exists());
    out
}

fn glob(pattern: &str, dir_only: bool, out: &mut Vec<String>) {
    let (dir, base) = split(pattern);
    if !has_magic(pattern) {
        let hit = if base.is_empty() {
            Path::new(dir).is_dir()
        } else {
            lexists(pattern) && (!dir_only || Path::new(pattern).is_dir())
        };
        if hit {
            out.push(pattern.to_string());
        }
        return;
    }
    let dirs = if dir.is_empty() {
        vec![String::new()]
    } else if dir != pattern && has_magic(dir) {
        let mut d = Vec::new();
        glob(dir, true, &mut d);
        d
    } else {
        vec![dir.to_string()]
    };
    for d in dirs {
        if has_magic(base) {
            let listing = std::fs::read_dir(if d.is_empty() { "." } else { &d });
            let Ok(entries) = listing else { continue };
            for e in entries.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') && !base.starts_with('.') {
                    continue;
                }
                if dir_only && !e.path().is_dir() {
                    continue;
                }
                if fnmatch(&name, base) {
                    out.push(join(&d, &name));
                }
            }
        } else if base.is_empty() {
            if Path::new(&d).is_dir() {
                out.push(join(&d, base));
            }
        } else {
            let p = join(&d, base);
            if lexists(&p) && (!dir_only || Path::new(&p).is_dir()) {
                out.push(p);
            }
        }
    }
}

/// Shell-style matching of a whole name.
fn fnmatch(name: &str, pattern: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    matches_at(&n, &p)
}

fn matches_at(n: &[char], p: &[char]) -> bool {
    let Some(&first) = p.first() else {
        return n.is_empty();
    };
    match first {
        '*' => (0..=n.len()).any(|k| matches_at(&n[k..], &p[1..])),
        '?' => !n.is_empty() && matches_at(&n[1..], &p[1..]),
        '[' => match class(p) {
            Some(class) => {
                let Some(&c) = n.first() else { return false };
                let inside = class.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != class.negate && matches_at(&n[1..], &p[class.len..])
            }
            None => n.first() == Some(&'[') && matches_at(&n[1..], &p[1..]),
        },
        c => n.first() == Some(&c) && matches_at(&n[1..], &p[1..]),
    }
}

/// A `[...]` set of characters.
struct Class {
    /// Its length in the pattern.
    len: usize,
    negate: bool,
    ranges: Vec<(char, char)>,
}

/// The `[...]` class at the start of `p`; None when there is no closing `]`
/// (then `[` is literal).
fn class(p: &[char]) -> Option<Class> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    // A `]` right after `[` or `[!` belongs to the set.
    let start = i;
    let mut items = Vec::new();
    while i < p.len() && (p[i] != ']' || i == start) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            items.push((p[i], p[i + 2]));
            i += 3;
        } else {
            items.push((p[i], p[i]));
            i += 1;
        }
    }
    (i < p.len()).then_some(Class {
        len: i + 1,
        negate,
        ranges: items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(fnmatch("error.log", "*error.log"));
        assert!(fnmatch("site-error.log", "*error.log"));
        assert!(!fnmatch("error.log.1", "*error.log"));
        assert!(fnmatch("a1", "a[0-9]"));
        assert!(!fnmatch("ab", "a[!b]"));
        assert!(fnmatch("a]", "a[]]"));
        assert!(fnmatch("a[", "a["));
        assert_eq!(split("/var/log/x*"), ("/var/log", "x*"));
        assert_eq!(split("/x"), ("/", "x"));
    }

    #[test]
    fn expands_in_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap();
        for f in [
            "a/x-error.log",
            "a/y-error.log",
            "b/z-error.log",
            "a/.h-error.log",
            "a/access.log",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::os::unix::fs::symlink(
            d.path().join("nowhere"),
            d.path().join("a/dangling-error.log"),
        )
        .unwrap();
        let mut got = expand(&format!("{root}/*/*error.log"));
        got.sort();
        let want: Vec<String> = ["a/x-error.log", "a/y-error.log", "b/z-error.log"]
            .iter()
            .map(|f| format!("{root}/{f}"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            expand(&format!("{root}/a/access.log")),
            [format!("{root}/a/access.log")]
        );
        assert!(expand(&format!("{root}/a/missing.log")).is_empty());
    }
}
