//! Log files that move under the server: rotation by rename, copytruncate,
//! a log file that does not exist yet. Counts are exact: every line once.

mod common;

use common::daemon::*;

/// Waits until `Total failed` is `n`, then checks it stays there a moment
/// (nothing read twice later).
fn settles_at(sb: &Sandbox, n: u64) {
    sb.wait_status("test", &format!("{n} failures"), |s| s.total_failed >= n);
    // The watcher's rescan period is 10 s and rotated files are drained
    // for 10 s; a line read twice would show within a couple of polls.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let st = sb.status("test");
    assert_eq!(st.total_failed, n, "{}\nlog:\n{}", st.text, sb.log());
}

#[test]
fn rotation_by_rename_reads_every_line_once() {
    let sb = Sandbox::new("maxretry = 100");
    let server = sb.start();
    sb.fail("192.0.2.51", 3);
    sb.wait_status("test", "3 failures", |s| s.total_failed == 3);
    std::fs::rename(sb.path("auth.log"), sb.path("auth.log.1")).unwrap();
    // A writer that has not reopened yet still appends to the old file.
    sb.append("auth.log.1", &syslog_line("root", "192.0.2.52"));
    sb.write("auth.log", &syslog_line("root", "192.0.2.53"));
    sb.append("auth.log", &rfc3339_line("root", "192.0.2.53"));
    settles_at(&sb, 6);
    sb.fail("192.0.2.54", 1);
    settles_at(&sb, 7);
    server.stop(&sb);
}

#[test]
fn copytruncate_reads_every_line_once() {
    let sb = Sandbox::new("maxretry = 100");
    let server = sb.start();
    sb.fail("192.0.2.61", 3);
    sb.wait_status("test", "3 failures", |s| s.total_failed == 3);
    // logrotate's copytruncate: copy, truncate in place, writers go on.
    std::fs::copy(sb.path("auth.log"), sb.path("auth.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(sb.path("auth.log"))
        .unwrap();
    sb.fail("192.0.2.62", 2);
    settles_at(&sb, 5);
    server.stop(&sb);
}

#[test]
fn a_missing_log_file_is_picked_up_when_it_appears() {
    let sb = Sandbox::new("maxretry = 2");
    std::fs::remove_file(sb.path("auth.log")).unwrap();
    let server = sb.start();
    let st = sb.status("test");
    assert_eq!(st.total_failed, 0);
    assert!(
        st.text
            .contains(&format!("File list:\t{}", sb.path("auth.log").display())),
        "{}",
        st.text
    );
    assert!(
        sb.log().contains("WARNING"),
        "no warning about the missing file:\n{}",
        sb.log()
    );
    sb.write("auth.log", &syslog_line("root", "192.0.2.71"));
    sb.fail("192.0.2.71", 1);
    let st = sb.wait_status("test", "the ban", |s| s.total_banned == 1);
    assert_eq!(st.banned, ["192.0.2.71"]);
    server.stop(&sb);
}

#[test]
fn glob_logpaths_follow_every_matching_file_and_new_ones() {
    let sb = Sandbox::new("");
    sb.write(
        "etc/jail.local",
        &format!(
            "[test]\nmaxretry = 100\nlogpath = {}/logs/*.log\n",
            sb.dir.path().display()
        ),
    );
    sb.write("logs/a.log", &syslog_line("root", "192.0.2.81"));
    sb.write("logs/b.log", &syslog_line("root", "192.0.2.82"));
    sb.write("logs/ignored.txt", &syslog_line("root", "192.0.2.83"));
    let server = sb.start();
    sb.wait_status("test", "2 failures", |s| s.total_failed == 2);
    sb.write("logs/c.log", &syslog_line("root", "192.0.2.84"));
    settles_at(&sb, 3);
    let st = sb.status("test");
    for f in ["a.log", "b.log", "c.log"] {
        assert!(st.text.contains(f), "{}", st.text);
    }
    server.stop(&sb);
}
