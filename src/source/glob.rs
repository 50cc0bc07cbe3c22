//! `logpath` globs, expanded like Python's `glob.glob` (which Fail2ban uses):
//! `*`, `?`, `[...]`, no braces, no `~`, `*` does not match a leading dot.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether `pattern` has glob characters (else it names one path).
pub fn is_glob(pattern: &Path) -> bool {
    pattern
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The regular files `pattern` matches now, sorted. A literal path gives
/// itself if it is a regular file.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let is_file = |p: &Path| p.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_glob(pattern) {
        return if is_file(pattern) {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let Ok(c) = CString::new(pattern.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // SAFETY: glob_t is plain data that glob() fills and globfree() releases;
    // gl_pathv holds gl_pathc valid C strings until globfree.
    unsafe {
        let mut g: libc::glob_t = std::mem::zeroed();
        if libc::glob(c.as_ptr(), 0, None, &mut g) == 0 {
            for i in 0..g.gl_pathc {
                let p = CStr::from_ptr(*g.gl_pathv.add(i));
                out.push(PathBuf::from(OsStr::from_bytes(p.to_bytes())));
            }
        }
        libc::globfree(&mut g);
    }
    out.retain(|p| is_file(p));
    out
}

/// The directory whose entries decide what `pattern` matches, when that
/// directory is a fixed path (so it can be watched for new files).
pub fn watch_dir(pattern: &Path) -> Option<&Path> {
    let dir = pattern.parent()?;
    (!is_glob(dir)).then_some(dir)
}
