//! The real daemon in the server namespace of a [`Pair`]: a sandbox on a copy
//! of a whole configuration tree (Fail2ban's installed one or logban's
//! `defaults/`) with one jail `test` following `auth.log` with the test
//! filter, the server started inside the namespace (its firewall changes land
//! there), and what the firewall tests check: connections from the attacker,
//! nft sets, the store's bans.
//!
//! Needs `mod server_support;` and `mod netns;` (common/netns.rs) beside it
//! in the test crate.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{self, Pair};
use crate::server_support::{before_exec, syslog_line, Sandbox, Server, FILTER, PATIENCE};

/// The configuration tree a sandbox copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// /etc/fail2ban as the fail2ban package installs it.
    Fail2ban,
    /// logban's own `defaults/` (what it embeds).
    Logban,
}

/// Jails a tree may switch on by itself; the sandbox runs only `test`.
const OTHER_JAILS: [&str; 7] = [
    "sshd",
    "dovecot",
    "postfix",
    "postfix-sasl",
    "custom",
    "nginx-http-auth",
    "recidive",
];

/// A sandbox on a copy of `tree`: the server's files (socket, pid, database,
/// log) inside it through `fail2ban.local`, the test filter, and jail.local
/// with jail `test` on `auth.log` (maxretry 3, findtime and bantime 1h) plus
/// `options` (`banaction = ...`, `port = ...`).
pub fn sandbox(tree: Tree, options: &str) -> Sandbox {
    let sb = Sandbox {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let etc = sb.path("etc");
    match tree {
        Tree::Fail2ban => netns::fail2ban_tree(&etc, &[]),
        Tree::Logban => {
            let defaults = Path::new(env!("CARGO_MANIFEST_DIR")).join("defaults");
            netns::sh(
                "cp",
                &[
                    "-r",
                    &format!("{}/.", defaults.display()),
                    etc.to_str().unwrap(),
                ],
            );
        }
    }
    // Debian's jail.d turns sshd on.
    let _ = std::fs::remove_file(etc.join("jail.d/defaults-debian.conf"));
    sb.write("etc/fail2ban.local", &sb.fail2ban_conf(""));
    sb.write("etc/filter.d/test-auth.conf", FILTER);
    let mut local = String::new();
    for j in OTHER_JAILS {
        local.push_str(&format!("[{j}]\nenabled = false\n\n"));
    }
    local.push_str(&format!(
        "[test]\nenabled = true\nfilter = test-auth\nlogpath = {}\nmaxretry = 3\n\
         findtime = 1h\nbantime = 1h\n{options}\n",
        sb.path("auth.log").display()
    ));
    sb.write("etc/jail.local", &local);
    sb.write("auth.log", "");
    std::fs::create_dir_all(sb.path("run")).unwrap();
    sb
}

/// The server's command line, run inside namespace `ns`.
pub fn server_in(sb: &Sandbox, ns: &str) -> Command {
    let mut cmd = sb.server_command();
    let netns = CString::new(format!("/var/run/netns/{ns}")).unwrap();
    before_exec(&mut cmd, move || {
        // SAFETY: open and setns are async-signal-safe.
        let fd = unsafe { libc::open(netns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 || unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    });
    cmd
}

/// Starts the server inside namespace `ns` (PATH `path` when given) and
/// waits until it answers.
pub fn start_in(sb: &Sandbox, ns: &str, path: Option<&str>) -> Server {
    let mut cmd = server_in(sb, ns);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    sb.start_with(cmd)
}

/// Appends `n` failures of `addr` to the jail's log.
pub fn fail(sb: &Sandbox, addr: &str, n: usize) {
    for _ in 0..n {
        sb.append("auth.log", &syslog_line("root", addr));
    }
}

/// Waits until `check` holds; `what` and `detail()` explain a timeout.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool, detail: impl Fn() -> String) {
    let end = Instant::now() + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < end,
            "waited {PATIENCE:?} for {what}\n{}",
            detail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until connections from the attacker to `port` fail (refused or
/// dropped) and returns how.
pub fn wait_blocked(pair: &Pair, sb: &Sandbox, v6: bool, port: u16) -> io::ErrorKind {
    let mut how = None;
    wait_for(
        &format!("the attacker to be blocked on port {port} (IPv6: {v6})"),
        || {
            how = pair.connect(v6, port).err();
            how.is_some()
        },
        || sb.log(),
    );
    how.unwrap()
}

/// The elements of a set of `inet f2b-table` in namespace `ns`, sorted;
/// empty when the set or table does not exist.
pub fn set_elements(ns: &str, set: &str) -> Vec<String> {
    let set = set.to_string();
    netns::in_netns(ns, move || {
        let exists = Command::new("nft")
            .args(["list", "set", "inet", "f2b-table", &set])
            .output()
            .expect("nft is installed")
            .status
            .success();
        if exists {
            netns::nft_elements(&set)
        } else {
            Vec::new()
        }
    })
}

/// `nft list table inet f2b-table` in namespace `ns`, None without the table.
pub fn nft_table(ns: &str) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "table",
            "inet",
            "f2b-table",
        ])
        .output()
        .expect("ip is installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The addresses the store holds as banned in jail `test`, sorted (as nft
/// lists them: a subnet with its prefix length, an address without).
pub fn stored_bans(sb: &Sandbox) -> Vec<String> {
    let db = rusqlite::Connection::open(sb.path("lib/fail2ban.sqlite3")).unwrap();
    let mut v: Vec<String> = db
        .prepare("SELECT ip FROM bips WHERE jail = 'test'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v.sort();
    v
}

/// Lines of the server log at level `level` (`ERROR`, `NOTICE`, ...).
pub fn log_lines(sb: &Sandbox, level: &str) -> Vec<String> {
    let tag = format!(": {level} ");
    sb.log()
        .lines()
        .filter(|l| l.contains(&tag))
        .map(String::from)
        .collect()
}

/// The reason `status test` gives for bans not enforced, if any.
pub fn not_enforced(sb: &Sandbox) -> Option<String> {
    sb.status("test").text.lines().find_map(|l| {
        l.split_once("Bans NOT enforced:\t")
            .map(|(_, why)| why.to_string())
    })
}

/// `nft monitor` in namespace `ns`, for what changes in the firewall.
pub struct Monitor {
    child: std::process::Child,
    out: std::path::PathBuf,
    ns: String,
    marks: usize,
}

impl Monitor {
    /// Starts the monitor and returns once it reports changes.
    pub fn start(ns: &str, out: std::path::PathBuf) -> Monitor {
        let file = File::create(&out).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "monitor"])
            .stderr(file.try_clone().unwrap())
            .stdout(file)
            .spawn()
            .expect("nft monitor");
        let mut m = Monitor {
            child,
            out,
            ns: ns.to_string(),
            marks: 0,
        };
        m.mark();
        m
    }

    /// Makes a change of its own and waits until the monitor shows it: the
    /// monitor has seen everything before.
    fn mark(&mut self) {
        self.marks += 1;
        let table = format!("lbmark{}", self.marks);
        for verb in ["add", "delete"] {
            netns::sh(
                "ip",
                &[
                    "netns", "exec", &self.ns, "nft", verb, "table", "ip", &table,
                ],
            );
        }
        let line = format!("delete table ip {table}");
        wait_for(
            "nft monitor to report",
            || std::fs::read_to_string(&self.out).is_ok_and(|t| t.contains(&line)),
            || std::fs::read_to_string(&self.out).unwrap_or_default(),
        );
    }

    /// Stops the monitor and returns the lines about `inet f2b-table`.
    /// Panics when the monitor warned: nft 1.0.6's monitor loses track of a
    /// set when a rule using it is deleted, and then leaves that set's
    /// element events out (with a warning), so its report is incomplete.
    pub fn finish(mut self) -> Vec<String> {
        self.mark();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("W: ")),
            "nft monitor missed events:\n{text}"
        );
        text.lines()
            .filter(|l| l.contains(" inet f2b-table"))
            .map(String::from)
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The elements an `add element`/`delete element` line of `nft monitor` names.
pub fn monitor_elements(line: &str) -> Vec<String> {
    line.split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(inner, _)| inner.split(',').map(|e| e.trim().to_string()).collect())
        .unwrap_or_default()
}
