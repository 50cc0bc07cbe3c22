//! The journal source: entry formatting on journalctl's JSON shapes, the
//! command line, and the follower against a real journal file written by
//! systemd-journal-remote and read by the real journalctl.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::source::{
    format_entry, journal_args, JournalEntry, JournalEvent, JournalFollower, JournalOptions,
};

// Entries as `journalctl -o json --all` printed them for a journal written
// by systemd-journal-remote (field order is journalctl's).
const SSHD: &str = r#"{"__CURSOR":"s=0d65;i=1;b=0123;m=4c4b40;t=60a24181e4000;x=6c5c","_HOSTNAME":"mail","_BOOT_ID":"0123456789abcdef0123456789abcdef","__MONOTONIC_TIMESTAMP":"5000000","_PID":"123","_SYSTEMD_UNIT":"ssh.service","__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2"}"#;
const BINARY: &str = r#"{"SYSLOG_PID":"124","_SYSTEMD_UNIT":"ssh.service","__MONOTONIC_TIMESTAMP":"6000000","SYSLOG_IDENTIFIER":"sshd","__CURSOR":"s=0d65;i=2","_HOSTNAME":"mail","MESSAGE":[98,97,100,32,255,254,32,98,121,116,101,115,10,115,101,99,111,110,100],"__REALTIME_TIMESTAMP":"1700000001000000"}"#;
const KERNEL: &str = r#"{"__REALTIME_TIMESTAMP":"1700000002000000","__CURSOR":"s=0d65;i=3","MESSAGE":"oops","__MONOTONIC_TIMESTAMP":"7000000","_SOURCE_MONOTONIC_TIMESTAMP":"1234567","_HOSTNAME":"mail","SYSLOG_IDENTIFIER":"kernel"}"#;
const REPEATED: &str = r#"{"__CURSOR":"s=0d65;i=4","__REALTIME_TIMESTAMP":"1700000003000000","MESSAGE":["one","two"],"__MONOTONIC_TIMESTAMP":"8000000","_HOSTNAME":"mail"}"#;

fn entry(json: &str) -> JournalEntry {
    format_entry(json.as_bytes()).expect("valid entry")
}

#[test]
fn entries_are_rebuilt_as_fail2ban_lines() {
    let e = entry(SSHD);
    assert_eq!(
        e.line,
        "mail sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2"
    );
    assert_eq!(e.time, 1_700_000_000.0);
    assert_eq!(
        e.cursor.as_deref(),
        Some("s=0d65;i=1;b=0123;m=4c4b40;t=60a24181e4000;x=6c5c")
    );
    // MESSAGE as a byte array: decoded lossily, newline written as \n.
    assert_eq!(
        entry(BINARY).line,
        "mail sshd[124]: bad \u{fffd}\u{fffd} bytes\\nsecond"
    );
    assert_eq!(entry(KERNEL).line, "mail kernel: [    1.234567] oops");
    assert_eq!(entry(REPEATED).line, "mail one two");
}

#[test]
fn missing_fields_and_odd_values() {
    // Only a message: no leading space.
    assert_eq!(entry(r#"{"MESSAGE":"just this"}"#).line, "just this");
    // No message: the prefix and an empty element, as Fail2ban joins them.
    assert_eq!(
        entry(r#"{"_HOSTNAME":"h","_COMM":"cron"}"#).line,
        "h cron: "
    );
    // _COMM and _PID stand in; an empty SYSLOG_IDENTIFIER counts as missing.
    let e = entry(r#"{"SYSLOG_IDENTIFIER":"","_COMM":"postfix/smtpd","_PID":"77","MESSAGE":"m"}"#);
    assert_eq!(e.line, "postfix/smtpd[77]: m");
    // Python's int(v, 0): hex is converted, a leading zero is not a number.
    assert_eq!(
        entry(r#"{"_COMM":"a","_PID":"0x10","MESSAGE":"m"}"#).line,
        "a[16]: m"
    );
    assert_eq!(
        entry(r#"{"_COMM":"a","_PID":"0123","MESSAGE":"m"}"#).line,
        "a[0123]: m"
    );
    assert_eq!(
        entry(r#"{"_COMM":"a","_PID":" +1_000 ","MESSAGE":"m"}"#).line,
        "a[1000]: m"
    );
    assert_eq!(
        entry(r#"{"_COMM":"a","_PID":"12ab","MESSAGE":"m"}"#).line,
        "a[12ab]: m"
    );
    // The kernel without any monotonic time, and a kernel line with a pid.
    assert_eq!(
        entry(r#"{"SYSLOG_IDENTIFIER":"kernel","MESSAGE":"m"}"#).line,
        "kernel: m"
    );
    assert_eq!(
        entry(r#"{"SYSLOG_IDENTIFIER":"kernel","_PID":"1","MESSAGE":"m"}"#).line,
        "kernel[1]: m"
    );
    // The source's own timestamp wins over the journal's.
    let e = entry(
        r#"{"_SOURCE_REALTIME_TIMESTAMP":"1500000000500000","__REALTIME_TIMESTAMP":"1700000000000000"}"#,
    );
    assert_eq!(e.time, 1_500_000_000.5);
    assert_eq!(e.cursor, None);
    // Repeated binary values, and a value too large for journalctl (null).
    assert_eq!(
        entry(r#"{"MESSAGE":[[104,105],[255]]}"#).line,
        "hi \u{fffd}"
    );
    assert_eq!(entry(r#"{"_HOSTNAME":null,"MESSAGE":null}"#).line, "");
    assert!(format_entry(b"not json").is_err());
    assert!(format_entry(br#"["array"]"#).is_err());
}

#[test]
fn command_line_for_a_journalmatch() {
    let mut o = JournalOptions::new(
        "_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n'_COMM=my daemon' PRIORITY=3",
    );
    let args = journal_args(&o).unwrap();
    let fields = "--output-fields=_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,SYSLOG_PID,_PID,MESSAGE,\
                  _SOURCE_REALTIME_TIMESTAMP,_SOURCE_MONOTONIC_TIMESTAMP";
    let head = [
        "-o",
        "json",
        "--all",
        "--no-pager",
        fields,
        "-f",
        "--lines=0",
        "--system",
        "--",
    ];
    let matches = [
        "_SYSTEMD_UNIT=sshd.service",
        "+",
        "_COMM=sshd",
        "+",
        "_COMM=my daemon",
        "PRIORITY=3",
    ];
    assert_eq!(args, [&head[..], &matches[..]].concat());

    o.since = Some(1700000000.25);
    let args = journal_args(&o).unwrap();
    assert!(
        args.contains(&"--since=@1700000000.250000".to_string())
            && args.contains(&"--no-tail".to_string())
    );
    o.cursor = Some("s=1;i=2".into());
    let args = journal_args(&o).unwrap();
    assert!(args.contains(&"--after-cursor=s=1;i=2".to_string()));
    assert!(
        !args.iter().any(|a| a.starts_with("--since")),
        "the cursor wins"
    );

    let mut o = JournalOptions::new("");
    o.path = Some(PathBuf::from("/var/log/journal/remote"));
    o.flags = Some(8);
    o.namespace = Some("mail".into());
    let args = journal_args(&o).unwrap();
    assert!(args.contains(&"--directory=/var/log/journal/remote".to_string()));
    assert!(args.contains(&"--user".to_string()) && !args.contains(&"--system".to_string()));
    assert!(args.contains(&"--namespace=mail".to_string()));
    assert!(!args.contains(&"--".to_string()), "no match: every entry");

    let err = journal_args(&JournalOptions::new("_COMM='sshd")).unwrap_err();
    assert!(
        err.contains("_COMM='sshd") && err.contains("quotation"),
        "{err}"
    );
    assert!(JournalFollower::start(JournalOptions::new("a\\"), mpsc::sync_channel(1).0).is_err());
}

/// Realtime µs and fields of an entry to write.
type Entry = (u64, Vec<(&'static str, &'static [u8])>);

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Appends entries (export format) to a journal file with the real
/// systemd-journal-remote. Each entry: (realtime µs, fields; a field whose
/// value is not UTF-8 is written in the binary form).
fn write_journal(file: &Path, entries: &[Entry]) {
    assert!(
        Path::new(REMOTE).exists(),
        "{REMOTE} is missing: apt-get install systemd-journal-remote (the journal tests write real journal files)"
    );
    let mut export = Vec::new();
    for (rt, fields) in entries {
        write!(
            export,
            "__REALTIME_TIMESTAMP={rt}\n__MONOTONIC_TIMESTAMP={rt}\n"
        )
        .unwrap();
        export.extend_from_slice(b"_BOOT_ID=0123456789abcdef0123456789abcdef\n");
        for (k, v) in fields {
            if std::str::from_utf8(v).is_ok() && !v.contains(&b'\n') {
                write!(export, "{k}=").unwrap();
                export.extend_from_slice(v);
            } else {
                writeln!(export, "{k}").unwrap();
                export.extend_from_slice(&(v.len() as u64).to_le_bytes());
                export.extend_from_slice(v);
            }
            export.push(b'\n');
        }
        export.push(b'\n');
    }
    let mut child = Command::new(REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run systemd-journal-remote");
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sshd(i: u64, pid: &str) -> Entry {
    let msg: &'static str = Box::leak(
        format!("Failed password for root from 192.0.2.{i} port 22 ssh2").into_boxed_str(),
    );
    let pid: &'static str = Box::leak(pid.to_string().into_boxed_str());
    (
        1_700_000_000_000_000 + i * 1_000_000,
        vec![
            ("_HOSTNAME", b"mail"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("_PID", pid.as_bytes()),
            ("_SYSTEMD_UNIT", b"ssh.service"),
            ("MESSAGE", msg.as_bytes()),
        ],
    )
}

fn other(i: u64) -> Entry {
    (
        1_700_000_000_000_000 + i * 1_000_000,
        vec![
            ("_HOSTNAME", b"mail"),
            ("SYSLOG_IDENTIFIER", b"cron"),
            ("_SYSTEMD_UNIT", b"cron.service"),
            ("MESSAGE", b"tick"),
        ],
    )
}

fn options(file: &Path) -> JournalOptions {
    let mut o = JournalOptions::new("_SYSTEMD_UNIT=ssh.service");
    o.files = Some(file.display().to_string());
    o.since = Some(0.0);
    o.backoff_min = Duration::from_millis(50);
    o.backoff_max = Duration::from_millis(400);
    o
}

/// Receives until `got` holds `n` entries, each with its batch's backlog flag.
fn receive(rx: &Receiver<JournalEvent>, n: usize, got: &mut Vec<(JournalEntry, bool)>) {
    let end = Instant::now() + Duration::from_secs(20);
    while got.len() < n {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(ev) => got.extend(ev.entries.into_iter().map(|e| (e, ev.backlog))),
            Err(_) => panic!("timed out waiting for {n} journal entries, got {got:?}"),
        }
    }
}

/// An executable `DIR/journalctl` running the shell `body`.
fn fake_journalctl(dir: &Path, body: &str) -> PathBuf {
    let script = dir.join("journalctl");
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn lines(got: &[(JournalEntry, bool)]) -> Vec<&str> {
    got.iter().map(|(e, _)| e.line.as_str()).collect()
}

fn backlog(got: &[(JournalEntry, bool)]) -> Vec<bool> {
    got.iter().map(|(_, b)| *b).collect()
}

#[test]
fn follows_a_real_journal_and_resumes_after_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test.journal");
    let mut bin = sshd(2, "124");
    bin.1.retain(|(k, _)| *k != "MESSAGE");
    bin.1.push(("MESSAGE", b"bad \xff bytes\nsecond line"));
    write_journal(&file, &[sshd(1, "123"), other(2), bin]);

    let (tx, rx) = mpsc::sync_channel(8);
    let f = JournalFollower::start(options(&file), tx).unwrap();
    let mut got = Vec::new();
    receive(&rx, 2, &mut got);
    assert_eq!(got[0].0.time, 1_700_000_001.0);
    // Appended while following. The entries there at start are the backlog
    // (all are dated 2023: it ends with the jail's last entry at start).
    write_journal(&file, &[other(3), sshd(4, "125")]);
    receive(&rx, 3, &mut got);
    f.stop();
    assert_eq!(
        lines(&got),
        [
            "mail sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "mail sshd[124]: bad \u{fffd} bytes\\nsecond line",
            "mail sshd[125]: Failed password for root from 192.0.2.4 port 22 ssh2",
        ]
    );
    assert_eq!(backlog(&got), [true, true, false]);

    // A restart resumes after the stored cursor: nothing read twice.
    write_journal(&file, &[sshd(5, "126")]);
    let mut o = options(&file);
    o.cursor = got[2].0.cursor.clone();
    let (tx, rx) = mpsc::sync_channel(8);
    let f = JournalFollower::start(o, tx).unwrap();
    let mut again = Vec::new();
    receive(&rx, 1, &mut again);
    write_journal(&file, &[sshd(6, "127")]);
    receive(&rx, 2, &mut again);
    f.stop();
    assert_eq!(
        lines(&again),
        [
            "mail sshd[126]: Failed password for root from 192.0.2.5 port 22 ssh2",
            "mail sshd[127]: Failed password for root from 192.0.2.6 port 22 ssh2"
        ]
    );
    assert_eq!(backlog(&again), [true, false]);
}

#[test]
fn a_dying_journalctl_is_restarted_after_the_last_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test.journal");
    write_journal(&file, &[sshd(1, "1"), sshd(2, "2")]);
    // A journalctl that dies after a moment, logging its arguments.
    let log = dir.path().join("args.log");
    let script = fake_journalctl(
        dir.path(),
        &format!(
            "echo \"$@\" >> '{}'\nexec timeout 1 journalctl \"$@\"",
            log.display()
        ),
    );
    let runs = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut o = options(&file);
    o.program = script.clone();
    let (tx, rx) = mpsc::sync_channel(8);
    let f = JournalFollower::start(o, tx).unwrap();
    let mut got = Vec::new();
    receive(&rx, 2, &mut got);
    // Run 1 finds the end of the backlog, run 2 follows and dies; wait for
    // run 3, then add an entry: it arrives once, the old ones are not read
    // again.
    let end = Instant::now() + Duration::from_secs(20);
    while runs().lines().count() < 3 {
        assert!(Instant::now() < end, "journalctl was not restarted");
        std::thread::sleep(Duration::from_millis(20));
    }
    write_journal(&file, &[sshd(3, "3")]);
    receive(&rx, 3, &mut got);
    f.stop();
    assert_eq!(
        lines(&got),
        [
            "mail sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "mail sshd[2]: Failed password for root from 192.0.2.2 port 22 ssh2",
            "mail sshd[3]: Failed password for root from 192.0.2.3 port 22 ssh2",
        ]
    );
    let runs = runs();
    let runs: Vec<&str> = runs.lines().collect();
    assert!(
        runs[0].contains("--lines=1") && !runs[0].split(' ').any(|a| a == "-f"),
        "{}",
        runs[0]
    );
    assert!(
        runs[1].split(' ').any(|a| a == "-f") && runs[1].contains("--since=@0.000000"),
        "{}",
        runs[1]
    );
    let cursor = got[1].0.cursor.as_deref().unwrap();
    assert!(
        runs[2].contains(&format!("--after-cursor={cursor}")),
        "{}",
        runs[2]
    );
}

#[test]
fn a_long_catch_up_comes_in_bounded_batches() {
    // A journalctl with 5000 entries at once: one pipe's worth (64 KiB) is
    // about 2000 of them, readable without waiting.
    let dir = tempfile::tempdir().unwrap();
    let entries = dir.path().join("entries");
    let text: String = (0..5000)
        .map(|i| format!("{{\"__CURSOR\":\"{i}\",\"MESSAGE\":\"m\"}}\n"))
        .collect();
    std::fs::write(&entries, text).unwrap();
    let script = fake_journalctl(
        dir.path(),
        &format!(
            "case \"$*\" in *--lines=1*) exit 0;; esac\nsleep 0.3\ncat '{}'\nexec sleep 30",
            entries.display()
        ),
    );
    let mut o = JournalOptions::new("");
    o.program = script;
    let (tx, rx) = mpsc::sync_channel(64);
    let f = JournalFollower::start(o, tx).unwrap();
    let (mut n, mut largest) = (0, 0);
    while n < 5000 {
        let ev = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the entries arrive");
        n += ev.entries.len();
        largest = largest.max(ev.entries.len());
    }
    drop(rx);
    f.stop();
    assert!(largest <= 1024, "a batch of {largest} entries");
}
