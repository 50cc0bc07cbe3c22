//! Shared pieces of the server integration tests: a sandbox with its own
//! configuration tree, socket, pid file, database and logs in a temp dir,
//! the real `logban` binary started as `fail2ban-server -xf start` is, and
//! the client run against it.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_logban");

/// How long a condition may take before a test fails (generous: CI
/// machines are slow and busy; nothing here measures speed).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A test filter of our own: `host test-auth[PID]: authentication failure
/// for USER from ADDR`, after the date.
pub const FILTER: &str = r"[Definition]
failregex = ^\s*\S+ test-auth\[\d+\]: authentication failure for <F-USER>.*</F-USER> from <HOST>\s*$
";

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

pub struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Sandbox {
    /// A sandbox with the test filter, a fail2ban.conf pointing everything
    /// inside the sandbox, and jail.conf holding one jail `test` on
    /// `auth.log` (see [`jail_conf`]); `extra` options for it go to
    /// jail.local, as an admin overrides jail.conf.
    pub fn new(extra: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let sb = Sandbox { dir };
        sb.write("etc/fail2ban.conf", &sb.fail2ban_conf(""));
        sb.write("etc/filter.d/test-auth.conf", FILTER);
        sb.write("etc/jail.conf", &jail_conf(sb.dir.path(), "auth.log", ""));
        if !extra.is_empty() {
            sb.write("etc/jail.local", &format!("[test]\n{extra}\n"));
        }
        std::fs::create_dir_all(sb.path("run")).unwrap();
        sb
    }

    pub fn fail2ban_conf(&self, extra: &str) -> String {
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = {}\n{extra}\n",
            self.path("server.log").display(),
            self.socket().display(),
            self.path("run/server.pid").display(),
            self.path("lib/fail2ban.sqlite3").display(),
        )
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/server.sock")
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

    pub fn server_command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("server")
            .arg("-c")
            .arg(self.path("etc"))
            .arg("-s")
            .arg(self.socket())
            .arg("-p")
            .arg(self.path("run/server.pid"))
            .args(["-xf", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Starts the server in the foreground and waits until it answers.
    pub fn start(&self) -> Server {
        self.start_with(self.server_command())
    }

    pub fn start_with(&self, mut cmd: Command) -> Server {
        let child = cmd.spawn().expect("start logban server");
        let mut server = Server { child: Some(child) };
        let end = Instant::now() + PATIENCE;
        loop {
            if self.client(&["ping"]).code == 0 {
                return server;
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = server.child.take().unwrap().stderr {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "server exited ({status}) before answering: {err}\nlog:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "server did not answer ping\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self, args: &[&str]) -> Reply {
        let out: Output = Command::new(BIN)
            .arg("client")
            .arg("-c")
            .arg(self.path("etc"))
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run logban client");
        Reply {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    /// `(Currently failed, Total failed, Currently banned, Total banned,
    /// Banned IP list)` from `status JAIL`.
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
        let end = Instant::now() + PATIENCE;
        loop {
            let st = self.status(jail);
            if check(&st) {
                return st;
            }
            assert!(
                Instant::now() < end,
                "waited for {what}; last status:\n{}\nlog:\n{}",
                st.text,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the server log holds `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) {
        let end = Instant::now() + PATIENCE;
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < end,
                "waited for {count} x {needle:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    pub currently_failed: u64,
    pub total_failed: u64,
    pub currently_banned: u64,
    pub total_banned: u64,
    pub banned: Vec<String>,
    pub text: String,
}

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
        let child = self.child.as_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.child = None;
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().unwrap();
        let end = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(Instant::now() < end, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// A syslog line of the test filter, stamped now.
pub fn syslog_line(user: &str, addr: &str) -> String {
    let now = jiff::Zoned::now();
    format!(
        "{} host test-auth[42]: authentication failure for {user} from {addr}\n",
        now.strftime("%b %e %H:%M:%S")
    )
}

/// The same as an RFC 3339 line (Debian 12's rsyslog).
pub fn rfc3339_line(user: &str, addr: &str) -> String {
    let now = jiff::Zoned::now();
    format!(
        "{} host test-auth[42]: authentication failure for {user} from {addr}\n",
        now.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
    )
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
pub fn before_exec(cmd: &mut Command, f: impl Fn() -> std::io::Result<()> + Send + Sync + 'static) {
    // SAFETY: `f` only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(f);
    }
}
