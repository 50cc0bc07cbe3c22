//! What the integration tests share: [`daemon`] runs a logban server in a
//! temp sandbox, [`fail2ban`] holds Fail2ban's installed tree, reader and
//! server as the reference, [`netns`] the network namespaces and nftables
//! the firewall tests drive, [`corpus`] Fail2ban's annotated sample logs;
//! here, the pieces all of them use (the binary, the repository, running
//! programs, waiting for a condition).
//!
//! Every test file compiles this module on its own (`mod common;`) and uses
//! only part of it, hence `dead_code` is allowed.
#![allow(dead_code)]

pub mod corpus;
pub mod daemon;
pub mod fail2ban;
pub mod netns;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `logban` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_logban");

/// How long a condition may take before a test fails (generous: CI
/// machines are slow and busy; nothing here measures speed).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The jails of logban's `defaults/jail.conf` (Fail2ban's jail.conf has
/// them too).
pub const DEFAULT_JAILS: [&str; 7] = [
    "sshd",
    "dovecot",
    "postfix",
    "postfix-sasl",
    "custom",
    "nginx-http-auth",
    "recidive",
];

/// The repository (defaults/, tests/data/logs, packaging/).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// logban's own configuration tree, the one it embeds.
pub fn defaults_dir() -> PathBuf {
    repo().join("defaults")
}

/// A copy of `defaults/` at `to`.
pub fn copy_defaults(to: &Path) {
    let from = format!("{}/.", defaults_dir().display());
    sh("cp", &["-r", &from, to.to_str().unwrap()]);
}

/// Every file under `dir`, relative to it, sorted.
pub fn tree_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap();
                out.push(rel.to_str().unwrap().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Fails clearly when `path`, which `package` installs, is missing.
pub fn need<'a>(path: &'a str, package: &str) -> &'a Path {
    let p = Path::new(path);
    assert!(
        p.exists(),
        "{path} is missing: this test needs it (apt-get install {package})"
    );
    p
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary with `args`, run to its end.
pub fn logban(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the logban binary")
}

/// Runs a command, panicking with its output when it fails; its stdout.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cmd` with `input` on its stdin, to its end, stdout and stderr
/// captured.
pub fn pipe(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Polls `probe` until it gives `Ok`, for up to [`PATIENCE`]; on timeout
/// fails with `what` and `explain` of the last `Err`.
pub fn wait_until<T, S>(
    what: &str,
    mut probe: impl FnMut() -> Result<T, S>,
    explain: impl FnOnce(S) -> String,
) -> T {
    let end = Instant::now() + PATIENCE;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= end => {
                panic!("waited {PATIENCE:?} for {what}\n{}", explain(last))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until `check` holds; `detail()` explains a timeout.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool, detail: impl FnOnce() -> String) {
    wait_until(
        what,
        || if check() { Ok(()) } else { Err(()) },
        |()| detail(),
    )
}
