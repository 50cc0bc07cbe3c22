//! Failures appended to a followed log, counted and banned by a real server
//! process: exactly at maxretry, whatever the line format, whatever an
//! attacker puts in the line.

mod common;

use common::daemon::*;

#[test]
fn bans_at_exactly_maxretry_with_syslog_and_rfc3339_lines() {
    let sb = Sandbox::new("");
    let server = sb.start();
    for _ in 0..2 {
        sb.append("auth.log", &syslog_line("alice", "192.0.2.10"));
        sb.append("auth.log", &rfc3339_line("bob", "198.51.100.10"));
    }
    let st = sb.wait_status("test", "4 failures", |s| s.total_failed == 4);
    assert_eq!((st.currently_failed, st.currently_banned), (2, 0));
    sb.append("auth.log", &rfc3339_line("bob", "198.51.100.10"));
    let st = sb.wait_status("test", "the RFC 3339 address banned", |s| {
        s.total_banned == 1
    });
    assert_eq!(st.banned, ["198.51.100.10"]);
    assert_eq!(st.currently_failed, 1);
    sb.append("auth.log", &syslog_line("alice", "192.0.2.10"));
    let st = sb.wait_status("test", "both banned", |s| s.total_banned == 2);
    assert_eq!(st.banned, ["198.51.100.10", "192.0.2.10"]);
    assert_eq!((st.currently_failed, st.total_failed), (0, 6));
    let log = sb.log();
    assert_eq!(
        log.matches("INFO    [test] Found 192.0.2.10 - ").count(),
        3,
        "{log}"
    );
    assert!(log.contains("NOTICE  [test] Ban 192.0.2.10\n"), "{log}");
    // The ban is in the store (Fail2ban's schema) before it is reported.
    let db = rusqlite::Connection::open(sb.path("lib/fail2ban.sqlite3")).unwrap();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM bips WHERE jail = 'test' AND ip IN ('192.0.2.10', '198.51.100.10')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
    server.stop(&sb);
}

#[test]
fn hostile_user_names_are_only_data() {
    let sb = Sandbox::new("maxretry = 1\nignorecommand = test \"<F-USER>\" = never-ignore");
    let server = sb.start();
    let canary = sb.path("pwned");
    let hostile = [
        format!("$(touch {})", canary.display()),
        format!("`touch {}`", canary.display()),
        format!("'; touch {} #", canary.display()),
        format!("\"; touch {}; \"", canary.display()),
        "\x1b[31mred\x1b[0m <HOST> %(x)s {} \\x00".to_string(),
        "ünïcødé 用户 🙂".to_string(),
        "x".repeat(20_000),
    ];
    for (i, user) in hostile.iter().enumerate() {
        sb.append(
            "auth.log",
            &syslog_line(user, &format!("203.0.113.{}", i + 1)),
        );
    }
    let st = sb.wait_status("test", "every address banned", |s| {
        s.total_banned == hostile.len() as u64
    });
    let mut want: Vec<String> = (1..=hostile.len())
        .map(|i| format!("203.0.113.{i}"))
        .collect();
    let mut got = st.banned.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(!canary.exists(), "a user name ran as shell code");
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    server.stop(&sb);
}

#[test]
fn garbage_and_huge_lines_do_not_stop_counting() {
    let sb = Sandbox::new("");
    let server = sb.start();
    let mut junk: Vec<u8> = Vec::new();
    junk.extend_from_slice(b"\xff\xfe\x00binary\x80\x81 junk\n");
    junk.extend_from_slice(b"no newline at all for a while ");
    junk.extend(std::iter::repeat_n(b'A', 5 << 20));
    junk.extend_from_slice(b" from 192.0.2.99\n\n\r\n\t\n");
    // A 5 MB line that even looks like a failure at its end.
    let mut big = syslog_line("mallory", "192.0.2.98").into_bytes();
    big.splice(20..20, std::iter::repeat_n(b'B', 5 << 20));
    junk.extend_from_slice(&big);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(sb.path("auth.log"))
            .unwrap();
        f.write_all(&junk).unwrap();
    }
    for _ in 0..3 {
        sb.append("auth.log", &syslog_line("eve", "192.0.2.77"));
    }
    let st = sb.wait_status("test", "the real failures banned", |s| s.total_banned == 1);
    assert_eq!(st.banned, ["192.0.2.77"]);
    assert_eq!(st.total_failed, 3);
    assert_eq!(sb.ok(&["ping"]), "Server replied: pong\n");
    server.stop(&sb);
}

#[test]
fn ignore_rules_keep_addresses_from_counting() {
    let sb = Sandbox::new(
        "maxretry = 1\nignoreip = 192.0.2.0/28 198.51.100.5\nignorecommand = test \"<ip>\" = 203.0.113.66",
    );
    let server = sb.start();
    for addr in ["192.0.2.3", "198.51.100.5", "203.0.113.66", "203.0.113.67"] {
        sb.fail(addr, 1);
    }
    let st = sb.wait_status("test", "the one address not ignored banned", |s| {
        s.total_banned == 1
    });
    assert_eq!(st.banned, ["203.0.113.67"]);
    sb.wait_log("Ignore 203.0.113.66 by command", 1);
    let log = sb.log();
    assert!(
        log.contains("INFO    [test] Ignore 192.0.2.3 by ip\n"),
        "{log}"
    );
    assert!(
        log.contains("INFO    [test] Ignore 198.51.100.5 by ip\n"),
        "{log}"
    );
    assert_eq!(st.total_failed, 1);
    server.stop(&sb);
}

#[test]
fn bans_end_after_bantime() {
    let sb = Sandbox::new("maxretry = 1\nbantime = 1");
    let server = sb.start();
    sb.fail("192.0.2.44", 1);
    sb.wait_log("NOTICE  [test] Ban 192.0.2.44", 1);
    sb.wait_log("NOTICE  [test] Unban 192.0.2.44", 1);
    let st = sb.status("test");
    assert_eq!((st.currently_banned, st.total_banned), (0, 1));
    server.stop(&sb);
}

#[test]
fn failures_older_than_findtime_in_the_backlog_are_skipped() {
    let sb = Sandbox::new("findtime = 10m");
    // Lines in the file before the start: two hours old, then recent.
    let old = jiff::Zoned::now()
        .checked_sub(jiff::SignedDuration::from_hours(2))
        .unwrap();
    let mut text = String::new();
    for _ in 0..5 {
        text.push_str(&auth_line(
            &old.strftime("%b %e %H:%M:%S").to_string(),
            "old",
            "192.0.2.60",
        ));
    }
    text.push_str(&syslog_line("new", "192.0.2.61"));
    sb.write("auth.log", &text);
    let server = sb.start();
    let st = sb.wait_status("test", "the recent failure", |s| s.total_failed >= 1);
    assert_eq!((st.total_failed, st.total_banned), (1, 0));
    server.stop(&sb);
}

#[test]
fn bantime_increment_uses_the_stored_history_after_a_restart() {
    let sb =
        Sandbox::new("maxretry = 1\nbantime = 1\nbantime.increment = true\nbantime.maxtime = 1h");
    let server = sb.start();
    sb.fail("198.51.100.44", 1);
    sb.wait_log("NOTICE  [test] Unban 198.51.100.44", 1);
    server.stop(&sb);
    assert!(!sb.log().contains("Increase Ban"), "{}", sb.log());
    // The second ban of the address, after a restart: the count comes from
    // the store, the ban time doubles (1 s * 2^1).
    let server = sb.start();
    sb.fail("198.51.100.44", 1);
    sb.wait_log("NOTICE  [test] Increase Ban 198.51.100.44 (2 # 2s -> ", 1);
    sb.wait_log("NOTICE  [test] Ban 198.51.100.44", 2);
    assert_eq!(sb.status("test").banned, ["198.51.100.44"]);
    server.stop(&sb);
}
