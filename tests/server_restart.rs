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
