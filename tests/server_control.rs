//! The daemon's start and stop, and the control commands as
//! fail2ban-client prints them, against a real server process.

mod common;

use common::daemon::*;
use common::BIN;

#[test]
fn starts_answers_and_stops() {
    let sb = Sandbox::new("");
    let server = sb.start();
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    assert_eq!(
        sb.ok(&["status"]),
        "Status\n|- Number of jail:\t1\n`- Jail list:\ttest\n"
    );
    let log = sb.path("auth.log");
    assert_eq!(
        sb.ok(&["status", "test"]),
        format!(
            "Status for the jail: test\n|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t0\n|  `- File list:\t{}\n`- Actions\n   |- Currently banned:\t0\n   |- Total banned:\t0\n   `- Banned IP list:\t\n",
            log.display()
        )
    );
    assert_eq!(sb.ok(&["get", "test", "bantime"]), "3600\n");
    assert_eq!(sb.ok(&["get", "test", "findtime"]), "3600\n");
    assert_eq!(sb.ok(&["get", "test", "maxretry"]), "3\n");
    assert_eq!(
        sb.ok(&["get", "loglevel"]),
        "Current logging level is 'INFO'\n"
    );
    // logrotate moves the log away, then asks for a new one.
    std::fs::rename(sb.path("server.log"), sb.path("server.log.1")).unwrap();
    assert_eq!(sb.ok(&["flushlogs"]), "logs: rolled over\n");
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.200"]), "1\n");
    assert!(sb.log().contains("[test] Ban 192.0.2.200"), "{}", sb.log());
    let pid: u32 = std::fs::read_to_string(sb.pidfile())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, server.pid());
    server.stop(&sb);
    assert!(!sb.socket().exists(), "socket left behind");
    assert!(!sb.pidfile().exists(), "pid file left behind");
    let log = std::fs::read_to_string(sb.path("server.log.1")).unwrap() + &sb.log();
    for line in [
        "fail2ban.jail           [",
        "INFO    Jail 'test' started",
        "INFO    Shutdown in progress...",
        "INFO    Jail 'test' stopped",
        "INFO    Exiting Fail2ban",
    ] {
        assert!(log.contains(line), "{line:?} missing in:\n{log}");
    }
}

#[test]
fn client_without_server_says_so_and_fails() {
    let sb = Sandbox::new("");
    let r = sb.client(&["ping"]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let want = format!(
        "ERROR   Failed to access socket path: {}. Is fail2ban running?",
        sb.socket().display()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    // The socket path comes from the configuration when -s is not given.
    let out = std::process::Command::new(BIN)
        .args(["client", "-c"])
        .arg(sb.path("etc"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want));
}

#[test]
fn manual_bans_unbans_and_errors_leave_the_server_running() {
    let sb = Sandbox::new("");
    let server = sb.start();
    assert_eq!(
        sb.ok(&["set", "test", "banip", "192.0.2.7", "198.51.100.0/24"]),
        "2\n"
    );
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.7"]), "0\n");
    assert_eq!(sb.ok(&["set", "test", "banip", "2001:db8::7"]), "1\n");
    let st = sb.status("test");
    assert_eq!(st.banned, ["192.0.2.7", "198.51.100.0/24", "2001:db8::7"]);
    assert_eq!(
        sb.ok(&["get", "test", "banned"]),
        "['192.0.2.7', '198.51.100.0/24', '2001:db8::7']\n"
    );
    assert_eq!(sb.ok(&["get", "test", "banned", "192.0.2.7"]), "1\n");
    assert_eq!(sb.ok(&["get", "test", "banned", "192.0.2.8"]), "0\n");
    assert_eq!(
        sb.ok(&["banned"]),
        "[{'test': ['192.0.2.7', '198.51.100.0/24', '2001:db8::7']}]\n"
    );
    assert_eq!(
        sb.ok(&["banned", "192.0.2.7", "203.0.113.1"]),
        "[['test'], []]\n"
    );

    // Errors: worded as fail2ban-client words them, exit 255, server alive.
    let r = sb.client(&["status", "nosuch"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (255, "Sorry but the jail 'nosuch' does not exist\n")
    );
    let r = sb.client(&["set", "nosuch", "banip", "192.0.2.1"]);
    assert_eq!(r.code, 255);
    let r = sb.client(&["set", "test", "banip", "192.0.2.9", "1.2.3"]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.contains("\"1.2.3\""), "{}", r.stdout);
    let r = sb.client(&["set", "test", "banip", "$(touch /tmp/x)"]);
    assert_eq!(r.code, 255);
    // As fail2ban-client: an unknown command is "Invalid command", a
    // missing word "Sorry but the command is invalid".
    let r = sb.client(&["frobnicate"]);
    assert_eq!((r.code, r.stdout.as_str()), (255, "Invalid command\n"));
    let r = sb.client(&["set", "test"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (255, "Sorry but the command is invalid\n")
    );
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    // Nothing of the refused commands was banned.
    assert_eq!(sb.status("test").currently_banned, 3);
    assert!(sb.log().contains(
        "ERROR   Command ['status', 'nosuch'] has failed. Received UnknownJailException('nosuch')"
    ));

    // A network unbans every ban inside it.
    assert_eq!(
        sb.ok(&["set", "test", "banip", "198.51.100.9", "192.0.2.8"]),
        "2\n"
    );
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.0/24"]), "2\n");
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.7"]), "0\n");
    assert_eq!(sb.ok(&["set", "test", "unbanip", "198.51.100.0/24"]), "1\n");
    let st = sb.status("test");
    assert_eq!(st.banned, ["2001:db8::7", "198.51.100.9"]);
    assert_eq!(st.total_banned, 5);
    let log = sb.log();
    assert!(log.contains("NOTICE  [test] Ban 192.0.2.7\n"), "{log}");
    assert!(log.contains("NOTICE  [test] Unban 192.0.2.8\n"), "{log}");
    server.stop(&sb);
}

#[test]
fn a_second_server_is_refused_and_a_stale_socket_needs_x() {
    let sb = Sandbox::new("");
    let server = sb.start();
    let second = sb.server_command().output().unwrap();
    assert_eq!(second.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    server.kill9();
    assert!(sb.socket().exists());
    // Without -x the stale socket is refused; with it, taken over.
    let out = sb.server(&["-f", "start"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-x"));
    let server = sb.start();
    server.stop(&sb);
}

#[test]
fn background_start_returns_once_the_server_answers() {
    let sb = Sandbox::new("");
    let out = std::process::Command::new(BIN)
        .arg("server")
        .arg("-c")
        .arg(sb.path("etc"))
        .args(["-b", "start"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No waiting: the parent returned after the daemon was ready.
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    assert_eq!(sb.ok(&["stop"]), "Shutdown successful\n");
}

#[test]
fn starts_with_a_huge_open_files_limit() {
    let sb = Sandbox::new("");
    let mut cmd = sb.server_command();
    before_exec(&mut cmd, || {
        // As high as the kernel allows (root may raise the hard limit).
        let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(1 << 20);
        let lim = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        // SAFETY: plain system call on a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            // Not root: the highest we may.
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: as above.
            unsafe {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
                cur.rlim_cur = cur.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
            }
        }
        Ok(())
    });
    let server = sb.start_with(cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    // Raised as far as this machine allows (a container may cap the hard
    // limit): the soft limit is the hard one.
    let v: Vec<&str> = open.split_whitespace().collect();
    assert_eq!(v[3], v[4], "{open}");
    assert!(v[3].parse::<u64>().unwrap() >= 4096, "{open}");
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    server.stop(&sb);
}

#[test]
fn a_broken_jail_is_skipped_with_a_clear_error_and_the_rest_runs() {
    let sb = Sandbox::new("");
    sb.write(
        "etc/jail.local",
        &format!(
            "[broken]\nenabled = true\nfilter = test-auth\nfailregex = ^(unclosed <HOST>\nlogpath = {}\n",
            sb.path("auth.log").display()
        ),
    );
    let server = sb.start();
    assert_eq!(
        sb.ok(&["status"]),
        "Status\n|- Number of jail:\t1\n`- Jail list:\ttest\n"
    );
    let log = sb.log();
    assert!(
        log.contains("Errors in jail \"broken\". Skipping..."),
        "{log}"
    );
    server.stop(&sb);
}
