//! `logban regex` as a program: its report against the real `fail2ban-regex`
//! (Fail2ban installed, as in CI), its `-o` and `--json` output, filters
//! given by name, path or regex, and bad input (huge, binary or
//! undecodable lines, a regex that backtracks without end, broken filter
//! files).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::corpus::{NOW, TZ};
use common::fail2ban::{self, installed, SAMPLES};
use common::{text, BIN};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .env("TZ", TZ)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn logban(args: &[&str]) -> Output {
    let mut all = vec!["regex"];
    all.extend_from_slice(args);
    run(BIN, &all)
}

/// The report without its one timing line.
fn report(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("[processed in "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn summary(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no summary in {}", text(&out.stdout)))
        .to_string()
}

/// Fail2ban's sample logs of a few services in one file.
fn sample_log(dir: &Path) -> PathBuf {
    let mut data = Vec::new();
    for name in ["sshd", "postfix", "dovecot"] {
        data.extend(std::fs::read(installed(SAMPLES).join(name)).unwrap());
    }
    let path = dir.join("samples.log");
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn reports_read_as_fail2ban_regex_writes_them() {
    installed(fail2ban::REGEX);
    let dir = tempfile::tempdir().unwrap();
    let log = sample_log(dir.path());
    let log = log.to_str().unwrap();
    for filter in ["sshd", "postfix[mode=extra]", "dovecot"] {
        // No name is resolved (`-r`, `--usedns no`): the comparison needs
        // no network and takes no DNS timeouts.
        for opts in [
            &["-r"][..],
            &["-v", "--usedns", "no"],
            &["--print-all-matched", "-L", "5", "-r"],
        ] {
            let mut args: Vec<&str> = opts.to_vec();
            args.extend([log, filter]);
            let theirs = run(fail2ban::REGEX, &args);
            let ours = logban(&args);
            assert!(
                ours.status.success(),
                "{filter} {opts:?}: {}",
                text(&ours.stderr)
            );
            assert_eq!(report(&ours), report(&theirs), "{filter} {opts:?}");
        }
    }
    // A log line and a failregex given on the command line, an ignoreregex.
    let line = "Aug 14 11:59:59 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2";
    for args in [
        &[line, r"Failed \S+ for <F-USER>\S+</F-USER> from <HOST>"][..],
        &[line, r"Failed \S+ for \S+ from <HOST>", "for root"],
        &["no date here 192.0.2.8", "here <HOST>"],
        &["a\nfail 192.0.2.9\nb", "^fail <HOST>$"],
    ] {
        let theirs = run(fail2ban::REGEX, args);
        let ours = logban(args);
        assert_eq!(report(&ours), report(&theirs), "{args:?}");
    }
}

#[test]
fn out_forms_print_what_fail2ban_regex_prints() {
    installed(fail2ban::REGEX);
    let dir = tempfile::tempdir().unwrap();
    let log = sample_log(dir.path());
    let log = log.to_str().unwrap();
    // (`-o matches` shows Python's internal tuples: not reproduced.)
    for form in ["id", "ip", "msg", "user", "dns"] {
        let args = ["-r", "-o", form, log, "sshd"];
        let ours = logban(&args);
        assert!(ours.status.success());
        assert!(!ours.stdout.is_empty(), "-o {form} printed nothing");
        assert_eq!(
            text(&ours.stdout),
            text(&run(fail2ban::REGEX, &args).stdout),
            "-o {form}"
        );
    }
}

#[test]
fn json_has_one_object_per_failure_with_its_line_and_captures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "# a comment\n\
         Aug 14 11:58:59 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2\n\
         Aug 14 11:59:00 host sshd[2]: Accepted publickey for bob from 192.0.2.8 port 22 ssh2\n\
         Aug 14 11:59:01 host sshd[3]: Invalid user eve from 2001:db8::5 port 22\n",
    )
    .unwrap();
    let out = logban(&[
        "--json",
        "--now",
        &NOW.to_string(),
        log.to_str().unwrap(),
        "sshd",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objects: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The accepted login is a no-fail match: not reported.
    assert_eq!(objects.len(), 2, "{objects:?}");
    let (a, b) = (&objects[0], &objects[1]);
    assert_eq!(
        (a["line"].as_u64(), a["fid"].as_str()),
        (Some(2), Some("192.0.2.7"))
    );
    assert_eq!(
        (a["user"].as_str(), a["ip4"].as_str()),
        (Some("root"), Some("192.0.2.7"))
    );
    // 2005-08-14 11:58:59 CEST.
    assert_eq!(a["time"].as_f64(), Some(1124013539.0));
    assert_eq!(a["matches"].as_array().unwrap().len(), 1);
    assert_eq!(
        (b["line"].as_u64(), b["ip6"].as_str()),
        (Some(4), Some("2001:db8::5"))
    );
    assert_eq!(b["user"].as_str(), Some("eve"));
}

#[test]
fn filters_by_name_path_and_in_a_foreign_file_agree() {
    let dir = tempfile::tempdir().unwrap();
    let log = sample_log(dir.path());
    let log = log.to_str().unwrap();
    let by_name = logban(&["-r", log, "sshd[mode=aggressive]"]);
    let path = format!("{}/filter.d/sshd.conf[mode=aggressive]", fail2ban::CONF);
    let by_path = logban(&["-r", log, &path]);
    assert_eq!(summary(&by_name), summary(&by_path));
    // A filter file outside any filter.d, with its include beside it.
    let own = dir.path().join("mine");
    std::fs::create_dir(&own).unwrap();
    std::fs::copy(
        format!("{}/filter.d/common.conf", fail2ban::CONF),
        own.join("common.conf"),
    )
    .unwrap();
    std::fs::copy(
        format!("{}/filter.d/sshd.conf", fail2ban::CONF),
        own.join("my-ssh.conf"),
    )
    .unwrap();
    let foreign = format!("{}[mode=aggressive]", own.join("my-ssh.conf").display());
    let out = logban(&["-r", log, &foreign]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Use   failregex file : "));
    assert_eq!(summary(&out), summary(&by_name));
    assert!(
        summary(&by_name).contains(" matched"),
        "{}",
        summary(&by_name)
    );
}

#[test]
fn invoked_as_fail2ban_regex_it_is_fail2ban_regex() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("fail2ban-regex");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = run(link.to_str().unwrap(), &["fail 192.0.2.1", "fail <HOST>"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("\nRunning tests\n============="));
    assert!(text(&out.stdout).contains("Lines: 1 lines, 0 ignored, 1 matched, 0 missed"));
    let out = run(link.to_str().unwrap(), &["-V"]);
    assert_eq!(text(&out.stdout), "1.0.2\n");
}

#[test]
fn usage_errors_exit_as_fail2ban_regex_does() {
    let out = logban(&["only-a-log"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("ERROR: provide both <LOG> and <REGEX>."));
    assert!(text(&out.stdout).contains("--print-all-missed"));
    let out = logban(&["--frobnicate", "a", "b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: no such option: --frobnicate"));
    let out = logban(&["--print-no-missed", "--print-all-missed", "a", "b"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("mutually exclusive"));
}

#[test]
fn a_bad_usedns_is_reported_in_fail2ban_words() {
    let out = logban(&["--usedns", "BoGus", "x 192.0.2.1", "<HOST>"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("Incorrect value 'bogus' specified for usedns. Using safe 'no'"),
        "{err}"
    );
}

#[test]
fn huge_binary_and_undecodable_lines_are_read_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad.log");
    let mut data = Vec::new();
    // A 10 MB line that opens the filter's gate, then binary garbage with
    // NUL bytes and invalid UTF-8, then a real failure.
    data.extend_from_slice(b"Aug 14 11:00:00 host sshd[1]: Failed password for ");
    data.extend(std::iter::repeat(b"x ").take(5_000_000).flatten());
    data.push(b'\n');
    let mut seed: u32 = 7;
    for _ in 0..200_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((seed >> 16) as u8);
    }
    data.extend_from_slice(b"\n\xff\xfe\x00\x00 sshd[2]: \xc3\x28 invalid \x00 utf-8\n");
    data.extend_from_slice(
        b"Aug 14 11:00:01 host sshd[3]: Failed password for root from 192.0.2.9 port 22 ssh2\n",
    );
    std::fs::write(&log, &data).unwrap();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let log = log.to_str().unwrap();
    let out = logban(&["--print-no-missed", log, "sshd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out);
    let counted: usize = s["Lines: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Empty lines (a `\n` the garbage held twice in a row) are not counted.
    assert!(
        counted <= lines && counted + 20 > lines,
        "{s} of {lines} lines"
    );
    assert!(s.contains(", 1 matched,"), "{s}");
    let out = logban(&["--json", "--now", &NOW.to_string(), log, "sshd"]);
    let found: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["fid"], "192.0.2.9");
    assert_eq!(found[0]["line"].as_u64(), Some(lines as u64));
}

#[test]
fn a_regex_that_backtracks_without_end_gives_up_with_a_warning_naming_its_filter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("filter.d")).unwrap();
    std::fs::write(
        dir.path().join("filter.d/slow.conf"),
        "[Definition]\nfailregex = ^ host app: (a+)+ <HOST>$\n            fail <HOST>\n",
    )
    .unwrap();
    let log = dir.path().join("app.log");
    let mut data = b"Aug 14 11:00:00 host app: ".to_vec();
    data.extend(std::iter::repeat(b'a').take(100_000));
    data.extend_from_slice(b"!\nAug 14 11:00:01 host app: fail 192.0.2.10\n");
    std::fs::write(&log, data).unwrap();
    let conf = dir.path().to_str().unwrap();
    let out = logban(&[
        "-c",
        conf,
        "--print-no-missed",
        log.to_str().unwrap(),
        "slow",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        summary(&out),
        "Lines: 2 lines, 0 ignored, 1 matched, 1 missed"
    );
    let err = text(&out.stderr);
    assert!(err.contains("[slow]") && err.contains("gave up"), "{err}");
}

#[test]
fn broken_filter_files_are_named_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("filter.d");
    std::fs::create_dir(&d).unwrap();
    let cases = [
        (
            "regex",
            "[Definition]\n\nfailregex = fail <HOST>\n            bad (<HOST>\n",
            ":3: [Definition] failregex: ",
        ),
        (
            "interp",
            "[Definition]\nfailregex = %(nowhere)s\n",
            ":2: [Definition] failregex: ",
        ),
        ("header", "[Definition\nfailregex = x\n", ":1: "),
        (
            "lines",
            "[Definition]\nfailregex = x <HOST>\nmaxlines = -3\n",
            ":3: [Definition] maxlines: ",
        ),
        (
            "date",
            "[Definition]\nfailregex = x <HOST>\ndatepattern = %Q\n",
            ":3: [Definition] datepattern: ",
        ),
    ];
    for (name, body, want) in cases {
        let file = d.join(format!("{name}.conf"));
        std::fs::write(&file, body).unwrap();
        let out = logban(&["-c", dir.path().to_str().unwrap(), "x", name]);
        assert_eq!(out.status.code(), Some(255), "{name}");
        let err = text(&out.stderr);
        let want = format!("{}{want}", file.display());
        assert!(err.contains(&want), "{name}: expected {want:?} in {err}");
    }
}
