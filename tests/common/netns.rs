//! Network namespaces for tests that drive real firewalls.
//!
//! [`Pair`] makes a server namespace and an attacker namespace joined by a veth
//! pair (192.0.2.1 / 192.0.2.2, 2001:db8::1 / 2001:db8::2), with names unique
//! per process and test so that tests run in parallel, and deletes them on
//! drop (also when the test panics). [`Pair::in_server`] runs code on a thread
//! that entered the server namespace: sockets it opens and processes it
//! spawns live there (a current-thread tokio runtime keeps async work on it).
//!
//! [`fail2ban_actions`] reads actions the way Fail2ban does, by running the
//! installed `fail2ban-client -d` on a copy of /etc/fail2ban; [`action_defs`]
//! and [`jail_local`] make the jail whose actions a test drives. The rest are
//! helpers the action tests share (tickets, runtimes, captured logs, nft).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ATTACKER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const ATTACKER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// How long a connection attempt may take before it counts as dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs a command, panicking with its output when it fails.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Enters network namespace `name` on the calling thread.
pub fn enter(name: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: setns on a namespace file descriptor affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `name` and returns its result
/// (a panic in `f` is raised again here).
pub fn in_netns<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let name = name.to_string();
    std::thread::spawn(move || {
        enter(&name).unwrap_or_else(|e| panic!("cannot enter netns {name}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A current-thread tokio runtime: async work stays on the calling thread
/// (and in its namespace).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn tickets(ids: &[&str]) -> Vec<logban::action::Ticket> {
    ids.iter()
        .map(|s| logban::action::Ticket::new(*s))
        .collect()
}

/// `nft` on the calling thread (inside its namespace), panicking when it fails.
pub fn nft(args: &[&str]) -> String {
    sh("nft", args)
}

/// Feeds `script` to `nft -f -` on the calling thread.
pub fn nft_script(script: &str) {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "nft -f - failed on:\n{script}"
    );
}

/// The elements of a set of table `inet f2b-table`, as listed, sorted.
pub fn nft_elements(set: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&nft(&["-j", "list", "set", "inet", "f2b-table", set])).unwrap();
    let set = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|x| x.get("set"))
        .unwrap()
        .clone();
    let mut out: Vec<String> = set["elem"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| match e {
                    serde_json::Value::String(s) => s.clone(),
                    o => format!(
                        "{}/{}",
                        o["prefix"]["addr"].as_str().unwrap(),
                        o["prefix"]["len"]
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A server namespace and an attacker namespace on one link.
pub struct Pair {
    pub server: String,
    pub attacker: String,
}

impl Pair {
    pub fn new(tag: &str) -> Pair {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pair = Pair {
            server: format!("lbs-{tag}-{id}"),
            attacker: format!("lba-{tag}-{id}"),
        };
        // Interface names are limited to 15 bytes; they only need to be unique
        // within their namespace.
        sh("ip", &["netns", "add", &pair.server]);
        sh("ip", &["netns", "add", &pair.attacker]);
        let s = &pair.server;
        let a = &pair.attacker;
        sh(
            "ip",
            &[
                "-n", s, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns",
                a,
            ],
        );
        for (ns, v4, v6) in [(s, SERVER_V4, SERVER_V6), (a, ATTACKER_V4, ATTACKER_V6)] {
            let dev = if ns == s { "veth0" } else { "veth1" };
            sh(
                "ip",
                &["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev],
            );
            sh(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    dev,
                    "nodad",
                ],
            );
            sh("ip", &["-n", ns, "link", "set", dev, "up"]);
            sh("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// Accepts (and closes) TCP connections on `port` in the server namespace,
    /// IPv4 and IPv6, until the pair is dropped.
    pub fn listen(&self, port: u16) {
        let listeners = in_netns(&self.server, move || {
            [
                SocketAddr::new(IpAddr::V4(SERVER_V4), port),
                SocketAddr::new(IpAddr::V6(SERVER_V6), port),
            ]
            .map(|a| TcpListener::bind(a).unwrap_or_else(|e| panic!("cannot listen on {a}: {e}")))
        });
        for l in listeners {
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    drop(conn);
                }
            });
        }
    }

    /// Connects from the attacker namespace to the server's `addr` family on
    /// `port`: Ok, or the error (refused for reject, timed out for drop).
    pub fn connect(&self, v6: bool, port: u16) -> Result<(), io::ErrorKind> {
        connect_from(&self.attacker, server_addr(v6, port))
    }

    /// Runs a command inside the server namespace and returns its stdout.
    pub fn server_sh(&self, cmd: &str, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.server, cmd];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Runs `f` on a thread inside the server namespace.
    pub fn in_server<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        in_netns(&self.server, f)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A copy of /etc/fail2ban in `dir` with `files` (relative path, content)
/// written over it; fails clearly when Fail2ban is not installed.
pub fn fail2ban_tree(dir: &Path, files: &[(&str, &str)]) {
    assert!(
        Path::new("/etc/fail2ban/jail.conf").exists(),
        "these tests read Fail2ban's installed configuration: apt-get install fail2ban"
    );
    sh("cp", &["-r", "/etc/fail2ban/.", dir.to_str().unwrap()]);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
}

/// An action's name and options as `fail2ban-client -d` lists them.
pub type DumpedAction = (String, Vec<(String, String)>);

/// The actions Fail2ban's own reader makes of the tree in `dir`, per jail.
pub fn fail2ban_actions(dir: &Path) -> BTreeMap<String, Vec<DumpedAction>> {
    let out = Command::new("fail2ban-client")
        .arg("-c")
        .arg(dir)
        .arg("-d")
        .output()
        .expect("fail2ban-client is installed");
    assert!(
        out.status.success(),
        "fail2ban-client -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The dump is Python literals; Python's own parser turns them into JSON.
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import ast, json, sys\n\
             for l in sys.stdin:\n    \
               if l.startswith(\"['multi-set'\"):\n        \
                 print(json.dumps(ast.literal_eval(l)))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    {
        use std::io::Write;
        py.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    }
    let json = py.wait_with_output().unwrap();
    let mut jails: BTreeMap<String, Vec<DumpedAction>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&json.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v[2] != "action" {
            continue;
        }
        let opts = v[4]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                let v = match &kv[1] {
                    serde_json::Value::String(s) => s.clone(),
                    // `norestored = 1` comes out of Fail2ban's reader as True.
                    other => other.to_string(),
                };
                (kv[0].as_str().unwrap().to_string(), v)
            })
            .collect();
        jails
            .entry(v[1].as_str().unwrap().to_string())
            .or_default()
            .push((v[3].as_str().unwrap().to_string(), opts));
    }
    jails
}

/// A jail.local with the stock sshd jail off and `jail` on, without filter
/// or log, with `options` (`banaction = ...`, `action = ...`, `port = ...`).
pub fn jail_local(jail: &str, options: &str) -> String {
    format!(
        "[sshd]\nenabled = false\n\n[{jail}]\nenabled = true\nfilter =\nlogpath = /dev/null\n\
         {options}\n"
    )
}

/// The actions of `jail` as Fail2ban reads them from a copy of /etc/fail2ban
/// with `files` over it; `action_files` names the action.d file of each, in
/// order (Fail2ban's dump names actions, not their files). The tree lives as
/// long as the returned directory.
pub fn action_defs(
    files: &[(&str, &str)],
    jail: &str,
    action_files: &[&str],
) -> (tempfile::TempDir, Vec<logban::config::ActionDef>) {
    let dir = tempfile::tempdir().unwrap();
    fail2ban_tree(dir.path(), files);
    let mut jails = fail2ban_actions(dir.path());
    let acts = jails
        .remove(jail)
        .unwrap_or_else(|| panic!("Fail2ban made no action for jail {jail}"));
    assert_eq!(
        acts.len(),
        action_files.len(),
        "actions of {jail}: {acts:?}"
    );
    let defs = acts
        .into_iter()
        .zip(action_files)
        .map(|((name, options), file)| logban::config::ActionDef {
            name,
            file: file.to_string(),
            options,
            ..Default::default()
        })
        .collect();
    (dir, defs)
}

/// Runs `f` in a current-thread tokio runtime on a thread inside namespace `ns`.
pub fn block_on_in<R, F>(ns: &str, f: impl FnOnce() -> F + Send + 'static) -> R
where
    R: Send + 'static,
    F: std::future::Future<Output = R>,
{
    in_netns(ns, move || rt().block_on(f()))
}

/// [`block_on_in`] with the thread's log going to `log`.
pub fn block_on_logged_in<R, F>(
    ns: &str,
    log: &Captured,
    f: impl FnOnce() -> F + Send + 'static,
) -> R
where
    R: Send + 'static,
    F: std::future::Future<Output = R>,
{
    let log = log.clone();
    in_netns(ns, move || {
        let _guard = log.install();
        rt().block_on(f())
    })
}

/// Connects from namespace `ns` to `to`: Ok, or why not (refused for a
/// reject, timed out for a drop).
pub fn connect_from(ns: &str, to: SocketAddr) -> Result<(), io::ErrorKind> {
    in_netns(ns, move || {
        TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
            .map(drop)
            .map_err(|e| e.kind())
    })
}

/// The server's address of one family on `port`.
pub fn server_addr(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(SERVER_V6), port)
    } else {
        SocketAddr::new(IpAddr::V4(SERVER_V4), port)
    }
}

/// Log lines of the threads that installed it.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Sends the calling thread's log (debug and up) here until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
