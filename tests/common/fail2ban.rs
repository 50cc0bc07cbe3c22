//! Fail2ban as installed, the reference the tests compare with: copies of
//! /etc/fail2ban, what its reader makes of a tree (`fail2ban-client -d`:
//! the command stream and, from it, the actions of each jail), and its own
//! server and client run on a copy of a logban sandbox.
//!
//! Everything here fails clearly when Fail2ban is not installed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::daemon::{Sandbox, Tools};
use super::{need, pipe, sh, text};

pub const CONF: &str = "/etc/fail2ban";
pub const SERVER: &str = "/usr/bin/fail2ban-server";
pub const CLIENT: &str = "/usr/bin/fail2ban-client";
pub const REGEX: &str = "/usr/bin/fail2ban-regex";
/// Fail2ban's annotated sample logs.
pub const SAMPLES: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// Fails clearly when Fail2ban's `path` is missing.
pub fn installed(path: &str) -> &Path {
    need(path, "fail2ban")
}

/// A copy of /etc/fail2ban in `dir` with `files` (relative path, content)
/// written over it.
pub fn tree(dir: &Path, files: &[(&str, &str)]) {
    installed(CONF);
    sh("cp", &["-r", &format!("{CONF}/."), dir.to_str().unwrap()]);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
}

/// `fail2ban-client -c CONF -d`, which must succeed: the configuration as
/// Fail2ban's command stream (stdout lines), and what it said on stderr.
pub fn dump(conf: &Path) -> (Vec<String>, String) {
    installed(CLIENT);
    let out = Command::new(CLIENT)
        .arg("-c")
        .arg(conf)
        .arg("-d")
        .output()
        .expect("run fail2ban-client");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "fail2ban-client -d rejects {}:\n{stderr}\n{stdout}",
        conf.display()
    );
    (stdout.lines().map(String::from).collect(), stderr)
}

/// Python literals (lines of a dump) as JSON values, by Python's own parser.
pub fn literals(lines: &[&str]) -> Vec<serde_json::Value> {
    let mut input = String::new();
    for l in lines {
        input.push_str(l);
        input.push('\n');
    }
    let out = pipe(
        Command::new("python3").args([
            "-c",
            "import ast, json, sys\nfor l in sys.stdin:\n    print(json.dumps(ast.literal_eval(l)))",
        ]),
        input.as_bytes(),
    );
    assert!(out.status.success(), "python3: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An action's name and options as `fail2ban-client -d` lists them.
pub type DumpedAction = (String, Vec<(String, String)>);

/// The actions of each jail in a dump.
pub fn dumped_actions(dump: &[String]) -> BTreeMap<String, Vec<DumpedAction>> {
    let lines: Vec<&str> = dump
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("['multi-set', ") && l.contains(", 'action', "))
        .collect();
    let mut jails: BTreeMap<String, Vec<DumpedAction>> = BTreeMap::new();
    for v in literals(&lines) {
        if v[2] != "action" {
            continue;
        }
        let opts = v[4]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                let v = match &kv[1] {
                    serde_json::Value::String(s) => s.clone(),
                    // `norestored = 1` comes out of Fail2ban's reader as True.
                    other => other.to_string(),
                };
                (kv[0].as_str().unwrap().to_string(), v)
            })
            .collect();
        jails
            .entry(v[1].as_str().unwrap().to_string())
            .or_default()
            .push((v[3].as_str().unwrap().to_string(), opts));
    }
    jails
}

/// A jail.local with the stock sshd jail off and `jail` on, without filter
/// or log, with `options` (`banaction = ...`, `action = ...`, `port = ...`).
pub fn jail_local(jail: &str, options: &str) -> String {
    format!(
        "[sshd]\nenabled = false\n\n[{jail}]\nenabled = true\nfilter =\nlogpath = /dev/null\n\
         {options}\n"
    )
}

/// The actions of `jail` as Fail2ban reads them from a copy of /etc/fail2ban
/// with `files` over it; `action_files` names the action.d file of each, in
/// order (Fail2ban's dump names actions, not their files). The tree lives as
/// long as the returned directory.
pub fn action_defs(
    files: &[(&str, &str)],
    jail: &str,
    action_files: &[&str],
) -> (tempfile::TempDir, Vec<logban::config::ActionDef>) {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), files);
    let acts = dumped_actions(&dump(dir.path()).0)
        .remove(jail)
        .unwrap_or_else(|| panic!("Fail2ban made no action for jail {jail}"));
    assert_eq!(
        acts.len(),
        action_files.len(),
        "actions of {jail}: {acts:?}"
    );
    let defs = acts
        .into_iter()
        .zip(action_files)
        .map(|((name, options), file)| logban::config::ActionDef {
            name,
            file: file.to_string(),
            options,
            ..Default::default()
        })
        .collect();
    (dir, defs)
}

/// A sandbox for Fail2ban's own server and client with `sb`'s configuration
/// (every occurrence of its directory replaced by the new one's) and its
/// logs, so that the same commands can be sent to both.
pub fn copy_of(sb: &Sandbox) -> Sandbox {
    installed(SERVER);
    installed(CLIENT);
    let f2b = Sandbox {
        tools: Tools::Fail2ban,
        ..Sandbox::empty()
    };
    let from = sb.dir.path().to_string_lossy().into_owned();
    let to = f2b.dir.path().to_string_lossy().into_owned();
    copy_replacing(&sb.path("etc"), &f2b.path("etc"), &from, &to);
    for f in ["auth.log", "other.log"] {
        if sb.path(f).exists() {
            std::fs::copy(sb.path(f), f2b.path(f)).unwrap();
        }
    }
    std::fs::create_dir_all(f2b.path("run")).unwrap();
    f2b
}

fn copy_replacing(from: &Path, to: &Path, old: &str, new: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_replacing(&e.path(), &dest, old, new);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(dest, text.replace(old, new)).unwrap();
        }
    }
}

/// A client's stderr with what differs between runs and programs taken
/// out: the timestamp and pid of each log line, and the sandbox directory.
pub fn normalize(text: &str, dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    text.lines()
        .map(|l| {
            let l = l.replace(&*dir, "SB");
            // `2026-11-27 05:08:15,426 fail2ban                [26447]: ERROR ...`
            match (l.find(" fail2ban"), l.find("]: ")) {
                (Some(a), Some(b)) if a == 23 && b > a => {
                    let name = l[a + 1..].split('[').next().unwrap_or_default().to_string();
                    format!("TIME {name}[PID]: {}", &l[b + 3..])
                }
                _ => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
