//! Tests of the configuration reader over whole trees: small trees written
//! in temporary directories, every stock filter and action of the installed
//! Fail2ban, and `dump()` against the real `fail2ban-client -d`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

const STOCK: &str = "/etc/fail2ban";

fn stock() -> &'static Path {
    let p = Path::new(STOCK);
    assert!(
        p.join("jail.conf").is_file(),
        "these tests read Fail2ban's stock configuration: install fail2ban (apt-get install fail2ban)"
    );
    p
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A copy of /etc/fail2ban in a temporary directory, with every path
/// variable of paths-*.conf pointing at log files created inside it.
struct StockCopy {
    dir: tempfile::TempDir,
}

impl StockCopy {
    fn new() -> StockCopy {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(stock(), &dir.path().join("etc"));
        let s = StockCopy { dir };
        let logs = s.logs();
        let mut overrides = String::from("[DEFAULT]\n");
        for (var, file) in [
            ("syslog_authpriv", "auth.log"),
            ("syslog_mail", "mail.log"),
            ("syslog_mail_warn", "mail.log"),
            ("syslog_local0", "messages"),
            ("syslog_daemon", "daemon.log"),
            ("syslog_ftp", "syslog"),
            ("syslog_user", "user.log"),
            ("apache_error_log", "apache2/*error.log"),
            ("apache_access_log", "apache2/*access.log"),
            ("nginx_error_log", "nginx/*error.log"),
            ("nginx_access_log", "nginx/*access.log"),
            ("auditd_log", "audit/audit.log"),
            ("exim_main_log", "exim4/mainlog"),
            ("lighttpd_error_log", "lighttpd/error.log"),
            ("proftpd_log", "proftpd/proftpd.log"),
            ("roundcube_errors_log", "roundcube/errors.log"),
            ("vsftpd_log", "vsftpd.log"),
        ] {
            overrides.push_str(&format!("{var} = {logs}/{file}\n"));
        }
        write(&s.etc(), "paths-overrides.local", &overrides);
        for f in [
            "auth.log",
            "mail.log",
            "messages",
            "daemon.log",
            "syslog",
            "user.log",
            "apache2/site-error.log",
            "apache2/other-error.log",
            "apache2/site-access.log",
            "nginx/error.log",
            "nginx/access.log",
            "audit/audit.log",
            "exim4/mainlog",
            "lighttpd/error.log",
            "proftpd/proftpd.log",
            "roundcube/errors.log",
            "vsftpd.log",
            "fail2ban.log",
            "monit.log",
        ] {
            write(Path::new(&logs), f, "");
        }
        s
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn logs(&self) -> String {
        self.dir.path().join("logs").to_string_lossy().into_owned()
    }

    fn write(&self, rel: &str, text: &str) {
        write(&self.etc(), rel, text);
    }

    fn tree(&self) -> ConfigTree {
        ConfigTree::open(self.etc()).unwrap()
    }
}

/// What `fail2ban-client -c DIR -d` prints (its warnings on stderr ignored).
fn client_dump(dir: &Path) -> Vec<String> {
    let out = Command::new("fail2ban-client")
        .arg("-c")
        .arg(dir)
        .arg("-d")
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("fail2ban-client must be installed (apt-get install fail2ban)");
    assert!(
        out.status.success(),
        "fail2ban-client -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("WARNING"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_dump_matches(dir: &Path) -> Vec<String> {
    let theirs = client_dump(dir);
    let ours = dump(&ConfigTree::open(dir).unwrap()).unwrap_or_else(|e| panic!("dump failed: {e}"));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "line {} differs", i + 1);
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "ours: {:#?}\ntheirs: {:#?}",
        ours,
        theirs
    );
    assert!(
        theirs.iter().any(|l| l.starts_with("['start'")),
        "no jail started"
    );
    ours
}

fn names_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(stock().join(dir))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".conf").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() > 20, "too few files in {STOCK}/{dir}");
    names
}

/// The modes a stock filter offers: `X-<mode>` keys for a `<X-<mode>>` reference.
fn filter_modes(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(stock().join(format!("filter.d/{name}.conf"))).unwrap();
    let mut prefixes = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("-<mode>>") {
        let head = &rest[..i];
        let start = head.rfind('<').map_or(0, |j| j + 1);
        prefixes.push(head[start..].to_string());
        rest = &rest[i + 1..];
    }
    let mut modes = Vec::new();
    for line in text.lines() {
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        for p in &prefixes {
            if let Some(m) = key
                .strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix('-'))
            {
                if !m.is_empty()
                    && m.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !modes.contains(&m.to_string())
                {
                    modes.push(m.to_string());
                }
            }
        }
    }
    modes
}

#[test]
fn every_stock_filter_loads_in_each_mode() {
    let tree = ConfigTree::open(stock()).unwrap();
    let mut with_modes = 0;
    for name in names_in("filter.d") {
        if name == "selinux-common" {
            // Only included by others: its failregex uses %(_type)s, which
            // the including filter sets. Fail2ban refuses it alone too.
            let e = tree.filter(&name).unwrap_err();
            assert_eq!(
                (e.section.as_deref(), e.key.as_deref()),
                (Some("Definition"), Some("failregex"))
            );
            assert!(e.message.contains("%(_type)s"), "{e}");
            continue;
        }
        for backend in ["auto", "systemd"] {
            tree.filter_for_backend(&name, backend)
                .unwrap_or_else(|e| panic!("filter {name} ({backend}): {e}"));
        }
        let modes = filter_modes(&name);
        with_modes += usize::from(!modes.is_empty());
        for mode in modes {
            let spec = format!("{name}[mode={mode}]");
            let f = tree
                .filter(&spec)
                .unwrap_or_else(|e| panic!("filter {spec}: {e}"));
            assert_eq!(f.name, name);
            for re in &f.failregex {
                assert!(
                    !re.contains("<mdre-") && !re.contains("<mode>"),
                    "{spec}: unresolved {re}"
                );
            }
        }
    }
    assert!(
        with_modes >= 8,
        "only {with_modes} filters with modes found"
    );
    let sshd = tree.filter("sshd[mode=aggressive]").unwrap();
    let normal = tree.filter("sshd").unwrap();
    assert!(sshd.failregex.len() > normal.failregex.len());
    assert_eq!(normal.maxlines, 1);
    assert_eq!(normal.datepattern.as_deref(), Some("{^LN-BEG}"));
    assert_eq!(
        normal.journal_groups,
        [
            vec!["_SYSTEMD_UNIT=sshd.service".to_string()],
            vec!["_COMM=sshd".to_string()]
        ]
    );
    assert!(normal.prefregex.as_deref().unwrap().contains("<F-CONTENT>"));
}

#[test]
fn every_stock_action_loads() {
    let tree = ConfigTree::open(stock()).unwrap();
    for name in names_in("action.d") {
        let a = tree
            .action(&name, "test")
            .unwrap_or_else(|e| panic!("action {name}: {e}"));
        assert_eq!(
            (a.name.as_str(), a.file.as_str()),
            (name.as_str(), name.as_str())
        );
        for family in [None, Some("inet4"), Some("inet6")] {
            let props = a
                .properties(family)
                .unwrap_or_else(|e| panic!("action {name}: {e}"));
            for cmd in ["actionstart", "actionban", "actionunban", "actionstop"] {
                props
                    .command(cmd)
                    .unwrap_or_else(|e| panic!("action {name} {cmd}: {e}"));
            }
        }
    }
    let py = tree
        .action("smtp.py[host=mx, actname=mailer]", "test")
        .unwrap();
    assert_eq!(py.name, "mailer");
    assert_eq!(py.script.as_deref(), Some("/etc/fail2ban/action.d/smtp.py"));
    assert_eq!(py.get("host"), Some("mx"));
}

#[test]
fn family_sections() {
    let def = |key: &str| ActionDef {
        options: vec![(key.to_string(), "x".to_string())],
        ..ActionDef::default()
    };
    assert!(def("addr_set?family=inet6").has_family_sections());
    assert!(!def("addr_set").has_family_sections());
    assert!(!def("?family=inet6").has_family_sections());
}

#[test]
fn nftables_action_per_family() {
    let tree = ConfigTree::open(stock()).unwrap();
    let a = tree
        .action(
            "nftables-multiport[port=\"smtp,465\", blocktype=drop]",
            "postfix",
        )
        .unwrap();
    assert!(a.has_family_sections());
    assert_eq!(a.get("addr_set?family=inet6"), Some("addr6-set-<name>"));
    let v4 = a.properties(Some("inet4")).unwrap();
    let v6 = a.properties(Some("inet6")).unwrap();
    let ban4 = v4.command("actionban").unwrap();
    let ban6 = v6.command("actionban").unwrap();
    assert_eq!(
        ban4,
        r"nft add element inet f2b-table addr-set-postfix \{ <ip> \}"
    );
    assert_eq!(
        ban6,
        r"nft add element inet f2b-table addr6-set-postfix \{ <ip> \}"
    );
    let start6 = v6.command("actionstart").unwrap();
    assert!(
        start6.contains("ip6 saddr @addr6-set-postfix drop"),
        "{start6}"
    );
    assert!(
        start6.contains(r"dport \{ $(echo 'smtp,465' | sed s/:/-/g) \}"),
        "{start6}"
    );
    let ban = tags::substitute_once(&ban6, |t| (t == "ip").then(|| "2001:db8::1".into()));
    assert_eq!(
        ban,
        r"nft add element inet f2b-table addr6-set-postfix \{ 2001:db8::1 \}"
    );
    assert_eq!(v6.get("timeout"), Some("60"));
}

/// Jails for every stock filter in each of its modes and for every stock
/// action, checked against the real client.
#[test]
fn dump_matches_client_for_every_filter_mode_and_action() {
    let t = StockCopy::new();
    let log = format!("{}/auth.log", t.logs());
    let mut local = String::new();
    for name in names_in("filter.d") {
        for mode in filter_modes(&name) {
            local.push_str(&format!(
                "[f-{name}-{mode}]\nenabled = true\nfilter = {name}[mode={mode}]\nlogpath = {log}\n\n"
            ));
        }
    }
    for name in names_in("action.d") {
        local.push_str(&format!(
            "[a-{name}]\nenabled = true\nfilter = sshd\nlogpath = {log}\naction = {name}[port=\"http,https\", name=web]\n\n"
        ));
    }
    t.write("jail.local", &local);
    let lines = assert_dump_matches(&t.etc());
    assert!(lines.iter().any(|l| l
        .starts_with("['multi-set', 'a-nftables-multiport', 'action', 'nftables-multiport-web',")));
}

#[test]
fn dump_matches_client_with_every_stock_jail_enabled() {
    let t = StockCopy::new();
    t.write("jail.local", "[DEFAULT]\nenabled = true\n");
    let lines = assert_dump_matches(&t.etc());
    assert!(lines.len() > 500);
    assert!(!lines.iter().any(|l| l.contains("config-error")));
}

/// (a) Stock tree with a jail.local enabling common jails, a systemd jail,
/// other action shortcuts and server settings.
#[test]
fn dump_matches_client_stock_with_jail_local() {
    let t = StockCopy::new();
    let logs = t.logs();
    t.write(
        "jail.local",
        &format!(
            "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1, 192.0.2.0/24\nbantime.increment = true\nbantime.factor = 2\n\
             bantime.maxtime = 5w\n\n\
             [sshd]\nenabled = true\nmode = aggressive\n\n\
             [dovecot]\nenabled = true\n\n\
             [postfix]\nenabled = true\nmode = extra\n\n\
             [postfix-sasl]\nenabled = true\naction = %(action_mwl)s\n\n\
             [recidive]\nenabled = true\nlogpath = {logs}/fail2ban.log\n\n\
             [nginx-http-auth]\nenabled = true\naction = %(action_xarf)s\n\n\
             [apache-auth]\nenabled = true\nbanaction = nftables-allports\n\n\
             [sieve]\nenabled = true\nblocklist_de_apikey = KEY\naction = %(action_blocklist_de)s\n         %(action_abuseipdb)s\n\n\
             [php-url-fopen]\nenabled = true\n\n\
             [monit]\nenabled = true\nlogpath = {logs}/monit.log tail\n          {logs}/missing.log\n\n\
             [selinux-ssh]\nenabled = true\nignorecache = key=\"<ip>\", max-count=100, max-time=5m\n\n\
             [sshd-journal]\nenabled = true\nfilter = sshd[mode=ddos]\nbackend = systemd[journalflags=1]\n\
             logpath = /nonexistent\nmaxretry = 3\n"
        ),
    );
    t.write(
        "fail2ban.local",
        "[Definition]\nloglevel = DEBUG\ndbpurgeage = 2d\n\n[Thread]\nstacksize = 64\n",
    );
    let lines = assert_dump_matches(&t.etc());
    assert!(lines.contains(&"['set', 'thread', {'stacksize': 64}]".to_string()));

    let jails = t.tree().jails().unwrap();
    let names: Vec<&str> = jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sshd",
            "selinux-ssh",
            "apache-auth",
            "nginx-http-auth",
            "php-url-fopen",
            "monit",
            "postfix",
            "dovecot",
            "sieve",
            "postfix-sasl",
            "recidive",
            "sshd-journal"
        ]
    );
    let sshd = &jails[0];
    assert_eq!(
        (sshd.maxretry, sshd.maxmatches, sshd.findtime, sshd.bantime),
        (5, 5, 600.0, 600.0)
    );
    assert_eq!(sshd.ignoreip, ["127.0.0.1/8", "::1", "192.0.2.0/24"]);
    assert!(sshd.bantime_increment.enabled);
    assert_eq!(sshd.bantime_increment.factor, 2.0);
    assert_eq!(sshd.bantime_increment.maxtime, Some(5.0 * 604800.0));
    assert_eq!(sshd.backend.kind, BackendKind::Auto);
    assert_eq!(
        sshd.logpath,
        [LogPath {
            pattern: format!("{logs}/auth.log"),
            tail: false
        }]
    );
    assert_eq!(sshd.filter.as_ref().unwrap().usedns, UseDns::Warn);
    assert_eq!(sshd.actions[0].name, "iptables-multiport");
    let monit = jails.iter().find(|j| j.name == "monit").unwrap();
    assert!(monit.logpath[0].tail && !monit.logpath[1].tail);
    assert_eq!(monit.logpath[0].expand(), [format!("{logs}/monit.log")]);
    let journal = jails.iter().find(|j| j.name == "sshd-journal").unwrap();
    assert_eq!(journal.backend.kind, BackendKind::Systemd);
    assert_eq!(
        journal.backend.params,
        [("journalflags".to_string(), "1".to_string())]
    );
    assert!(journal.logpath.is_empty());
    let pf = jails.iter().find(|j| j.name == "postfix-sasl").unwrap();
    assert_eq!(pf.actions.len(), 2);
    assert_eq!(pf.actions[1].file, "sendmail-whois-lines");
    let ic = jails
        .iter()
        .find(|j| j.name == "selinux-ssh")
        .unwrap()
        .ignorecache
        .clone();
    assert_eq!(
        ic,
        Some(IgnoreCache {
            key: "<ip>".into(),
            max_count: 100,
            max_time: 300.0
        })
    );
    let server = t.tree().server().unwrap();
    assert_eq!(
        (
            server.loglevel.as_str(),
            server.dbpurgeage,
            server.stacksize
        ),
        ("DEBUG", 172800.0, Some(64))
    );
    assert_eq!(server.dbmaxmatches, Some(10));
    assert_eq!(server.socket, "/var/run/fail2ban/fail2ban.sock");
}

const MAILSERVER_JAIL: &str = "[DEFAULT]\nbantime = 1w\nfindtime = 1w\nmaxretry = 6\nignoreip = 127.0.0.1/8\n\
    banaction = nftables-allports\n[dovecot]\nenabled = true\n[postfix]\nenabled = true\nmode = extra\n\
    [custom]\nenabled = true\nbantime = 180d\nport = smtp,pop3,pop3s,imap,imaps,submission,submissions,sieve\n";

/// (b) The mail-server layout: its jail.local, an empty custom filter,
/// blocktype drop for nftables, the user's overrides in jail.d and
/// fail2ban.local.
#[test]
fn dump_matches_client_mailserver_layout() {
    for banaction in ["nftables-multiport", "nftables-allports"] {
        let t = StockCopy::new();
        t.write(
            "jail.local",
            &MAILSERVER_JAIL.replace("nftables-allports", banaction),
        );
        t.write("filter.d/custom.conf", "[Definition]\n");
        t.write(
            "action.d/nftables-common.local",
            "[Init]\nblocktype = drop\n",
        );
        t.write(
            "jail.d/user-jail.local",
            "[DEFAULT]\nbantime = 1234\nfindtime = 321\nmaxretry = 2\n",
        );
        t.write("fail2ban.local", "[Definition]\nloglevel = DEBUG\n");
        let lines = assert_dump_matches(&t.etc());
        assert!(lines.contains(&"['start', 'custom']".to_string()));

        let jails = t.tree().jails().unwrap();
        let names: Vec<&str> = jails.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["sshd", "postfix", "dovecot", "custom"]);
        let custom = &jails[3];
        assert_eq!(
            (custom.maxretry, custom.findtime, custom.bantime),
            (2, 321.0, 15552000.0)
        );
        assert!(custom.logpath.is_empty());
        assert!(custom.filter.as_ref().unwrap().failregex.is_empty());
        let dovecot = &jails[2];
        assert_eq!(dovecot.logpath[0].pattern, format!("{}/mail.log", t.logs()));
        let action = &dovecot.actions[0];
        assert_eq!(action.file, banaction);
        assert_eq!(action.get("blocktype"), Some("drop"));
        let start = action
            .properties(Some("inet4"))
            .unwrap()
            .command("actionstart")
            .unwrap();
        assert!(start.contains("ip saddr @addr-set-dovecot drop"), "{start}");
        if banaction == "nftables-multiport" {
            assert!(
                start.contains("'pop3,pop3s,imap,imaps,submission,465,sieve'"),
                "{start}"
            );
        }
        assert_eq!(jails[1].filter.as_ref().unwrap().name, "postfix");
        assert_eq!(t.tree().server().unwrap().loglevel, "DEBUG");
    }
}

/// (c) Overrides in jail.d/*.local, filter .local and .d files extending
/// stock values with `%(known/...)s`, action shortcuts, a Python action and
/// jails Fail2ban skips.
#[test]
fn dump_matches_client_local_overrides() {
    let t = StockCopy::new();
    let logs = t.logs();
    t.write(
        "jail.d/10-site.local",
        "[sshd]\nenabled = true\nfailregex = %(known/failregex)s\n            ^Extra failure for .* from <HOST>$\n\
         action = %(action_mwl)s\nmaxretry = 3\ndestemail = admin@example.org\n\n\
         [dovecot]\nenabled = true\nusedns = no\nmaxlines = 2\nignoreregex = ^ignored <HOST>$\n\n\
         [mailer]\nenabled = true\nfilter = postfix[mode=auth]\nlogpath = %(postfix_log)s\n\
         action = smtp.py[host=mx.example.org, actname=mail]\n    %(banaction)s[name=mailer, port=\"smtp,465\"]\n\n\
         [nofilter]\nenabled = true\nfilter = nosuchfilter\n\n\
         [badaction]\nenabled = true\nfilter = sshd\naction = iptables[port=22, x]\n",
    );
    t.write("jail.d/05-first.conf", "[sshd]\nbantime = 1h\n");
    t.write(
        "jail.d/20-later.local",
        "[sshd]\nbantime = %(known/bantime)s\nfindtime = 20m\n",
    );
    t.write(
        "filter.d/sshd.local",
        "[Definition]\nfailregex = %(known/failregex)s\n            ^Local failure from <HOST>$\n",
    );
    t.write(
        "filter.d/dovecot.d/extra.conf",
        "[Definition]\nmode = aggressive\ndatepattern = {^LN-BEG}%%ExY\n",
    );
    t.write("action.d/iptables.local", "[Init]\nblocktype = DROP\n");
    t.write(
        "jail.local",
        &format!("[DEFAULT]\nbanaction = iptables-multiport\n[recidive]\nenabled = true\nlogpath = {logs}/fail2ban.log\n"),
    );
    let lines = assert_dump_matches(&t.etc());
    assert!(lines
        .iter()
        .any(|l| l.starts_with("['config-error', \"Jail 'nofilter' skipped")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("['config-error', \"Jail 'badaction' skipped")));

    let tree = t.tree();
    let results = tree.jail_results().unwrap();
    let broken: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(broken, ["nofilter", "badaction"]);
    let e = tree.jails().unwrap_err();
    assert!(e.skips_jail());
    assert_eq!(
        (e.section.as_deref(), e.key.as_deref()),
        (Some("nofilter"), Some("filter"))
    );
    assert!(
        e.file.as_deref().unwrap().ends_with("jail.d/10-site.local"),
        "{e}"
    );
    assert_eq!(e.line, Some(24));

    let sshd = tree.jail("sshd").unwrap();
    let f = sshd.filter.as_ref().unwrap();
    assert!(f.failregex.iter().any(|r| r.starts_with("^Local failure")));
    assert_eq!(
        f.failregex.last().unwrap(),
        "^Extra failure for .* from <HOST>$"
    );
    assert_eq!(
        (sshd.maxretry, sshd.bantime, sshd.findtime),
        (3, 3600.0, 1200.0)
    );
    assert_eq!(sshd.actions.len(), 2);
    assert_eq!(sshd.actions[1].get("dest"), Some("admin@example.org"));
    assert_eq!(sshd.actions[0].get("blocktype"), Some("DROP"));
    let dovecot = tree.jail("dovecot").unwrap();
    let f = dovecot.filter.as_ref().unwrap();
    assert_eq!((f.usedns, f.maxlines), (UseDns::No, 2));
    assert_eq!(f.ignoreregex, ["^ignored <HOST>$"]);
    // The jail's `filter = dovecot[mode=normal]` parameter beats the .d file.
    assert_eq!(f.options.get("mode").map(String::as_str), Some("normal"));
    assert_eq!(f.datepattern.as_deref(), Some("{^LN-BEG}%ExY"));
    let mailer = tree.jail("mailer").unwrap();
    assert_eq!(
        mailer.actions[0].script.as_deref(),
        Some(format!("{}/action.d/smtp.py", t.etc().display()).as_str())
    );
    assert_eq!(mailer.actions[1].name, "iptables-multiport");
    assert_eq!(mailer.actions[1].get("name"), Some("mailer"));
}

/// A small tree written from scratch.
fn tree_of(files: &[(&str, &str)]) -> (tempfile::TempDir, ConfigTree) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    let tree = ConfigTree::open(dir.path()).unwrap();
    (dir, tree)
}

/// INI corners, includes with their .local, .d directories, conditional
/// sections, `<known/...>`, quoted parameters: the real client agrees.
#[test]
fn dump_matches_client_on_a_hand_written_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "logs/a.log", "");
    let log2 = write(dir.path(), "logs/x.log", "");
    let files: Vec<(String, String)> = vec![
        ("fail2ban.conf".into(), "[Definition]\nloglevel = NOTICE\ndbfile = :memory:\n".into()),
        (
            "jail.conf".into(),
            "[INCLUDES]\nbefore = paths.conf\n\n[DEFAULT]\nbanaction = fw\nfilter = %(__name__)s[mode=%(mode)s]\n\
             mode = normal\naction = %(banaction)s[port=\"%(port)s\", text='a, b]c']\nport = 22\n\n\
             [one]\nenabled = true ; inline comment\nlogpath = %(one_log)s\n  ; a comment line inside\n\n  %(two_log)s tail\n\
             maxretry = 3\nfindtime = 1h30m\nignoreip = 192.0.2.1,198.51.100.0/24   203.0.113.5\n\n\
             [two]\nenabled = yes\nfilter = flt[mode=extra, extra=\"x,y\"]\nbackend = polling\nlogpath = %(two_log)s\n\
             failregex = %(known/failregex)s\n            ^two <HOST>$\nusedns = raw\nport = 80#not a comment\n\
             action = fw[name=web]\n         fw[name=two-ssh, blocktype=\"DROP 100%%\"]\n         py.py[x=1]\n\n\
             [three]\nenabled = false\nfilter =\n"
                .into(),
        ),
        ("paths.conf".into(), format!("[DEFAULT]\none_log = {}\n", log.display())),
        ("paths.local".into(), format!("[DEFAULT]\ntwo_log = {}\n", log2.display())),
        ("jail.d/a.conf".into(), "[one]\nbantime = 1d\n".into()),
        ("jail.d/b.local".into(), "[one]\nbantime = %(known/bantime)s\n".into()),
        (
            "filter.d/flt.conf".into(),
            "[INCLUDES]\nbefore = common-flt.conf\n\n[Definition]\nfailregex = <pre> <mdre-<mode>>\n\
             \tsecond <HOST>\n\nmdre-normal = normal <HOST>\nmdre-extra = extra <HOST> <extra>\n\
             ignoreregex =\ndatepattern = {^LN-BEG}\njournalmatch = _COMM=flt + \"_X=a b\"\n\n[Init]\nextra = init\n"
                .into(),
        ),
        ("filter.d/common-flt.conf".into(), "[DEFAULT]\npre = ^<lt_<logtype>/p>\n[lt_file]\np = file:\n[lt_journal]\np = journal:\n".into()),
        ("filter.d/flt.d/more.local".into(), "[Definition]\nmaxlines = 3\n".into()),
        ("filter.d/one.conf".into(), "[Definition]\nfailregex = ^one <HOST>\nprefregex = ^<F-CONTENT>.+</F-CONTENT>$\n".into()),
        ("filter.d/two.conf".into(), "[Definition]\nfailregex = ^stock <HOST>\n".into()),
        (
            "action.d/fw.conf".into(),
            "[Definition]\nactionstart = fw create <chain> <set>\nactionban = fw add <set> <ip> <blocktype>\n\
             actionunban = fw del <set> <ip>\nnorestored = yes\n\n[Init]\nchain = INPUT\nset = set-<name>\n\
             blocktype = REJECT\ntext = none\n\n[Init?family=inet6]\nset = set6-<name>\n\n\
             [Definition?family=inet6]\nactionunban = fw6 del <set> <ip>\n"
                .into(),
        ),
        ("action.d/fw.local".into(), "[Init]\nchain = %(known/chain)s-local\n".into()),
    ];
    for (rel, text) in &files {
        write(dir.path(), rel, text);
    }
    let lines = assert_dump_matches(dir.path());
    assert!(
        lines.contains(&"['set', 'loglevel', 'NOTICE']".to_string()),
        "{lines:#?}"
    );

    let tree = ConfigTree::open(dir.path()).unwrap();
    let jails = tree.jails().unwrap();
    assert_eq!(jails.len(), 2);
    let one = &jails[0];
    assert_eq!(
        (one.maxretry, one.findtime, one.bantime),
        (3, 5400.0, 86400.0)
    );
    assert_eq!(
        one.ignoreip,
        ["192.0.2.1", "198.51.100.0/24", "203.0.113.5"]
    );
    assert_eq!(one.logpath.len(), 2);
    assert!(one.logpath[1].tail);
    assert_eq!(one.actions[0].get("port"), Some("22"));
    assert_eq!(one.actions[0].get("text"), Some("a, b]c"));
    let f = one.filter.as_ref().unwrap();
    assert_eq!(f.prefregex.as_deref(), Some("^<F-CONTENT>.+</F-CONTENT>$"));
    let two = &jails[1];
    assert_eq!(two.backend.kind, BackendKind::Polling);
    let f = two.filter.as_ref().unwrap();
    assert_eq!(
        f.failregex,
        ["^file: extra <HOST> x,y", "second <HOST>", "^two <HOST>$"]
    );
    assert_eq!((f.maxlines, f.usedns), (3, UseDns::Raw));
    assert_eq!(
        f.journal_groups,
        [vec!["_COMM=flt".to_string()], vec!["_X=a b".to_string()]]
    );
    assert_eq!(
        two.options.get("port").map(String::as_str),
        Some("80#not a comment")
    );
    let names: Vec<&str> = two.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["fw-web", "fw-ssh", "py"]);
    let fw = &two.actions[1];
    assert_eq!(fw.get("blocktype"), Some("DROP 100%"));
    assert_eq!(fw.get("chain"), Some("INPUT-local"));
    assert_eq!(fw.get("norestored"), Some("True"));
    assert_eq!(fw.get("actionstart"), Some("fw create INPUT-local <set>"));
    let v6 = fw.properties(Some("inet6")).unwrap();
    assert_eq!(
        v6.command("actionban").unwrap(),
        "fw add set6-two-ssh <ip> DROP 100%"
    );
    let v4 = fw.properties(Some("inet4")).unwrap();
    assert_eq!(
        v4.command("actionunban").unwrap(),
        "fw del set-two-ssh <ip>"
    );
    // Fail2ban 1.0.2 drops `[Definition?family=...]` commands; so do we.
    assert_eq!(
        v6.command("actionunban").unwrap(),
        "fw del set6-two-ssh <ip>"
    );
    assert_eq!(
        two.actions[2].script.as_deref(),
        Some(format!("{}/action.d/py.py", dir.path().display()).as_str())
    );
    let three = tree.jail("three").unwrap();
    assert!(!three.enabled);
    assert_eq!(
        tree.filter("flt[mode=normal]").unwrap().failregex[0],
        "^file: normal <HOST>"
    );
    assert_eq!(
        tree.filter_for_backend("flt[mode=normal]", "systemd")
            .unwrap()
            .failregex[0],
        "^journal: normal <HOST>"
    );
    let server = tree.server().unwrap();
    assert_eq!(
        (server.loglevel.as_str(), server.dbfile.as_str()),
        ("NOTICE", ":memory:")
    );
    assert_eq!(server.logtarget, "/var/log/fail2ban.log");
}

#[test]
fn read_order_with_includes_locals_and_d_directories() {
    let (_d, tree) = tree_of(&[
        ("jail.conf", "[INCLUDES]\nbefore = inc/b.conf\nafter = a.conf\n[DEFAULT]\nv = jail.conf\n[x]\nenabled = true\nfilter =\nlog = %(v)s\n"),
        ("inc/b.conf", "[INCLUDES]\nbefore = c.conf\n[DEFAULT]\nv = b.conf\nw = b\n"),
        ("inc/b.local", "[DEFAULT]\nw = b.local\n"),
        ("inc/c.conf", "[DEFAULT]\nw = c\nu = c\n"),
        ("a.conf", "[DEFAULT]\nu = a.conf\n"),
        ("jail.d/2.conf", "[x]\nn = 2\n"),
        ("jail.d/1.conf", "[x]\nn = 1\n"),
        ("jail.local", "[x]\nlog = local %(u)s %(w)s %(v)s\n"),
        ("jail.d/0.local", "[x]\nlog = %(known/log)s+0.local\n"),
    ]);
    let x = tree.jail("x").unwrap();
    let opt = |k: &str| x.options.get(k).map(String::as_str);
    // c.conf, b.conf, b.local, jail.conf, a.conf, jail.d/1.conf, jail.d/2.conf,
    // jail.local, jail.d/0.local.
    assert_eq!(opt("log"), Some("local a.conf b.local jail.conf+0.local"));
    assert_eq!(opt("n"), Some("2"));
    assert!(x.filter.is_none() && x.actions.is_empty());
}

#[test]
fn include_loops_are_refused_naming_the_files() {
    let (d, tree) = tree_of(&[
        (
            "jail.conf",
            "[INCLUDES]\nbefore = a.conf\n[x]\nenabled = true\n",
        ),
        ("a.conf", "[INCLUDES]\nafter = inc/../b.conf\n"),
        ("inc/keep", ""),
        ("b.conf", "[INCLUDES]\nbefore = ./jail.conf\n"),
    ]);
    let e = tree.jails().unwrap_err();
    let root = d.path().display().to_string();
    assert!(
        e.message.contains(&format!(
            "{root}/jail.conf -> {root}/a.conf -> {root}/b.conf -> {root}/jail.conf"
        )),
        "{e}"
    );
    assert_eq!(e.section.as_deref(), Some("INCLUDES"));
    // A file included twice without a loop is fine (diamond).
    let (_d, tree) = tree_of(&[
        (
            "jail.conf",
            "[INCLUDES]\nbefore = a.conf\n          b.conf\n[x]\nenabled = true\nfilter =\n",
        ),
        ("a.conf", "[INCLUDES]\nafter = c.conf\n"),
        ("b.conf", "[INCLUDES]\nafter = c.conf\n"),
        ("c.conf", "[DEFAULT]\nk = v\n"),
    ]);
    assert_eq!(tree.jails().unwrap().len(), 1);
}

#[test]
fn errors_name_file_section_and_key() {
    let base = "[DEFAULT]\nfilter = f\n[j]\nenabled = true\n";
    let check =
        |extra: &str, files: &[(&str, &str)], section: &str, key: &str, line: u32, what: &str| {
            let jail = format!("{base}{extra}");
            let mut all = vec![
                ("jail.conf", jail.as_str()),
                ("filter.d/f.conf", "[Definition]\nfailregex = x <HOST>\n"),
            ];
            all.extend_from_slice(files);
            let (_d, tree) = tree_of(&all);
            let e = tree.jails().unwrap_err();
            assert_eq!(e.section.as_deref(), Some(section), "{e}");
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.file.as_deref().unwrap().ends_with(".conf"), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        };
    check(
        "maxretry = abc\n",
        &[],
        "j",
        "maxretry",
        5,
        "\"abc\" is not an integer",
    );
    check(
        "backend = inotify\n",
        &[],
        "j",
        "backend",
        5,
        "unknown backend",
    );
    check(
        "bantime = 10 minutes please\n",
        &[],
        "j",
        "bantime",
        5,
        "invalid time value",
    );
    check(
        "filter = nope\n",
        &[],
        "j",
        "filter",
        5,
        "no filter \"nope\"",
    );
    check(
        "action = nope[a=1]\n",
        &[],
        "j",
        "action",
        5,
        "no action \"nope\"",
    );
    check(
        "action = fw[a=\"x\" junk]\n",
        &[],
        "j",
        "action",
        5,
        "invalid action",
    );
    check(
        "logpath = %(nolog)s\n",
        &[],
        "j",
        "logpath",
        5,
        "%(nolog)s refers to an option",
    );
    check(
        "usedns = maybe\n",
        &[],
        "j",
        "usedns",
        5,
        "is not one of yes, warn, no, raw",
    );
    check(
        "logpath = /x middle\n",
        &[],
        "j",
        "logpath",
        5,
        "head or tail",
    );
    check(
        "maxlines = 0\n",
        &[],
        "j",
        "maxlines",
        5,
        "maxlines must be greater than zero",
    );
    // Errors inside a filter name the filter's file.
    let (_d, tree) = tree_of(&[
        ("jail.conf", base),
        (
            "filter.d/f.conf",
            "[Definition]\nfailregex = x <HOST>\nmaxlines = many\n",
        ),
    ]);
    let e = tree.jails().unwrap_err();
    assert!(
        e.file.as_deref().unwrap().ends_with("filter.d/f.conf"),
        "{e}"
    );
    assert_eq!(e.key.as_deref(), Some("maxlines"));
    // Parse errors name the file and line.
    let (_d, tree) = tree_of(&[("jail.conf", "[j]\nenabled = true\nthis is not an option\n")]);
    let e = tree.jails().unwrap_err();
    assert!(e.to_string().ends_with("jail.conf:3: not a section header, an option or a continuation: \"this is not an option\""), "{e}");
    // Tags that refer to themselves.
    let (_d, tree) = tree_of(&[(
        "filter.d/f.conf",
        "[Definition]\nfailregex = <a>\na = x<b>\nb = <a>\n",
    )]);
    let e = tree.filter("f").unwrap_err();
    assert!(e.message.contains("refer to themselves"), "{e}");
    assert!(
        e.file.as_deref().unwrap().ends_with("filter.d/f.conf"),
        "{e}"
    );
    // A bad fail2ban.conf value.
    let (_d, tree) = tree_of(&[("fail2ban.conf", "[Definition]\ndbmaxmatches = ten\n")]);
    let e = tree.server().unwrap_err();
    assert_eq!(
        (e.section.as_deref(), e.key.as_deref(), e.line),
        (Some("Definition"), Some("dbmaxmatches"), Some(2))
    );
}

#[test]
fn known_values_of_the_filter_reach_the_jail() {
    let (_d, tree) = tree_of(&[
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\nfailregex = %(known/failregex)s\n  ^jail <HOST>\n\
             ignoreregex = %(known/ignoreregex)s ^ign\nmaxlines = %(known/maxlines)s\n",
        ),
        (
            "filter.d/f.conf",
            "[Definition]\nfailregex = ^filter <HOST> <tag>\nignoreregex = <tag>\nmaxlines = 4\n[Init]\ntag = T\n",
        ),
    ]);
    let j = tree.jail("j").unwrap();
    let f = j.filter.unwrap();
    assert_eq!(f.failregex, ["^filter <HOST> T", "^jail <HOST>"]);
    assert_eq!(f.ignoreregex, ["T ^ign"]);
    assert_eq!(f.maxlines, 4);
}

static EMBEDDED: &[(&str, &str)] = &[
    ("fail2ban.conf", "[Definition]\nsocket = /run/logban.sock\n"),
    ("jail.conf", "[DEFAULT]\nbanaction = hosts\n[ssh]\nenabled = true\nfilter = s[port=2222]\nlogpath = /nonexistent/auth.log\naction = %(banaction)s\nignorecommand = %(fail2ban_confpath)s/check <ip>\n"),
    ("jail.d/x.local", "[ssh]\nmaxretry = 2\n"),
    ("filter.d/s.conf", "[Definition]\nfailregex = ^fail from <HOST> port <port>$\n[Init]\nport = 22\n"),
    ("action.d/hosts.conf", "[Definition]\nactionban = echo ALL: <ip> >> <file>\n[Init]\nfile = /etc/hosts.deny\n"),
];

#[test]
fn embedded_tree_reads_like_a_directory() {
    let tree = ConfigTree::embedded(EMBEDDED);
    let j = tree.jails().unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].maxretry, 2);
    assert_eq!(
        j[0].filter.as_ref().unwrap().failregex,
        ["^fail from <HOST> port 2222$"]
    );
    assert_eq!(
        j[0].ignorecommand.as_deref(),
        Some("/etc/logban/check <ip>")
    );
    assert_eq!(
        j[0].actions[0].get("actionban"),
        Some("echo ALL: <ip> >> /etc/hosts.deny")
    );
    assert_eq!(tree.server().unwrap().socket, "/run/logban.sock");
    let other = ConfigTree::embedded(EMBEDDED).with_basedir("/opt/lb/");
    assert_eq!(
        other.jail("ssh").unwrap().ignorecommand.as_deref(),
        Some("/opt/lb/check <ip>")
    );
    let lines = dump(&tree).unwrap();
    assert_eq!(lines.last().unwrap(), "['start', 'ssh']");
    assert!(lines.contains(&"['set', 'ssh', 'maxretry', 2]".to_string()));
}

#[test]
fn missing_tree_and_missing_jail() {
    assert!(ConfigTree::open("/nonexistent/logban-test").is_err());
    let (_d, tree) = tree_of(&[("jail.conf", "[a]\nenabled = true\nfilter =\n")]);
    assert!(tree.jail("b").unwrap_err().message.contains("no jail [b]"));
    // No fail2ban.conf at all: Fail2ban's defaults.
    let s = tree.server().unwrap();
    assert_eq!(
        (s.loglevel.as_str(), s.dbpurgeage, s.dbmaxmatches),
        ("INFO", 86400.0, None)
    );
}

#[test]
fn dump_matches_client_without_fail2ban_conf() {
    let (d, _) = tree_of(&[
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\nmaxretry = 2\n",
        ),
        ("filter.d/f.conf", "[Definition]\nfailregex = ^x <HOST>\n"),
    ]);
    let lines = assert_dump_matches(d.path());
    // Without [Definition] Fail2ban sends every default, an unset one as None.
    assert!(
        lines.contains(&"['set', 'dbmaxmatches', None]".to_string()),
        "{lines:#?}"
    );
    assert!(lines.contains(&"['set', 'logtarget', '/var/log/fail2ban.log']".to_string()));
}

/// Where Fail2ban's client gives up on a configuration, so does `dump`.
#[test]
fn dump_fails_where_the_client_fails() {
    let filter = ("filter.d/f.conf", "[Definition]\nfailregex = ^x <HOST>\n");
    let cases: [(&str, &str, &str); 5] = [
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\nlogpath = %(nope)s\n",
            "%(nope)s",
        ),
        (
            "jail.conf",
            "[j]\nenabled = true\n[j]\nfilter = f\n",
            "already exists",
        ),
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\n  nonsense\n[k\n",
            "not a section header",
        ),
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\naction = a\n",
            "refer to themselves",
        ),
        (
            "jail.conf",
            "[j]\nenabled = true\nfilter = f\nmaxretry = 5%\n",
            "'%' must be followed",
        ),
    ];
    for (rel, text, why) in cases {
        let action = (
            "action.d/a.conf",
            "[Definition]\nactionban = <x>\n[Init]\nx = <known/x>-more\n",
        );
        let (d, tree) = tree_of(&[(rel, text), filter, action]);
        let out = Command::new("fail2ban-client")
            .arg("-c")
            .arg(d.path())
            .arg("-d")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("ERROR: The configuration stream failed"),
            "client accepted {text:?}: {stdout}"
        );
        let e = dump(&tree).unwrap_err();
        assert!(e.to_string().contains(why), "{text:?}: {e}");
    }
}

/// Garbage in any reader gives errors or values, never a panic.
#[test]
fn garbage_never_panics() {
    const PIECES: [&str; 24] = [
        "[", "]", "=", ":", "%", "%(", ")s", "<", ">", "\"", "'", ",", ";", "#", " ", "\n", "\t",
        "é", "€x", "a", "1", "d", "known/", "?family=",
    ];
    // A fixed linear congruential sequence: the same inputs on every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..300 {
        let len = next(40);
        let text: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
        let _ = parse_time(&text);
        let _ = options::extract_options(&text);
        let _ = options::split_with_options(&text);
        let _ = options::shlex_split(&text);
        let _ = tags::substitute(&text, |t| (t.len() % 2 == 0).then(|| "<x>".into()));
        write(
            dir.path(),
            "jail.conf",
            &format!("[DEFAULT]\nfilter = f\n[j]\nenabled = true\nx = {text}\naction = {text}\n"),
        );
        write(
            dir.path(),
            "filter.d/f.conf",
            &format!("[Definition]\nfailregex = {text}\n{text}\n"),
        );
        let tree = ConfigTree::open(dir.path()).unwrap();
        let _ = tree.jails();
        let _ = dump(&tree);
    }
    let long = format!("a[{}]", vec!["k=v"; 5000].join(", "));
    assert_eq!(options::split_with_options(&long).len(), 5000);
}
