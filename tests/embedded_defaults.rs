//! The configuration compiled into the binary: it is `defaults/` file for
//! file, `logban config write-defaults` writes it out unchanged, Fail2ban's
//! own client reads the written-out copy exactly as logban reads the
//! embedded tree, and it holds the mail-server profile.

mod common;

use std::fs;

use common::{defaults_dir, fail2ban, logban, text, tree_files};
use logban::config::{self, embedded, ConfigTree};

#[test]
fn every_embedded_file_is_the_file_in_defaults() {
    let dir = defaults_dir();
    let names: Vec<&str> = embedded::FILES.iter().map(|(p, _)| *p).collect();
    assert_eq!(names, tree_files(&dir), "the embedded file list");
    for (rel, content) in embedded::FILES {
        let on_disk = fs::read_to_string(dir.join(rel)).unwrap();
        assert!(
            *content == on_disk,
            "embedded {rel} differs from defaults/{rel}"
        );
    }
}

#[test]
fn write_defaults_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("fail2ban");
    let dir = conf.to_str().unwrap();

    let out = logban(&["config", "write-defaults", dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wrote: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let want: Vec<String> = embedded::FILES
        .iter()
        .map(|(rel, _)| format!("wrote {dir}/{rel}"))
        .collect();
    assert_eq!(wrote, want);
    assert_eq!(tree_files(&conf), tree_files(&defaults_dir()));
    for (rel, content) in embedded::FILES {
        assert_eq!(
            fs::read_to_string(conf.join(rel)).unwrap(),
            *content,
            "{rel}"
        );
    }
    // The written-out tree is read as the embedded one.
    let from_disk = config::dump(&ConfigTree::open(&conf).unwrap()).unwrap();
    assert_eq!(from_disk, config::dump(&embedded::tree()).unwrap());

    // Again: nothing to do.
    let out = logban(&["config", "write-defaults", dir]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!(
            "{} files already held the defaults\n",
            embedded::FILES.len()
        )
    );

    // An edited file is kept, and nothing else is written either.
    let jail_conf = conf.join("jail.conf");
    fs::write(&jail_conf, "[DEFAULT]\nmaxretry = 6\n").unwrap();
    fs::remove_file(conf.join("filter.d/custom.conf")).unwrap();
    let out = logban(&["config", "write-defaults", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{dir}/jail.conf")) && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&jail_conf).unwrap(),
        "[DEFAULT]\nmaxretry = 6\n"
    );
    assert!(!conf.join("filter.d/custom.conf").exists());

    let out = logban(&["config", "write-defaults", "--force", dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!(
                "{} files already held the defaults",
                embedded::FILES.len() - 2
            ),
            format!("replaced {dir}/jail.conf"),
            format!("wrote {dir}/filter.d/custom.conf"),
        ]
    );
    for (rel, content) in embedded::FILES {
        assert_eq!(
            fs::read_to_string(conf.join(rel)).unwrap(),
            *content,
            "{rel}"
        );
    }
}

#[test]
fn write_defaults_usage_errors() {
    for args in [
        &["config"][..],
        &["config", "write-defaults"],
        &["config", "dump", "/tmp"],
        &["config", "write-defaults", "--frobnicate", "/tmp"],
        &["config", "write-defaults", "/tmp/a", "/tmp/b"],
    ] {
        let out = logban(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("usage: logban config write-defaults"));
    }
    // A file where the directory should be: a clear error, nothing written.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("conf");
    fs::write(&file, "").unwrap();
    let out = logban(&["config", "write-defaults", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(file.to_str().unwrap()));
}

#[test]
fn load_picks_the_directory_or_the_embedded_tree() {
    let tmp = tempfile::tempdir().unwrap();
    // Missing: the embedded tree.
    let missing = tmp.path().join("absent");
    let tree = config::load(Some(&missing)).unwrap();
    assert_eq!(tree.basedir(), embedded::tree().basedir());
    assert_eq!(
        config::dump(&tree).unwrap(),
        config::dump(&embedded::tree()).unwrap()
    );
    // Present: read as it is, even when it holds no jail at all.
    let conf = tmp.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("jail.conf"), "[DEFAULT]\nmaxretry = 6\n").unwrap();
    let tree = config::load(Some(&conf)).unwrap();
    assert_eq!(tree.basedir(), conf.to_str().unwrap());
    assert!(tree.jails().unwrap().is_empty());
    // A file in its place is an error, not a reason to fall back.
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let err = config::load(Some(&file)).unwrap_err();
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
}

/// The embedded files with `extra` added, as a tree that lives as long as
/// the test process.
fn embedded_with(extra: &[(&str, String)]) -> ConfigTree {
    let mut files: Vec<(&'static str, &'static str)> = embedded::FILES.to_vec();
    for (rel, text) in extra {
        let rel: &'static str = Box::leak(rel.to_string().into_boxed_str());
        let text: &'static str = Box::leak(text.clone().into_boxed_str());
        files.push((rel, text));
    }
    ConfigTree::embedded(Box::leak(files.into_boxed_slice()))
}

fn assert_same_lines(ours: &[String], theirs: &[String]) {
    let first_diff = ours.iter().zip(theirs).position(|(a, b)| a != b);
    assert!(
        ours == theirs,
        "logban's dump differs from Fail2ban's ({} vs {} lines), first at {:?}:\nlogban:   {:?}\nfail2ban: {:?}",
        ours.len(),
        theirs.len(),
        first_diff,
        first_diff.map(|i| &ours[i]),
        first_diff.map(|i| &theirs[i]),
    );
}

#[test]
fn fail2ban_reads_the_written_out_tree_as_logban_reads_the_embedded_one() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    embedded::write_defaults(&conf, false).unwrap();
    // The jails' logs as temp files, so that the dump does not depend on
    // what /var/log holds; sshd's is missing (the daemon waits for it).
    fs::write(tmp.path().join("mail.log"), "").unwrap();
    let log = |name: &str| tmp.path().join(name).display().to_string();
    let jail_local = format!(
        "[sshd]\nlogpath = {}\n[dovecot]\nlogpath = {}\n[postfix]\nlogpath = {}\n",
        log("auth.log"),
        log("mail.log"),
        log("mail.log"),
    );
    fs::write(conf.join("jail.local"), &jail_local).unwrap();
    let (theirs, _) = fail2ban::dump(&conf);
    let tree = embedded_with(&[("jail.local", jail_local)]);
    let ours = config::dump(&tree).unwrap();
    assert_same_lines(&ours, &theirs);
    assert!(theirs.contains(&format!(
        "['set', 'postfix', 'addlogpath', '{}', 'head']",
        log("mail.log")
    )));
    assert!(theirs.contains(&"['start', 'sshd']".to_string()));
    assert!(!theirs.iter().any(|l| l.contains("auth.log")));
}

#[test]
fn fail2ban_reads_the_plain_tree_as_logban_reads_the_embedded_one() {
    // Without any override; both read the same /var/log at the same moment.
    let tmp = tempfile::tempdir().unwrap();
    embedded::write_defaults(tmp.path(), false).unwrap();
    let (theirs, _) = fail2ban::dump(tmp.path());
    let ours = config::dump(&embedded::tree()).unwrap();
    assert_same_lines(&ours, &theirs);
}

#[test]
fn the_embedded_tree_is_the_mail_server_profile() {
    let tree = embedded::tree();
    let jails = tree.jails().unwrap();
    let mut names: Vec<&str> = jails.iter().map(|j| j.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["custom", "dovecot", "postfix", "sshd"]);
    const WEEK: f64 = 7.0 * 86400.0;
    for j in &jails {
        assert_eq!(j.maxretry, 2, "{}", j.name);
        assert_eq!(j.findtime, WEEK, "{}", j.name);
        let bantime = if j.name == "custom" {
            180.0 * 86400.0
        } else {
            WEEK
        };
        assert_eq!(j.bantime, bantime, "{}", j.name);
        assert_eq!(j.ignoreip, ["127.0.0.1/8", "::1"], "{}", j.name);
        assert!(j.ignoreself, "{}", j.name);
        let actions: Vec<&str> = j.actions.iter().map(|a| a.file.as_str()).collect();
        assert_eq!(actions, ["nftables-allports"], "{}", j.name);
    }
    let postfix = tree.jail("postfix").unwrap();
    assert_eq!(
        postfix.options.get("mode").map(String::as_str),
        Some("extra")
    );
    // The mode reaches the filter: extra also counts SASL failures.
    let prefregex = postfix.filter.unwrap().prefregex.unwrap();
    assert!(prefregex.contains("warning: "), "{prefregex}");
    let custom = tree.jail("custom").unwrap();
    assert!(custom.logpath.is_empty());
    assert!(custom.filter.unwrap().failregex.is_empty());
    let server = tree.server().unwrap();
    assert_eq!(server.dbfile, "/var/lib/fail2ban/fail2ban.sqlite3");
    assert_eq!(server.socket, "/var/run/fail2ban/fail2ban.sock");
}
