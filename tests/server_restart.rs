//! What survives a restart and a crash: bans come back from the store, the
//! log is read on from where it was (no line counted twice, none lost), and
//! a ban that was reported (logged) is never lost, even by `kill -9`.

mod common;

use common::daemon::*;

#[test]
fn restart_restores_bans_and_resumes_the_log() {
    let sb = Sandbox::new("");
    let server = sb.start();
    sb.fail("192.0.2.21", 3);
    sb.append("auth.log", &rfc3339_line("root", "192.0.2.22"));
    sb.wait_status("test", "one ban, four failures", |s| {
        s.total_banned == 1 && s.total_failed == 4
    });
    assert_eq!(sb.ok(&["set", "test", "banip", "203.0.113.0/24"]), "1\n");
    server.stop(&sb);

    // While the server is down: two more failures of .22, one of .23.
    sb.fail("192.0.2.22", 2);
    sb.fail("192.0.2.23", 1);
    let server = sb.start();
    // Exactly the three new lines are read: the four before are not again.
    let st = sb.wait_status("test", "the three new failures", |s| s.total_failed >= 3);
    assert_eq!(st.total_failed, 3, "{}", st.text);
    assert_eq!(st.currently_failed, 2);
    let mut banned = st.banned.clone();
    banned.sort();
    assert_eq!(banned, ["192.0.2.21", "203.0.113.0/24"]);
    let log = sb.log();
    assert!(
        log.contains("NOTICE  [test] Restore Ban 192.0.2.21\n"),
        "{log}"
    );
    assert!(
        log.contains("NOTICE  [test] Restore Ban 203.0.113.0/24\n"),
        "{log}"
    );
    // Lines appended now still count.
    sb.fail("192.0.2.23", 2);
    sb.wait_status("test", ".23 banned", |s| {
        s.banned.contains(&"192.0.2.23".into())
    });
    server.stop(&sb);
}

#[test]
fn kill_9_loses_no_reported_ban() {
    let sb = Sandbox::new("maxretry = 1");
    let server = sb.start();
    for i in 1..=40 {
        sb.append("auth.log", &syslog_line("root", &format!("198.51.100.{i}")));
    }
    assert_eq!(sb.ok(&["set", "test", "banip", "2001:db8::1"]), "1\n");
    sb.wait_log("] Ban ", 10);
    // Crash while bans are still coming in.
    server.kill9();
    let reported: Vec<String> = sb
        .log()
        .lines()
        .filter_map(|l| {
            l.split_once("NOTICE  [test] Ban ")
                .map(|(_, ip)| ip.to_string())
        })
        .collect();
    assert!(reported.len() >= 10);
    let stored = sb.stored_bans();
    for ip in &reported {
        assert!(
            stored.binary_search(ip).is_ok(),
            "{ip} reported, not stored"
        );
    }
    let server = sb.start();
    let st = sb.status("test");
    for ip in &reported {
        assert!(
            st.banned.contains(ip),
            "{ip} reported, not restored:\n{}",
            st.text
        );
    }
    // The lines not read before the crash are read now: in the end every
    // address is banned once.
    let st = sb.wait_status("test", "all 41 banned", |s| s.currently_banned == 41);
    assert_eq!(st.banned.len(), 41);
    server.stop(&sb);
}

#[test]
fn jails_sharing_a_file_each_resume_at_their_own_position() {
    let sb = Sandbox::new("");
    let server = sb.start();
    sb.fail("192.0.2.31", 2);
    sb.wait_status("test", "two failures", |s| s.total_failed == 2);
    server.stop(&sb);
    // A second jail on the same file, new: it reads the file from its start
    // (within findtime), the first one only what it has not read yet.
    sb.write(
        "etc/jail.local",
        &format!(
            "[second]\nenabled = true\nfilter = test-auth\nlogpath = {}\nmaxretry = 10\n",
            sb.path("auth.log").display()
        ),
    );
    sb.fail("192.0.2.32", 1);
    let server = sb.start();
    let second = sb.wait_status("second", "three failures", |s| s.total_failed >= 3);
    assert_eq!(second.total_failed, 3);
    let first = sb.wait_status("test", "one failure", |s| s.total_failed >= 1);
    assert_eq!(first.total_failed, 1, "{}", first.text);
    sb.fail("192.0.2.33", 1);
    sb.wait_status("second", "four failures", |s| s.total_failed == 4);
    sb.wait_status("test", "two failures", |s| s.total_failed == 2);
    server.stop(&sb);
}

/// The `jails` rows of the store: (name, enabled), sorted by name.
fn stored_jails(sb: &Sandbox) -> Vec<(String, bool)> {
    let db = rusqlite::Connection::open(sb.path("lib/fail2ban.sqlite3")).unwrap();
    let mut stmt = db
        .prepare("SELECT name, enabled FROM jails ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits until the store's `jails` rows are `want` (the store thread writes
/// after the command's answer may have gone out).
fn wait_stored_jails(sb: &Sandbox, want: &[(&str, bool)]) {
    let want: Vec<(String, bool)> = want.iter().map(|(n, e)| (n.to_string(), *e)).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = stored_jails(sb);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jails rows {got:?}, want {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn jails_that_leave_are_disabled_in_the_store_and_purged_later() {
    let sb = Sandbox::new("");
    let old = format!(
        "[old]\nenabled = true\nfilter = test-auth\nlogpath = {}\n",
        sb.path("auth.log").display()
    );
    sb.write("etc/jail.local", &old);
    let server = sb.start();
    wait_stored_jails(&sb, &[("old", true), ("test", true)]);
    server.stop(&sb);
    // Removed while the server was down: the start leaves it disabled.
    sb.write("etc/jail.local", "");
    let server = sb.start();
    wait_stored_jails(&sb, &[("old", false), ("test", true)]);
    server.stop(&sb);
    // The next start's purge deletes it (no bans); `test` stays.
    let server = sb.start();
    wait_stored_jails(&sb, &[("test", true)]);
    // Gone at a reload, or stopped: disabled at once.
    sb.write("etc/jail.local", &old);
    sb.ok(&["reload"]);
    wait_stored_jails(&sb, &[("old", true), ("test", true)]);
    sb.write("etc/jail.local", "");
    sb.ok(&["reload"]);
    wait_stored_jails(&sb, &[("old", false), ("test", true)]);
    sb.ok(&["stop", "test"]);
    wait_stored_jails(&sb, &[("old", false), ("test", false)]);
    server.stop(&sb);
}
