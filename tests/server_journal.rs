//! `backend = systemd`: a jail reading a real journal file (written by
//! systemd-journal-remote, read by the real journalctl), resuming after its
//! stored cursor on restart.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::daemon::*;
use common::{need, pipe, text};

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Appends `test-auth` entries (one per address, stamped now) to a journal
/// file, plus one of another unit that the journalmatch leaves out.
fn write_journal(file: &Path, addrs: &[&str]) {
    need(REMOTE, "systemd-journal-remote");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let mut export = Vec::new();
    let mut entry = |i: u128, unit: &str, msg: &str| {
        let t = now + i;
        write!(
            export,
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={t}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME=mail\nSYSLOG_IDENTIFIER=test-auth\n_PID=42\n_SYSTEMD_UNIT={unit}\nMESSAGE={msg}\n\n"
        )
        .unwrap();
    };
    entry(
        0,
        "other.service",
        "authentication failure for root from 203.0.113.250",
    );
    for (i, a) in addrs.iter().enumerate() {
        entry(
            i as u128 + 1,
            "test-auth.service",
            &format!("authentication failure for root from {a}"),
        );
    }
    let out = pipe(
        Command::new(REMOTE)
            .arg(format!("--output={}", file.display()))
            .arg("-"),
        &export,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_systemd_jail_counts_journal_entries_and_resumes_after_its_cursor() {
    let sb = Sandbox::new("");
    let journal = sb.path("test.journal");
    sb.write(
        "etc/jail.local",
        &format!(
            "[test]\nbackend = systemd[journalfiles=\"{}\"]\njournalmatch = _SYSTEMD_UNIT=test-auth.service\n",
            journal.display()
        ),
    );
    // Entries from before the start are the backlog: recent ones count.
    write_journal(&journal, &["192.0.2.111", "192.0.2.111"]);
    let server = sb.start();
    let st = sb.wait_status("test", "the two entries", |s| s.total_failed >= 2);
    assert_eq!((st.total_failed, st.total_banned), (2, 0), "{}", st.text);
    assert!(
        st.text
            .contains("`- Journal matches:\t_SYSTEMD_UNIT=test-auth.service\n"),
        "{}",
        st.text
    );
    write_journal(&journal, &["192.0.2.111"]);
    let st = sb.wait_status("test", "the ban", |s| s.total_banned == 1);
    assert_eq!(st.banned, ["192.0.2.111"]);
    server.stop(&sb);

    // While down: two more entries. After the restart exactly these count.
    write_journal(&journal, &["192.0.2.112", "192.0.2.112"]);
    let server = sb.start();
    let st = sb.wait_status("test", "the two new entries", |s| s.total_failed >= 2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let st2 = sb.status("test");
    assert_eq!(st2.total_failed, 2, "{}\n{}", st.text, sb.log());
    assert_eq!(st2.banned, ["192.0.2.111"]);
    server.stop(&sb);
}
