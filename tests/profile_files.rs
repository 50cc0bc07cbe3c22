//! Checks logban's own configuration tree (`defaults/`) without logban's
//! reader: every file is INI that Python's configparser accepts, every filter
//! and action the jails name exists, and the real Fail2ban client reads the
//! whole tree (`fail2ban-client -c COPY -d`), which proves the files stay in
//! Fail2ban's format and tag dialect.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::fail2ban;
use common::{copy_defaults, defaults_dir, text, tree_files, DEFAULT_JAILS};

/// Parses each file with Python's configparser (strict: no duplicate sections
/// or options, no interpolation) and returns file -> section -> option -> value.
fn parse_with_configparser(
    dir: &Path,
) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> {
    const SCRIPT: &str = r#"
import configparser, json, os, sys
base = sys.argv[1]
out, errors = {}, []
for root, _, files in os.walk(base):
    for name in files:
        path = os.path.join(root, name)
        rel = os.path.relpath(path, base)
        cp = configparser.RawConfigParser(strict=True, default_section="\x00none")
        try:
            with open(path, encoding="utf-8") as f:
                cp.read_file(f)
        except (configparser.Error, UnicodeDecodeError) as e:
            errors.append("%s: %s" % (rel, str(e).replace("\n", " ")))
            continue
        out[rel] = {s: dict(cp.items(s)) for s in cp.sections()}
if errors:
    sys.exit("\n".join(errors))
json.dump(out, sys.stdout)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "configparser rejects files in {}:\n{}",
        dir.display(),
        text(&out.stderr)
    );
    serde_json::from_str(&text(&out.stdout)).expect("configparser output is JSON")
}

#[test]
fn every_file_parses_as_ini() {
    let dir = defaults_dir();
    let files = tree_files(&dir);
    let parsed = parse_with_configparser(&dir);
    assert_eq!(
        parsed.keys().cloned().collect::<Vec<_>>(),
        files,
        "every file under defaults/ is INI"
    );
    for (file, sections) in &parsed {
        let is_filter_or_action = file.starts_with("filter.d/") || file.starts_with("action.d/");
        if is_filter_or_action && file != "filter.d/common.conf" {
            assert!(
                sections.contains_key("Definition"),
                "{file} has no [Definition] section"
            );
        }
    }
    assert_eq!(
        parsed["filter.d/custom.conf"].keys().collect::<Vec<_>>(),
        ["Definition"],
        "the custom jail's filter is empty"
    );
}

/// `name[opt=..]` -> `name`.
fn base_name(spec: &str) -> &str {
    spec.split('[').next().unwrap().trim()
}

#[test]
fn jails_name_existing_filters_and_actions() {
    let dir = defaults_dir();
    let parsed = parse_with_configparser(&dir);
    let jail_conf = &parsed["jail.conf"];
    let defaults = &jail_conf["DEFAULT"];
    let jails: Vec<&String> = jail_conf
        .keys()
        .filter(|s| !matches!(s.as_str(), "DEFAULT" | "INCLUDES"))
        .collect();
    for wanted in ["sshd", "dovecot", "postfix", "postfix-sasl", "custom"] {
        assert!(
            jails.iter().any(|j| *j == wanted),
            "jail.conf lacks [{wanted}]"
        );
    }
    let mut banactions = vec![
        defaults["banaction"].clone(),
        defaults["banaction_allports"].clone(),
    ];
    for jail in &jails {
        let section = &jail_conf[jail.as_str()];
        let filter = match section.get("filter") {
            Some(spec) => base_name(spec).to_string(),
            None => jail.to_string(),
        };
        assert!(
            dir.join("filter.d")
                .join(format!("{filter}.conf"))
                .is_file(),
            "jail [{jail}] uses filter {filter}, missing in defaults/filter.d"
        );
        if let Some(b) = section.get("banaction") {
            if !b.starts_with("%(") {
                banactions.push(b.clone());
            }
        }
    }
    for action in banactions {
        let name = base_name(&action);
        assert!(
            dir.join("action.d").join(format!("{name}.conf")).is_file(),
            "banaction {name} missing in defaults/action.d"
        );
    }
    // Every include of every file resolves inside the tree (.local files are optional).
    for (file, sections) in &parsed {
        let Some(includes) = sections.get("INCLUDES") else {
            continue;
        };
        let parent = dir.join(file).parent().unwrap().to_path_buf();
        for key in ["before", "after"] {
            for inc in includes
                .get(key)
                .into_iter()
                .flat_map(|v| v.split_whitespace())
            {
                assert!(
                    inc.ends_with(".local") || parent.join(inc).is_file(),
                    "{file}: {key} = {inc} does not exist"
                );
            }
        }
    }
}

/// A copy of defaults/ whose jails read temp files, with every jail enabled
/// and the firewall actions spread over the jails, plus `extra` files.
fn prepared_copy(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    copy_defaults(&conf);
    let logs = ["auth.log", "mail.log", "nginx-error.log", "fail2ban.log"];
    for log in logs {
        fs::write(tmp.path().join(log), "").unwrap();
    }
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let jail_local = format!(
        "[sshd]\nlogpath = {auth}\nbanaction = iptables-multiport\n\
         [dovecot]\nlogpath = {mail}\nbanaction = iptables-ipset\n\
         [postfix]\nlogpath = {mail}\n\
         [postfix-sasl]\nenabled = true\nlogpath = {mail}\nbanaction = hostsdeny\n\
         [nginx-http-auth]\nenabled = true\nlogpath = {nginx}\nbanaction = iptables-allports\n\
         [recidive]\nenabled = true\nlogpath = {f2b}\n\
         [custom]\nbanaction = nftables-multiport\n",
        auth = p("auth.log"),
        mail = p("mail.log"),
        nginx = p("nginx-error.log"),
        f2b = p("fail2ban.log"),
    );
    fs::write(conf.join("jail.local"), jail_local).unwrap();
    for (rel, text) in extra {
        let path = conf.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    tmp
}

/// `fail2ban-client -c DIR -d`: the configuration as Fail2ban's command
/// stream, read without a complaint.
fn fail2ban_dump(conf: &Path) -> Vec<String> {
    let (dump, stderr) = fail2ban::dump(conf);
    let problems: Vec<&str> = stderr
        .lines()
        .chain(dump.iter().map(String::as_str))
        .filter(|l| l.contains("ERROR") || l.contains("config-error") || l.contains("WARNING"))
        .collect();
    assert!(
        problems.is_empty(),
        "fail2ban-client complains:\n{}",
        problems.join("\n")
    );
    dump
}

fn has_line(dump: &[String], line: &str) -> bool {
    dump.iter().any(|l| l == line)
}

#[test]
fn fail2ban_client_reads_the_tree() {
    let tmp = prepared_copy(&[]);
    let dump = fail2ban_dump(&tmp.path().join("conf"));
    for jail in DEFAULT_JAILS {
        assert!(
            has_line(&dump, &format!("['start', '{jail}']")),
            "jail {jail} does not start:\n{}",
            dump.join("\n")
        );
    }
    // The mail-server profile, as Fail2ban reads it.
    for line in [
        "['set', 'loglevel', 'INFO']",
        "['set', 'dbfile', '/var/lib/fail2ban/fail2ban.sqlite3']",
        "['set', 'dbpurgeage', '1d']",
        "['set', 'dovecot', 'maxretry', 2]",
        "['set', 'dovecot', 'findtime', '1w']",
        "['set', 'dovecot', 'bantime', '1w']",
        "['set', 'dovecot', 'addignoreip', '127.0.0.1/8', '::1']",
        "['set', 'postfix', 'addaction', 'nftables-allports']",
        "['set', 'custom', 'bantime', '180d']",
        "['set', 'custom', 'addaction', 'nftables-multiport']",
        "['set', 'sshd', 'addaction', 'iptables-multiport']",
        "['set', 'dovecot', 'addaction', 'iptables-ipset']",
        "['set', 'postfix-sasl', 'addaction', 'hostsdeny']",
        "['set', 'nginx-http-auth', 'addaction', 'iptables-allports']",
    ] {
        assert!(
            has_line(&dump, line),
            "missing {line} in:\n{}",
            dump.join("\n")
        );
    }
    // postfix runs in mode extra: its prefregex admits SASL warnings.
    let postfix_pref = dump
        .iter()
        .find(|l| l.starts_with("['set', 'postfix', 'prefregex'"))
        .expect("postfix prefregex");
    assert!(postfix_pref.contains("warning: "), "{postfix_pref}");
    // The custom jail has no log file and no regex.
    assert!(!dump
        .iter()
        .any(|l| l.starts_with("['set', 'custom', 'addlogpath'")));
    assert!(!dump.iter().any(|l| l.contains("'custom', 'addfailregex'")));
}

/// The options of one jail's action in a dump, as (option, value) pairs.
fn action_options(dump: &[String], jail: &str, action: &str) -> Vec<(String, String)> {
    fail2ban::dumped_actions(dump)
        .remove(jail)
        .into_iter()
        .flatten()
        .find(|(name, _)| name == action)
        .map(|(_, options)| options)
        .unwrap_or_else(|| panic!("no action {action} in jail {jail}"))
}

fn option<'a>(opts: &'a [(String, String)], key: &str) -> &'a str {
    opts.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no option {key} in {opts:?}"))
}

#[test]
fn nftables_sets_take_subnets_and_blocktype_from_init() {
    let tmp = prepared_copy(&[]);
    let dump = fail2ban_dump(&tmp.path().join("conf"));
    let opts = action_options(&dump, "dovecot", "iptables-ipset");
    assert_eq!(option(&opts, "ipmset"), "f2b-<name>");
    // The mail jails list several ports: one rule for the whole list.
    assert!(
        option(&opts, "actionstart")
            .contains("-m multiport --dports pop3,pop3s,imap,imaps,submission,465,sieve -m set"),
        "{opts:?}"
    );
    let opts = action_options(&dump, "postfix", "nftables-allports");
    assert!(
        option(&opts, "actionstart").contains("flags interval"),
        "nftables sets need flags interval for subnets"
    );
    assert_eq!(option(&opts, "blocktype"), "reject");
    assert_eq!(option(&opts, "addr_set"), "addr-set-<name>");
    assert_eq!(option(&opts, "addr_set?family=inet6"), "addr6-set-<name>");

    // FAIL2BAN_BLOCKTYPE=drop of the mail-server image writes this file.
    let tmp = prepared_copy(&[(
        "action.d/nftables-common.local",
        "[Init]\nblocktype = drop\n",
    )]);
    let dump = fail2ban_dump(&tmp.path().join("conf"));
    for (jail, action) in [
        ("postfix", "nftables-allports"),
        ("custom", "nftables-multiport"),
    ] {
        let opts = action_options(&dump, jail, action);
        assert_eq!(option(&opts, "blocktype"), "drop", "{jail}/{action}");
    }
    // The iptables actions are not affected.
    let opts = action_options(&dump, "sshd", "iptables-multiport");
    assert_eq!(
        option(&opts, "blocktype"),
        "REJECT --reject-with icmp-port-unreachable"
    );
}

#[test]
fn user_overrides_in_local_files_win() {
    let tmp = prepared_copy(&[
        (
            "jail.d/user-jail.local",
            "[DEFAULT]\nmaxretry = 6\n[postfix]\nmode = aggressive\n",
        ),
        ("fail2ban.local", "[Definition]\nloglevel = DEBUG\n"),
    ]);
    let dump = fail2ban_dump(&tmp.path().join("conf"));
    for line in [
        "['set', 'loglevel', 'DEBUG']",
        "['set', 'dovecot', 'maxretry', 6]",
        "['set', 'postfix', 'maxretry', 6]",
    ] {
        assert!(has_line(&dump, line), "missing {line}");
    }
    // Aggressive postfix also reads hang-ups ("lost connection after ...").
    let postfix_pref = dump
        .iter()
        .find(|l| l.starts_with("['set', 'postfix', 'prefregex'"))
        .unwrap();
    assert!(postfix_pref.contains("lost connection"), "{postfix_pref}");
}
