//! The newcomer path end to end: the README's first command,
//! `logban server -f start`, on a fresh machine without a Fail2ban tree runs
//! the embedded mail-server profile.
//!
//! The server runs in a network namespace of its own (an attacker namespace
//! on the other end of a veth pair) and in a private mount namespace where
//! empty temp dirs stand in for /var/log, /var/lib and /run, so every path
//! of the embedded configuration is used as it is: the logs it reads
//! (`/var/log/mail.log`, `/var/log/auth.log`), its own log, the database,
//! the socket and the pid file, in directories it has to create. Only `-c`
//! is given, naming a directory that does not exist (the test machine has
//! Fail2ban's /etc/fail2ban).

mod common;

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::daemon::{rfc3339_stamp, syslog_stamp, Sandbox, Server};
use common::netns::{Pair, ATTACKER_V4, ATTACKER_V6, SERVER_V4};
use common::{wait_until, BIN};

/// A port of the mail jails and one no jail lists (the profile bans every port).
const PORTS: [u16; 2] = [465, 8081];

/// The temp dirs mounted over these in the server's mount namespace.
const MOUNTS: [(&str, &str); 3] = [
    ("var-log", "/var/log"),
    ("var-lib", "/var/lib"),
    ("run", "/run"),
];

/// A fresh host: the server namespace of a [`Pair`], a /var/log holding only
/// an empty mail.log, an empty /var/lib and /run.
struct Host {
    pair: Pair,
    sb: Sandbox,
}

impl Host {
    fn new(tag: &str) -> Host {
        let pair = Pair::new(tag);
        for port in PORTS {
            pair.listen(port);
        }
        let sb = Sandbox::empty();
        for (dir, _) in MOUNTS {
            std::fs::create_dir_all(sb.path(dir)).unwrap();
        }
        sb.write("var-log/mail.log", "");
        // The sandbox's client and log reader look for `run/server.sock` and
        // `server.log`: links to where the embedded fail2ban.conf puts them.
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, sb.path(name)).unwrap();
        };
        link("fail2ban/fail2ban.sock", "run/server.sock");
        link("var-log/fail2ban.log", "server.log");
        Host { pair, sb }
    }

    /// `-c` points here: nothing exists there.
    fn conf(&self) -> PathBuf {
        self.sb.path("etc")
    }

    /// `logban server -f start` in the server's namespaces.
    fn start(&self) -> Server {
        let mut mounts = String::new();
        for (i, (_, at)) in MOUNTS.iter().enumerate() {
            mounts.push_str(&format!("mount --bind \"${}\" {at} && ", i + 1));
        }
        mounts.push_str(&format!("shift {} && exec \"$@\"", MOUNTS.len()));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.pair.server])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &mounts, "sh"]);
        for (dir, _) in MOUNTS {
            cmd.arg(self.sb.path(dir));
        }
        cmd.args([BIN, "server", "-c"])
            .arg(self.conf())
            .args(["-f", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.sb.start_with(cmd)
    }

    /// A line appended to the server's /var/log/NAME.
    fn log_line(&self, name: &str, line: &str) {
        self.sb
            .append(&format!("var-log/{name}"), &format!("{line}\n"));
    }

    /// The tables of the server namespace.
    fn tables(&self) -> String {
        self.pair.server_sh("nft", &["list", "tables"])
    }

    fn assert_no_table(&self, when: &str) {
        let tables = self.tables();
        assert!(
            !tables.contains("f2b-table"),
            "{when}: the firewall holds a table before the first ban:\n{tables}"
        );
    }

    /// Whether the attacker reaches each of [`PORTS`] over IPv4 / IPv6.
    fn reach(&self, v6: bool) -> Vec<Result<(), ErrorKind>> {
        PORTS.iter().map(|&p| self.pair.connect(v6, p)).collect()
    }

    /// Waits until the attacker is turned away on every port (the status
    /// lists a ban as soon as it is decided, the firewall follows).
    fn wait_blocked(&self, v6: bool) {
        wait_until(
            &format!("the attacker (v6: {v6}) turned away"),
            || {
                let reach = self.reach(v6);
                if reach
                    .iter()
                    .all(|r| *r == Err(ErrorKind::ConnectionRefused))
                {
                    Ok(())
                } else {
                    Err(reach)
                }
            },
            |reach| format!("it still gets through: {reach:?}\nlog:\n{}", self.sb.log()),
        );
    }
}

fn sasl_failure(stamp: &str, addr: &str) -> String {
    format!(
        "{stamp} mail postfix/smtpd[812]: warning: unknown[{addr}]: SASL LOGIN authentication \
         failed: UGFzc3dvcmQ6"
    )
}

fn relay_denied(stamp: &str, addr: &str) -> String {
    format!(
        "{stamp} mail postfix/smtpd[813]: NOQUEUE: reject: RCPT from unknown[{addr}]: 554 5.7.1 \
         <info@example.net>: Relay access denied; from=<spam@example.org> to=<info@example.net> \
         proto=ESMTP helo=<x>"
    )
}

fn ssh_failure(stamp: &str, addr: &str) -> String {
    format!("{stamp} mail sshd[4321]: Failed password for invalid user admin from {addr} port 52311 ssh2")
}

#[test]
fn fresh_machine_runs_the_mail_server_profile() {
    let host = Host::new("e2e");
    let sb = &host.sb;
    assert!(!host.conf().exists());
    let server = host.start();

    // The client answers at once although /var/log/auth.log is missing.
    let status = sb.ok(&["status"]);
    assert!(
        status.ends_with("`- Jail list:\tcustom, dovecot, postfix, sshd\n"),
        "{status}"
    );
    assert_eq!(sb.status("sshd").currently_banned, 0);
    let log = sb.log();
    assert!(
        log.contains("/var/log/auth.log"),
        "no word of the missing auth.log:\n{log}"
    );
    let told = format!(
        "{} does not exist: using the embedded configuration",
        host.conf().display()
    );
    assert!(
        log.contains(&told),
        "the log does not say which configuration:\n{log}"
    );
    host.assert_no_table("after the start");
    // State where the embedded fail2ban.conf puts it, directories created.
    let pid = std::fs::read_to_string(sb.path("run/fail2ban/fail2ban.pid")).unwrap();
    assert_eq!(pid.trim(), server.pid().to_string());
    assert!(sb.path("var-lib/fail2ban/fail2ban.sqlite3").is_file());
    assert_eq!(host.reach(false), [Ok(()), Ok(())]);

    // The host's own address is never banned (ignoreself).
    for _ in 0..2 {
        host.log_line(
            "mail.log",
            &sasl_failure(&rfc3339_stamp(), &SERVER_V4.to_string()),
        );
    }
    sb.wait_log(&format!("Ignore {SERVER_V4} by ignoreself rule"), 2);

    // First failure, RFC 3339: counted, nothing banned, still no table.
    let attacker = ATTACKER_V4.to_string();
    host.log_line("mail.log", &sasl_failure(&rfc3339_stamp(), &attacker));
    sb.wait_status("postfix", "the first failure", |s| s.total_failed == 1);
    assert_eq!(sb.status("postfix").currently_banned, 0);
    host.assert_no_table("after one failure");
    assert_eq!(host.reach(false), [Ok(()), Ok(())]);

    // Second failure, classic syslog: banned on every port.
    host.log_line("mail.log", &relay_denied(&syslog_stamp(), &attacker));
    let st = sb.wait_status("postfix", "the ban", |s| s.currently_banned == 1);
    assert_eq!(st.banned, std::slice::from_ref(&attacker));
    host.wait_blocked(false);
    let set = host.pair.server_sh(
        "nft",
        &["list", "set", "inet", "f2b-table", "addr-set-postfix"],
    );
    assert!(set.contains(&attacker), "{set}");

    // auth.log appears later: followed from then on; an IPv6 sshd attacker.
    let attacker6 = ATTACKER_V6.to_string();
    host.log_line("auth.log", &ssh_failure(&rfc3339_stamp(), &attacker6));
    host.log_line("auth.log", &ssh_failure(&syslog_stamp(), &attacker6));
    let st = sb.wait_status("sshd", "the IPv6 ban", |s| s.currently_banned == 1);
    assert_eq!(st.banned, std::slice::from_ref(&attacker6));
    host.wait_blocked(true);

    // The bans survive a restart.
    server.stop(sb);
    assert_eq!(host.reach(false), [Ok(()), Ok(())]);
    let server = host.start();
    let st = sb.wait_status("postfix", "the restored ban", |s| s.currently_banned == 1);
    assert_eq!(st.banned, [attacker]);
    assert_eq!(sb.status("sshd").banned, [attacker6]);
    host.wait_blocked(false);
    host.wait_blocked(true);
    server.stop(sb);
}

#[test]
fn one_address_behind_most_failures_is_named_with_the_slirp4netns_fix() {
    let host = Host::new("gw");
    let sb = &host.sb;
    let server = host.start();
    // A rootless port forwarder: nine in ten failures come from its address.
    let gateway = "198.51.100.1";
    let mut lines = String::new();
    for i in 0..100 {
        let addr = if i % 10 == 7 {
            format!("203.0.113.{i}")
        } else {
            gateway.to_string()
        };
        lines.push_str(&relay_denied(&syslog_stamp(), &addr));
        lines.push('\n');
    }
    sb.append("var-log/mail.log", &lines);
    let needle = format!("{gateway} produced");
    sb.wait_log(&needle, 1);
    let log = sb.log();
    let warning = log.lines().find(|l| l.contains(&needle)).unwrap();
    assert!(warning.contains("WARNING"), "{warning}");
    assert!(warning.contains("[postfix]"), "{warning}");
    assert!(
        warning.contains("slirp4netns") && warning.contains("port_handler=slirp4netns"),
        "the warning does not point to the slirp4netns fix: {warning}"
    );
    server.stop(sb);
}
