//! logban's own configuration tree: every file of `defaults/` compiled into
//! the binary (the table comes from `build.rs`). It is read when the
//! configuration directory does not exist ([`load`]) and written out for
//! editing by `logban config write-defaults` ([`write_defaults`]).

use std::io;
use std::path::{Path, PathBuf};

use super::{ConfigError, ConfigTree};

/// Where Fail2ban (and logban) look for the configuration without `-c DIR`.
pub const DEFAULT_DIR: &str = "/etc/fail2ban";

/// Relative path (`jail.conf`, `filter.d/sshd.conf`) -> content, sorted by
/// path: the files of `defaults/` at build time.
pub static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/defaults.rs"));

/// The embedded tree.
pub fn tree() -> ConfigTree {
    ConfigTree::embedded(FILES)
}

/// The configuration tree to run with: `dir` (default [`DEFAULT_DIR`]) read
/// as it is when it exists, the embedded tree when it does not. Logs at INFO
/// which one it is.
pub fn load(dir: Option<&Path>) -> Result<ConfigTree, ConfigError> {
    let dir = dir.unwrap_or(Path::new(DEFAULT_DIR));
    let exists = dir.try_exists().map_err(|e| {
        ConfigError::new(format!(
            "cannot look for the configuration directory {}: {e}",
            dir.display()
        ))
    })?;
    if exists {
        tracing::info!("Reading the configuration in {}", dir.display());
        let has_jails = ["jail.conf", "jail.local", "jail.d"]
            .iter()
            .any(|name| dir.join(name).exists());
        if dir.is_dir() && !has_jails {
            // An empty mount point, most likely: it is not the embedded tree.
            tracing::warn!(
                "{} has no jail.conf, jail.local or jail.d: no jails (logban config write-defaults {} writes the defaults there)",
                dir.display(),
                dir.display()
            );
        }
        ConfigTree::open(dir)
    } else {
        tracing::info!(
            "{} does not exist: using the embedded configuration (logban config write-defaults {} writes it out)",
            dir.display(),
            dir.display()
        );
        Ok(tree())
    }
}

/// What [`write_defaults`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    /// It existed with other content (only with `force`).
    Replaced,
    /// It existed with the same content and was left alone.
    Unchanged,
}

/// Why [`write_defaults`] wrote nothing or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Files that exist with other content; nothing was written.
    #[error("refusing to overwrite files that differ from the defaults (use --force): {}", shown(.0))]
    Exists(Vec<PathBuf>),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn shown(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Writes the embedded tree under `dir` (created when missing), in the order
/// of [`FILES`]. Without `force` nothing is written when a file exists with
/// other content; a file with the same content is left as it is.
pub fn write_defaults(dir: &Path, force: bool) -> Result<Vec<(PathBuf, Written)>, WriteError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    let mut plan = Vec::with_capacity(FILES.len());
    let mut changed = Vec::new();
    for (rel, text) in FILES {
        let path = dir.join(rel);
        let action = match std::fs::read(&path) {
            Ok(old) if old == text.as_bytes() => Written::Unchanged,
            Ok(_) => {
                changed.push(path.clone());
                Written::Replaced
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Written::Created,
            Err(e) => return Err(io_err(&path)(e)),
        };
        plan.push((path, text, action));
    }
    if !force && !changed.is_empty() {
        return Err(WriteError::Exists(changed));
    }
    for (path, text, action) in &plan {
        if *action == Written::Unchanged {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(path, text).map_err(io_err(path))?;
    }
    Ok(plan
        .into_iter()
        .map(|(path, _, action)| (path, action))
        .collect())
}
