//! `reload` (and SIGHUP) against a real server: unchanged jails keep
//! everything, changed jails keep their bans and counters and take the new
//! settings, new jails start, removed ones stop, a broken configuration is
//! refused with the file named while the running one stays.

mod common;

use common::daemon::*;

/// `test` on auth.log and `other` on other.log, both maxretry 2.
fn two_jails() -> Sandbox {
    let sb = Sandbox::new("maxretry = 2");
    sb.write("other.log", "");
    sb.write("etc/jail.d/other.conf", &other_jail(&sb, ""));
    sb
}

fn other_jail(sb: &Sandbox, extra: &str) -> String {
    format!(
        "[other]\nenabled = true\nfilter = test-auth\nlogpath = {}\nmaxretry = 2\n{extra}\n",
        sb.path("other.log").display()
    )
}

/// One failure of `addr` in auth.log, a ban of two failures for
/// `banned`, and a manual ban: the state a reload must keep.
fn some_state(sb: &Sandbox) {
    sb.fail("192.0.2.1", 1);
    sb.fail("192.0.2.2", 2);
    sb.wait_status("test", "one failure and one ban", |s| {
        s.total_failed == 3 && s.banned == ["192.0.2.2"]
    });
    assert_eq!(sb.ok(&["set", "test", "banip", "203.0.113.0/24"]), "1\n");
}

fn counts(st: &Status) -> (u64, u64, u64, u64, Vec<String>) {
    (
        st.currently_failed,
        st.total_failed,
        st.currently_banned,
        st.total_banned,
        st.banned.clone(),
    )
}

#[test]
fn an_unchanged_configuration_keeps_everything() {
    let sb = two_jails();
    let server = sb.start();
    some_state(&sb);
    let before = counts(&sb.status("test"));
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    assert_eq!(counts(&sb.status("test")), before);
    // One more failure of 192.0.2.1 reaches maxretry: its count survived.
    sb.fail("192.0.2.1", 1);
    sb.wait_status("test", "192.0.2.1 banned", |s| {
        s.banned.contains(&"192.0.2.1".to_string())
    });
    assert!(!sb.log().contains("Unban"), "{}", sb.log());
    server.stop(&sb);
}

#[test]
fn changed_added_and_removed_jails() {
    let sb = two_jails();
    sb.write("third.log", "");
    let server = sb.start();
    some_state(&sb);
    assert_eq!(sb.ok(&["set", "other", "banip", "198.51.100.1"]), "1\n");
    let before = counts(&sb.status("test"));
    // test: another maxretry and bantime, a failregex for other lines;
    // other: gone; third: new.
    sb.write(
        "etc/jail.local",
        "[test]\nmaxretry = 4\nbantime = 2h\nfailregex = ^\\s*\\S+ intruder <HOST>$\n",
    );
    std::fs::remove_file(sb.path("etc/jail.d/other.conf")).unwrap();
    sb.write(
        "etc/jail.d/third.conf",
        &format!(
            "[third]\nenabled = true\nfilter = test-auth\nlogpath = {}\n",
            sb.path("third.log").display()
        ),
    );
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    assert_eq!(
        sb.ok(&["status"]),
        "Status\n|- Number of jail:\t2\n`- Jail list:\ttest, third\n"
    );
    assert_eq!(counts(&sb.status("test")), before);
    assert_eq!(sb.ok(&["get", "test", "maxretry"]), "4\n");
    assert_eq!(sb.ok(&["get", "test", "bantime"]), "7200\n");
    assert!(sb.log().contains("NOTICE  [other] Unban 198.51.100.1\n"));
    assert!(sb.log().contains("INFO    Jail 'other' stopped\n"));
    assert!(!sb.log().contains("[test] Unban"), "{}", sb.log());
    // The new failregex reads the file from where the old one stopped.
    let now = syslog_stamp();
    for _ in 0..3 {
        sb.fail("192.0.2.1", 1);
        sb.append("auth.log", &format!("{now} host intruder 192.0.2.1\n"));
    }
    let st = sb.wait_status("test", "three more failures", |s| {
        s.total_failed == before.1 + 3
    });
    // 1 failure from before plus 3: maxretry 4 reached.
    assert!(st.banned.contains(&"192.0.2.1".to_string()), "{}", st.text);
    // The new jail counts.
    sb.append("third.log", &syslog_line("root", "198.51.100.3"));
    sb.wait_status("third", "a failure", |s| s.total_failed == 1);
    // Back: other starts again with its ban from the database.
    sb.write("etc/jail.d/other.conf", &other_jail(&sb, ""));
    // As Fail2ban: reloading one jail that does not run is refused,
    // unless --if-exists.
    let r = sb.client(&["reload", "other"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (255, "Sorry but the jail 'other' does not exist\n")
    );
    assert_eq!(sb.ok(&["reload", "--if-exists", "other"]), "OK\n");
    assert_eq!(sb.status("other").banned, ["198.51.100.1"]);
    server.stop(&sb);
}

#[test]
fn a_broken_configuration_is_refused_and_the_running_one_stays() {
    let sb = two_jails();
    let server = sb.start();
    some_state(&sb);
    let before = counts(&sb.status("test"));
    let jail_local = sb.path("etc/jail.local").display().to_string();
    let filter = sb.path("etc/filter.d/test-auth.conf").display().to_string();
    for (file, text, named) in [
        (
            "etc/jail.local",
            "[test]\nmaxretry = 2\nnot an option\n",
            format!("{jail_local}:3"),
        ),
        (
            "etc/jail.local",
            "[test]\nmaxretry = lots\n",
            format!("{jail_local}:2"),
        ),
        (
            "etc/filter.d/test-auth.conf",
            "[Definition]\nfailregex = ^(unclosed <HOST>\n",
            filter.clone(),
        ),
    ] {
        sb.write(file, text);
        let r = sb.client(&["reload"]);
        assert_eq!(r.code, 255, "{text}: {}", r.stdout);
        assert!(r.stdout.contains(&named), "{named} not in {}", r.stdout);
        assert!(r.stderr.contains("ERROR   NOK: ("), "{}", r.stderr);
        assert_eq!(counts(&sb.status("test")), before);
        assert!(sb
            .log()
            .contains("Reload refused, the running configuration is kept: "));
        // Restore the file for the next case.
        match file {
            "etc/jail.local" => sb.write(file, "[test]\nmaxretry = 2\n"),
            _ => sb.write(file, FILTER),
        }
    }
    // Still running as before: one more failure of 192.0.2.1 bans it.
    sb.fail("192.0.2.1", 1);
    sb.wait_status("test", "192.0.2.1 banned", |s| {
        s.banned.contains(&"192.0.2.1".to_string())
    });
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    server.stop(&sb);
}

#[test]
fn sighup_reloads() {
    let sb = two_jails();
    let server = sb.start();
    some_state(&sb);
    sb.write("etc/jail.local", "[test]\nmaxretry = 9\n");
    // SAFETY: plain kill(2) to the server process this test started.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    sb.wait_log("Reload finished.", 1);
    assert_eq!(sb.ok(&["get", "test", "maxretry"]), "9\n");
    assert_eq!(sb.status("test").banned, ["192.0.2.2", "203.0.113.0/24"]);
    server.stop(&sb);
}

#[test]
fn unban_and_restart_options() {
    let sb = two_jails();
    let server = sb.start();
    some_state(&sb);
    assert_eq!(sb.ok(&["set", "other", "banip", "198.51.100.1"]), "1\n");
    // --restart: the jail stops (unbans) and starts with its bans restored.
    assert_eq!(sb.ok(&["restart", "test"]), "OK\n");
    let st = sb.status("test");
    assert_eq!(st.banned, ["192.0.2.2", "203.0.113.0/24"]);
    assert_eq!((st.total_failed, st.currently_failed), (0, 0));
    assert!(sb
        .log()
        .contains("NOTICE  [test] Restore Ban 203.0.113.0/24\n"));
    // --unban: that jail's bans go, in the database too; the other keeps its.
    assert_eq!(sb.ok(&["reload", "--unban", "test"]), "OK\n");
    assert_eq!(sb.status("test").currently_banned, 0);
    assert_eq!(sb.status("other").banned, ["198.51.100.1"]);
    server.stop(&sb);
    let server = sb.start();
    assert_eq!(sb.status("test").currently_banned, 0);
    assert_eq!(sb.status("other").banned, ["198.51.100.1"]);
    // Refused before anything happens.
    let r = sb.client(&["reload", "nosuch"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (255, "Sorry but the jail 'nosuch' does not exist\n")
    );
    let r = sb.client(&["reload", "a", "b"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr
            .contains("ERROR   Unexpected argument(s) for reload: ['a', 'b']"),
        "{}",
        r.stderr
    );
    server.stop(&sb);
}

#[test]
fn unchanged_actions_are_not_run_again() {
    // A command action that records what it is asked to do.
    let sb = Sandbox::new("maxretry = 2\naction = record");
    let record = sb.path("actions.log");
    sb.write(
        "etc/action.d/record.conf",
        &format!(
            "[Definition]\nactionstart = echo start >> {0}\nactionstop = echo stop >> {0}\n\
             actionban = echo ban <ip> >> {0}\nactionunban = echo unban <ip> >> {0}\n",
            record.display()
        ),
    );
    let server = sb.start();
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.5"]), "1\n");
    let read = || std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(read(), "start\nban 192.0.2.5\n");
    sb.write(
        "etc/jail.local",
        "[test]\nmaxretry = 3\nbantime = 2h\naction = record\n",
    );
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    assert_eq!(read(), "start\nban 192.0.2.5\n");
    assert_eq!(sb.ok(&["get", "test", "maxretry"]), "3\n");
    server.stop(&sb);
    assert_eq!(read(), "start\nban 192.0.2.5\nunban 192.0.2.5\nstop\n");
}
