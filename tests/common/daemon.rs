//! A server in a sandbox: a temp dir holding its configuration tree, socket,
//! pid file, database and logs, the real `logban` binary started as
//! `fail2ban-server -xf start` is (or Fail2ban's own server, see
//! [`crate::common::fail2ban::copy_of`]), the client run against it, and what
//! the tests read back: `status`, the log, the store's bans.
//!
//! [`Sandbox::new`] is a minimal tree with one jail `test` on `auth.log`;
//! [`Sandbox::with_tree`] is a copy of a whole tree (Fail2ban's installed one
//! or logban's `defaults/`) with that jail, for the firewall tests, which
//! start the server inside a network namespace ([`Sandbox::start_in`]).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use super::netns::Pair;
use super::{wait_for, wait_until, BIN, DEFAULT_JAILS};

/// A test filter of our own: `host test-auth[PID]: authentication failure
/// for USER from ADDR`, after the date.
pub const FILTER: &str = r"[Definition]
failregex = ^\s*\S+ test-auth\[\d+\]: authentication failure for <F-USER>.*</F-USER> from <HOST>\s*$
";

/// The configuration tree [`Sandbox::with_tree`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// /etc/fail2ban as the fail2ban package installs it.
    Fail2ban,
    /// logban's own `defaults/` (what it embeds).
    Logban,
}

/// The programs a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tools {
    /// `logban server` and `logban client`.
    Logban,
    /// Fail2ban's installed fail2ban-server and fail2ban-client.
    Fail2ban,
}

impl Tools {
    /// `program` (`server` or `client`) of these tools.
    fn command(self, program: &str) -> Command {
        match self {
            Tools::Logban => {
                let mut c = Command::new(BIN);
                c.arg(program);
                c
            }
            Tools::Fail2ban => Command::new(format!("/usr/bin/fail2ban-{program}")),
        }
    }
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub tools: Tools,
}

/// What a client command printed, and its exit code.
pub struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `status JAIL`, its fields and its text.
#[derive(Debug, Clone)]
pub struct Status {
    pub currently_failed: u64,
    pub total_failed: u64,
    pub currently_banned: u64,
    pub total_banned: u64,
    pub banned: Vec<String>,
    pub text: String,
}

impl Sandbox {
    /// An empty sandbox for logban's tools.
    pub fn empty() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            tools: Tools::Logban,
        }
    }

    /// A sandbox with the test filter, a fail2ban.conf pointing everything
    /// inside the sandbox, jail.conf holding one jail `test` on `auth.log`
    /// (see [`jail_conf`]; the log exists, empty), and `extra` options for
    /// it in jail.local, as an admin overrides jail.conf.
    pub fn new(extra: &str) -> Sandbox {
        let sb = Sandbox::empty();
        sb.write("etc/fail2ban.conf", &sb.fail2ban_conf(""));
        sb.write("etc/filter.d/test-auth.conf", FILTER);
        sb.write("etc/jail.conf", &jail_conf(sb.dir.path(), "auth.log", ""));
        if !extra.is_empty() {
            sb.write("etc/jail.local", &format!("[test]\n{extra}\n"));
        }
        sb.write("auth.log", "");
        std::fs::create_dir_all(sb.path("run")).unwrap();
        sb
    }

    /// A sandbox on a copy of `tree`: the server's files inside it through
    /// `fail2ban.local`, the test filter, and jail.local with the tree's own
    /// jails off and jail `test` on `auth.log` (maxretry 3, findtime and
    /// bantime 1h) plus `options` (`banaction = ...`, `port = ...`).
    pub fn with_tree(tree: Tree, options: &str) -> Sandbox {
        let sb = Sandbox::empty();
        let etc = sb.path("etc");
        match tree {
            Tree::Fail2ban => super::fail2ban::tree(&etc, &[]),
            Tree::Logban => super::copy_defaults(&etc),
        }
        // Debian's jail.d turns sshd on.
        let _ = std::fs::remove_file(etc.join("jail.d/defaults-debian.conf"));
        sb.write("etc/fail2ban.local", &sb.fail2ban_conf(""));
        sb.write("etc/filter.d/test-auth.conf", FILTER);
        let mut local = String::new();
        for j in DEFAULT_JAILS {
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

    /// fail2ban.conf's `[Definition]` with the log, socket, pid file and
    /// database in the sandbox, plus `extra` lines.
    pub fn fail2ban_conf(&self, extra: &str) -> String {
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = {}\n{extra}\n",
            self.path("server.log").display(),
            self.socket().display(),
            self.pidfile().display(),
            self.path("lib/fail2ban.sqlite3").display(),
        )
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/server.sock")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.path("run/server.pid")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn append(&self, rel: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Appends `n` failures of `addr` (user root) to `auth.log`.
    pub fn fail(&self, addr: &str, n: usize) {
        for _ in 0..n {
            self.append("auth.log", &syslog_line("root", addr));
        }
    }

    /// The server with the sandbox's configuration, socket and pid file,
    /// then `args`.
    pub fn server(&self, args: &[&str]) -> Command {
        let mut c = self.tools.command("server");
        c.arg("-c")
            .arg(self.path("etc"))
            .arg("-s")
            .arg(self.socket())
            .arg("-p")
            .arg(self.pidfile())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// The server in the foreground, taking over a stale socket.
    pub fn server_command(&self) -> Command {
        self.server(&["-xf", "start"])
    }

    /// [`Sandbox::server_command`] run inside namespace `ns`.
    pub fn server_in(&self, ns: &str) -> Command {
        let mut cmd = self.server_command();
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

    /// Starts the server in the foreground and waits until it answers.
    pub fn start(&self) -> Server {
        self.start_with(self.server_command())
    }

    /// Starts the server inside namespace `ns` (PATH `path` when given) and
    /// waits until it answers.
    pub fn start_in(&self, ns: &str, path: Option<&str>) -> Server {
        let mut cmd = self.server_in(ns);
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        self.start_with(cmd)
    }

    /// Starts `cmd` and waits until the sandbox's server answers `ping`.
    pub fn start_with(&self, mut cmd: Command) -> Server {
        let child = cmd.spawn().expect("start the server");
        let mut server = Server { child: Some(child) };
        wait_until(
            "the server to answer ping",
            || {
                if self.client(&["ping"]).code == 0 {
                    return Ok(());
                }
                if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                    let mut err = String::new();
                    if let Some(mut e) = server.child.take().unwrap().stderr {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!(
                        "server exited ({status}) before answering: {err}\nlog:\n{}",
                        self.log()
                    );
                }
                Err(())
            },
            |()| format!("log:\n{}", self.log()),
        );
        server
    }

    /// The client with the sandbox's configuration and socket.
    pub fn client_command(&self) -> Command {
        let mut c = self.tools.command("client");
        c.arg("-c")
            .arg(self.path("etc"))
            .arg("-s")
            .arg(self.socket());
        c
    }

    pub fn client(&self, args: &[&str]) -> Reply {
        let out = self
            .client_command()
            .args(args)
            .output()
            .expect("run the client");
        Reply {
            code: out.status.code().unwrap_or(-1),
            stdout: super::text(&out.stdout),
            stderr: super::text(&out.stderr),
        }
    }

    /// The client's output for a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.client(args);
        assert_eq!(
            r.code,
            0,
            "{args:?} failed: {}{}\nlog:\n{}",
            r.stdout,
            r.stderr,
            self.log()
        );
        r.stdout
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    /// Lines of the server log at level `level` (`ERROR`, `NOTICE`, ...).
    pub fn log_lines(&self, level: &str) -> Vec<String> {
        let tag = format!(": {level} ");
        self.log()
            .lines()
            .filter(|l| l.contains(&tag))
            .map(String::from)
            .collect()
    }

    /// Waits until the server log holds `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) {
        wait_for(
            &format!("{count} x {needle:?} in the log"),
            || self.log().matches(needle).count() >= count,
            || self.log(),
        );
    }

    /// `status JAIL`.
    pub fn status(&self, jail: &str) -> Status {
        let text = self.ok(&["status", jail]);
        let field = |name: &str| -> String {
            text.lines()
                .find_map(|l| {
                    l.split_once(&format!("{name}:\t"))
                        .map(|(_, v)| v.to_string())
                })
                .unwrap_or_else(|| panic!("no {name:?} in {text}"))
        };
        let num = |name: &str| field(name).trim().parse::<u64>().unwrap();
        Status {
            currently_failed: num("Currently failed"),
            total_failed: num("Total failed"),
            currently_banned: num("Currently banned"),
            total_banned: num("Total banned"),
            banned: field("Banned IP list")
                .split_whitespace()
                .map(String::from)
                .collect(),
            text: text.clone(),
        }
    }

    /// Waits until `check` holds for `status JAIL`.
    pub fn wait_status(&self, jail: &str, what: &str, check: impl Fn(&Status) -> bool) -> Status {
        wait_until(
            what,
            || {
                let st = self.status(jail);
                if check(&st) {
                    Ok(st)
                } else {
                    Err(st)
                }
            },
            |st| format!("last status:\n{}\nlog:\n{}", st.text, self.log()),
        )
    }

    /// The reason `status test` gives for bans not enforced, if any.
    pub fn not_enforced(&self) -> Option<String> {
        self.status("test").text.lines().find_map(|l| {
            l.split_once("Bans NOT enforced:\t")
                .map(|(_, why)| why.to_string())
        })
    }

    /// The addresses the store holds as banned in jail `test`, sorted (as
    /// nft lists them: a subnet with its prefix length, an address without).
    pub fn stored_bans(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.path("lib/fail2ban.sqlite3")).unwrap();
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
}

/// A running server process; killed on drop unless stopped.
pub struct Server {
    child: Option<Child>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `stop` through the client, then waits for the process to exit.
    pub fn stop(mut self, sb: &Sandbox) {
        let r = sb.client(&["stop"]);
        assert_eq!(r.code, 0, "stop failed: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout.trim(), "Shutdown successful");
        let status = self.wait_exit();
        assert!(status.success(), "server exited with {status}");
    }

    /// kill -9, as a crash or an OOM kill.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let status = wait_until(
            "the server to exit",
            || child.try_wait().unwrap().ok_or(()),
            |()| String::new(),
        );
        self.child = None;
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until connections from the attacker to `port` fail (refused or
/// dropped) and returns how.
pub fn wait_blocked(pair: &Pair, sb: &Sandbox, v6: bool, port: u16) -> io::ErrorKind {
    wait_until(
        &format!("the attacker to be blocked on port {port} (IPv6: {v6})"),
        || match pair.connect(v6, port) {
            Ok(()) => Err(()),
            Err(how) => Ok(how),
        },
        |()| sb.log(),
    )
}

/// A line of the test filter: `stamp`, then `user`'s failure from `addr`.
pub fn auth_line(stamp: &str, user: &str, addr: &str) -> String {
    format!("{stamp} host test-auth[42]: authentication failure for {user} from {addr}\n")
}

/// Now as a classic syslog stamp.
pub fn syslog_stamp() -> String {
    jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string()
}

/// Now as an RFC 3339 stamp (Debian 12's rsyslog).
pub fn rfc3339_stamp() -> String {
    jiff::Zoned::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        .to_string()
}

/// A syslog line of the test filter, stamped now.
pub fn syslog_line(user: &str, addr: &str) -> String {
    auth_line(&syslog_stamp(), user, addr)
}

/// The same as an RFC 3339 line.
pub fn rfc3339_line(user: &str, addr: &str) -> String {
    auth_line(&rfc3339_stamp(), user, addr)
}

/// A jail.conf with one jail `test` on `log` (relative to the sandbox) and
/// extra options.
pub fn jail_conf(sb_dir: &Path, log: &str, extra: &str) -> String {
    format!(
        "[DEFAULT]\nignoreself = false\naction =\n\n[test]\nenabled = true\nfilter = test-auth\nlogpath = {}\nmaxretry = 3\nfindtime = 1h\nbantime = 1h\n{extra}\n",
        sb_dir.join(log).display()
    )
}

/// Runs `f` in the child before exec (raising limits and the like).
pub fn before_exec(cmd: &mut Command, f: impl Fn() -> io::Result<()> + Send + Sync + 'static) {
    // SAFETY: `f` only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(f);
    }
}
