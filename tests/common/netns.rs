//! Network namespaces for tests that drive real firewalls.
//!
//! [`Pair`] makes a server namespace and an attacker namespace joined by a veth
//! pair (192.0.2.1 / 192.0.2.2, 2001:db8::1 / 2001:db8::2), with names unique
//! per process and test so that tests run in parallel, and deletes them on
//! drop (also when the test panics). [`Pair::in_server`] runs code on a thread
//! that entered the server namespace: sockets it opens and processes it
//! spawns live there (a current-thread tokio runtime keeps async work on it).
//!
//! The rest are what the firewall tests read and run there: nft and its
//! `inet f2b-table` (sets, listings, [`Monitor`] for what changes), tickets,
//! runtimes and captured logs for the action tests.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{pipe, sh, text, wait_for};

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ATTACKER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const ATTACKER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// How long a connection attempt may take before it counts as dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

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
    let out = pipe(Command::new("nft").args(["-f", "-"]), script.as_bytes());
    assert!(
        out.status.success(),
        "nft -f - failed on:\n{script}\n{}",
        text(&out.stderr)
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

/// The elements of a set of `inet f2b-table` in namespace `ns`, sorted;
/// empty when the set or table does not exist.
pub fn set_elements(ns: &str, set: &str) -> Vec<String> {
    let set = set.to_string();
    in_netns(ns, move || {
        let exists = Command::new("nft")
            .args(["list", "set", "inet", "f2b-table", &set])
            .output()
            .expect("nft is installed")
            .status
            .success();
        if exists {
            nft_elements(&set)
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
    out.status.success().then(|| text(&out.stdout))
}

/// `nft monitor` in namespace `ns`, for what changes in the firewall.
pub struct Monitor {
    child: Child,
    out: tempfile::NamedTempFile,
    ns: String,
    marks: usize,
}

impl Monitor {
    /// Starts the monitor and returns once it reports changes.
    pub fn start(ns: &str) -> Monitor {
        let out = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "monitor"])
            .stderr(out.reopen().unwrap())
            .stdout(out.reopen().unwrap())
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

    fn text(&self) -> String {
        std::fs::read_to_string(self.out.path()).unwrap_or_default()
    }

    /// Makes a change of its own and waits until the monitor shows it: the
    /// monitor has seen everything before.
    fn mark(&mut self) {
        self.marks += 1;
        let table = format!("lbmark{}", self.marks);
        for verb in ["add", "delete"] {
            sh(
                "ip",
                &[
                    "netns", "exec", &self.ns, "nft", verb, "table", "ip", &table,
                ],
            );
        }
        let line = format!("delete table ip {table}");
        wait_for(
            "nft monitor to report",
            || self.text().contains(&line),
            || self.text(),
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
        let text = self.text();
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
        // A rejected connection is refused as soon as the ICMP error comes
        // back; the kernel's rate limit would hold IPv6 errors back for a
        // second, and the test with them.
        let ns = ["netns", "exec", s, "sysctl", "-q", "-w"];
        sh("ip", &[&ns[..], &["net.ipv4.icmp_ratelimit=0"]].concat());
        sh("ip", &[&ns[..], &["net.ipv6.icmp.ratelimit=0"]].concat());
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
