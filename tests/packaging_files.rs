//! `packaging/logban.service`: systemd accepts it, and the commands it runs
//! reach the programs and options the binary has.

mod common;

use std::ffi::OsString;
use std::fs;
use std::process::Command;

use common::{repo, BIN};
use logban::cli::{self, Program};

fn unit_text() -> String {
    let path = repo().join("packaging/logban.service");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key=` lines, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_unit_runs_the_server_and_client_programs() {
    let unit = unit_text();
    let one = |key: &str| -> &str {
        match values(&unit, key)[..] {
            [v] => v,
            ref all => panic!("{key}= {all:?}, want one"),
        }
    };
    assert_eq!(one("Type"), "simple");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("RuntimeDirectory"), "fail2ban");
    assert_eq!(one("StateDirectory"), "fail2ban");
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let caps: Vec<&str> = one(key).split_whitespace().collect();
        for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW"] {
            assert!(caps.contains(&cap), "{key} lacks {cap}");
        }
    }
    // PCRE2's JIT needs writable and executable memory.
    assert!(values(&unit, "MemoryDenyWriteExecute").is_empty());

    let command = |key: &str| -> (Program, Vec<String>) {
        let words: Vec<&str> = one(key).split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/logban", "{key}");
        let argv: Vec<OsString> = words.iter().map(OsString::from).collect();
        let (program, rest) = cli::pick(&argv).unwrap_or_else(|| panic!("{key}: no program"));
        let rest = rest.into_iter().map(|a| a.into_string().unwrap()).collect();
        (program, rest)
    };
    let (program, args) = command("ExecStart");
    assert_eq!(program, Program::Server);
    let (opts, words) = cli::parse_opts(&args).unwrap();
    assert!(opts.force, "-x removes a stale socket");
    assert_eq!(opts.foreground, Some(true));
    assert_eq!(words, ["start"]);
    for (key, word) in [("ExecStop", "stop"), ("ExecReload", "reload")] {
        let (program, args) = command(key);
        assert_eq!(program, Program::Client, "{key}");
        let (_, words) = cli::parse_opts(&args).unwrap();
        assert_eq!(words, [word], "{key}");
    }
}

#[test]
fn systemd_accepts_the_unit() {
    // The unit as installed, with the binary where the test can find it.
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_text().replace("/usr/local/bin/logban", BIN);
    let path = tmp.path().join("logban.service");
    fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}); install the Debian package `systemd`")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("logban.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}
