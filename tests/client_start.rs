//! `start`, `stop` and `restart` through the client, as fail2ban-client
//! runs them: the server goes to the background and the client returns
//! once it answers.

mod common;

use common::daemon::*;

/// Kills a server the test left running (it runs in the background, on
/// its own): on drop, the pid in the sandbox's pid file gets SIGKILL.
struct Reaper<'a>(&'a Sandbox);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.pidfile()) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: plain kill(2) of the server this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn start_restart_and_stop() {
    let sb = Sandbox::new("");
    let _reaper = Reaper(&sb);
    assert_eq!(sb.ok(&["start"]), "Server ready\n");
    // Answering right away: the client waited for it.
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.3"]), "1\n");
    let r = sb.client(&["start"]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("ERROR   Server already running"),
        "{}",
        r.stderr
    );
    let pid = std::fs::read_to_string(sb.pidfile()).unwrap();
    assert_eq!(sb.ok(&["restart"]), "Shutdown successful\nServer ready\n");
    let new_pid = std::fs::read_to_string(sb.pidfile()).unwrap();
    assert_ne!(pid, new_pid, "a new server process");
    // The ban came back from the database.
    assert_eq!(sb.status("test").banned, ["192.0.2.3"]);
    assert_eq!(sb.ok(&["stop"]), "Shutdown successful\n");
    let r = sb.client(&["ping"]);
    assert_eq!(r.code, 255);
    assert!(!sb.socket().exists());
}

#[test]
fn start_refuses_a_stale_socket_without_x_and_a_broken_configuration() {
    let sb = Sandbox::new("");
    let _reaper = Reaper(&sb);
    drop(std::os::unix::net::UnixListener::bind(sb.socket()).unwrap());
    let r = sb.client(&["start"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains(
            "ERROR   Fail2ban seems to be in unexpected state (not running but the socket exists)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(sb.ok(&["-x", "start"]), "Server ready\n");
    assert_eq!(sb.ok(&["stop"]), "Shutdown successful\n");
    // A configuration the server cannot read: the reason, exit 255.
    sb.write("etc/jail.local", "[test]\nnot an option\n");
    let r = sb.client(&["start"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("jail.local:2"), "{}", r.stderr);
    assert_eq!(sb.client(&["ping"]).code, 255);
}
