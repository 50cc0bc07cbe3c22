//! The command runner and hosts.deny with actions read by Fail2ban's own
//! reader: lifecycle (start on demand per family, flush, stop), checks and
//! repair, timeouts, `norestored`, attacker text passed only as data, and
//! the hosts.deny file compared with what Fail2ban's commands write.

mod common;

use std::path::Path;

use common::fail2ban;
use common::netns::{self, rt, tickets};
use logban::action::{BackendKind, Cause, JailActions, Settings, StopMode, Ticket};
use logban::config::ActionDef;

/// The actions of jail `t` from `action` (one per line) with `files` added
/// to a copy of /etc/fail2ban.
fn defs(
    action: &str,
    files: &[(&str, &str)],
    action_files: &[&str],
) -> (tempfile::TempDir, Vec<ActionDef>) {
    let local = fail2ban::jail_local("t", &format!("action = {action}"));
    let mut all = vec![("jail.local", local.as_str())];
    all.extend_from_slice(files);
    fail2ban::action_defs(&all, "t", action_files)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

const LIFECYCLE: &str = "[Definition]\n\
    actionstart = echo \"start <tag>\" >> <out>\n\
    actionstop = echo \"stop <tag>\" >> <out>\n\
    actionflush = <flush>\n\
    actionban = echo \"ban <ip> <tag> f=<failures> t=<time> bt=<bantime> bc=<bancount> r=<restored> fam=<family>\" >> <out>\n\
    actionunban = echo \"unban <ip> <tag>\" >> <out>\n\
    [Init]\n\
    tag = v4\n\
    flush = echo \"flush <tag>\" >> <out>\n\
    [Init?family=inet6]\n\
    tag = v6\n";

#[test]
fn family_actions_start_on_demand_and_stop_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (_tree, defs) = defs(
        &format!("probe[out={}]", out.display()),
        &[("action.d/probe.conf", LIFECYCLE)],
        &["probe"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        assert_eq!(acts.status()[0].kind, BackendKind::Command);
        acts.start(vec![]).await.unwrap();
        assert!(lines(&out).is_empty(), "started on demand only");
        let mut a = Ticket::new("192.0.2.9");
        a.failures = 3;
        a.time = 1700000000.0;
        a.bantime = 600;
        a.bancount = 2;
        acts.ban(vec![a.clone()]).await.unwrap();
        acts.ban(tickets(&["2001:db8::9"])).await.unwrap();
        acts.ban(tickets(&["192.0.2.10"])).await.unwrap();
        acts.unban(vec![a]).await.unwrap();
        acts.stop(tickets(&["2001:db8::9", "192.0.2.10"]), StopMode::Full)
            .await
            .unwrap();
    });
    assert_eq!(
        lines(&out),
        [
            "start v4",
            "ban 192.0.2.9 v4 f=3 t=1700000000.0 bt=600 bc=2 r=0 fam=inet4",
            "start v6",
            "ban 2001:db8::9 v6 f=0 t=0.0 bt=0 bc=0 r=0 fam=inet6",
            "ban 192.0.2.10 v4 f=0 t=0.0 bt=0 bc=0 r=0 fam=inet4",
            "unban 192.0.2.9 v4",
            "flush v4",
            "flush v6",
            "stop v4",
            "stop v6",
        ]
    );
}

#[test]
fn without_flush_stop_unbans_each_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (_tree, defs) = defs(
        &format!("probe[out={}, flush=\"\"]", out.display()),
        &[("action.d/probe.conf", LIFECYCLE)],
        &["probe"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(tickets(&["192.0.2.1", "192.0.2.2"]))
            .await
            .unwrap();
        acts.stop(tickets(&["192.0.2.1", "192.0.2.2"]), StopMode::Full)
            .await
            .unwrap();
    });
    let l = lines(&out);
    assert_eq!(l.len(), 6, "{l:?}");
    assert_eq!(l[0], "start v4");
    assert!(l[1].starts_with("ban 192.0.2.1 v4") && l[2].starts_with("ban 192.0.2.2 v4"));
    assert_eq!(
        &l[3..],
        ["unban 192.0.2.1 v4", "unban 192.0.2.2 v4", "stop v4"]
    );
}

#[test]
fn norestored_actions_skip_restored_bans() {
    let dir = tempfile::tempdir().unwrap();
    let (mail, fw) = (dir.path().join("mail"), dir.path().join("fw"));
    let (_tree, defs) = defs(
        &format!(
            "probe[out={}, norestored=1, actname=mail]\n probe[out={}, actname=fw]",
            mail.display(),
            fw.display()
        ),
        &[("action.d/probe.conf", LIFECYCLE)],
        &["probe", "probe"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        let mut old = Ticket::new("192.0.2.5");
        old.restored = true;
        acts.start(vec![old]).await.unwrap();
        acts.ban(tickets(&["192.0.2.6"])).await.unwrap();
    });
    assert_eq!(lines(&mail).len(), 2, "{:?}", lines(&mail));
    assert!(lines(&mail)[1].starts_with("ban 192.0.2.6"));
    let fw = lines(&fw);
    assert!(
        fw[1].starts_with("ban 192.0.2.5") && fw[1].contains("r=1"),
        "{fw:?}"
    );
}

const REPAIRABLE: &str = "[Definition]\n\
    actionstart = touch <mark>; echo start >> <out>\n\
    actionstop = echo stop >> <out>\n\
    actioncheck = test -f <mark>\n\
    actionrepair = <repair>\n\
    actionban = test -f <mark> && echo \"ban <ip>\" >> <out>\n\
    actionunban = echo \"unban <ip>\" >> <out>\n\
    [Init]\n\
    repair =\n";

fn repair_run(repair: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (out, mark) = (dir.path().join("out"), dir.path().join("mark"));
    let (_tree, defs) = defs(
        &format!(
            "fix[out={}, mark={}, repair=\"{repair}\"]",
            out.display(),
            mark.display()
        ),
        &[("action.d/fix.conf", REPAIRABLE)],
        &["fix"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        std::fs::remove_file(&mark).unwrap();
        acts.ban(tickets(&["192.0.2.7"])).await.unwrap();
        assert!(acts.enforced());
    });
    lines(&out)
}

#[test]
fn failing_ban_checks_repairs_by_restart_and_retries() {
    assert_eq!(repair_run(""), ["start", "stop", "start", "ban 192.0.2.7"]);
}

#[test]
fn failing_ban_uses_actionrepair_when_given() {
    assert_eq!(
        repair_run("touch <mark>; echo repair >> <out>"),
        ["start", "repair", "ban 192.0.2.7"]
    );
}

#[test]
fn a_command_over_its_timeout_is_killed_and_reported() {
    let (_tree, defs) = defs(
        "slow[timeout=1]",
        &[("action.d/slow.conf", "[Definition]\nactionban = sleep 30\n")],
        &["slow"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        let e = acts.ban(tickets(&["192.0.2.1"])).await.unwrap_err();
        let (_, e) = &e.0[0];
        assert_eq!(e.cause, Cause::CommandFailed);
        assert!(e.message.contains("timed out after 1 s"), "{e}");
        let s = &acts.status()[0];
        assert!(!s.enforced);
        assert_eq!(s.last_error.as_ref(), Some(e));
    });
}

/// An action that writes what reaches it, in every quoting context.
const PROBE: &str = "[Definition]
actionban = printf '%%s\\n' \"user=<F-USER>\" >> <out>
    printf '%%s\\n' 'single=<F-USER>' >> <out>
    printf '%%s\\n' bare=<F-USER> >> <out>
    printf '%%s\\n' <matches> >> <out>
    printf '%%s\\n' \"fid=<fid> ip=<ip> f=<failures>\" >> <out>
    printf '%%s\\n' \"`printf '%%s' \"bq=<F-USER>\"`\" >> <out>
    printf '%%s\\n' \"$(printf '%%s' sub=<F-USER>)\" >> <out>
    printf '%%s\\n' \"none=<F-NOTHERE>.\" >> <out>
";

#[test]
fn attacker_text_reaches_the_shell_only_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let pwn = |n: u32| dir.path().join(format!("pwn{n}"));
    let (_tree, defs) = defs(
        &format!("probe[out={}]", out.display()),
        &[("action.d/probe.conf", PROBE)],
        &["probe"],
    );
    let user = format!(
        "a'b\"c`touch {}`$(touch {}) ${{HOME}}\n; touch {} #\\",
        pwn(1).display(),
        pwn(2).display(),
        pwn(3).display()
    );
    let matches = vec![
        format!("line1 $(touch {}) *", pwn(4).display()),
        format!("line2 `touch {}` ' \" \\n", pwn(5).display()),
    ];
    let fid = format!("x$(touch {})';touch {}", pwn(6).display(), pwn(7).display());
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        let mut t = Ticket::new(fid.clone());
        t.failures = 2;
        t.matches = matches.clone();
        t.data.insert("user".into(), user.clone());
        acts.ban(vec![t]).await.unwrap();
    });
    for n in 1..=7 {
        assert!(!pwn(n).exists(), "command injection through tag {n}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let expected = format!(
        "user={user}\nsingle={user}\nbare={user}\n{}\nfid={fid} ip={fid} f=2\nbq={user}\nsub={user}\nnone=.\n",
        matches.join("\n")
    );
    assert_eq!(text, expected);
}

#[test]
fn hosts_deny_written_as_fail2ban_does_once_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    for f in [&ours, &theirs] {
        std::fs::write(f, "# local rules\nsshd: 203.0.113.200\n").unwrap();
    }
    let (_tree, mut defs) = defs(
        &format!(
            "hostsdeny[file={}, actname=ours]\n hostsdeny[file={}, actname=theirs]",
            ours.display(),
            theirs.display()
        ),
        &[],
        &["hostsdeny", "hostsdeny"],
    );
    // Fail2ban's own commands for the second one.
    defs[1].file = "hostsdeny-stock".into();
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        let kinds: Vec<_> = acts.status().iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [BackendKind::HostsDeny, BackendKind::Command]);
        acts.start(vec![]).await.unwrap();
        acts.ban(tickets(&["192.0.2.1", "2001:db8::1", "198.51.100.0/24"]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&ours).unwrap(),
            std::fs::read_to_string(&theirs).unwrap()
        );
        assert_eq!(
            lines(&ours),
            [
                "# local rules",
                "sshd: 203.0.113.200",
                "ALL: 192.0.2.1",
                "ALL: [2001:db8::1]",
                "ALL: 198.51.100.0/24"
            ]
        );
        acts.unban(tickets(&["192.0.2.1"])).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&ours).unwrap(),
            std::fs::read_to_string(&theirs).unwrap()
        );
        // Fail2ban's `sed` cannot unban a subnet (the `/`); logban can.
        let e = acts.unban(tickets(&["198.51.100.0/24"])).await.unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].0, "theirs");
        assert_eq!(
            lines(&ours),
            ["# local rules", "sshd: 203.0.113.200", "ALL: [2001:db8::1]"]
        );
        acts.stop(tickets(&["2001:db8::1"]), StopMode::Full)
            .await
            .unwrap();
    });
    assert_eq!(lines(&ours), ["# local rules", "sshd: 203.0.113.200"]);

    // A restart keeps the lines and never doubles them; an id that is not an
    // address is refused rather than written into the file.
    let (_tree, defs) = self::defs(
        &format!("hostsdeny[file={}]", ours.display()),
        &[],
        &["hostsdeny"],
    );
    rt().block_on(async {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(tickets(&["192.0.2.3"])).await.unwrap();
        acts.stop(vec![], StopMode::KeepNative).await.unwrap();
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(tickets(&["192.0.2.3"])).await.unwrap();
        let e = acts.ban(tickets(&["x\nALL: ALL"])).await.unwrap_err();
        assert_eq!(e.0[0].1.cause, Cause::Config);
    });
    assert_eq!(
        lines(&ours),
        ["# local rules", "sshd: 203.0.113.200", "ALL: 192.0.2.3"]
    );
}

/// Fail2ban's own mail action, its `<matches>` inside a double-quoted
/// `printf` with backquotes around it, given hostile log lines: the mail
/// carries them as text and nothing runs.
#[test]
fn stock_mail_action_carries_hostile_matches_as_text() {
    let pair = netns::Pair::new("mail");
    let dir = tempfile::tempdir().unwrap();
    let (mail, pwn) = (dir.path().join("mail"), dir.path().join("pwn"));
    let (_tree, defs) = defs(
        &format!(
            "sendmail-whois-matches[mailcmd=\"cat >> {}\"]",
            mail.display()
        ),
        &[],
        &["sendmail-whois-matches"],
    );
    let hostile = vec![
        format!(
            "Failed password for $(touch {}) from 192.0.2.9",
            pwn.display()
        ),
        format!(
            "Failed password for `touch {}`\" '; touch {} #",
            pwn.display(),
            pwn.display()
        ),
    ];
    let expect = hostile.clone();
    // No route out of the namespace: whois fails at once.
    netns::block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("t", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        let mut t = Ticket::new("192.0.2.9");
        t.failures = 2;
        t.matches = hostile;
        acts.ban(vec![t]).await.unwrap();
    });
    assert!(!pwn.exists(), "command injection through <matches>");
    let text = std::fs::read_to_string(&mail).unwrap();
    assert!(
        text.contains("Subject: [Fail2Ban] t: banned 192.0.2.9"),
        "{text}"
    );
    for line in expect {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
}
