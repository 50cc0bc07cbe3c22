//! Shared pieces of the client tests: Fail2ban's own server and client run
//! on a copy of a logban sandbox's configuration (own socket, pid file,
//! database and log), so that the same commands can be sent to both and
//! their output compared.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server_support::{Reply, Sandbox, PATIENCE};

/// Fail2ban's installed tools, which these tests compare against.
pub const F2B_SERVER: &str = "/usr/bin/fail2ban-server";
pub const F2B_CLIENT: &str = "/usr/bin/fail2ban-client";

pub fn need_fail2ban() {
    for p in [F2B_SERVER, F2B_CLIENT] {
        assert!(
            Path::new(p).exists(),
            "{p} not found: these tests compare with Fail2ban's own client (apt-get install fail2ban)"
        );
    }
}

/// A running fail2ban-server on the configuration of a logban sandbox,
/// with the paths of the sandbox replaced by its own.
pub struct Fail2ban {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Fail2ban {
    /// Copies `sb`'s configuration (every occurrence of its directory
    /// replaced by this one's) and starts fail2ban-server in the foreground.
    pub fn start(sb: &Sandbox) -> Fail2ban {
        need_fail2ban();
        let dir = tempfile::tempdir().expect("temp dir");
        let from = sb.dir.path().to_string_lossy().into_owned();
        let to = dir.path().to_string_lossy().into_owned();
        copy_tree(&sb.path("etc"), &dir.path().join("etc"), &from, &to);
        for f in ["auth.log", "other.log"] {
            if sb.path(f).exists() {
                std::fs::copy(sb.path(f), dir.path().join(f)).unwrap();
            }
        }
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let mut f = Fail2ban { dir, child: None };
        let child = Command::new(F2B_SERVER)
            .arg("-c")
            .arg(f.path("etc"))
            .arg("-s")
            .arg(f.socket())
            .arg("-p")
            .arg(f.path("run/server.pid"))
            .args(["-xf", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fail2ban-server");
        f.child = Some(child);
        let end = Instant::now() + PATIENCE * 2;
        while f.client(&["ping"]).code != 0 {
            assert!(
                Instant::now() < end,
                "fail2ban-server did not answer; its log:\n{}",
                std::fs::read_to_string(f.path("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/server.sock")
    }

    pub fn client(&self, args: &[&str]) -> Reply {
        let out = Command::new(F2B_CLIENT)
            .arg("-c")
            .arg(self.path("etc"))
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run fail2ban-client");
        Reply {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Fail2ban {
    fn drop(&mut self) {
        let _ = self.client(&["stop"]);
        if let Some(mut c) = self.child.take() {
            let end = Instant::now() + PATIENCE;
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn copy_tree(from: &Path, to: &Path, old: &str, new: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest, old, new);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(dest, text.replace(old, new)).unwrap();
        }
    }
}

/// A client's stderr with what differs between runs and programs taken
/// out: the timestamp and pid of each log line, and the sandbox directory.
pub fn normalize(text: &str, dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    text.lines()
        .map(|l| {
            let l = l.replace(&*dir, "SB");
            // `2026-11-27 05:08:15,426 fail2ban                [26447]: ERROR ...`
            match (l.find(" fail2ban"), l.find("]: ")) {
                (Some(a), Some(b)) if a == 23 && b > a => {
                    let name = l[a + 1..].split('[').next().unwrap_or_default().to_string();
                    format!("TIME {name}[PID]: {}", &l[b + 3..])
                }
                _ => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
