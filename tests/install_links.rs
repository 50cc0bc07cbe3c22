//! `logban install-links DIR`: fail2ban-server, fail2ban-client and
//! fail2ban-regex in DIR become links to the binary, and an invocation
//! through each link is dispatched to its program.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{logban, text, BIN};
use logban::cli::{self, Program, LINK_NAMES};

fn binary() -> PathBuf {
    fs::canonicalize(BIN).unwrap()
}

/// `logban install-links` with `args` before the directory `dir`.
fn install_links(args: &[&str], dir: &Path) -> Output {
    let mut all = vec!["install-links"];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    logban(&all)
}

/// Each link resolves to the binary, and argv[0] as the kernel passes it
/// for `DIR/fail2ban-x --help` picks program x with `--help` as its argument.
fn assert_links_reach_their_programs(dir: &Path) {
    for (name, program) in LINK_NAMES {
        let link = dir.join(name);
        assert!(
            link.symlink_metadata().unwrap().file_type().is_symlink(),
            "{name} is a link"
        );
        assert_eq!(fs::canonicalize(&link).unwrap(), binary(), "{name}");
        let argv: Vec<OsString> = vec![link.into(), "--help".into()];
        assert_eq!(
            cli::pick(&argv),
            Some((program, vec![OsString::from("--help")])),
            "{name}"
        );
    }
}

#[test]
fn links_reach_each_program_and_installing_again_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = install_links(&[], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let me = binary();
    let expect = |what: &str| -> String {
        LINK_NAMES
            .iter()
            .map(|(name, _)| {
                format!(
                    "{} -> {} ({what})\n",
                    dir.join(name).display(),
                    me.display()
                )
            })
            .collect()
    };
    assert_eq!(text(&out.stdout), expect("created"));
    assert_links_reach_their_programs(dir);
    let out = install_links(&[], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expect("already there"));
    assert_links_reach_their_programs(dir);
    // The programs by name, as the first argument.
    let by_arg = |w: &str| cli::pick(&["logban".into(), w.into()]).map(|(p, _)| p);
    assert_eq!(by_arg("server"), Some(Program::Server));
    assert_eq!(by_arg("install-links"), Some(Program::InstallLinks));
    assert_eq!(by_arg("config"), Some(Program::Config));
}

#[test]
fn other_files_are_kept_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Fail2ban's own script, and a link to something else.
    fs::write(
        dir.join("fail2ban-client"),
        "#!/usr/bin/python3\n# the real one\n",
    )
    .unwrap();
    symlink("/bin/true", dir.join("fail2ban-regex")).unwrap();
    let out = install_links(&[], dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for name in ["fail2ban-client", "fail2ban-regex"] {
        assert!(err.contains(&dir.join(name).display().to_string()), "{err}");
    }
    assert!(err.contains("--force"), "{err}");
    // Nothing changed, not even the free name.
    assert!(!dir.join("fail2ban-server").exists());
    assert_eq!(
        fs::read_to_string(dir.join("fail2ban-client")).unwrap(),
        "#!/usr/bin/python3\n# the real one\n"
    );
    assert_eq!(
        fs::read_link(dir.join("fail2ban-regex")).unwrap(),
        Path::new("/bin/true")
    );

    let out = install_links(&["--force"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("fail2ban-server -> ") && stdout.contains("(created)"));
    assert_eq!(stdout.matches("(replaced)").count(), 2, "{stdout}");
    assert_links_reach_their_programs(dir);
    // No temporary names left behind.
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["fail2ban-client", "fail2ban-regex", "fail2ban-server"]
    );
}

#[test]
fn a_missing_directory_or_a_directory_in_the_way_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("absent");
    let out = install_links(&[], &missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not a directory"));
    assert!(!missing.exists());

    fs::create_dir(tmp.path().join("fail2ban-server")).unwrap();
    let out = install_links(&["--force"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("fail2ban-server"));
    assert!(tmp.path().join("fail2ban-server").is_dir());

    let out = logban(&["install-links"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage: logban install-links"));
}
