//! logban's client against a real logban server: what the comparison with
//! Fail2ban (client_fail2ban.rs) cannot show, because Fail2ban does it
//! differently or because it needs the jail to act on log lines.

mod common;

use common::daemon::*;
use common::BIN;

#[test]
fn invalid_addresses_are_refused_and_nothing_changes() {
    let sb = Sandbox::new("");
    let server = sb.start();
    // Fail2ban bans `1.2.3` as a name; logban refuses the command.
    let r = sb.client(&["set", "test", "banip", "192.0.2.9", "1.2.3"]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.contains("\"1.2.3\""), "{}", r.stdout);
    assert!(r.stderr.contains("ERROR   NOK: ("), "{}", r.stderr);
    for cmd in [
        &["set", "test", "unbanip", "not-an-ip"][..],
        &["unban", "192.0.2.300"],
        &["set", "test", "attempt", "nope"],
    ] {
        let r = sb.client(cmd);
        assert_eq!(r.code, 255, "{cmd:?}: {}", r.stdout);
        assert!(!r.stdout.is_empty(), "{cmd:?}: no message");
    }
    assert_eq!(sb.status("test").currently_banned, 0);
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    server.stop(&sb);
}

#[test]
fn a_network_unbans_what_it_holds_and_ban_times_are_listed() {
    let sb = Sandbox::new("");
    let server = sb.start();
    assert_eq!(
        sb.ok(&[
            "set",
            "test",
            "banip",
            "198.51.100.20",
            "198.51.100.21",
            "198.51.100.99"
        ]),
        "3\n"
    );
    assert_eq!(
        sb.ok(&["set", "test", "unbanip", "198.51.100.16/28"]),
        "2\n"
    );
    assert_eq!(sb.ok(&["get", "test", "banned"]), "['198.51.100.99']\n");
    // `IP \tSTART + BANTIME = END`, one a line, local time.
    let line = sb.ok(&["get", "test", "banip", "--with-time"]);
    let (ip, rest) = line.trim_end().split_once(" \t").expect("a TAB");
    assert_eq!(ip, "198.51.100.99");
    let (start, rest) = rest.split_once(" + ").unwrap();
    let (secs, end) = rest.split_once(" = ").unwrap();
    assert_eq!(secs, "3600");
    let parse = |t: &str| {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", t)
            .unwrap_or_else(|e| panic!("{t:?}: {e}"))
    };
    let (start, end) = (parse(start), parse(end));
    assert_eq!(
        end.duration_since(start),
        jiff::SignedDuration::from_secs(3600)
    );
    // A permanent ban ends at Fail2ban's "never".
    assert_eq!(sb.ok(&["set", "test", "bantime", "-1"]), "-1\n");
    assert_eq!(sb.ok(&["set", "test", "banip", "203.0.113.5"]), "1\n");
    let lines = sb.ok(&["get", "test", "banip", "--with-time"]);
    assert!(
        lines
            .lines()
            .last()
            .unwrap()
            .ends_with(" + -1 = 9999-12-31 23:59:59"),
        "{lines}"
    );
    server.stop(&sb);
}

#[test]
fn a_stopped_jail_unbans_and_start_brings_it_back_from_the_configuration() {
    let sb = Sandbox::new("");
    let server = sb.start();
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.40"]), "1\n");
    assert_eq!(sb.ok(&["stop", "test"]), "Jail stopped\n");
    assert_eq!(
        sb.ok(&["status"]),
        "Status\n|- Number of jail:\t0\n`- Jail list:\t\n"
    );
    assert!(sb.log().contains("NOTICE  [test] Unban 192.0.2.40\n"));
    assert!(sb.log().contains("INFO    Jail 'test' stopped\n"));
    // Lines written while it is stopped are not counted.
    sb.fail("192.0.2.41", 1);
    // Started again from the configuration, with its bans from the database.
    assert_eq!(sb.ok(&["start", "test"]), "Jail started\n");
    let st = sb.status("test");
    assert_eq!(st.banned, ["192.0.2.40"]);
    assert!(sb.log().contains("NOTICE  [test] Restore Ban 192.0.2.40\n"));
    sb.fail("192.0.2.42", 1);
    sb.wait_status("test", "the new line counted", |s| s.total_failed >= 1);
    // A running jail: nothing to do.
    assert_eq!(sb.ok(&["start", "test"]), "Jail started\n");
    let r = sb.client(&["start", "nosuch"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (255, "Sorry but the jail 'nosuch' does not exist\n")
    );
    server.stop(&sb);
}

#[test]
fn filter_and_log_options_set_at_run_time_take_effect() {
    let sb = Sandbox::new("maxretry = 1");
    sb.write("extra.log", "");
    let server = sb.start();
    // A second failregex: its lines count from now on.
    // Regexes see the line without its date.
    let out = sb.ok(&["set", "test", "addfailregex", r"^\s*\S+ intruder <HOST>$"]);
    assert!(
        out.starts_with("The following regular expression are defined:\n|- [0]: "),
        "{out}"
    );
    assert!(out.contains("\n`- [1]: ^\\s*\\S+ intruder "), "{out}");
    let now = syslog_stamp();
    sb.append("auth.log", &format!("{now} host intruder 192.0.2.60\n"));
    sb.wait_status("test", "the new failregex used", |s| {
        s.banned == ["192.0.2.60"]
    });
    // Another log file, added and removed.
    let extra = sb.path("extra.log");
    let out = sb.ok(&["set", "test", "addlogpath", extra.to_str().unwrap()]);
    assert!(out.contains(&format!("`- {}", extra.display())), "{out}");
    sb.append("extra.log", &syslog_line("root", "192.0.2.61"));
    sb.wait_status("test", "the added file read", |s| s.banned.len() == 2);
    let out = sb.ok(&["set", "test", "dellogpath", extra.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "Current monitored log file(s):\n`- {}\n",
            sb.path("auth.log").display()
        )
    );
    // Idle: as in Fail2ban, what is written meanwhile is counted once the
    // jail resumes (Fail2ban stops reading; logban holds what it read).
    assert_eq!(sb.ok(&["set", "test", "idle", "on"]), "True\n");
    let before = sb.status("test").total_failed;
    sb.fail("192.0.2.62", 1);
    sb.append("auth.log", &format!("{now} host intruder 192.0.2.63\n"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let st = sb.status("test");
    assert_eq!(st.total_failed, before, "counted while idle: {}", st.text);
    assert_eq!(sb.ok(&["set", "test", "idle", "off"]), "False\n");
    sb.fail("192.0.2.64", 1);
    let st = sb.wait_status("test", "the lines of the idle time counted", |s| {
        ["192.0.2.62", "192.0.2.63", "192.0.2.64"]
            .iter()
            .all(|a| s.banned.iter().any(|b| b == a))
    });
    assert_eq!(st.total_failed, before + 3, "{}", st.text);
    // A regex that does not compile is refused; the filter stays.
    let r = sb.client(&["set", "test", "addfailregex", "(unclosed <HOST>"]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.contains("failregex"), "{}", r.stdout);
    let out = sb.ok(&["get", "test", "failregex"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    // Removed by index; an index past the end changes nothing.
    let out = sb.ok(&["set", "test", "delfailregex", "0"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("`- [0]: ^\\s*\\S+ intruder "), "{out}");
    let out = sb.ok(&["set", "test", "delfailregex", "5"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    server.stop(&sb);
}

#[test]
fn commands_that_need_no_server() {
    let sb = Sandbox::new("");
    let run = |args: &[&str]| sb.client(args);
    let r = run(&["-d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("['add', 'test', 'auto']\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("['start', 'test']\n"), "{}", r.stdout);
    let r = run(&["-t"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "OK: configuration test is successful\n")
    );
    let r = run(&["help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("Usage: "), "{}", r.stdout);
    let r = run(&[]);
    assert_eq!(r.code, 255);
    assert!(r.stdout.starts_with("Usage: "));
    // Exit 255, with each of `needles` on stderr.
    let fails = |args: &[&str], needles: &[&str]| {
        let r = run(args);
        assert_eq!(r.code, 255, "{args:?}");
        for n in needles {
            assert!(r.stderr.contains(n), "{args:?}: {}", r.stderr);
        }
    };
    fails(&["-z", "status"], &["Init of command line failed"]);
    // A value the server cannot take: -t says which (Fail2ban's -t lets
    // it through and its server fails on it).
    sb.write("etc/jail.local", "[test]\nmaxretry = lots\n");
    let jail_local = sb.path("etc/jail.local");
    fails(
        &["-t"],
        &[
            &format!("{}:2", jail_local.display()),
            "ERROR: test configuration failed",
        ],
    );
    // Broken syntax: -d names the line.
    sb.write("etc/jail.local", "[test]\nmaxretry = 3\nnot an option\n");
    fails(&["-d"], &[&format!("{}:3: ", jail_local.display())]);
    // No server: said so on stderr, exit 255, nothing on stdout.
    for cmd in [
        &["status"][..],
        &["reload"],
        &["stop"],
        &["set", "test", "banip", "192.0.2.1"],
    ] {
        let r = run(cmd);
        assert_eq!(r.code, 255, "{cmd:?}");
        assert!(r.stdout.is_empty(), "{cmd:?}: {}", r.stdout);
        assert!(r.stderr.contains("ERROR   "), "{cmd:?}: {}", r.stderr);
    }
    let r = run(&["status"]);
    assert!(
        r.stderr.contains(&format!(
            "Failed to access socket path: {}. Is fail2ban running?",
            sb.socket().display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn a_socket_nobody_answers_on_is_reported_as_such() {
    let sb = Sandbox::new("");
    // A socket file left by a server that died.
    drop(std::os::unix::net::UnixListener::bind(sb.socket()).unwrap());
    let r = sb.client(&["ping"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains(
            "ERROR   [[Errno 111] Connection refused] Unable to contact server. Is it running?"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn answers_the_same_when_installed_as_fail2ban_client() {
    let sb = Sandbox::new("");
    let server = sb.start();
    let link = sb.path("fail2ban-client");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = std::process::Command::new(&link)
        .arg("-c")
        .arg(sb.path("etc"))
        .args(["status", "test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        sb.ok(&["status", "test"])
    );
    let out = std::process::Command::new(&link)
        .arg("-V")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.0.2\n");
    server.stop(&sb);
}
